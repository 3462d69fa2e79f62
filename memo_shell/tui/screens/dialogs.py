"""Small modal dialogs: a yes/no confirmation and a one-line text prompt.

Both return their answer through ``dismiss`` so callers can ``push_screen(..., callback)`` or
``await push_screen_wait(...)`` from a worker.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from memo_shell.errors import MemoShellError
from memo_shell.tui import fmt, keymap
from memo_shell.tui.screens import SCREENS_CSS


def describe(mem: Any, memory_id: str) -> str:
    """How dialogs name a memory: its question, quoted and shortened. Blocking (reads it)."""
    from memo_shell.records import RecordError

    try:
        memory = mem.get(memory_id)
    except (MemoShellError, RecordError):
        return f"memory {memory_id}"
    return f"“{fmt.one_line(memory.user or memory.assistant, 70)}”"


class ConfirmScreen(ModalScreen[bool]):
    """Ask before something destructive. ``y`` confirms, ``n``/escape cancels."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.pick("dialog.yes", "dialog.no")

    def __init__(self, title: str, body: str, confirm: str = "Forget") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.body = body
        self.confirm = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body, classes="dialog-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)


class TextPromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (a session name, a tag list). Escape cancels."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.pick("dialog.close")

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Static("enter to accept · escape to cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_close(self) -> None:
        self.dismiss(None)
