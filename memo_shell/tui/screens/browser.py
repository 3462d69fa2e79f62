"""The memory browser: every memory in a virtual table, searchable, filterable and prunable.

Rows come from the index's metadata (``Memories.select`` / ``Memories.meta``), never from the
record files, so opening the browser over 100k memories costs one id list. Search goes through
recall, the same ranking the chat uses, and every filter applies to its hits too. Hits without
direct evidence (no word or vector match: reached only through the graph, context or a pin) are
listed after the others, dimmed. Forgetting keeps the forgotten records in memory (app-wide, see
``undo.py``), so ``u`` can put them back with the same ids (files and index).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Input, Select, Static

from memo_shell.errors import MemoShellError
from memo_shell.records import InvalidRecord, parse_datetime
from memo_shell.selection import Selection
from memo_shell.tui import fmt, keymap
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.screens.detail import DetailOutcome, MemoryDetailScreen
from memo_shell.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
from memo_shell.tui.undo import Forgotten, forget_keeping, undo_last
from memo_shell.tui.widgets.key_bar import KeyBar
from memo_shell.tui.widgets.memory_table import MemoryTable

if TYPE_CHECKING:
    from memo_shell.tui.runtime import Runtime

#: How many recall hits a search shows (ranked; the long tail is rarely what anyone wants).
SEARCH_K = 500
#: A hit is direct evidence when one of its reasons starts so; the rest are listed last, dimmed.
DIRECT_EVIDENCE = ("matched", "similar")
#: Typing pauses this long before a search runs, so each keystroke does not start a recall.
SEARCH_DEBOUNCE_S = 0.25
SORTS = ("newest", "oldest", "session", "pinned first")
PINNED_CHOICES = (("pinned", True), ("not pinned", False))


@dataclass(frozen=True)
class Filter:
    """What the table shows: a recall query and/or a selection (session, dates, pinned).

    Recall only nudges towards a session and filters nothing, so its hits go through
    ``where.admits``; without a query the index selects the rows."""

    query: str = ""
    where: Selection = field(default_factory=Selection)

    def but(self, **changes: Any) -> Filter:
        """This filter with some of the selection's fields changed."""
        return replace(self, where=replace(self.where, **changes))


def parse_day(text: str, *, end: bool) -> datetime | None:
    """``2024-05-01`` (or a full ISO time); an end date means the end of that day."""
    text = text.strip()
    if not text:
        return None
    moment = parse_datetime(text)
    if end and len(text) == 10:
        moment += timedelta(days=1)
    return moment


class BrowserScreen(Screen[None]):
    """Browse, search, filter, pin, tag and prune memories."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.bindings("browser")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(id="browser")
        self.runtime = runtime
        self.filter = Filter()
        self.sort = SORTS[0]
        self.undo_stack: list[Forgotten] = runtime.undo_stack  # app-wide (see undo.py)
        self.stats: dict[str, Any] = {}
        self.disk_bytes: int | None = None
        self.index_wait = "opening the index…"
        self.weak_hits = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="browser-filters"):
            yield Input(placeholder="Search memories (/)", id="search")
            yield Select[str]([], prompt="All sessions", id="session-filter")
            yield Input(placeholder="since YYYY-MM-DD", id="since", classes="date")
            yield Input(placeholder="until YYYY-MM-DD", id="until", classes="date")
            yield Select[bool](PINNED_CHOICES, prompt="Pinned?", id="pinned-filter")
        yield MemoryTable(self._meta, id="table")
        yield Static("", id="browser-status")
        yield KeyBar()

    @property
    def table(self) -> MemoryTable:
        return self.query_one(MemoryTable)

    def _meta(self, memory_id: str) -> Any:
        memories = self.runtime.memories
        return memories.meta(memory_id) if memories is not None else None

    def on_mount(self) -> None:
        self.table.focus()
        self.render_status()
        self.start()

    @work(group="rows", exclusive=True)
    async def start(self) -> None:
        mem = await self.runtime.wait_store()
        if mem is None:
            return
        if mem.index_state != "ready":
            self.index_wait = "loading the index…"
            self.render_status()
            await self.runtime.io(mem.wait_ready)
        self.index_wait = ""
        await self.reload()  # rows first: they are what the user opened the browser for
        await self.load_sessions()
        self.measure_disk()

    async def load_sessions(self) -> None:
        sessions = await self.runtime.io(self.runtime.mem.sessions)
        sessions.sort(key=lambda s: s.last_at, reverse=True)  # the recent ones on top
        select = self.query_one("#session-filter", Select)
        select.set_options((f"{s.name} ({s.count:,})", s.name) for s in sessions)

    # ----------------------------------------------------------------- loading rows

    async def reload(self, *, top: bool = True) -> None:
        """Fetch the ids for the current filter and sort, off the event loop.

        ``top``: the cursor goes to the first row (a new search, sort or filter); False keeps
        it on the same memory (after an undo)."""
        rt = self.runtime
        mem = rt.mem
        filt = self.filter
        scores: dict[str, float] | None = None
        weak: list[str] = []
        if filt.query:
            hits = await rt.io(mem.recall, filt.query, SEARCH_K, session=filt.where.session)
            hits = [h for h in hits if filt.where.admits(h.memory)]
            direct = [h for h in hits if any(w.startswith(DIRECT_EVIDENCE) for w in h.why)]
            weak = [h.memory.id for h in hits if h not in direct]
            ids = [h.memory.id for h in direct] + weak
            scores = {h.memory.id: h.score for h in hits}
        else:
            ids = await rt.io(self._ids, filt, self.sort)
        self.weak_hits = len(weak)
        self.stats = await rt.io(mem.index_stats)
        self.table.set_rows(ids, scores, weak=weak, top=top)
        self.render_status()
        self.refresh_bindings()

    def _ids(self, filt: Filter, sort: str) -> list[str]:
        """Ids for a filter in the chosen order (newest first within a group). Blocking."""
        mem = self.runtime.mem
        newest_first = sort != "oldest"
        if sort == "pinned first" and filt.where.pinned is None:
            # two index queries, no per-row lookups
            return mem.select(
                replace(filt.where, pinned=True), newest_first=newest_first
            ) + mem.select(replace(filt.where, pinned=False), newest_first=newest_first)
        ids = mem.select(filt.where, newest_first=newest_first)
        if sort == "session":
            sessions = {i: (m.session if (m := mem.meta(i)) else "") for i in ids}
            ids.sort(key=sessions.__getitem__)  # stable: newest first within a session
        return ids

    @work(group="rows", exclusive=True)
    async def refilter(self, delay: float = 0.0) -> None:
        if delay:
            await asyncio.sleep(delay)  # debounce: a newer keystroke cancels this worker
        if self.runtime.store_ready and not self.index_wait:
            await self.reload()

    @work(group="disk", exclusive=True)
    async def measure_disk(self) -> None:
        """Bytes of record files (a directory walk, so only at start and after a prune)."""
        self.disk_bytes = await self.runtime.disk_bytes()
        self.render_status()

    def render_status(self) -> None:
        parts: list[tuple[str, str] | str] = []
        if self.index_wait:
            parts.append((self.index_wait, "italic $warning"))
        else:
            stats = self.stats
            parts += [
                (fmt.count(stats.get("memories"), "memory", "memories"), "bold"),
                f" · {fmt.count(stats.get('sessions'), 'session')}",
                f" · {stats.get('pinned', 0):,} pinned",
                f" · {fmt.size(self.disk_bytes)} on disk",
                ("  │  ", "$text-muted"),
                f"{len(self.table.ids):,} shown",
                f" · sort: {self.sort if not self.filter.query else 'relevance'}",
            ]
            if self.filter.query and self.weak_hits:
                parts.append((f" · last {self.weak_hits:,} dimmed: no word matched", "$text-muted"))
            if self.table.selected:
                selected = f"{len(self.table.selected):,} selected"
                parts += [("  │  ", "$text-muted"), (selected, "bold $accent")]
            if self.undo_stack:
                last = fmt.count(len(self.undo_stack[-1].memories), "memory", "memories")
                undo = f"u undoes forgetting {last}"
                parts += [("  │  ", "$text-muted"), (undo, "$warning")]
        self.query_one("#browser-status", Static).update(Content.assemble(*parts))

    # ----------------------------------------------------------------- filters

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self.filter = replace(self.filter, query=event.value.strip())
        self.refilter(SEARCH_DEBOUNCE_S)

    @on(Input.Submitted, "#search")
    def search_submitted(self) -> None:
        self.table.focus()

    @on(Select.Changed, "#session-filter")
    def session_changed(self, event: Select.Changed) -> None:
        value = event.value
        self.filter = self.filter.but(session=None if value is Select.NULL else str(value))
        self.refilter()

    @on(Select.Changed, "#pinned-filter")
    def pinned_changed(self, event: Select.Changed) -> None:
        value = event.value
        self.filter = self.filter.but(pinned=None if value is Select.NULL else bool(value))
        self.refilter()

    @on(Input.Submitted, ".date")
    @on(Input.Blurred, ".date")
    def dates_changed(self, event: Input.Submitted | Input.Blurred) -> None:
        field = event.input
        try:
            moment = parse_day(field.value, end=field.id == "until")
        except InvalidRecord:
            field.add_class("-invalid")
            self.notify(f"{field.value!r} is not a date; use YYYY-MM-DD.", severity="warning")
            return
        field.remove_class("-invalid")
        changes = {"since": moment} if field.id == "since" else {"until": moment}
        new = self.filter.but(**changes)
        if new != self.filter:
            self.filter = new
            self.refilter()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_focus_filters(self) -> None:
        self.query_one("#session-filter", Select).focus()

    def action_cycle_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.notify(f"Sorted: {self.sort}", timeout=2)
        self.refilter()

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
            self.table.focus()
        elif self.table.selected:
            self.table.action_clear_selection()
        else:
            self.dismiss(None)

    # ----------------------------------------------------------------- table events

    @on(MemoryTable.SelectionChanged)
    def selection_changed(self) -> None:
        self.render_status()

    @on(MemoryTable.Opened)
    def open_memory(self, event: MemoryTable.Opened) -> None:
        memory_id = event.memory_id

        def done(outcome: DetailOutcome | None) -> None:
            if outcome is None:
                return
            if outcome.broken or outcome.memory is None:
                self.drop_unreadable(memory_id)
            elif outcome.forget:
                self.forget([memory_id])
            elif outcome.changed:
                self.table.invalidate([memory_id])

        self.app.push_screen(MemoryDetailScreen(self.runtime, memory_id), done)

    @work(group="edit")
    async def drop_unreadable(self, memory_id: str) -> None:
        """A damaged or vanished record: drop its stale index entry and its row."""
        await self.runtime.io(self.runtime.mem.drop_stale, memory_id)
        self.table.discard([memory_id])
        self.render_status()

    # ----------------------------------------------------------------- prune and undo

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Row actions are offered only when there is a row for them to act on."""
        if action in ("forget_selected", "prune_filter", "pin", "tags"):
            return bool(self.table.ids) if self.is_mounted else False
        return True

    def action_forget_selected(self) -> None:
        ids = self.table.chosen()
        if ids:
            self.forget(ids)

    @work(group="edit", exclusive=True)
    async def action_prune_filter(self) -> None:
        """Forget every memory the current filter shows, except pinned ones."""
        if not self.runtime.store_ready or not self.table.ids:
            return
        mem = self.runtime.mem
        shown = list(self.table.ids)
        ids = await self.runtime.io(
            lambda: [i for i in shown if not ((m := mem.meta(i)) and m.pinned)]
        )
        kept = len(shown) - len(ids)
        if not ids:
            self.notify("Every memory shown is pinned; pinned memories are never pruned.")
            return
        note = f" ({kept:,} pinned kept)" if kept else ""
        how_many = fmt.count(len(ids), "memory", "memories")
        await self._forget(ids, f"Forget all {how_many} shown{note}?")

    @work(group="edit", exclusive=True)
    async def forget(self, ids: list[str]) -> None:
        await self._forget(ids, f"Forget {fmt.count(len(ids), 'memory', 'memories')}?")

    async def _forget(self, ids: list[str], question: str) -> None:
        from memo_shell.tui.screens.dialogs import describe

        mem = self.runtime.mem
        named = await self.runtime.io(lambda: [describe(mem, i) for i in ids[:3]])
        if len(ids) > 3:
            named.append(f"… and {fmt.count(len(ids) - 3, 'other')}")
        confirmed = await self.app.push_screen_wait(
            ConfirmScreen(
                question,
                "\n".join(named) + "\n\nTheir files are deleted and they leave the index. "
                "u (here or in the graph) undoes it until the app quits.",
            )
        )
        if not confirmed:
            return
        try:
            kept = (await forget_keeping(self.runtime, self.undo_stack, ids)).memories
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Forget")
            await self.reload()
            return
        self.table.discard(ids)
        self.refresh_bindings()  # the last row may have gone: Forget, Pin, Tags go with it
        self.stats = await self.runtime.io(self.runtime.mem.index_stats)
        self.render_status()
        self.measure_disk()
        self.notify(f"Forgot {fmt.count(len(kept), 'memory', 'memories')}. Press u to undo.")

    @work(group="edit", exclusive=True)
    async def action_undo(self) -> None:
        try:
            batch = await undo_last(self.runtime, self.undo_stack)
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Undo")
            return
        if batch is None:
            self.notify("Nothing to undo on this screen.")
            return
        await self.reload(top=False)
        self.measure_disk()
        self.notify(f"Restored {fmt.count(len(batch.memories), 'memory', 'memories')}.")

    # ----------------------------------------------------------------- pin and tags

    @work(group="edit", exclusive=True)
    async def action_pin(self) -> None:
        ids = self.table.chosen()
        if not ids:
            return
        mem = self.runtime.mem
        metas = await self.runtime.io(lambda: [mem.meta(i) for i in ids])
        pin = not all(m is not None and m.pinned for m in metas)

        def apply() -> None:
            for memory_id in ids:
                self.runtime.mem.pin(memory_id, pin)

        try:
            await self.runtime.io(apply)
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Pin")
        self.table.invalidate(ids)
        self.stats = await self.runtime.io(mem.index_stats)
        self.render_status()
        verb = "Pinned" if pin else "Unpinned"
        self.notify(f"{verb} {fmt.count(len(ids), 'memory', 'memories')}.")

    @work(group="edit", exclusive=True)
    async def action_tags(self) -> None:
        memory_id = self.table.current_id
        if memory_id is None:
            return
        from memo_shell.tui.screens.dialogs import describe

        meta = await self.runtime.io(self.runtime.mem.meta, memory_id)
        current = ", ".join(meta.tags) if meta is not None else ""
        named = await self.runtime.io(describe, self.runtime.mem, memory_id)
        answer = await self.app.push_screen_wait(
            TextPromptScreen(f"Tags of {named} (comma separated)", current, "e.g. work, python")
        )
        if answer is None:
            return
        try:
            await self.runtime.io(self.runtime.mem.set_tags, memory_id, answer.split(","))
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Tags")
            return
        self.table.invalidate([memory_id])
