"""Hostile text never reaches the terminal: a memory (imported, synced in) or a model reply that
carries escape sequences is drawn with visible symbols on every screen that shows it.

Before the fix, opening the browser over such a memory set the terminal's title and cleared the
screen (seen in tmux); here every screen's rendered output is checked for control characters.
"""

from __future__ import annotations

from servers import ScriptedModel
from tui_helpers import MODEL, make_app, screen_text, settle

from memo_shell.text import CONTROL_PICTURES
from memo_shell.tui.widgets.composer import Composer

TITLE = "\x1b]0;pwned\x07"  # set the window title
CLEAR = "\x1b[2J"  # clear the screen
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"  # OSC 52: write "rm -rf ~" to the clipboard
HOSTILE = f"Ada {TITLE}plans the Lisbon trip{CLEAR} in May{CLIPBOARD}\x9b31m\x08\x7f"


def _controls(text: str) -> list[str]:
    return sorted({repr(c) for c in text if ord(c) in CONTROL_PICTURES and c != "\r"})


def _assert_safe(app, where: str) -> str:
    text = screen_text(app)
    assert _controls(text) == [], f"{where}: control characters reached the screen"
    return text


async def test_hostile_memories_and_replies_are_drawn_inert(settings, memories, ollama):
    memories.add(HOSTILE, f"Noted{TITLE}.", session=f"trips{TITLE}", tags=[f"tag{CLEAR}"])
    ollama.add(ScriptedModel(MODEL, reply=f"Sure {CLIPBOARD}thing{CLEAR} done"))
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        composer = app.screen.query_one(Composer)
        composer.focus()
        composer.load_text("When is the Lisbon trip with Ada?")
        await pilot.press("enter")
        await settle(pilot)
        text = _assert_safe(app, "chat and recalled panel")
        assert "Sure ␛]52;c;" in text  # the reply is shown, its escapes made visible
        assert "plans the Lisbon trip␛[2J" in text  # so is the recalled memory

        screens = [
            ("ctrl+o", "PromptScreen"),
            ("f3", "BrowserScreen"),
            ("f4", "GraphScreen"),
            ("f6", "SessionsScreen"),
        ]
        for key, where in screens:
            await pilot.press(key)
            await settle(pilot)
            assert type(app.screen).__name__ == where
            _assert_safe(app, where)
            if where == "BrowserScreen":
                assert "␛]0;pwned␇" in screen_text(app)
                await pilot.press("enter")  # the memory's detail view
                await settle(pilot)
                assert type(app.screen).__name__ == "MemoryDetailScreen"
                _assert_safe(app, "detail")
                await pilot.press("escape")
                await settle(pilot)
            await pilot.press("escape")
            await settle(pilot)
