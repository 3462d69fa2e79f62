"""The memory browser never surprises: filters apply during a search, a search or sort puts
the cursor on the first (visible) row, dialogs name what they act on, weak hits are set apart,
row actions are offered only with a row; and F6, the help and the palette at their best; and
the app is usable at 80×24."""

from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import Input, OptionList, Select
from tui_helpers import make_app, screen_text, settle

from memo_shell.tui.screens.browser import BrowserScreen
from memo_shell.tui.screens.chat import ChatScreen
from memo_shell.tui.screens.dialogs import TextPromptScreen
from memo_shell.tui.widgets.key_bar import KeyBar
from memo_shell.tui.widgets.memory_table import MemoryTable

SIZE = (120, 30)


async def open_browser(pilot):
    await settle(pilot)
    await pilot.press("f3")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, BrowserScreen)
    return screen, screen.query_one(MemoryTable)


async def search(pilot, screen, text: str) -> None:
    screen.query_one("#search", Input).value = text
    await settle(pilot)


async def test_the_session_filter_applies_during_a_search(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await open_browser(pilot)
        await search(pilot, screen, "ada")
        assert set(table.ids) >= {seeded[1], seeded[2]}  # work (pinned) and home
        screen.query_one("#session-filter", Select).value = "home"
        await settle(pilot)
        assert table.ids == [seeded[2]]
        # and the other order: filter first, then search
        await search(pilot, screen, "")
        await search(pilot, screen, "textual")
        assert table.ids == []
        assert "0 shown" in screen_text(app)


async def test_search_and_sort_put_the_cursor_on_the_first_visible_row(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await open_browser(pilot)
        await pilot.press("down", "down", "down")
        assert table.cursor == 3
        await search(pilot, screen, "textual")
        assert table.cursor == 0 and table.current_id == table.ids[0]
        table.focus()
        await pilot.press("p")  # acts on the highlighted first hit, not a leftover row
        await settle(pilot)
        assert memories.get(table.ids[0]).pinned
        memories.unpin(table.ids[0])
        await search(pilot, screen, "")
        table.focus()
        await pilot.press("end")
        for _ in range(4):  # newest -> oldest -> session -> pinned first
            await pilot.press("s")
            await settle(pilot)
            assert table.cursor == 0 and table.scroll_offset.y == 0
        assert screen.sort == "newest"
        await pilot.press("s", "s", "s")
        await settle(pilot)
        assert screen.sort == "pinned first"
        assert table.ids[0] == seeded[1] and table.current_id == seeded[1]
        assert "Remind me: Ada prefers tabs" in screen_text(app)  # on screen, not scrolled off


async def test_dialogs_name_the_memory_they_act_on(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        _screen, _table = await open_browser(pilot)
        await pilot.press("d")
        await settle(pilot)
        text = screen_text(app)
        assert "Forget 1 memory?" in text
        assert "“Textual workers keep the UI responsive.”" in text
        await pilot.press("n")
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, TextPromptScreen)
        assert "Tags of “Textual workers keep the UI responsive.”" in screen_text(app)
        await pilot.press("escape")


async def test_hits_without_direct_evidence_are_listed_last_and_said(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await open_browser(pilot)
        await search(pilot, screen, "wine")
        assert table.ids[0] == seeded[3]
        assert table.ids[-1] == seeded[1]  # the pinned memory, recalled for being pinned
        assert table.weak == {seeded[1]}
        assert "last 1 dimmed: no word matched" in screen_text(app)


async def test_row_actions_are_offered_only_with_a_row(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        screen, table = await open_browser(pilot)
        bar = screen.query_one(KeyBar)
        assert "Forget" in str(bar.render())
        screen.query_one("#session-filter", Select).value = "home"
        await search(pilot, screen, "qqqqzzzz")  # (pinned memories are recalled anywhere)
        assert table.ids == []
        table.focus()
        await pilot.pause()
        assert "Forget" not in str(bar.render()) and "Pin" not in str(bar.render())
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, BrowserScreen)  # no empty confirmation


async def test_sessions_open_with_the_current_one_highlighted(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f6")
        await settle(pilot)
        options = app.screen.query_one(OptionList)
        assert options.highlighted is not None
        assert options.get_option_at_index(options.highlighted).id == app.runtime.session
        await pilot.press("r")  # acts at once, no arrow key needed
        await settle(pilot)
        assert isinstance(app.screen, TextPromptScreen)
        assert f"Rename session '{app.runtime.session}'" in screen_text(app)


async def test_help_spaces_long_keys_and_the_palette_offers_help_once(settings, memories):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 80)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        text = str(app.screen.query_one("#help-text Static").render())
        assert "alt+enter New line" in text and "alt+enterNew" not in text
        await pilot.press("escape")
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert commands.count("Help") == 1
        await pilot.press("ctrl+p")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)


async def test_usable_at_80_by_24(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        assert app.screen.query_one("#conversation").size.width >= 48
        screen, table = await open_browser(pilot)
        assert screen.query_one("#search", Input).size.width >= 40
        assert table.size.height >= 12
        text = screen_text(app)
        assert "2024-05-05 09:58  work" in text
        assert "Textual workers keep the UI responsive" in text
