"""The knowledge graph view: entities, neighbours, mentions, forget an entity with undo."""

from __future__ import annotations

from textual.widgets import DataTable, OptionList
from tui_helpers import make_app, screen_text, settle

from memo_shell.tui.screens.graph import GraphScreen


async def open_graph(pilot) -> GraphScreen:
    await settle(pilot)
    await pilot.press("f4")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, GraphScreen)
    return screen


async def test_entities_neighbours_and_mentions(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 36)) as pilot:
        screen = await open_graph(pilot)
        names = [e.name for e in memories.entities()]
        assert "Ada" in names and "Lisbon" in names
        await pilot.press("slash", *"ada", "enter")
        await settle(pilot)
        assert screen.current == "Ada"
        text = screen_text(app)
        assert "Ada" in text and "2 memories" in text
        mentions = screen.query_one("#mentions", OptionList)
        ids = {o.id[2:] for o in mentions.options}
        assert ids == {seeded[1], seeded[2]}
        assert "Plan a trip to Lisbon" in text
        neighbours = [o.id[2:] for o in screen.query_one("#neighbours", OptionList).options]
        assert "Lisbon" in neighbours
        # open a memory that mentions it
        mentions.focus()
        mentions.highlighted = [o.id[2:] for o in mentions.options].index(seeded[2])
        await pilot.press("enter")
        await settle(pilot)
        assert "trams, pastel de nata" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        # a neighbour jumps to that entity
        neighbour_list = screen.query_one("#neighbours", OptionList)
        neighbour_list.focus()
        neighbour_list.highlighted = neighbours.index("Lisbon")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.current == "Lisbon"


async def test_forget_everything_about_an_entity_then_undo(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 36)) as pilot:
        screen = await open_graph(pilot)
        await pilot.press("slash", *"ada", "enter")
        await settle(pilot)
        assert screen.query_one(DataTable).has_focus
        await pilot.press("d")
        await settle(pilot)
        assert "Forget everything about 'Ada'?" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        for memory_id in (seeded[1], seeded[2]):
            assert not memories.store.path_for(memory_id).exists()
        assert memories.mentions("Ada") == []
        assert memories.store.path_for(seeded[0]).exists()
        await pilot.press("u")
        await settle(pilot)
        assert sorted(memories.mentions("Ada")) == sorted([seeded[1], seeded[2]])
        assert memories.get(seeded[1]).pinned  # restored exactly
