"""The app survives a native crash of the model: the real embedded model's worker process dies
mid-reply (simulated SIGILL, as on CPUs where llama.cpp's AMX code cannot run); the app shows
one sentence with the cause and the fix, puts the question back, stores nothing, and answers
the next question from a fresh worker."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from tui_helpers import make_app, notes, settle

from memo_shell.backends import LlamaCppBackend, embedded
from memo_shell.backends.llama_process import FAULT_ENV
from memo_shell.tui.widgets.chat_log import TurnView
from memo_shell.tui.widgets.composer import Composer

pytestmark = pytest.mark.model

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def gemma() -> LlamaCppBackend:
    backend = LlamaCppBackend(embedded.model_path(), model_name=embedded.MODEL_NAME)
    asyncio.run(backend.load())
    return backend


async def ask(pilot, question: str) -> None:
    composer = pilot.app.screen.query_one(Composer)
    composer.focus()
    composer.load_text(question)
    await pilot.press("enter")
    await settle(pilot, timeout=90)


async def test_a_model_crash_mid_reply_keeps_the_app_and_the_question(
    settings, memories, gemma: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = replace(settings, backend="llama-cpp", max_tokens=24, seed=7)
    monkeypatch.setenv(FAULT_ENV, "SIGILL@1")
    app = make_app(settings, memories, backend=gemma)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await ask(pilot, QUESTION)
        turn = pilot.app.screen.query(TurnView).last()
        assert turn.has_class("failed")
        assert pilot.app.screen.query_one(Composer).text == QUESTION
        messages = notes(app).splitlines()
        assert any("illegal instruction (SIGILL)" in m and "AMX" in m for m in messages)
        assert memories.count() == 0
        monkeypatch.delenv(FAULT_ENV)
        await ask(pilot, QUESTION)
        last = pilot.app.screen.query(TurnView).last()
        assert not last.has_class("failed") and "Paris" in last.answer
        assert memories.count() == 1


async def test_a_model_killed_while_loading_is_loaded_again_on_the_next_question(
    settings, memories, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the OOM killer does to a model too big for the machine: the app starts anyway,
    says why, and the next question tries again in a fresh worker."""
    # chosen by the app itself, with a context size no other test loads (so it really loads)
    settings = replace(
        settings, backend="llama-cpp", model=None, max_tokens=24, seed=7, context_size=1536
    )
    monkeypatch.setenv(FAULT_ENV, "SIGKILL@load")
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot, timeout=90)
        messages = notes(app).splitlines()
        assert any("was killed (SIGKILL)" in m and "out of memory" in m for m in messages), messages
        monkeypatch.delenv(FAULT_ENV)
        await ask(pilot, QUESTION)
        last = pilot.app.screen.query(TurnView).last()
        assert not last.has_class("failed") and "Paris" in last.answer
