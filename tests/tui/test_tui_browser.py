"""The memory browser: rows, filters, live search, forget with undo, pin, tags, damaged files."""

from __future__ import annotations

from textual.widgets import Input, Select
from tui_helpers import make_app, notes, screen_text, settle

from memo_shell.tui.screens.browser import BrowserScreen
from memo_shell.tui.widgets.memory_table import MemoryTable


async def open_browser(pilot):
    await settle(pilot)
    await pilot.press("f3")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, BrowserScreen)
    return screen, screen.query_one(MemoryTable)


async def test_rows_newest_first_with_counts_and_disk_size(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        _screen, table = await open_browser(pilot)
        assert table.ids == list(reversed(seeded))
        text = screen_text(app)
        assert "5 memories · 2 sessions · 1 pinned" in text
        assert "on disk" in text and "? B" not in text
        lines = text.splitlines()
        row_of = {
            w: next(i for i, ln in enumerate(lines) if w in ln) for w in ("workers", "profile")
        }
        assert row_of["workers"] < row_of["profile"]  # newest on top
        assert "2024-05-03 09:44  home" in text  # local time (UTC in tests) and session


async def test_session_filter_and_date_filter(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await open_browser(pilot)
        screen.query_one("#session-filter", Select).value = "home"
        await settle(pilot)
        assert set(table.ids) == {seeded[2], seeded[3]}
        assert "2 shown" in screen_text(app)

        screen.query_one("#session-filter", Select).clear()
        await settle(pilot)
        since = screen.query_one("#since", Input)
        since.focus()
        await pilot.press(*"2024-05-04", "enter")
        await settle(pilot)
        assert table.ids == [seeded[4], seeded[3]]

        until = screen.query_one("#until", Input)
        until.focus()
        await pilot.press(*"2024-05-04", "enter")  # inclusive: the whole day
        await settle(pilot)
        assert table.ids == [seeded[3]]

        until.value = "not a date"
        await pilot.press("enter")
        await settle(pilot)
        assert until.has_class("-invalid")
        assert table.ids == [seeded[3]]  # a bad date changes nothing


async def test_live_search_uses_recall_and_escape_clears(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await open_browser(pilot)
        await pilot.press("slash", *"lisbon")
        await settle(pilot)
        assert table.ids[0] == seeded[2]
        assert seeded[2] in table.scores  # ranked by recall, with its score column
        assert "score" in screen_text(app) and "sort: relevance" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert screen.query_one("#search", Input).value == ""
        assert len(table.ids) == 5


async def test_forget_selected_then_undo_restores_the_same_files(settings, memories, seeded):
    app = make_app(settings, memories)
    store = memories.store
    async with app.run_test(size=(120, 30)) as pilot:
        _screen, table = await open_browser(pilot)
        # select the two newest rows with space (cursor moves down after each)
        await pilot.press("space", "space")
        assert table.selected == {seeded[4], seeded[3]}
        assert "2 selected" in screen_text(app)
        await pilot.press("d")
        await settle(pilot)
        assert "Forget 2 memories?" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert not store.path_for(seeded[4]).exists()
        assert not store.path_for(seeded[3]).exists()
        assert table.ids == [seeded[2], seeded[1], seeded[0]]
        assert memories.meta(seeded[4]) is None
        assert "u undoes forgetting 2 memories" in screen_text(app)

        await pilot.press("u")
        await settle(pilot)
        assert store.path_for(seeded[4]).exists() and store.path_for(seeded[3]).exists()
        assert memories.get(seeded[3]).user == "What wine goes with bacalhau?"
        assert memories.get(seeded[3]).tags == ("food",)
        assert table.ids == list(reversed(seeded))
        assert next(h.memory.id for h in memories.recall("bacalhau", 3)) == seeded[3]


async def test_cancelled_forget_keeps_everything(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        _screen, table = await open_browser(pilot)
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert memories.store.path_for(seeded[4]).exists()
        assert len(table.ids) == 5


async def test_prune_by_filter_keeps_pinned_and_undo_survives_leaving_the_screen(
    settings, memories, seeded
):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await open_browser(pilot)
        screen.query_one("#session-filter", Select).value = "work"
        await settle(pilot)
        assert len(table.ids) == 3
        await pilot.press("D")
        await settle(pilot)
        assert "Forget all 2 memories shown (1 pinned kept)?" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert table.ids == [seeded[1]]  # the pinned one
        assert not memories.store.path_for(seeded[0]).exists()
        await pilot.press("escape")  # leave the browser: undo is app-wide, so it stays
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        assert "u undoes forgetting 2 memories" in screen_text(app)
        await pilot.press("u")
        await settle(pilot)
        assert "Restored 2 memories." in notes(app)
        assert memories.store.path_for(seeded[0]).exists()


async def test_pin_and_tags_from_the_table(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        _screen, table = await open_browser(pilot)
        assert table.current_id == seeded[4]
        await pilot.press("p")
        await settle(pilot)
        assert memories.get(seeded[4]).pinned
        assert "2 pinned" in screen_text(app)
        await pilot.press("t")
        await settle(pilot)
        field = pilot.app.screen.query_one(Input)
        field.value = "textual, ui , textual"
        await pilot.press("enter")
        await settle(pilot)
        assert memories.get(seeded[4]).tags == ("textual", "ui")
        assert "textual,ui" in screen_text(app)


async def test_sort_cycles_and_keeps_the_cursor_memory(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        _screen, table = await open_browser(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert table.ids == seeded  # oldest first
        await pilot.press("s")
        await settle(pilot)
        sessions = [memories.meta(i).session for i in table.ids]
        assert sessions == sorted(sessions)
        await pilot.press("s")
        await settle(pilot)
        assert table.ids[0] == seeded[1]  # pinned first


async def test_open_detail_pin_and_forget_with_undo(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        _screen, _table = await open_browser(pilot)
        await pilot.press("down", "down", "enter")  # the Lisbon memory
        await settle(pilot)
        text = screen_text(app)
        assert "Plan a trip to Lisbon with Ada in May." in text
        assert "trams, pastel de nata" in text
        assert "session home" in text
        await pilot.press("p")
        await settle(pilot)
        assert memories.get(seeded[2]).pinned
        assert "★ pinned" in screen_text(app)
        await pilot.press("f")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert not memories.store.path_for(seeded[2]).exists()
        await pilot.press("u")
        await settle(pilot)
        restored = memories.get(seeded[2])
        assert restored.pinned and restored.session == "home"


async def test_damaged_file_is_reported_and_dropped(settings, memories, seeded):
    path = memories.store.path_for(seeded[3])
    path.write_bytes(path.read_bytes()[:-5])  # a torn write
    memories._evict(seeded[3])  # as if another process had written it
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        _screen, table = await open_browser(pilot)
        # the file watcher may notice the torn write before the browser opens; if not, opening
        # the row finds the damage: either way it is reported, dropped and quarantined
        if seeded[3] in table.ids:
            table.cursor = table.ids.index(seeded[3])
            await pilot.press("enter")
            await settle(pilot)
        for _ in range(50):
            if "damaged" in notes(pilot.app) and seeded[3] not in table.ids:
                break
            await pilot.pause(0.05)
        assert isinstance(pilot.app.screen, BrowserScreen)  # back in the browser, still usable
        assert seeded[3] not in table.ids
        assert "damaged" in notes(pilot.app)
        assert not path.exists()  # quarantined
        await pilot.press("enter")  # the other rows still open
        await settle(pilot)
        assert memories.get(table.current_id).user[:20] in screen_text(app)


async def test_mouse_click_moves_cursor_and_double_click_opens(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        _screen, table = await open_browser(pilot)
        await pilot.click(MemoryTable, offset=(30, 3))  # header is row 0: third memory
        assert table.current_id == seeded[2]
        await pilot.click(MemoryTable, offset=(30, 3), times=2)
        await settle(pilot)
        assert "Plan a trip to Lisbon" in screen_text(app)
