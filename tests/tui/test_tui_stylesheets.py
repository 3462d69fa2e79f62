"""Every screen but the chat takes its rules from screens.tcss, which Textual reads when the
first of them opens: the chat's first paint parses app.tcss only. A screen left out of this
would open unstyled, so each one is checked."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

from textual.screen import Screen
from tui_helpers import make_app, settle

import memo_shell.tui.screens as screens_pkg
from memo_shell.tui.app import PRELOAD_CSS_AFTER_S
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.screens.browser import BrowserScreen
from memo_shell.tui.screens.chat import ChatScreen


def _screen_classes() -> list[type[Screen]]:
    found = []
    for info in pkgutil.iter_modules(screens_pkg.__path__):
        module = importlib.import_module(f"{screens_pkg.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def test_every_screen_but_the_chat_reads_screens_tcss() -> None:
    classes = _screen_classes()
    assert len(classes) >= 12
    for cls in classes:
        if cls is ChatScreen:
            assert cls.CSS_PATH is None, "the chat's rules are in app.tcss"
        else:
            assert cls.CSS_PATH == SCREENS_CSS, f"{cls.__name__} would open unstyled"
    assert SCREENS_CSS.is_file()


def test_the_chat_stylesheet_has_no_other_screens_rules() -> None:
    app_css = (SCREENS_CSS.parent / "app.tcss").read_text()
    for selector in ("#browser-filters", "MemoryTable", "#entities", ".dialog {"):
        assert selector not in app_css
        assert selector in SCREENS_CSS.read_text()


async def test_the_other_screens_rules_are_parsed_while_the_app_idles(settings: Any) -> None:
    """Once start-up is over, screens.tcss is parsed, so the first F3 or dialog does not pay for
    it; it was not parsed before the first frame."""
    app = make_app(settings)
    async with app.run_test(size=(120, 36)) as pilot:
        parsed_at_start = app.stylesheet.has_source(str(SCREENS_CSS))
        await pilot.pause(PRELOAD_CSS_AFTER_S + 0.5)
        assert app.stylesheet.has_source(str(SCREENS_CSS))
        app.action_open("browser")
        await settle(pilot)
        assert isinstance(app.screen, BrowserScreen)
    assert not parsed_at_start
