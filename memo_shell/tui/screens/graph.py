"""The knowledge graph: the entities memo-shell found in memories, their neighbours, and the
memories that mention each; and the one action a privacy tool owes its user here: forget
everything about an entity (with undo, app-wide: see undo.py).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from memo_shell.errors import MemoShellError
from memo_shell.tui import fmt, keymap
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.screens.detail import DetailOutcome, MemoryDetailScreen
from memo_shell.tui.screens.dialogs import ConfirmScreen
from memo_shell.tui.undo import Forgotten, forget_keeping, undo_last
from memo_shell.tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from memo_shell.tui.runtime import Runtime

#: Rows shown in the entity table; the filter searches all of them.
SHOWN_ENTITIES = 1000
NEIGHBOURS = 20
FILTER_DEBOUNCE_S = 0.15


class GraphScreen(Screen[None]):
    """Entities on the left; the selected one's neighbours and mentioning memories on the right."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.bindings("graph")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(id="graph")
        self.runtime = runtime
        self.entities: list[Any] = []
        self._shown: list[str] = []  # entity names by table row
        self.current: str | None = None
        self.undo_stack: list[Forgotten] = runtime.undo_stack  # app-wide (see undo.py)

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Filter entities (/)", id="entity-filter")
        with Horizontal(id="graph-main"):
            table: DataTable[Any] = DataTable(id="entities", cursor_type="row", zebra_stripes=True)
            yield table
            with Vertical(id="entity-detail"):
                yield Label("", id="entity-title")
                yield Label("Neighbours", classes="section")
                yield OptionList(id="neighbours")
                yield Label("Memories that mention it", classes="section")
                yield OptionList(id="mentions")
        yield Static("", id="graph-status")
        yield KeyBar()

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one("#entities", DataTable)

    def on_mount(self) -> None:
        # fixed widths: auto-sized columns would change width as the filter changes the rows
        self.table.add_column("entity", width=22)
        self.table.add_column("kind", width=7)
        self.table.add_column("memories", width=8)
        self.table.focus()
        self.query_one("#graph-status", Static).update("loading the index…")
        self.load()

    @work(group="entities", exclusive=True)
    async def load(self) -> None:
        mem = await self.runtime.wait_store()
        if mem is None:
            return
        await self.runtime.io(mem.wait_ready)
        self.entities = await self.runtime.io(mem.entities)
        self.show_entities(self.query_one("#entity-filter", Input).value)

    def show_entities(self, text: str) -> None:
        needle = text.strip().lower()
        shown = [e for e in self.entities if needle in e.name.lower()] if needle else self.entities
        table = self.table
        table.clear()
        table.add_rows(
            # Text, not str: a str cell is parsed as markup, and names come from memory text
            ((Text(e.name), e.kind, f"{e.count:,}") for e in shown[:SHOWN_ENTITIES]),
        )
        self._shown = [e.name for e in shown[:SHOWN_ENTITIES]]
        more = f" (first {SHOWN_ENTITIES:,} shown)" if len(shown) > SHOWN_ENTITIES else ""
        status = f"{len(self.entities):,} entities · {len(shown):,} matching{more}"
        if self.undo_stack:
            status += f"  │  u undoes forgetting {self.undo_stack[-1].label!r}"
        self.query_one("#graph-status", Static).update(Content(status))  # quotes a name
        if self._shown:
            self.select_entity(self._shown[0])
        else:
            self.current = None
            self.query_one("#entity-title", Label).update("No entity matches.")
            self.query_one("#neighbours", OptionList).clear_options()
            self.query_one("#mentions", OptionList).clear_options()

    @on(Input.Changed, "#entity-filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.refilter(event.value)

    @work(group="filter", exclusive=True)
    async def refilter(self, text: str) -> None:
        await asyncio.sleep(FILTER_DEBOUNCE_S)
        self.show_entities(text)

    @on(Input.Submitted, "#entity-filter")
    def filter_submitted(self) -> None:
        self.table.focus()

    @on(DataTable.RowHighlighted, "#entities")
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._shown):
            self.select_entity(self._shown[event.cursor_row])

    @work(group="entity", exclusive=True)
    async def select_entity(self, name: str) -> None:
        self.current = name
        mem = self.runtime.mem
        neighbours = await self.runtime.io(mem.neighbours, name, NEIGHBOURS)
        mentions = await self.runtime.io(mem.mentions, name)
        metas = await self.runtime.io(lambda: [(i, mem.meta(i)) for i in mentions[:500]])
        info = next((e for e in self.entities if e.name == name), None)
        title = Content.assemble(
            (name, "bold $accent"),
            f"  {info.kind}" if info else "",
            f"  ·  {fmt.count(len(mentions), 'memory', 'memories')}",
        )
        self.query_one("#entity-title", Label).update(title)
        neighbour_list = self.query_one("#neighbours", OptionList)
        neighbour_list.clear_options()
        neighbour_list.add_options(
            Option(Content.assemble((n, "bold"), f"  {w:g}"), id=f"n:{n}") for n, w in neighbours
        )
        mention_list = self.query_one("#mentions", OptionList)
        mention_list.clear_options()
        mention_list.add_options(
            Option(
                Content.assemble(
                    (fmt.when(m.created_at), "$text-muted"),
                    "  ",
                    (m.session, "$text-secondary"),
                    "  ",
                    fmt.one_line(m.preview, 80),
                )
                if m is not None
                else Content.styled(f"(unavailable: {i})", "$error"),
                id=f"m:{i}",
            )
            for i, m in metas
        )

    @on(OptionList.OptionSelected, "#neighbours")
    def neighbour_selected(self, event: OptionList.OptionSelected) -> None:
        name = (event.option.id or "")[2:]
        self.query_one("#entity-filter", Input).value = name

    @on(OptionList.OptionSelected, "#mentions")
    def mention_selected(self, event: OptionList.OptionSelected) -> None:
        memory_id = (event.option.id or "")[2:]

        def done(outcome: DetailOutcome | None) -> None:
            if outcome is not None and outcome.forget:
                self.forget_ids(memory_id)
            elif outcome is not None and outcome.broken and self.current:
                self.select_entity(self.current)

        self.app.push_screen(MemoryDetailScreen(self.runtime, memory_id), done)

    def action_focus_filter(self) -> None:
        self.query_one("#entity-filter", Input).focus()

    def action_back(self) -> None:
        field = self.query_one("#entity-filter", Input)
        if field.value:
            field.value = ""
            self.table.focus()
        else:
            self.dismiss(None)

    @work(group="edit", exclusive=True)
    async def action_forget_entity(self) -> None:
        name = self.current
        if name is None:
            return
        ids = await self.runtime.io(self.runtime.mem.mentions, name)
        if not ids:
            self.notify(f"No memory mentions {name!r}.")
            return
        await self._forget(name, ids, f"Forget everything about {name!r}?")

    def forget_ids(self, memory_id: str) -> None:
        self._forget_worker(memory_id)

    @work(group="edit", exclusive=True)
    async def _forget_worker(self, memory_id: str) -> None:
        from memo_shell.tui.screens.dialogs import describe

        label = await self.runtime.io(describe, self.runtime.mem, memory_id)
        await self._forget(label, [memory_id], f"Forget {label}?")

    async def _forget(self, label: str, ids: list[str], question: str) -> None:
        confirmed = await self.app.push_screen_wait(
            ConfirmScreen(
                question,
                f"{fmt.count(len(ids), 'memory', 'memories').capitalize()} will be deleted (files "
                "and index). u (here or in the memory browser) undoes it until the app quits.",
            )
        )
        if not confirmed:
            return
        try:
            kept = (await forget_keeping(self.runtime, self.undo_stack, ids, label)).memories
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Forget")
            return
        self.notify(f"Forgot {fmt.count(len(kept), 'memory', 'memories')} ({label}). u undoes.")
        self.load()

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
        count = fmt.count(len(batch.memories), "memory", "memories")
        self.notify(f"Restored {count} ({batch.label}).")
        self.load()
