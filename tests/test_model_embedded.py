"""The real embedded model (Gemma 3 270M through llama.cpp), loaded once for the whole session.

Few tests, each asserting on what the model really did: the reply streamed in pieces, the turn
was stored, a fact from an earlier session reached a later prompt, Esc stopped generation.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

import memo_shell
from memo_shell.backends import GenerationOptions, LlamaCppBackend, embedded, estimate_tokens
from memo_shell.backends.llamacpp import wait_idle
from memo_shell.config import Settings
from memo_shell.errors import BackendError
from memo_shell.shell import Done, Piece, Recalled, Shell

pytestmark = pytest.mark.model
pytest_plugins = ["conftest_servers"]

CONTEXT = 4096


@pytest.fixture(scope="session")
def gemma() -> LlamaCppBackend:
    backend = LlamaCppBackend(
        embedded.model_path(), model_name=embedded.MODEL_NAME, context_size=CONTEXT
    )
    asyncio.run(backend.load())
    return backend


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"temperature": None, "top_p": None, "seed": 7, "max_tokens": 48}
    values.update(overrides)
    return Settings(data_dir=data_dir, context_size=CONTEXT, **values)  # type: ignore[arg-type]


async def turn(shell: Shell, question: str) -> tuple[Recalled, list[str], Done]:
    events = [event async for event in shell.turn(question)]
    recalled, done = events[0], events[-1]
    assert isinstance(recalled, Recalled) and isinstance(done, Done)
    return recalled, [e.text for e in events if isinstance(e, Piece)], done


async def test_reply_streams_in_pieces_and_is_stored(
    gemma: LlamaCppBackend, data_dir: Path
) -> None:
    with memo_shell.open(data_dir) as memories:
        shell = Shell(memories, gemma, settings_for(data_dir))
        _, pieces, done = await turn(shell, "What is the capital of France?")
        stored = memories.get(done.memory_id)
    assert len(pieces) > 1
    assert done.answer == "".join(pieces) == stored.assistant
    assert "Paris" in done.answer
    assert (stored.backend, stored.model) == ("llama-cpp", "gemma3-270m")


async def test_a_fact_from_an_earlier_session_reaches_a_later_prompt(
    gemma: LlamaCppBackend, data_dir: Path
) -> None:
    with memo_shell.open(data_dir) as memories:
        monday = Shell(memories, gemma, settings_for(data_dir), session="monday")
        _, _, told = await turn(monday, "My sister Ottilie lives in Bergen.")

    with memo_shell.open(data_dir) as memories:  # a later run of the program
        friday = Shell(memories, gemma, settings_for(data_dir), session="friday")
        recalled, _, done = await turn(friday, "Where does my sister Ottilie live?")

    assert told.memory_id in recalled.plan.included
    exact = gemma.render_prompt(recalled.plan)
    assert exact is not None
    notes = exact.index("Notes from earlier conversations")
    assert notes < exact.index("> User: My sister Ottilie lives in Bergen.")
    assert exact.endswith("Q: Where does my sister Ottilie live?\nA:")
    print(f"answer with the note in the prompt: {done.answer!r}")


async def test_closing_the_turn_stops_generation_within_a_few_tokens(
    gemma: LlamaCppBackend, data_dir: Path
) -> None:
    with memo_shell.open(data_dir) as memories:
        shell = Shell(memories, gemma, settings_for(data_dir, max_tokens=400, temperature=0.9))
        stream = shell.turn("Write a very long story about a dragon who learns to cook.")
        async for event in stream:
            if isinstance(event, Piece):
                break
        await stream.aclose()
        await wait_idle()  # the worker has stopped and reported how far it went
        assert shell.last_plan is not None
        prompt = gemma.render_prompt(shell.last_plan) or ""
        prompt_tokens = gemma.count_tokens(prompt) + 1  # and the BOS token
        assert gemma.last_finish == "cancelled"
        assert gemma.last_generated - prompt_tokens < 10  # generated after the close: one or two
        assert memories.count() == 0


async def test_exact_token_counts_and_context_overflow(gemma: LlamaCppBackend) -> None:
    sample = "Memories are quoted as data, never as instructions, inside a token budget."
    exact = gemma.count_tokens(sample)
    assert 10 < exact <= estimate_tokens(sample)  # the servers' estimate errs on the safe side
    flood = [{"role": "user", "content": "lorem ipsum dolor " * 2000}]
    with pytest.raises(BackendError, match="does not fit gemma3-270m's context of 4096 tokens"):
        async for _ in gemma.stream(flood, GenerationOptions()):
            pass


def test_ask_with_the_embedded_model(
    gemma: LlamaCppBackend, run_cli: Callable, monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    result = run_cli("ask", "--json", "What is two plus two?")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["backend"], document["model"]) == ("llama-cpp", "gemma3-270m")
    assert document["answer"]
    assert "using the embedded Gemma 3 270M" in result.stderr


async def test_embeddings_from_the_same_file(gemma: LlamaCppBackend) -> None:
    texts = ["my dog is called Biscuit", "my puppy's name is Biscuit", "tax return deadline"]
    dog, puppy, taxes = await gemma.embed(texts)
    again = (await gemma.embed(texts[:1]))[0]

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert len(dog) == 640 and abs(cosine(dog, dog) - 1) < 1e-6
    assert cosine(dog, again) > 0.999
    assert cosine(dog, puppy) > cosine(dog, taxes)
