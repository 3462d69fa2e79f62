"""Shell.turn end to end: real store and index, the real Ollama client, a loopback server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from servers import FakeOllama, ScriptedModel

import memo_shell
from memo_shell.api import Memories
from memo_shell.backends import OllamaBackend
from memo_shell.config import Settings
from memo_shell.prompt import PromptTooLong
from memo_shell.shell import Done, Piece, QuestionRejected, Recalled, Shell, TurnFailed

pytest_plugins = ["conftest_servers"]


@pytest.fixture
def memories(data_dir: Path) -> AsyncIterator[Memories]:
    with memo_shell.open(data_dir) as mem:
        yield mem


def make_shell(
    memories: Memories, server: FakeOllama, model: str = "llama3.2", **settings: object
) -> Shell:
    config = Settings(data_dir=memories.data_dir, **settings)
    backend = OllamaBackend(server.url, model, context_size=config.context_size)
    return Shell(memories, backend, config, session="s2")


async def run(shell: Shell, question: str) -> list[object]:
    return [event async for event in shell.turn(question)]


def sent_system(server: FakeOllama) -> str:
    return server.posted("/api/chat")[-1]["messages"][0]["content"]


async def test_a_turn_recalls_streams_and_stores(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    old = memories.add("My dog is called Biscuit.", "What a lovely name!", session="s1")
    fake_ollama.models["llama3.2:latest"].reply = "Your dog is Biscuit."
    events = await run(make_shell(memories, fake_ollama), "What is my dog called?")

    recalled, *pieces, done = events
    assert isinstance(recalled, Recalled) and isinstance(done, Done)
    assert [h.memory.id for h in recalled.hits] == [old]
    assert recalled.plan.included == [old]
    assert [p.text for p in pieces if isinstance(p, Piece)] == ["Your ", "dog ", "is ", "Biscuit."]
    assert "> User: My dog is called Biscuit." in sent_system(fake_ollama)

    stored = memories.get(done.memory_id)
    assert (stored.user, stored.assistant) == ("What is my dog called?", "Your dog is Biscuit.")
    assert (stored.session, stored.backend, stored.model) == ("s2", "ollama", "llama3.2")
    assert stored.meta == {"recalled": old}
    assert done.answer == "Your dog is Biscuit." and done.total_s >= done.first_piece_s > 0


async def test_the_session_so_far_goes_in_as_messages_not_as_recall(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    shell = make_shell(memories, fake_ollama)
    first = (await run(shell, "Remember that my sister Ana lives in Porto."))[-1]
    events = await run(shell, "Where does my sister Ana live?")
    sent = fake_ollama.posted("/api/chat")[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "Remember that my sister Ana lives in Porto."
    recalled = events[0]
    assert isinstance(recalled, Recalled) and isinstance(first, Done)
    assert first.memory_id not in [h.memory.id for h in recalled.hits]
    assert recalled.plan.recent == [first.memory_id]


async def test_a_new_shell_reads_the_session_back_from_the_store(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    earlier = memories.add("We are planning a trip to Oslo.", "Sounds fun.", session="s2")
    shell = make_shell(memories, fake_ollama)
    await run(shell, "What should I pack?")
    assert (
        fake_ollama.posted("/api/chat")[-1]["messages"][1]["content"]
        == "We are planning a trip to Oslo."
    )
    shell.new_session()
    events = await run(shell, "What should I pack for the Oslo trip?")
    assert isinstance(events[0], Recalled) and events[0].plan.recent == []
    assert earlier in events[0].plan.included  # now it is recalled, as a quoted memory


async def test_memory_off_sends_no_memories(memories: Memories, fake_ollama: FakeOllama) -> None:
    memories.add("My dog is called Biscuit.", session="s1")
    shell = make_shell(memories, fake_ollama)
    shell.use_memory = False
    events = await run(shell, "What is my dog called?")
    assert isinstance(events[0], Recalled) and events[0].hits == []
    assert "<memories>" not in sent_system(fake_ollama)


async def test_closing_the_turn_stops_generation_and_stores_nothing(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    fake_ollama.add(ScriptedModel("slow", reply="word " * 400, delay_s=0.01))
    shell = make_shell(memories, fake_ollama, model="slow")
    turn = shell.turn("Tell me a long story")
    async for event in turn:
        if isinstance(event, Piece):
            break
    await turn.aclose()
    assert await asyncio.to_thread(fake_ollama.disconnected.wait, 10)
    assert memories.count() == 0


async def test_cancelling_the_task_stops_generation_and_stores_nothing(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    fake_ollama.add(ScriptedModel("slow", reply="word " * 400, delay_s=0.01))
    shell = make_shell(memories, fake_ollama, model="slow")
    got_piece = asyncio.Event()

    async def consume() -> None:
        async for event in shell.turn("Tell me a long story"):
            if isinstance(event, Piece):
                got_piece.set()

    task = asyncio.create_task(consume())
    await got_piece.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake_ollama.disconnected.wait, 10)
    assert memories.count() == 0


async def test_server_dying_mid_reply_gives_back_question_and_partial(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    fake_ollama.add(ScriptedModel("flaky", reply="one two three four", die_after=2))
    shell = make_shell(memories, fake_ollama, model="flaky")
    seen: list[str] = []
    with pytest.raises(TurnFailed, match="broke in the middle of the reply") as failure:
        async for event in shell.turn("Count to four"):
            if isinstance(event, Piece):
                seen.append(event.text)
    assert seen == ["one ", "two "]
    assert failure.value.question == "Count to four"
    assert failure.value.partial == "one two "
    assert memories.count() == 0


async def test_missing_model_and_server_down(memories: Memories, dead_url: str) -> None:
    with (
        FakeOllama([ScriptedModel("llama3.2")]) as server,
        pytest.raises(TurnFailed, match="run `ollama pull qwen3`"),
    ):
        await run(make_shell(memories, server, model="qwen3"), "hello?")
    backend = OllamaBackend(dead_url, "llama3.2")
    shell = Shell(memories, backend, Settings(data_dir=memories.data_dir))
    with pytest.raises(TurnFailed, match="not answering"):
        await run(shell, "hello?")
    assert memories.count() == 0


async def test_a_question_beyond_the_context_is_refused_before_the_model(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    shell = make_shell(memories, fake_ollama, context_size=512, max_tokens=128)
    with pytest.raises(PromptTooLong, match="shorten it"):
        await run(shell, "please summarise this: " + "lorem ipsum " * 400)
    assert fake_ollama.posted("/api/chat") == []
    assert memories.count() == 0


async def test_huge_and_empty_questions_are_rejected(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    shell = make_shell(memories, fake_ollama)
    with pytest.raises(QuestionRejected, match="up to 1 MiB"):
        await run(shell, "x" * 10_000_000)
    with pytest.raises(QuestionRejected, match="empty"):
        await run(shell, "  \n")
    assert fake_ollama.posted("/api/chat") == []


async def test_switching_backend_mid_conversation(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    fake_ollama.add(ScriptedModel("qwen2.5:7b", reply="from qwen"))
    shell = make_shell(memories, fake_ollama)
    await run(shell, "first")
    shell.set_backend(OllamaBackend(fake_ollama.url, "qwen2.5:7b"))
    done = (await run(shell, "second"))[-1]
    assert isinstance(done, Done) and (done.model, done.answer) == ("qwen2.5:7b", "from qwen")
    assert fake_ollama.posted("/api/chat")[-1]["messages"][1]["content"] == "first"


async def test_reload_recent_drops_a_forgotten_turn_from_the_next_prompt(
    memories: Memories, fake_ollama: FakeOllama
) -> None:
    shell = make_shell(memories, fake_ollama)
    first = (await run(shell, "My locker code is 4411."))[-1]
    assert isinstance(first, Done)
    memories.forget(first.memory_id)
    events = await run(shell, "What was that?")  # the cached recent turns still hold it
    assert isinstance(events[0], Recalled) and events[0].plan.recent == [first.memory_id]
    memories.forget(events[-1].memory_id)  # type: ignore[union-attr]
    shell.reload_recent()
    events = await run(shell, "And now?")
    assert isinstance(events[0], Recalled) and events[0].plan.recent == []
    assert "4411" not in str(fake_ollama.posted("/api/chat")[-1]["messages"])
