"""The chat's memory controls: who said what in the panel, why memories were left out,
editing a memory from the panel, "don't remember", forgetting the last turn, no stale panel."""

from __future__ import annotations

from tui_helpers import make_app, screen_text, settle

from memo_shell.api import Hit
from memo_shell.tui.screens.chat import ChatScreen
from memo_shell.tui.screens.detail import EditMemoryScreen, MemoryDetailScreen
from memo_shell.tui.widgets.composer import Composer
from memo_shell.tui.widgets.recall_panel import RecallPanel

QUESTION = "When is the Lisbon trip with Ada?"


async def ask(pilot, question: str = QUESTION) -> None:
    composer = pilot.app.screen.query_one(Composer)
    composer.focus()
    composer.load_text(question)
    await pilot.press("enter")
    await settle(pilot)


async def wait_for(pilot, screen_type, tries: int = 200) -> None:
    for _ in range(tries):
        if isinstance(pilot.app.screen, screen_type):
            return
        await pilot.pause(0.02)
    raise AssertionError(f"{screen_type.__name__} did not open")


async def test_panel_shows_the_reply_as_a_claim_and_why_others_were_left_out(
    settings, memories, seeded
):
    app = make_app(settings, memories)
    async with app.run_test(size=(150, 50)) as pilot:
        await settle(pilot)
        # a new session: the app continues the last one, whose recent turns go into the prompt
        # as conversation and so are not recalled again
        await pilot.press("ctrl+n")
        await settle(pilot)
        await ask(pilot)
        text = screen_text(app)
        assert len(app.screen.query_one(RecallPanel).hits) >= 2
        assert "you said" in text and "Plan a trip to Lisbon" in text
        assert "Lisbon in May: trams" in text and "(claim)" in text  # the reply side shows
        panel = app.screen.query_one(RecallPanel)
        first, *rest = panel.hits
        weak = Hit(rest[0].memory, 0.01, rest[0].why) if rest else first
        panel.show_hits([first, weak], [first.memory.id], {weak.memory.id: "score 0.01 too low"})
        await pilot.pause()
        assert "not in prompt: score 0.01 too low" in screen_text(app)


async def test_edit_from_the_panel_rewrites_the_file_and_the_panel(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(150, 50)) as pilot:
        await settle(pilot)
        await ask(pilot)
        panel = app.screen.query_one(RecallPanel)
        target = panel.hits[0].memory.id
        await pilot.press("ctrl+g")
        await pilot.press("enter")
        await wait_for(pilot, MemoryDetailScreen)
        await settle(pilot)
        await pilot.press("e")
        await wait_for(pilot, EditMemoryScreen)
        editor = app.screen.query_one("#edit-assistant")
        editor.load_text("Lisbon in June, actually.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, MemoryDetailScreen)
        await settle(pilot)
        assert memories.get(target).assistant == "Lisbon in June, actually."
        assert memories.get(target).meta["edited"] == "assistant"
        assert memories.recall("June", k=1)[0].memory.id == target  # the index followed
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        assert panel.hits[0].memory.assistant == "Lisbon in June, actually."
        assert "Lisbon in June, actually." in screen_text(app)


async def test_a_private_turn_is_answered_but_never_written(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(150, 50)) as pilot:
        await settle(pilot)
        before = memories.count()
        written: list[str] = []
        real_add = memories.add

        def add(*args, **kwargs):  # type: ignore[no-untyped-def]
            written.append(args[0] if args else kwargs["user"])
            return real_add(*args, **kwargs)

        memories.add = add  # type: ignore[method-assign]
        await pilot.press("ctrl+t", "ctrl+t")  # on -> off -> private
        await ask(pilot)
        assert "not kept (private)" in screen_text(app)
        assert memories.count() == before and written == []  # not even for a moment
        await pilot.press("ctrl+t")  # back on
        await ask(pilot)
        assert memories.count() == before + 1


async def test_forget_the_last_turn_after_it_was_stored(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(150, 50)) as pilot:
        await settle(pilot)
        before = memories.count()
        await ask(pilot)
        assert memories.count() == before + 1
        await pilot.press("f11")
        await settle(pilot)
        assert "Forget this memory?" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert memories.count() == before


async def test_memory_forgotten_elsewhere_leaves_the_panel(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(150, 50)) as pilot:
        await settle(pilot)
        await ask(pilot)
        panel = app.screen.query_one(RecallPanel)
        gone = panel.hits[0].memory.id
        await pilot.press("f3")  # the browser: forget it there (here via the API, as F3 does)
        await settle(pilot)
        memories.forget(gone)
        await pilot.press("f2")  # back to the chat
        await settle(pilot)
        assert isinstance(app.screen, ChatScreen)
        assert all(h.memory.id != gone for h in panel.hits)


async def test_edit_from_the_browser_updates_its_row(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("down", "down", "enter")  # the Lisbon memory (newest first)
        await wait_for(pilot, MemoryDetailScreen)
        await settle(pilot)
        await pilot.press("e")
        await wait_for(pilot, EditMemoryScreen)
        app.screen.query_one("#edit-user").load_text("Plan a trip to Porto with Ada in June.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, MemoryDetailScreen)
        await settle(pilot)
        assert "Plan a trip to Porto with Ada in June." in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        assert memories.get(seeded[2]).user == "Plan a trip to Porto with Ada in June."
        assert "Plan a trip to Porto with Ada" in screen_text(app)  # the browser's row
        assert memories.recall("Porto", k=1)[0].memory.id == seeded[2]
