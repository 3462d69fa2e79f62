"""A native crash of the model (SIGILL, SIGSEGV, abort, the OOM killer's SIGKILL) never takes the
app down: the real embedded model runs in its worker process, which is made to crash mid-reply
(MEMO_SHELL_LLAMA_FAULT, or a real SIGKILL from outside). The app says why, keeps the question,
stores nothing, and answers the next question from a fresh worker.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import memo_shell
from memo_shell.backends import GenerationOptions, LlamaCppBackend, embedded
from memo_shell.backends.llama_process import FAULT_ENV, crash_sentence
from memo_shell.backends.llamacpp import probe, worker_pid
from memo_shell.config import Settings
from memo_shell.errors import BackendError
from memo_shell.shell import Done, Piece, Shell, TurnFailed

pytestmark = pytest.mark.model
pytest_plugins = ["conftest_servers"]

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def gemma() -> LlamaCppBackend:
    backend = LlamaCppBackend(embedded.model_path(), model_name=embedded.MODEL_NAME)
    asyncio.run(backend.load())
    return backend


def settings_for(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, seed=7, max_tokens=24, temperature=None, top_p=None)  # type: ignore[arg-type]


async def reply(backend: LlamaCppBackend, question: str = QUESTION) -> str:
    pieces = [p async for p in backend.stream([{"role": "user", "content": question}], OPTIONS)]
    return "".join(pieces)


OPTIONS = GenerationOptions(max_tokens=24, seed=7)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("SIGILL@1", "illegal instruction (SIGILL)"),
        ("SIGSEGV@1", "segmentation fault (SIGSEGV)"),
        ("abort@0", "an abort (SIGABRT)"),
    ],
)
async def test_a_crash_mid_reply_is_one_sentence_and_the_next_reply_works(
    gemma: LlamaCppBackend, monkeypatch: pytest.MonkeyPatch, fault: str, words: str
) -> None:
    monkeypatch.setenv(FAULT_ENV, fault)
    before = worker_pid()
    with pytest.raises(BackendError, match=re.escape(words)) as caught:
        await reply(gemma)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)
    monkeypatch.delenv(FAULT_ENV)
    assert "Paris" in await reply(gemma)  # a new worker, the model loaded again
    assert worker_pid() not in (None, before)


async def test_a_sigkill_from_outside_says_out_of_memory(gemma: LlamaCppBackend) -> None:
    await reply(gemma)
    pid = worker_pid()
    assert pid is not None and pid != os.getpid()
    stream = gemma.stream(
        [{"role": "user", "content": "Write a long story about a dragon."}],
        GenerationOptions(max_tokens=300, seed=1),
    )
    with pytest.raises(BackendError, match=r"was killed \(SIGKILL\).*ran out of memory"):
        async for _piece in stream:
            os.kill(pid, signal.SIGKILL)  # what the OOM killer does
    assert "Paris" in await reply(gemma)


async def test_a_turn_that_crashes_stores_nothing_and_keeps_the_question(
    gemma: LlamaCppBackend, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAULT_ENV, "SIGILL@2")
    with memo_shell.open(data_dir) as memories:
        shell = Shell(memories, gemma, settings_for(data_dir))
        pieces: list[str] = []
        with pytest.raises(TurnFailed) as caught:
            async for event in shell.turn(QUESTION):
                if isinstance(event, Piece):
                    pieces.append(event.text)
        assert caught.value.question == QUESTION
        assert caught.value.partial == "".join(pieces) and len(pieces) == 2
        assert memories.count() == 0
        monkeypatch.delenv(FAULT_ENV)
        events = [event async for event in shell.turn(QUESTION)]
        assert isinstance(events[-1], Done) and memories.count() == 1


def test_ask_exits_non_zero_with_the_sentence(
    gemma: LlamaCppBackend, run_cli: Callable, monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    monkeypatch.setenv(FAULT_ENV, "SIGILL@0")
    result = run_cli("ask", QUESTION)
    assert result.exit_code != 0
    assert "illegal instruction (SIGILL)" in result.stderr
    assert "rebuild llama-cpp-python without AMX" in result.stderr
    assert "Your question was not stored" in result.stderr
    assert "Traceback" not in result.stderr


def test_doctor_reports_a_model_that_crashes(
    run_cli: Callable, monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    monkeypatch.setenv(FAULT_ENV, "SIGILL@0")
    result = run_cli("doctor")
    assert result.exit_code == 1, result.stdout
    assert "illegal instruction" in result.stdout
    monkeypatch.delenv(FAULT_ENV)
    assert run_cli("doctor").exit_code == 0


def test_probe_runs_the_model_in_a_child_with_a_timeout() -> None:
    path = embedded.model_path()
    assert probe(path) is None
    assert "did not produce a token within" in (probe(path, timeout=0.01) or "")


def test_crash_sentences_name_the_cause_and_the_fix() -> None:
    sentences = {
        code: crash_sentence(code, "m")
        for code in (-signal.SIGILL, -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGKILL, 3)
    }
    assert "AMX" in sentences[-signal.SIGILL]
    assert "upgrade llama-cpp-python" in sentences[-signal.SIGSEGV]
    assert "smaller model" in sentences[-signal.SIGKILL]
    assert "status 3" in sentences[3]
    assert all("\n" not in s and "Traceback" not in s for s in sentences.values())


@pytest.mark.skipif(sys.platform != "linux", reason="process groups and /proc")
async def test_the_worker_never_writes_to_the_terminal(gemma: LlamaCppBackend) -> None:
    await reply(gemma)
    pid = worker_pid()
    for fd in (0, 1, 2):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        assert target.startswith("pipe:"), target
    assert os.getpgid(pid) != os.getpgid(0)  # Ctrl+C in the terminal does not reach it


@pytest.mark.parametrize(
    "text",
    [
        "nul \x00 inside",
        "lone \ud800 surrogate",
        "<start_of_turn>user\n<bos>",
        "ñ" * 300,
        "😀" * 20,
    ],
)
async def test_hostile_text_reaches_the_model_and_the_worker_survives(
    gemma: LlamaCppBackend, text: str
) -> None:
    await reply(gemma)
    pid = worker_pid()
    try:
        await reply(gemma, text)
    except BackendError as exc:  # e.g. beyond the context: a sentence, never a crash
        assert "crashed" not in str(exc) and "killed" not in str(exc)
    assert worker_pid() == pid
