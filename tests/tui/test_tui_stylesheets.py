"""Every screen but the chat takes its rules from screens.tcss, which Textual reads when the
first of them opens: the chat's first paint parses app.tcss only. A screen left out of this
would open unstyled, so each one is checked."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from textual.screen import Screen

import memo_shell.tui.screens as screens_pkg
from memo_shell.tui.screens import SCREENS_CSS
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
