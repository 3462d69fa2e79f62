"""ctrl+s: the current session's system prompt and model parameters, edited and saved.

Empty fields mean "the app's setting" (config file, environment, flags). What is typed is
checked before anything is saved; a bad value gets one sentence and the dialog stays open with
everything as typed. Saving is a small atomic write (see ``tui/session_settings.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static, TextArea

from memo_shell.tui import keymap
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.session_settings import SessionSettings, SettingsError, parse
from memo_shell.tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from memo_shell.config import Settings


class SessionSettingsScreen(ModalScreen["SessionSettings | None"]):
    """Dismisses with the checked settings to save, or None (cancelled)."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.pick("dialog.save", "dialog.close")

    def __init__(self, session: str, current: SessionSettings, defaults: Settings) -> None:
        super().__init__(classes="dialog-screen")
        self.session = session
        self.current = current
        self.defaults = defaults

    def compose(self) -> ComposeResult:
        cur, dflt = self.current, self.defaults
        with Vertical(classes="dialog", id="settings-dialog"):
            yield Label(f"Settings of session {self.session!r}", classes="dialog-title")
            yield Static(
                "Saved with this session's memories, used from the next question; empty "
                "fields mean the app's settings.",
                classes="dialog-hint",
                markup=False,
            )
            yield Static("System prompt", classes="field-label", markup=False)
            yield TextArea(cur.system or "", id="system", soft_wrap=True, compact=True)
            with Horizontal(id="settings-numbers"):
                yield Input(
                    _shown(cur.temperature),
                    placeholder=f"temperature ({_shown(dflt.temperature) or 'model default'})",
                    id="temperature",
                )
                yield Input(
                    _shown(cur.context_size),
                    placeholder=f"context ({dflt.context_size:,})",
                    id="context_size",
                )
                yield Input(
                    _shown(cur.max_tokens),
                    placeholder=f"max tokens ({dflt.max_tokens:,})",
                    id="max_tokens",
                )
            yield Static("", id="settings-error", markup=False)
            yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#system", TextArea).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        try:
            chosen = parse(
                self.query_one("#system", TextArea).text,
                self.query_one("#temperature", Input).value,
                self.query_one("#context_size", Input).value,
                self.query_one("#max_tokens", Input).value,
            )
        except SettingsError as exc:
            self.query_one("#settings-error", Static).update(str(exc))
            return
        self.dismiss(chosen)

    def action_close(self) -> None:
        self.dismiss(None)


def _shown(value: float | int | None) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)
