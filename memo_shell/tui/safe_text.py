"""No control character from a memory or a model reply reaches the terminal through the app.

A memory imported from a file, synced in, or written by a model can hold ``ESC ] 0 ; … BEL``
(sets the window title), ``ESC [ 2 J`` (clears the screen) or OSC 52 (writes the clipboard);
Textual and Rich strip only BEL, BS, VT, FF and CR from text before drawing it. The app shows
memory text in a hundred places (chat, panel, browser, detail, graph, prompt viewer), so rather
than trusting each one to sanitise, the one translation table both libraries already apply to
every piece of text is extended to ours (``memo_shell.text.CONTROL_PICTURES``): ESC becomes a
visible "␛", and so on. Styles are not text, so Textual's own escape sequences are untouched.

``tests/tui/test_tui_hostile_text.py`` draws hostile memories on every screen and fails if a
control character reaches the rendered output, so a library upgrade that moves these tables is
caught by CI rather than by a user.
"""

from __future__ import annotations

import rich.control
import textual.content

from memo_shell.text import CONTROL_PICTURES

#: The tables Rich's ``strip_control_codes`` and Textual's ``Content`` translate text with;
#: both functions take them as default arguments, so updating them in place takes effect.
_TABLES = (rich.control._CONTROL_STRIP_TRANSLATE, textual.content._CONTROL_STRIP_TRANSLATE)


def install() -> None:
    """Show control characters as symbols in everything the app draws (idempotent)."""
    for table in _TABLES:
        table.update(CONTROL_PICTURES)  # type: ignore[arg-type]
