"""The memo-shell terminal app (Textual). ``memo-shell`` with no subcommand calls ``run``.

The app module is imported inside ``run`` so that ``import memo_shell.tui`` stays cheap for the
CLI's other commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memo_shell.config import Settings


def run(settings: Settings) -> None:
    """Open the chat app on the settings' data directory until the user quits."""
    from memo_shell.tui.app import MemoShellApp

    MemoShellApp(settings).run()
