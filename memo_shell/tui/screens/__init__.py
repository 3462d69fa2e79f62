"""Screens of the memo-shell app; each owns its own state and talks to the library via workers."""

from pathlib import Path

#: The stylesheet of every screen but the chat. Each of them names it as its ``CSS_PATH``, so
#: Textual reads it when the first of them opens: the chat's first paint parses only app.tcss.
SCREENS_CSS = Path(__file__).resolve().parent.parent / "screens.tcss"
