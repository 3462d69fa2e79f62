"""One memory in full: both sides of the exchange, where it came from, its pin and tags.

Pinning, tagging and editing (correcting what either side says) happen here; forgetting is
handed back to the screen that opened it (the browser offers undo, the chat panel asks first),
through the dismiss result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Markdown, Static, TextArea

from memo_shell.errors import MemoShellError
from memo_shell.records import RecordError
from memo_shell.tui import fmt, keymap
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.screens.dialogs import TextPromptScreen
from memo_shell.tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from memo_shell.records import Memory
    from memo_shell.tui.runtime import Runtime


@dataclass(frozen=True)
class DetailOutcome:
    """What happened while the dialog was open."""

    memory: Memory | None  # the latest version (None if it could not be read)
    forget: bool = False  # the user asked to forget it
    changed: bool = False  # pinned/unpinned, re-tagged or edited
    broken: bool = False  # the file was damaged (and has been quarantined)


def memory_markdown(memory: Memory) -> str:
    """Both sides as Markdown; the user's text is quoted so it reads as the question it was."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in memory.user.splitlines())
    reply = memory.assistant or "_(no reply stored)_"
    return f"{quoted}\n\n{reply}\n"


class MemoryDetailScreen(ModalScreen[DetailOutcome]):
    """Modal view of one memory; p pins, t edits tags, f forgets, escape closes."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.bindings("detail")

    def __init__(self, runtime: Runtime, memory_id: str) -> None:
        super().__init__(classes="dialog-screen")
        self.runtime = runtime
        self.memory_id = memory_id
        self.memory: Memory | None = None
        self.changed = False

    def compose(self) -> ComposeResult:
        with Vertical(id="detail", classes="dialog wide"):
            yield Label("Memory", classes="dialog-title", id="detail-title")
            yield Static("", id="detail-meta")
            with VerticalScroll(id="detail-body"):
                yield Markdown("_Loading…_", id="detail-text")
            yield KeyBar()

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True, group="detail")
    async def load(self) -> None:
        try:
            memory = await self.runtime.io(self.runtime.mem.get, self.memory_id)
        except (MemoShellError, RecordError) as exc:
            self.notify(_unreadable(self.memory_id, exc), severity="error", title="Memory")
            self.dismiss(DetailOutcome(None, broken=isinstance(exc, RecordError)))
            return
        self.show(memory)

    def show(self, memory: Memory) -> None:
        self.memory = memory
        self.query_one("#detail-title", Label).update(f"Memory {memory.id}")
        pin = ("★ pinned", "$warning") if memory.pinned else ("not pinned", "$text-muted")
        tags = ", ".join(memory.tags) or "none"
        meta = Content.assemble(
            (fmt.when(memory.created_at), "bold"),
            "  session ",
            (memory.session, "bold"),
            "  ",
            pin,
            "\nmodel ",
            (memory.model or "?", "$text-secondary"),
            f" via {memory.backend or '?'}  ·  {memory.provenance}  ·  tags ",
            (tags, "$text-accent"),
        )
        self.query_one("#detail-meta", Static).update(meta)
        self.query_one("#detail-text", Markdown).update(memory_markdown(memory))

    @work(exclusive=True, group="detail")
    async def action_pin(self) -> None:
        if self.memory is None:
            return
        try:
            memory = await self.runtime.io(
                self.runtime.mem.pin, self.memory.id, not self.memory.pinned
            )
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Pin")
            return
        self.changed = True
        self.show(memory)

    @work(exclusive=True, group="detail")
    async def action_tags(self) -> None:
        if self.memory is None:
            return
        answer = await self.app.push_screen_wait(
            TextPromptScreen(
                "Tags (comma separated)", ", ".join(self.memory.tags), "e.g. work, python"
            )
        )
        if answer is None:
            return
        try:
            memory = await self.runtime.io(
                self.runtime.mem.set_tags, self.memory.id, answer.split(",")
            )
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Tags")
            return
        self.changed = True
        self.show(memory)

    @work(exclusive=True, group="detail")
    async def action_edit(self) -> None:
        if self.memory is None:
            return
        answer = await self.app.push_screen_wait(EditMemoryScreen(self.memory))
        if answer is None:
            return
        user, assistant = answer
        try:
            memory = await self.runtime.io(
                self.runtime.mem.edit, self.memory.id, user=user, assistant=assistant
            )
        except (MemoShellError, RecordError) as exc:
            self.notify(str(exc), severity="error", title="Edit")
            return
        if memory is not self.memory:
            self.changed = True
            self.notify("Edited: recall uses the new words from now on.")
        self.show(memory)

    def action_forget(self) -> None:
        if self.memory is not None:
            self.dismiss(DetailOutcome(self.memory, forget=True, changed=self.changed))

    def action_close(self) -> None:
        self.dismiss(DetailOutcome(self.memory, changed=self.changed))


class EditMemoryScreen(ModalScreen[tuple[str, str] | None]):
    """Both sides of a memory in editors; ctrl+s saves, escape cancels."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.pick("dialog.save", "dialog.close")

    def __init__(self, memory: Memory) -> None:
        super().__init__(classes="dialog-screen")
        self.memory = memory

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="edit-memory"):
            yield Label("Edit memory: what you said", classes="dialog-title")
            yield TextArea(self.memory.user, id="edit-user")
            yield Label("what the model replied (its claim)", classes="dialog-title")
            yield TextArea(self.memory.assistant, id="edit-assistant")
            yield Static("ctrl+s save · escape cancel", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#edit-user", TextArea).focus()

    def action_save(self) -> None:
        user = self.query_one("#edit-user", TextArea).text
        if not user.strip():
            self.notify("What you said cannot be empty: forget the memory instead (f).")
            return
        self.dismiss((user, self.query_one("#edit-assistant", TextArea).text))

    def action_close(self) -> None:
        self.dismiss(None)


def _unreadable(memory_id: str, exc: Exception) -> str:
    if isinstance(exc, RecordError):
        return (
            f"Memory {memory_id} is damaged ({exc}); its file was moved to the quarantine folder "
            "and everything else still works."
        )
    return str(exc)
