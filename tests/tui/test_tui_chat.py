"""The chat screen: turns end to end against the loopback Ollama server (the real client),
with the real store and index. Faults are the server's own (dies mid-reply, unknown model, not
listening) or the disk's (ENOSPC through the store's Disk seam)."""

from __future__ import annotations

import asyncio
import errno
from dataclasses import replace
from pathlib import Path

import pytest
from servers import ScriptedModel, free_port
from textual import events
from textual.widgets import Markdown
from tui_helpers import MODEL, REPLY, make_app, notes, screen_text, settle

import memo_shell
from memo_shell.disk import Disk
from memo_shell.paths import index_dir
from memo_shell.tui.screens.chat import ChatScreen
from memo_shell.tui.screens.prompt import PromptScreen
from memo_shell.tui.widgets.chat_log import TurnView
from memo_shell.tui.widgets.composer import Composer
from memo_shell.tui.widgets.recall_panel import RecallPanel

QUESTION = "When is the Lisbon trip with Ada?"


async def ask(pilot, question: str, *, wait: bool = True) -> None:
    composer = pilot.app.screen.query_one(Composer)
    composer.focus()
    composer.load_text(question)
    await pilot.press("enter")
    if wait:
        await settle(pilot)


def newest(memories: memo_shell.Memories):
    return memories.get(memories.select()[0])


async def test_turn_streams_reply_fills_panel_and_is_stored(settings, memories, seeded, ollama):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, QUESTION)
        screen = pilot.app.screen
        assert isinstance(screen, ChatScreen)
        turn = screen.query(TurnView).last()
        assert turn.answer == REPLY
        assert turn.query_one(Markdown).source == REPLY
        text = screen_text(app)
        assert "Textual apps use workers for slow jobs." in text
        assert "print('hi')" in text  # the fenced code block, highlighted by Markdown
        assert f"{MODEL} · ollama · first token" in text  # model and timing, unobtrusive
        assert "ollama · scripted:latest" in text and "6 memories" in text  # status bar
        # the side panel: what was recalled, with score, why, date and session
        panel = screen.query_one(RecallPanel)
        assert panel.hits[0].memory.id == seeded[2]
        assert "Plan a trip to Lisbon" in text
        assert "2024-05-03 09:44  home" in text
        assert "why: matched: lisbon" in text
        # stored, and the recalled memory went to the model as data
        stored = newest(memories)
        assert (stored.user, stored.assistant, stored.model) == (QUESTION, REPLY, MODEL)
        assert "pastel de nata" in str(ollama.posted("/api/chat")[-1]["messages"])
        assert screen.query_one(Composer).text == ""


async def test_prompt_viewer_shows_the_exact_prompt(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        assert "No prompt has been sent yet" in notes(app)
        await ask(pilot, QUESTION)
        await pilot.press("ctrl+o")
        await settle(pilot)
        screen = pilot.app.screen
        assert isinstance(screen, PromptScreen)
        plan = app.runtime.shell.last_plan
        assert screen.prompt == plan.render()
        assert seeded[2] in screen_text(app)  # which memories were included, by id
        assert "pastel de nata" in screen.prompt
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, ChatScreen)


async def test_memory_toggle_sends_nothing_recalled(settings, memories, seeded, ollama):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+t")
        assert "memory off" in screen_text(app)
        await ask(pilot, QUESTION)
        assert "pastel de nata" not in str(ollama.posted("/api/chat")[-1]["messages"])
        assert "Memory was off for this turn." in screen_text(app)
        await pilot.press("ctrl+t")  # off -> private (still no recall)
        assert "memory private: not kept" in screen_text(app)
        assert app.runtime.shell.use_memory is False
        await pilot.press("ctrl+t")  # private -> on
        assert app.runtime.shell.use_memory is True
        assert "memory on" in screen_text(app)


async def test_panel_toggles_and_its_memory_opens_pins_and_forgets(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, QUESTION)
        panel = pilot.app.screen.query_one(RecallPanel)
        await pilot.press("ctrl+r")
        assert not panel.display
        await pilot.press("ctrl+r")
        assert panel.display
        await pilot.press("ctrl+g")  # go to the recalled list
        await pilot.press("p")
        await settle(pilot)
        assert memories.get(seeded[2]).pinned
        assert "★ pinned" in screen_text(app)
        await pilot.press("enter")  # open it
        await settle(pilot)
        assert "Plan a trip to Lisbon with Ada in May." in screen_text(app)
        assert "trams, pastel de nata" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("f")
        await settle(pilot)
        assert "Forget this memory?" in screen_text(app)
        await pilot.press("y")
        await settle(pilot)
        assert not memories.store.path_for(seeded[2]).exists()
        assert all(h.memory.id != seeded[2] for h in panel.hits)


async def test_escape_cancels_the_reply_stores_nothing_and_returns_the_question(
    settings, memories, seeded, ollama
):
    ollama.add(ScriptedModel(MODEL, reply="one two three four five six seven", delay_s=0.3))
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, QUESTION, wait=False)
        for _ in range(100):  # wait for the first piece on screen
            await asyncio.sleep(0.02)
            turns = pilot.app.screen.query(TurnView)
            if turns and turns.last().answer:
                break
        await pilot.press("escape")
        await settle(pilot)
        assert all(t.question != QUESTION for t in pilot.app.screen.query(TurnView))
        assert pilot.app.screen.query_one(Composer).text == QUESTION
        assert "Reply cancelled; nothing was stored" in notes(app)
        assert len(memories.select()) == len(seeded)
        assert ollama.disconnected.wait(5)  # the server saw the client go away


async def test_server_dying_mid_reply_keeps_the_question_and_the_app(
    settings, memories, seeded, ollama
):
    ollama.add(ScriptedModel(MODEL, reply="partial answer that never ends", die_after=2))
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, QUESTION)
        turn = pilot.app.screen.query(TurnView).last()
        assert turn.has_class("failed")
        assert "reply interrupted" in screen_text(app)
        assert pilot.app.screen.query_one(Composer).text == QUESTION
        assert notes(app)  # one clear sentence from the backend
        assert len(memories.select()) == len(seeded)
        # still usable: the next turn works once the server behaves
        ollama.add(ScriptedModel(MODEL, reply="Back again."))
        await ask(pilot, "and now?")
        assert pilot.app.screen.query(TurnView).last().answer == "Back again."


async def test_missing_model_is_a_notification(settings, memories, ollama):
    app = make_app(replace(settings, model="nope:latest"), memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, "hello?")
        assert "ollama pull nope" in notes(app)
        assert pilot.app.screen.query_one(Composer).text == "hello?"
        assert "no reply" in screen_text(app)


async def test_unreachable_server_is_a_notification(settings, memories):
    dead = f"http://127.0.0.1:{free_port()}"
    app = make_app(replace(settings, ollama_host=dead), memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, "hello?")
        assert notes(app)
        assert pilot.app.screen.query_one(Composer).text == "hello?"
        assert len(memories.select()) == 0


class FullDisk(Disk):
    """The real disk, except that writes fail with ENOSPC while ``full`` is set."""

    full = False

    def write_all(self, fd: int, data: bytes) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write_all(fd, data)


async def test_disk_full_when_storing_says_so_and_keeps_the_question(settings, tmp_path: Path):
    disk = FullDisk()
    memories = memo_shell.Memories(tmp_path / "full", disk=disk)
    try:
        memories.wait_ready(10)
        disk.full = True
        app = make_app(settings, memories)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(pilot)
            await ask(pilot, QUESTION)
            assert "disk is full" in notes(app)
            assert "not remembered" in screen_text(app)
            assert pilot.app.screen.query_one(Composer).text == QUESTION
            disk.full = False
            await ask(pilot, QUESTION)
            assert newest(memories).user == QUESTION
    finally:
        memories.close()


BIG = ("lorem ipsum dolor sit amet " * 2000)[:50_000]


async def paste_and_send(pilot, text: str) -> Composer:
    composer = pilot.app.screen.query_one(Composer)
    composer.focus()
    pilot.app.post_message(events.Paste(text))  # a bracketed paste from the terminal
    await settle(pilot)
    assert composer.text == text
    assert "Pasted 50 kB" in notes(pilot.app)
    await pilot.press("enter")
    await settle(pilot)
    return composer


async def test_big_paste_that_fits_is_sent_whole_and_shortened_on_screen(
    settings, tmp_path, ollama
):
    ollama.add(ScriptedModel(MODEL, reply="Summarised.", context=65536))
    settings = replace(settings, context_size=32768)
    with memo_shell.open(tmp_path / "big", settings=settings) as memories:
        app = make_app(settings, memories)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(pilot)
            await paste_and_send(pilot, BIG)
            assert "more characters not shown" in screen_text(app)
            assert newest(memories).user == BIG.strip()
            assert BIG.strip() in str(ollama.posted("/api/chat")[-1]["messages"])


async def test_big_paste_beyond_the_context_is_refused_clearly_and_kept(settings, memories):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        composer = await paste_and_send(pilot, BIG)
        assert "more than the 3,584 the model's context leaves" in notes(app)
        assert composer.text == BIG  # nothing typed is lost
        assert memories.select() == []
        await pilot.press("ctrl+a", "ctrl+k")  # still usable
        await ask(pilot, "short one")
        assert newest(memories).user == "short one"


async def test_newline_key_and_enter_sends(settings, memories):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press(*"line one", "ctrl+j", *"line two")
        composer = pilot.app.screen.query_one(Composer)
        assert composer.text == "line one\nline two"
        await pilot.press("enter")
        await settle(pilot)
        assert newest(memories).user == "line one\nline two"


async def test_empty_store_shows_where_memories_live_and_how_to_forget(settings, memories):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "Welcome to memo-shell" in text
        assert str(memories.data_dir)[:40] in text.replace("\n", "")
        assert "press f" in text and "F3" in text
        welcome = app.screen.query_one("#welcome").source  # (the screen wraps it)
        assert "tiny *base* model" in welcome and "press **F5**" in welcome
        assert "http://127.0.0.1:1234/v1" in welcome and ".gguf" in welcome
        await ask(pilot, "hi")
        assert "Welcome to memo-shell" not in screen_text(app)


@pytest.mark.parametrize("key", ["f1", "question_mark"])
async def test_help_lists_every_key_with_remaps(settings, memories, seeded, key):
    settings = replace(settings, keys={"browser.forget": "x", "bogus.id": "z"})
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 60)) as pilot:  # tall enough for the browser's keys
        await settle(pilot)
        if key == "question_mark":
            pilot.app.screen.query_one("#log").focus()  # ? types into the message box
        await pilot.press(key)
        await settle(pilot)
        assert "memo-shell keys" in screen_text(app)
        text = str(app.screen.query_one("#help-text Static").render())  # (it scrolls)
        assert "x" in text and "[browser.forget]" in text
        assert "unknown binding id 'bogus.id'" in notes(app)
        await pilot.press("escape")
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("x")  # the remapped key forgets
        await settle(pilot)
        assert "Forget 1 memory?" in screen_text(app)


async def test_waiting_for_another_process_lock_is_a_notification(settings, memories, seeded):
    """A CLI import in another terminal holds the index lock while a turn is stored: the wait is
    told as a toast (on stderr it would be swallowed by the app, or scribble over the screen)."""
    import subprocess
    import sys
    import time

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom pathlib import Path\n"
            "from memo_shell.index.files import locked\n"
            "with locked(Path(sys.argv[1])):\n"
            "    print('held', flush=True)\n    time.sleep(2.0)\n",
            str(index_dir(settings.data_dir) / "lock"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        app = make_app(settings, memories)
        async with app.run_test(size=(130, 40)) as pilot:
            started = time.monotonic()
            await ask(pilot, QUESTION)
            assert time.monotonic() - started > 1.0, "the turn did not wait for the lock"
            assert f"another memo-shell process (pid {holder.pid})" in notes(app)
            assert newest(memories).user == QUESTION  # and the turn was stored after the wait
    finally:
        holder.kill()
        holder.wait()


async def test_prompt_viewer_shows_what_an_openai_server_receives(settings, memories, seeded):
    """Memories travel in the user's turn to OpenAI-compatible servers: the viewer says so."""
    from servers import FakeOpenAI

    from memo_shell.backends import OpenAIBackend
    from memo_shell.prompt import MEMORY_PREAMBLE

    with FakeOpenAI([ScriptedModel(MODEL, reply="In May.")]) as server:
        backend = OpenAIBackend(server.base_url, MODEL)
        app = make_app(settings, memories, backend=backend)
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(pilot)
            await ask(pilot, QUESTION)
            await pilot.press("ctrl+o")
            await settle(pilot)
            prompt = pilot.app.screen.prompt
            exact = prompt.split("── exact text sent to")[1]
            assert MEMORY_PREAMBLE in exact.split("── user ──")[-1]
            assert "pastel de nata" in exact.split("── user ──")[-1]
