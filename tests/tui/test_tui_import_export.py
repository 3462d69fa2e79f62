"""The palette's "Import conversations…" dialog and "Export this chat as Markdown" action."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, ProgressBar, Select, Static
from tui_helpers import make_app, notes, screen_text, settle

from memo_shell.tui.screens.importer import ImportScreen

FIXTURES = Path(__file__).parents[1] / "fixtures" / "importers"


def summary(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.screen.query_one("#import-summary", Static).render())


def command(app, title: str):  # type: ignore[no-untyped-def]
    found = [c for c in app.get_system_commands(app.screen) if c.title == title]
    assert found, f"no palette command {title!r}"
    return found[0].callback


async def test_import_dialog_detects_imports_and_summarises(settings, memories):  # type: ignore[no-untyped-def]
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        command(app, "Import conversations…")()
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ImportScreen)
        dialog.query_one(Input).value = str(FIXTURES / "chatgpt_conversations.json")
        await pilot.press("enter")
        await settle(pilot)
        text = summary(app)
        assert "imported 5 memories" in text and "imported 5 memories" in screen_text(app)
        assert "skipped 4 record(s)" in text and "missing from the mapping" in text
        bar = dialog.query_one(ProgressBar)
        assert bar.total and bar.progress == bar.total
        assert memories.count() == 5
        # again, with the format chosen by hand: nothing new
        dialog.query_one(Select).value = "chatgpt"
        await pilot.press("enter")
        await settle(pilot)
        assert "imported 0 memories, 5 already present" in summary(app)
        assert memories.count() == 5


async def test_import_dialog_says_what_is_wrong_with_a_file(settings, memories, tmp_path):  # type: ignore[no-untyped-def]
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        command(app, "Import conversations…")()
        await settle(pilot)
        field = app.screen.query_one(Input)
        for value, expected in (
            (str(junk), "not an export memo-shell knows"),
            (str(tmp_path / "missing.json"), "is not a file"),
        ):
            field.value = value
            await pilot.press("enter")
            await settle(pilot)
            assert expected in summary(app)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ImportScreen)


async def test_export_this_chat_writes_markdown_and_says_where(
    settings, memories, seeded, tmp_path, monkeypatch: pytest.MonkeyPatch
):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home.md").write_text("someone else's file")
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.runtime.set_session("home")
        command(app, "Export this chat as Markdown")()
        await settle(pilot)
        written = tmp_path / "home-2.md"  # the existing file is never replaced
        assert (tmp_path / "home.md").read_text() == "someone else's file"
        text = written.read_text()
        assert "Plan a trip to Lisbon with Ada in May." in text and "Try a Vinho Verde." in text
        assert str(written) in notes(app)
