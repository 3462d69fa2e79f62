"""``memo-shell ask``: one turn from the command line, against a loopback Ollama server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import FakeOllama, ScriptedModel

import memo_shell

pytest_plugins = ["conftest_servers"]

OLLAMA = ("--backend", "ollama", "--model", "llama3.2")


@pytest.fixture(autouse=True)
def _point_at(fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMO_SHELL_OLLAMA_HOST", fake_ollama.url)


def stored(data_dir: Path) -> list[memo_shell.Memory]:
    with memo_shell.open(data_dir) as memories:
        return list(memories.iter_memories())


def test_answer_streams_to_stdout_and_the_turn_is_stored(
    run_cli: Callable, data_dir: Path, fake_ollama: FakeOllama
) -> None:
    fake_ollama.models["llama3.2:latest"].reply = "Hello there."
    result = run_cli("ask", *OLLAMA, "Say hello")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hello there.\n"
    assert "--backend ollama: using llama3.2" in result.stderr
    [memory] = stored(data_dir)
    assert (memory.user, memory.assistant, memory.session) == (
        "Say hello",
        "Hello there.",
        "default",
    )


def test_json_document_and_recall_across_sessions(
    run_cli: Callable, data_dir: Path, fake_ollama: FakeOllama
) -> None:
    first = run_cli("ask", *OLLAMA, "--json", "-s", "monday", "My cat is called Miso.")
    first_id = json.loads(first.stdout)["id"]
    fake_ollama.models["llama3.2:latest"].reply = "Miso."
    result = run_cli("ask", *OLLAMA, "--json", "-s", "friday", "What is my cat called?")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"answer", "id", "backend", "model", "recalled", "recent"}
    assert document["answer"] == "Miso."
    assert (document["backend"], document["model"]) == ("ollama", "llama3.2")
    assert document["recalled"] == [first_id]
    assert "My cat is called Miso." in fake_ollama.posted("/api/chat")[-1]["messages"][0]["content"]


def test_show_prompt_and_no_memory(run_cli: Callable, fake_ollama: FakeOllama) -> None:
    run_cli("ask", *OLLAMA, "-s", "a", "My cat is called Miso.")
    shown = run_cli("ask", *OLLAMA, "-s", "b", "--show-prompt", "What is my cat called?")
    assert "── system ──" in shown.stderr and "> User: My cat is called Miso." in shown.stderr
    assert shown.stdout.strip() == "Hello from the loopback server."
    blind = run_cli("ask", *OLLAMA, "-s", "c", "--no-memory", "--json", "What is my cat called?")
    assert json.loads(blind.stdout)["recalled"] == []
    assert "Miso" not in fake_ollama.posted("/api/chat")[-1]["messages"][0]["content"]


def test_question_from_stdin(run_cli: Callable, data_dir: Path) -> None:
    result = run_cli("ask", *OLLAMA, "-", input="What is\na multi-line question?\n")
    assert result.exit_code == 0, result.stderr
    assert stored(data_dir)[0].user == "What is\na multi-line question?"


def test_ten_megabytes_on_stdin_is_refused_without_reading_it_all(
    run_cli: Callable, data_dir: Path, fake_ollama: FakeOllama
) -> None:
    result = run_cli("ask", *OLLAMA, "-", input=b"a" * 10_000_000)
    assert result.exit_code == 1
    assert "larger than 1 MiB" in result.stderr and "nothing was stored" in result.stderr
    assert "Traceback" not in result.stderr
    assert fake_ollama.posted("/api/chat") == []
    assert stored(data_dir) == []


def test_server_down_is_one_message_and_the_question_is_given_back(
    run_cli: Callable, data_dir: Path, dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMO_SHELL_OLLAMA_HOST", dead_url)
    result = run_cli("ask", *OLLAMA, "-", input="Where did I park?")
    assert result.exit_code == 1
    assert f"Ollama is not answering at {dead_url}; is it running?" in result.stderr
    assert "here it is for a retry:\nWhere did I park?" in result.stderr
    assert "Traceback" not in result.stderr
    assert stored(data_dir) == []


def test_missing_model_suggests_the_pull(run_cli: Callable) -> None:
    result = run_cli("ask", "--backend", "ollama", "--model", "phi4", "hello")
    assert result.exit_code == 1
    assert "run `ollama pull phi4`" in result.stderr
    assert "Your question was not stored; run the same command again to retry." in result.stderr


def test_server_dying_mid_reply(run_cli: Callable, data_dir: Path, fake_ollama: FakeOllama) -> None:
    fake_ollama.add(ScriptedModel("flaky", reply="one two three", die_after=2))
    result = run_cli("ask", "--backend", "ollama", "--model", "flaky", "count")
    assert result.exit_code == 1
    assert result.stdout == "one two \n"  # what arrived, then the line is ended
    assert "broke in the middle of the reply" in result.stderr
    assert stored(data_dir) == []


def test_server_dying_mid_reply_with_json_is_one_error_document(
    run_cli: Callable, data_dir: Path, fake_ollama: FakeOllama
) -> None:
    """The half answer a failed turn carries is not mistaken for partial results."""
    fake_ollama.add(ScriptedModel("flaky", reply="one two three", die_after=2))
    result = run_cli("ask", "--backend", "ollama", "--model", "flaky", "--json", "count")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert "broke in the middle of the reply" in doc["error"]["message"]
    assert "Traceback" not in result.stderr
    assert stored(data_dir) == []


def test_context_overflow(run_cli: Callable, data_dir: Path, fake_ollama: FakeOllama) -> None:
    result = run_cli("ask", *OLLAMA, "-", input="summarise: " + "lorem ipsum " * 3000)
    assert result.exit_code == 1
    assert "more than the" in result.stderr and "shorten it" in result.stderr
    assert fake_ollama.posted("/api/chat") == []
    assert stored(data_dir) == []


def test_a_reply_cut_off_at_max_tokens_is_marked_and_said(
    run_cli: Callable, data_dir: Path, fake_ollama: FakeOllama
) -> None:
    fake_ollama.add(ScriptedModel("llama3.2:latest", reply="Once upon a", finish="length"))
    result = run_cli("ask", *OLLAMA, "--json", "Tell me a story.")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["cut_off"] is True
    assert "cut off at max_tokens (512)" in result.stderr
    [memory] = stored(data_dir)
    assert memory.meta["cut_off"] == "max_tokens=512"


def test_show_prompt_shows_what_an_openai_server_receives(
    run_cli: Callable, fake_openai, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memo_shell.prompt import MEMORY_PREAMBLE

    monkeypatch.setenv("MEMO_SHELL_OPENAI_BASE_URL", fake_openai.base_url)
    server = ("--backend", "openai")
    assert run_cli("ask", *server, "-s", "monday", "My cat is called Miso.").exit_code == 0
    result = run_cli("ask", *server, "--show-prompt", "-s", "friday", "What is my cat called?")
    assert result.exit_code == 0, result.stderr
    exact = result.stderr.split("── exact text sent to")[1]
    system, user = exact.split("── user ──")
    assert MEMORY_PREAMBLE not in system
    assert MEMORY_PREAMBLE in user and "My cat is called Miso." in user
    sent = fake_openai.posted("/v1/chat/completions")[-1]["messages"]
    assert "My cat is called Miso." in sent[-1]["content"]
    assert all(MEMORY_PREAMBLE not in m["content"] for m in sent if m["role"] == "system")
