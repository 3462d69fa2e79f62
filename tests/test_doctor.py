"""``memo-shell doctor``: what answers, which models, where things live; exit 1 if nothing can."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from servers import FakeOllama

from memo_shell.backends import embedded

pytest_plugins = ["conftest_servers"]


def test_reports_backends_models_and_places(
    run_cli: Callable, data_dir: Path, fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    assert run_cli("mem", "add", "-u", "a first memory").exit_code == 0
    result = run_cli("doctor", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    ollama, local = report["backends"][:2]
    assert ollama["ok"] and ollama["where"] == fake_ollama.url
    assert [m["name"] for m in ollama["models"]] == ["llama3.2:latest"]
    assert local["backend"] == "llama-cpp" and local["ok"]
    assert report["chosen"].startswith(f"auto: Ollama 0.6.5 answered at {fake_ollama.url}")
    assert report["data_dir"] == str(data_dir)
    assert report["memories"] == 1 and report["index_state"] == "ready"
    assert report["free_bytes"] > 0 and report["config_exists"] is False


def test_human_output(run_cli: Callable, dead_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    result = run_cli("doctor")
    assert result.exit_code == 0
    assert f"Ollama is not answering at {dead_url}" in result.stdout
    assert "using the embedded Gemma 3 270M" in result.stdout
    assert "free disk:" in result.stdout


def test_exit_status_1_when_nothing_can_answer(
    run_cli: Callable, dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    monkeypatch.setattr(embedded, "available", lambda: False)
    result = run_cli("doctor", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert all(not entry["ok"] for entry in report["backends"])
    assert "not installed" in report["backends"][1]["detail"]
