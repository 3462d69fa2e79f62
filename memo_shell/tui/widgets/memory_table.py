"""A virtual table of memories: renders only the rows on screen, so 100k rows cost nothing.

The table holds a list of ids (from ``Index.ids()`` or a recall) and asks a ``meta`` function for
the rows around the visible window, caching what it saw. Scrolling, filtering or sorting therefore
never touches the record files; the screen swaps the id list in one assignment. It is a Line API
widget (``ScrollView.render_line``), the same technique Textual's DataTable and Log use, but
without building a row object per memory up front.

Metadata is fetched in a thread worker, never in ``render_line``: the index takes a lock that a
concurrent search or import may hold, and a paint must never wait for it. A row whose metadata
has not arrived yet is drawn as a placeholder for the frame or two it takes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from memo_shell.text import printable
from memo_shell.tui import fmt, keymap

MetaFn = Callable[[str], Any]  # id -> MemoryMeta | None (the index's metadata, no file read)
_CACHE_ROWS = 4096
#: Marks a row whose metadata has not been fetched yet.
PENDING: Any = object()


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    width: int  # 0 = take the remaining width


COLUMNS: tuple[Column, ...] = (
    Column("", 2),  # selection mark
    Column("", 2),  # pin
    Column("date", 17),
    Column("session", 17),  # a generated name is 17 characters: 2026-11-30-134512
    Column("tags", 12),
    Column("memory", 0),
)
SCORE_COLUMN = Column("score", 6)
#: Below this width the tags column is left out.
NARROW_WIDTH = 100


class MemoryTable(ScrollView, can_focus=True):
    """Rows of memories with a cursor and a multi-selection (by id, so it survives re-sorting)."""

    BINDINGS = keymap.bindings("table")
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "memory-table--header",
        "memory-table--cursor",
        "memory-table--selected",
        "memory-table--pinned",
        "memory-table--muted",
        "memory-table--broken",
    }

    cursor: reactive[int] = reactive(0, always_update=True)

    @dataclass
    class Highlighted(Message):
        """The cursor moved to ``memory_id`` (None when the table is empty)."""

        table: MemoryTable
        memory_id: str | None

    @dataclass
    class Opened(Message):
        table: MemoryTable
        memory_id: str

    @dataclass
    class SelectionChanged(Message):
        table: MemoryTable
        count: int

    def __init__(self, meta: MetaFn, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._meta_fn = meta
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self.ids: list[str] = []
        self.scores: dict[str, float] = {}
        self.selected: set[str] = set()
        self.weak: set[str] = set()
        self._wanted: set[str] = set()
        self._filling = False
        self._styles: dict[str, Style] = {}

    # ----------------------------------------------------------------- data

    def set_rows(
        self,
        ids: Sequence[str],
        scores: dict[str, float] | None = None,
        *,
        weak: Iterable[str] = (),
        top: bool = False,
    ) -> None:
        """Show these ids in this order.

        ``top``: a new search, sort or filter, so the cursor goes to the first row and the first
        rows are in view (what an action like pin then applies to is what the user sees).
        Otherwise the cursor stays on the same memory when it is still in (rows forgotten,
        restored). ``weak``: search hits without direct evidence, drawn dimmed.
        """
        current = self.current_id
        self.ids = list(ids)
        self.scores = dict(scores or {})
        self.weak = set(weak)
        if top:
            index = 0
        else:
            try:
                index = self.ids.index(current) if current is not None else 0
            except ValueError:  # the row under the cursor went away: stay at the same height
                index = self.cursor
        self.virtual_size = Size(self.size.width, len(self.ids) + 1)
        if top:
            self.scroll_to(y=0, animate=False, immediate=True)
        self.cursor = min(index, max(len(self.ids) - 1, 0))
        self.refresh()

    def invalidate(self, ids: Iterable[str] | None = None) -> None:
        """Forget cached metadata (all, or of some ids) after pin/tag changes."""
        if ids is None:
            self._cache.clear()
        else:
            for memory_id in ids:
                self._cache.pop(memory_id, None)
        self.refresh()

    def cached_row(self, memory_id: str) -> Row | None:
        """The row's cells if fetched (None = unreadable), else ``PENDING``."""
        cached = self._cache.get(memory_id, PENDING)
        if cached is not PENDING:
            self._cache.move_to_end(memory_id)
        return cached

    def _want(self, row: int) -> None:
        """Queue the window around ``row`` for fetching (one fetch in flight at a time)."""
        page = max(self.size.height, 10)
        start, end = max(0, row - page), min(len(self.ids), row + 2 * page)
        self._wanted.update(i for i in self.ids[start:end] if i not in self._cache)
        if not self._filling and self._wanted:
            self._start_fill()

    def _start_fill(self) -> None:
        batch = list(self._wanted)
        self._wanted.clear()
        self._filling = True
        self.run_worker(partial(self._fetch, batch), thread=True, group="meta", exit_on_error=False)

    def _fetch(self, batch: list[str]) -> None:
        """Runs in a thread: read metadata for a batch of ids, then hand it to the event loop."""
        found: dict[str, Any] = {}
        try:
            for memory_id in batch:
                found[memory_id] = row_cells(self._meta_fn(memory_id))
        finally:
            for memory_id in batch:  # a row whose lookup failed is shown as unavailable
                found.setdefault(memory_id, None)
            self.app.call_from_thread(self._filled, found)

    def _filled(self, found: dict[str, Any]) -> None:
        self._filling = False
        self._cache.update(found)
        while len(self._cache) > _CACHE_ROWS:
            self._cache.popitem(last=False)
        if self._wanted:
            self._start_fill()
        self.refresh()

    @property
    def pending(self) -> bool:
        """True while metadata for rows on screen is still being fetched (tests wait on it)."""
        return self._filling or bool(self._wanted)

    @property
    def current_id(self) -> str | None:
        if 0 <= self.cursor < len(self.ids):
            return self.ids[self.cursor]
        return None

    def chosen(self) -> list[str]:
        """What an action applies to: the selection if any, else the row under the cursor."""
        if self.selected:
            return [i for i in self.ids if i in self.selected] or sorted(self.selected)
        current = self.current_id
        return [current] if current is not None else []

    def discard(self, ids: Iterable[str]) -> None:
        """Remove rows (forgotten memories) without a reload."""
        gone = set(ids)
        self.selected -= gone
        self.set_rows(
            [i for i in self.ids if i not in gone], self.scores or None, weak=self.weak - gone
        )
        self.post_message(self.SelectionChanged(self, len(self.selected)))

    # ----------------------------------------------------------------- cursor and selection

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.ids) - 1)) if self.ids else 0

    def watch_cursor(self, old: int, new: int) -> None:
        # Row r is drawn on virtual line r + 1 under a sticky header (line 0), so lines r..r+1
        # must both be in view for the row to show below the header.
        self.scroll_to_region(Region(0, new, 1, 2), animate=False, force=True, immediate=True)
        self.refresh()
        self.post_message(self.Highlighted(self, self.current_id))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_page_up(self) -> None:
        self.cursor -= self._page()

    def action_page_down(self) -> None:
        self.cursor += self._page()

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = len(self.ids) - 1

    def action_toggle_select(self) -> None:
        memory_id = self.current_id
        if memory_id is None:
            return
        self.selected ^= {memory_id}
        self.cursor += 1
        self.post_message(self.SelectionChanged(self, len(self.selected)))

    def action_select_all(self) -> None:
        self.selected = set(self.ids)
        self.refresh()
        self.post_message(self.SelectionChanged(self, len(self.selected)))

    def action_clear_selection(self) -> None:
        self.selected = set()
        self.refresh()
        self.post_message(self.SelectionChanged(self, 0))

    def on_click(self, event: events.Click) -> None:
        row = event.y + int(self.scroll_offset.y) - 1
        if not 0 <= row < len(self.ids):
            return
        self.cursor = row
        if event.ctrl or event.shift:
            self.action_toggle_select()
            self.cursor = row
        elif event.chain >= 2:
            self.post_message(self.Opened(self, self.ids[row]))

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter" and self.current_id is not None:
            event.stop()
            self.post_message(self.Opened(self, self.current_id))

    # ----------------------------------------------------------------- rendering

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(event.size.width, len(self.ids) + 1)

    @property
    def _show_tags(self) -> bool:
        """Narrow terminals (80 columns) drop the tags column so the memory text keeps room."""
        return self.size.width >= NARROW_WIDTH

    def _columns(self) -> list[Column]:
        columns = [c for c in COLUMNS if c.name != "tags" or self._show_tags]
        if self.scores:
            columns.insert(2, SCORE_COLUMN)
        return columns

    def _widths(self, width: int) -> list[int]:
        columns = self._columns()
        fixed = sum(c.width + 1 for c in columns if c.width)
        return [c.width if c.width else max(width - fixed, 8) for c in columns]

    def _cells(self, cells: list[str]) -> list[str]:
        if not self._show_tags:
            del cells[4]
        return cells

    def notify_style_update(self) -> None:
        self._styles.clear()  # theme, focus or CSS changed: look the styles up again
        super().notify_style_update()

    def _style(self, name: str) -> Style:
        """The widget's base style plus a component's, looked up once per style change
        (``rich_style`` walks the DOM: too slow to repeat on every line of every frame)."""
        style = self._styles.get(name)
        if style is None:
            base = self.rich_style
            style = base if name == "" else base + self.get_component_rich_style(name)
            self._styles[name] = style
        return style

    def _line(self, cells: Sequence[str], widths: list[int], style: Style) -> Strip:
        # raw segments skip the control-code translation text gets (see tui/safe_text.py)
        text = "".join(
            set_cell_size(printable(cell), width) + " "
            for cell, width in zip(cells, widths, strict=True)
        )
        width = self.size.width
        return Strip([Segment(set_cell_size(text, width), style)], width)

    def render_line(self, y: int) -> Strip:
        widths = self._widths(self.size.width)
        if y == 0:
            header = self._style("memory-table--header")
            return self._line([c.name for c in self._columns()], widths, header)
        row = y - 1 + int(self.scroll_offset.y)
        if row >= len(self.ids):
            return Strip.blank(self.size.width, self._style(""))
        memory_id = self.ids[row]
        cached = self.cached_row(memory_id)
        if cached is PENDING:
            self._want(row)
            kind, cells = "memory-table--muted", ["", "", "", "", "", "…"]
        elif cached is None:
            kind, cells = (
                "memory-table--broken",
                ["", "", "", "", "", f"(unavailable: {memory_id})"],
            )
        else:
            kind, cells = ("memory-table--pinned" if cached.pinned else ""), list(cached.cells)
            if memory_id in self.weak:
                kind = "memory-table--muted"
        style = self._style(kind)
        if memory_id in self.selected:
            cells[0] = "✓"
            style += self._style("memory-table--selected")
        if row == self.cursor:
            style += self._style("memory-table--cursor")
        cells = self._cells(cells)
        if self.scores:
            cells.insert(2, f"{self.scores.get(memory_id, 0.0):.2f}")
        return self._line(cells, widths, style)


@dataclass(frozen=True, slots=True)
class Row:
    """One memory's cells, formatted once when its metadata arrives."""

    pinned: bool
    cells: tuple[str, ...]


def row_cells(meta: Any) -> Row | None:
    if meta is None:
        return None
    return Row(
        meta.pinned,
        (
            "",
            "★" if meta.pinned else "",
            fmt.when(meta.created_at),
            meta.session,
            ",".join(meta.tags),
            fmt.one_line(meta.preview, 400),
        ),
    )
