"""The exact prompt last sent to the model, so the user can see what memory injected.

Recalled memories are data inside the prompt; showing the rendered text (not a summary) is what
lets a user trust, or correct, what the model was told.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TextArea

from memo_shell.tui import keymap
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.widgets.key_bar import KeyBar


class PromptScreen(ModalScreen[None]):
    """Read-only view of the rendered prompt; escape closes."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.pick("dialog.close")

    def __init__(self, prompt: str, included: Sequence[str]) -> None:
        super().__init__(classes="dialog-screen")
        self.prompt = prompt
        self.included = list(included)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="prompt-dialog"):
            yield Label("The prompt sent to the model", classes="dialog-title")
            count = len(self.included)
            yield Static(
                f"{count} recalled memor{'y' if count == 1 else 'ies'} included: "
                + (", ".join(self.included) if self.included else "none"),
                classes="dialog-hint",
                markup=False,
            )
            yield TextArea(self.prompt, read_only=True, soft_wrap=True, id="prompt-text")
            yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#prompt-text", TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)
