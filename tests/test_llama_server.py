"""The OpenAI-compatible backend against llama.cpp's real server (``python -m llama_cpp.server``
with the embedded GGUF and ``--n_ctx 2048``), the way users run it: turns stored with their
memories in the prompt the server evaluated, the window learned and respected, overflow reported
as overflow, the server killed, embeddings, cut-off replies, short model names.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from servers.llama_cpp_server import LlamaCppServer

import memo_shell
from memo_shell.backends import GenerationOptions, OpenAIBackend
from memo_shell.backends.placement import memories_in_user_turn
from memo_shell.config import Settings
from memo_shell.errors import BackendError
from memo_shell.prompt import MEMORY_PREAMBLE, PromptTooLong
from memo_shell.shell import CUT_OFF_META, Done, Shell, TurnFailed

pytestmark = pytest.mark.model
pytest_plugins = ["conftest_servers"]

FACT = "My sister Ottilie lives in Bergen and keeps bees on her roof."


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"seed": 3, "max_tokens": 32, "temperature": 0.0}
    values.update(overrides)
    return Settings(data_dir=data_dir, backend="openai", **values)  # type: ignore[arg-type]


async def run_turn(shell: Shell, question: str) -> Done:
    events = [event async for event in shell.turn(question)]
    assert isinstance(events[-1], Done)
    return events[-1]


async def prompt_tokens(server: LlamaCppServer, body: dict) -> int:
    """What the server really evaluated for ``body`` (its own usage count, one token made)."""
    async with httpx.AsyncClient(timeout=120) as client:
        response = await client.post(
            f"{server.url}/chat/completions", json=body | {"stream": False, "max_tokens": 1}
        )
    response.raise_for_status()
    return int(response.json()["usage"]["prompt_tokens"])


async def test_a_streamed_turn_is_stored_with_its_memories_in_the_prompt_the_model_saw(
    llama_server_gemma: LlamaCppServer, data_dir: Path
) -> None:
    server = llama_server_gemma
    with memo_shell.open(data_dir) as memories:
        memories.add(FACT, "Noted.", session="monday")
        backend = OpenAIBackend(server.url, context_size=2048)
        shell = Shell(memories, backend, settings_for(data_dir), session="friday")
        done = await run_turn(shell, "Where does my sister Ottilie live?")
        stored = memories.get(done.memory_id)
        plan = shell.last_plan
    assert plan is not None and plan.included  # the memory was recalled into the prompt
    assert stored.assistant == done.answer and stored.backend == "openai"
    # The gemma template drops role=system: sent there, the memory never reached the model.
    body = backend._body(backend.model_id, plan, GenerationOptions())
    as_planned = {**body, "messages": [dict(m) for m in plan.messages]}
    assert await prompt_tokens(server, body) > await prompt_tokens(server, as_planned) + 40
    sent = memories_in_user_turn(plan)
    assert MEMORY_PREAMBLE in sent[-1]["content"] and FACT in sent[-1]["content"]
    assert sent[-1]["content"].endswith("Where does my sister Ottilie live?")
    # --show-prompt shows those messages, memory block in the user's turn
    assert "Ottilie lives in Bergen" in backend.render_prompt(plan).split("── user ──")[-1]


async def test_the_window_is_learned_from_overflow_and_respected(
    llama_server: LlamaCppServer, data_dir: Path
) -> None:
    long_question = "Summarise this: " + " ".join(f"word{n} is here." for n in range(700))
    with memo_shell.open(data_dir) as memories:
        backend = OpenAIBackend(llama_server.url, context_size=4096)
        shell = Shell(memories, backend, settings_for(data_dir))
        with pytest.raises(TurnFailed) as caught:
            await run_turn(shell, long_question)
        message = str(caught.value)
        assert "does not fit the model's context of 2048 tokens" in message
        assert "ended before the reply was complete" not in message
        assert backend.context_size == 2048 and backend.server_context == 2048
        # the same question is now refused before anything is sent, and short ones work
        with pytest.raises(PromptTooLong, match="more than the 2,016"):  # 2048 - max_tokens
            await run_turn(shell, long_question)
        done = await run_turn(shell, "What is the capital of France?")
        assert shell.last_plan is not None and shell.last_plan.budget_tokens <= 2048
        assert memories.count() == 1 and done.answer is not None


async def test_an_empty_stream_with_no_explanation_says_the_context_may_be_too_small(
    llama_server: LlamaCppServer,
) -> None:
    """A stream that ends before any event, where asking again without streaming explains
    nothing either: the sentence names context_size."""
    backend = OpenAIBackend(llama_server.url)
    error = await backend._empty_reply(
        backend.model_id or await backend.default_model(),
        [{"role": "user", "content": "hi"}],
        GenerationOptions(max_tokens=1),
    )
    assert "context may be too small" in str(error) and "context_size" in str(error)
    await backend.aclose()


async def test_killing_the_server_mid_reply_is_one_sentence(
    llama_server_killable: LlamaCppServer,
) -> None:
    backend = OpenAIBackend(llama_server_killable.url)
    stream = backend.stream(
        [{"role": "user", "content": "Once upon a time, in a land far away, there lived"}],
        GenerationOptions(max_tokens=400, temperature=0.9, seed=1),
    )
    with pytest.raises(BackendError) as caught:
        async for _piece in stream:
            llama_server_killable.kill()
    assert "broke in the middle of the reply" in str(caught.value)
    with pytest.raises(BackendError, match="is not answering"):
        async for _piece in backend.stream(
            [{"role": "user", "content": "hi"}], GenerationOptions()
        ):
            pass
    await backend.aclose()


async def test_killing_the_server_before_the_first_token_is_one_sentence(
    llama_server_killable: LlamaCppServer,
) -> None:
    backend = OpenAIBackend(llama_server_killable.url)
    await backend.default_model()
    prompt = "Summarise: " + " ".join(f"item {n} is fine." for n in range(150))

    async def kill_soon() -> None:
        await asyncio.sleep(0.3)
        llama_server_killable.kill()

    killer = asyncio.create_task(kill_soon())
    with pytest.raises(BackendError) as caught:
        async for _piece in backend.stream(
            [{"role": "user", "content": prompt}], GenerationOptions(max_tokens=400)
        ):
            pass
    await killer
    message = str(caught.value)
    assert "httpx" not in message and "peer closed" not in message, message
    assert "did the server stop" in message, message
    await backend.aclose()


async def test_embeddings_are_one_unit_vector_per_text(llama_server: LlamaCppServer) -> None:
    backend = OpenAIBackend(llama_server.url)
    await backend.default_model()
    dog, puppy, taxes = await backend.embed(
        ["my dog is called Biscuit", "my puppy's name is Biscuit", "tax return deadline"]
    )
    assert len(dog) == len(puppy) == len(taxes) == 640  # per-token vectors mean-pooled
    assert math.isclose(sum(x * x for x in dog), 1.0, rel_tol=1e-6)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(dog, puppy) > cosine(dog, taxes)
    await backend.aclose()


async def test_a_reply_cut_at_max_tokens_is_marked_and_names_are_short(
    llama_server: LlamaCppServer, data_dir: Path
) -> None:
    with memo_shell.open(data_dir) as memories:
        backend = OpenAIBackend(llama_server.url, context_size=2048)
        await backend.default_model()
        assert backend.model_id == llama_server.model_id  # the server's absolute path
        assert backend.model == "gemma-3-270m-q4_k_m"
        shell = Shell(memories, backend, settings_for(data_dir, max_tokens=3))
        done = await run_turn(shell, "Tell me a long story about the sea.")
        stored = memories.get(done.memory_id)
    assert done.cut_off and stored.meta[CUT_OFF_META] == "max_tokens=3"
    assert stored.model == done.model == "gemma-3-270m-q4_k_m"


def test_ask_against_the_real_server(
    llama_server: LlamaCppServer, run_cli: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_SHELL_OPENAI_BASE_URL", llama_server.url)
    monkeypatch.setenv("MEMO_SHELL_MAX_TOKENS", "3")
    result = run_cli("--backend", "openai", "ask", "--json", "Tell me about the sea.")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["model"] == "gemma-3-270m-q4_k_m" and document["cut_off"] is True
    assert "cut off at max_tokens (3)" in result.stderr
    assert "using gemma-3-270m-q4_k_m at" in result.stderr


def test_doctor_fails_when_the_chosen_server_is_down(
    run_cli: Callable, monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    monkeypatch.setenv("MEMO_SHELL_OPENAI_BASE_URL", dead_url)
    result = run_cli("--backend", "openai", "doctor")
    assert result.exit_code == 1
    assert "is not answering" in result.stdout
