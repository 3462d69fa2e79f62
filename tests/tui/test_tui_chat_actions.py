"""What chat users expect of a local-model TUI: regenerate, edit and resend, copy, ↑/↓ through
earlier questions, clear the view, keys typed fast kept in order, the last session shown on
start, and memory modes (off, private) that do what they say. Real store, real index, the
loopback Ollama server through the real client."""

from __future__ import annotations

from servers import ScriptedModel
from textual import events
from tui_helpers import MODEL, REPLY, ask, make_app, notes, screen_text, settle

from memo_shell.tui.screens.browser import BrowserScreen
from memo_shell.tui.screens.chat import ChatScreen
from memo_shell.tui.widgets.chat_log import TurnView, code_blocks
from memo_shell.tui.widgets.composer import Composer

SIZE = (130, 40)


def turns(app) -> list[TurnView]:
    return list(app.screen.query(TurnView))


async def test_keys_arriving_in_one_read_keep_their_order(settings, memories, ollama):
    """A terminal delivers "X", ctrl+j, "Y" (or "a", enter, "b") in one read: the new line goes
    between them, and the character typed after enter starts the next message."""
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        composer = app.screen.query_one(Composer)
        composer.focus()
        for key, char in (("X", "X"), ("ctrl+j", "\n"), ("Y", "Y")):
            app.post_message(events.Key(key, char))  # no pause between them
        await pilot.pause()
        assert composer.text == "X\nY"
        composer.clear()
        for key, char in (("a", "a"), ("enter", "\r"), ("b", "b")):
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert [t.question for t in turns(app)][-1] == "a"
        assert composer.text == "b"


async def test_up_and_down_walk_the_sessions_questions(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        composer = app.screen.query_one(Composer)
        composer.focus()
        composer.load_text("draft")
        await pilot.press("up")
        assert composer.text == "Textual workers keep the UI responsive."  # newest of "work"
        await pilot.press("up")
        assert composer.text == "Remind me: Ada prefers tabs over spaces."
        await pilot.press("down")
        assert composer.text == "Textual workers keep the UI responsive."
        await pilot.press("down")
        assert composer.text == "draft"  # the draft comes back at the end of the walk


async def test_opening_shows_the_last_sessions_recent_turns_with_a_hint(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert app.runtime.session == "work"  # the most recently active session continues
        assert "Session 'work': its last 3 earlier turns" in text
        assert "Textual workers keep the UI responsive." in text
        assert "finding a model" not in text and "connecting" not in text


async def test_regenerate_replaces_the_last_reply_and_forgets_the_old_one(
    settings, memories, seeded, ollama
):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "Say something")
        first = turns(app)[-1].memory_id
        assert first is not None and memories.get(first).assistant == REPLY
        ollama.add(ScriptedModel(MODEL, reply="A second answer."))
        await pilot.press("f7")
        await settle(pilot)
        last = turns(app)[-1]
        assert [t.question for t in turns(app)].count("Say something") == 1
        assert last.answer == "A second answer."
        assert last.memory_id != first
        assert not memories.store.path_for(first).exists()  # the old reply is forgotten
        assert memories.get(last.memory_id).assistant == "A second answer."
        assert len(memories.select()) == len(seeded) + 1
        # the regenerated prompt does not carry the old reply as an earlier turn
        assert REPLY not in str(ollama.posted("/api/chat")[-1]["messages"])
        # never lost: the old reply can be brought back from the memory browser
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("u")
        await settle(pilot)
        assert memories.get(first).assistant == REPLY


async def test_edit_last_question_and_resend_replaces_that_turn(settings, memories, ollama):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "What is the capital of Portugl?")
        old = turns(app)[-1].memory_id
        await pilot.press("f9")
        composer = app.screen.query_one(Composer)
        assert composer.text == "What is the capital of Portugl?"
        assert "Editing the last question" in notes(app)
        composer.load_text("What is the capital of Portugal?")
        await pilot.press("enter")
        await settle(pilot)
        assert [t.question for t in turns(app)] == ["What is the capital of Portugal?"]
        assert not memories.store.path_for(old).exists()
        assert [memories.get(i).user for i in memories.select()] == [
            "What is the capital of Portugal?"
        ]


async def test_escape_stops_editing_and_nothing_is_replaced(settings, memories, ollama):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "first question")
        await pilot.press("f9", "escape")
        assert "Stopped editing" in notes(app)
        composer = app.screen.query_one(Composer)
        composer.load_text("second question")
        await pilot.press("enter")
        await settle(pilot)
        assert [t.question for t in turns(app)] == ["first question", "second question"]
        assert len(memories.select()) == 2


async def test_copy_reply_and_code_block_to_the_clipboard(settings, memories, ollama):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f10")
        assert "No reply to copy yet." in notes(app)
        await ask(pilot, "Show me code")
        await pilot.press("f10")
        assert app.clipboard == REPLY
        assert "Copied the last reply" in notes(app)
        await pilot.press("ctrl+b")
        assert app.clipboard == "print('hi')\n"
        assert "Copied the last code block, 1 line." in notes(app)


def test_code_blocks_are_found_with_any_fence():
    text = "a\n```py\nx = 1\n```\nb\n~~~~\ny\n~~~~\n```\nunclosed"
    assert code_blocks(text) == ["x = 1\n", "y\n"]
    assert code_blocks("no code") == []


async def test_clear_view_forgets_nothing(settings, memories, seeded, ollama):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "hello")
        await pilot.press("f12")
        await settle(pilot)
        assert not turns(app)
        assert "nothing was forgotten" in notes(app)
        assert len(memories.select()) == len(seeded) + 1


async def test_private_mode_keeps_the_turn_out_of_memory(settings, memories, seeded, ollama):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+t", "ctrl+t")  # on -> off -> private
        assert "Private until you press ctrl+t again" in notes(app)
        await ask(pilot, "A secret: my PIN is 4321")
        text = screen_text(app)
        assert "not kept (private)" in text and "memory private: not kept" in text
        assert len(memories.select()) == len(seeded)
        assert all("4321" not in h.memory.user for h in memories.recall("PIN 4321"))
        assert not app.runtime.undo_stack  # not kept for undo either
        await ask(pilot, "And another")  # the mode persists until pressed again
        assert len(memories.select()) == len(seeded)


async def test_forget_from_the_chat_names_the_memory_and_f3_undoes_it(
    settings, memories, seeded, ollama
):
    app = make_app(settings, memories)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await ask(pilot, "When is the Lisbon trip with Ada?")
        await pilot.press("ctrl+g", "f")
        await settle(pilot)
        text = screen_text(app)
        assert "“Plan a trip to Lisbon with Ada in May.”" in text
        assert "Undo: u in the memory browser (F3)" in text
        await pilot.press("y")
        await settle(pilot)
        assert not memories.store.path_for(seeded[2]).exists()
        await pilot.press("f3")
        await settle(pilot)
        assert isinstance(app.screen, BrowserScreen)
        await pilot.press("u")
        await settle(pilot)
        assert memories.store.path_for(seeded[2]).exists()
        assert "Restored 1 memory." in notes(app)
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)
