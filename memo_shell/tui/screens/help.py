"""F1 / ?: every key, grouped by where it works, with the user's remappings applied.

Built from the same table as the bindings (``keymap.KEYS``), so it cannot go stale. It is one
text widget (not a Markdown document of tables) so that it opens instantly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from memo_shell.tui import keymap
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.widgets.key_bar import KeyBar

KEY_WIDTH = 26


def help_content(overrides: Mapping[str, str], config_file: Path) -> Content:
    parts: list[tuple[str, str] | str] = [
        (
            "Every action is also in the command palette (ctrl+p). The mouse works too: click a "
            "row, double-click to open it, ctrl+click to select it, click a key below to press "
            "it. In the message box, ↑ and ↓ walk the questions asked earlier in the session.\n",
            "$text-muted",
        )
    ]
    for scope, heading in keymap.SCOPES.items():
        keys = keymap.in_scope(scope)
        if not keys:
            continue
        parts += ["\n", (heading, "bold $primary"), "\n"]
        for key in keys:
            shown = keymap.display(keymap.effective_key(key, overrides))
            parts += [
                # the space after the key is kept when a long key list fills the column
                (f"  {shown:<{KEY_WIDTH}} ", "bold $footer-key-foreground"),
                (key.description, "$foreground"),
                (f" — {key.help}" if key.help else "", "$text-muted"),
                (f"  [{key.id}]", "$text-muted italic"),
                "\n",
            ]
    parts += [
        "\n",
        ("Remapping keys", "bold $primary"),
        "\n",
        f"Add a [keys] table to {config_file} mapping a binding id (in brackets above) to one "
        "or more comma-separated keys, then restart:\n\n",
        ('  [keys]\n  "browser.forget" = "x,delete"\n  "chat.panel" = "f7"\n', "$text-accent"),
    ]
    return Content.assemble(*parts)


class HelpScreen(ModalScreen[None]):
    """The key reference; escape closes."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.pick("dialog.close")

    def __init__(self, overrides: Mapping[str, str], config_file: Path) -> None:
        super().__init__(classes="dialog-screen")
        self.overrides = dict(overrides)
        self.config_file = config_file

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="help-dialog"):
            yield Label("memo-shell keys", classes="dialog-title")
            with VerticalScroll(id="help-text"):
                yield Static(help_content(self.overrides, self.config_file))
            yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#help-text").focus()

    def action_close(self) -> None:
        self.dismiss(None)
