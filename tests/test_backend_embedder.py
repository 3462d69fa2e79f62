"""The ``embedder`` setting: a backend's async ``embed`` behind the index's sync protocol."""

from __future__ import annotations

import threading

import pytest
from servers import FakeOllama, FakeOpenAI, ScriptedModel

from memo_shell.backends.embedder import make_embedder
from memo_shell.config import Settings
from memo_shell.errors import BackendError

pytest_plugins = ["conftest_servers"]


def test_unset_means_no_vectors() -> None:
    assert make_embedder(Settings()) is None


def test_ollama_embedder_works_from_any_thread(fake_ollama: FakeOllama) -> None:
    fake_ollama.add(ScriptedModel("nomic-embed-text", family="nomic-bert", dims=6))
    embedder = make_embedder(
        Settings(ollama_host=fake_ollama.url, embedder="ollama:nomic-embed-text")
    )
    assert embedder is not None and embedder.id == "ollama:nomic-embed-text"
    results: list[list[list[float]]] = []
    workers = [
        threading.Thread(target=lambda: results.append(embedder.embed(["a", "b"])))
        for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert len(results) == 3 and all(r == results[0] for r in results)
    assert len(results[0]) == 2 and len(results[0][0]) == 6
    embedder.close()


def test_openai_embedder(fake_openai: FakeOpenAI) -> None:
    embedder = make_embedder(
        Settings(openai_base_url=fake_openai.base_url, embedder="openai:qwen2.5-7b-instruct")
    )
    assert embedder is not None
    assert len(embedder.embed(["x"])[0]) == 8
    embedder.close()


def test_failures_are_backend_errors(dead_url: str) -> None:
    embedder = make_embedder(Settings(ollama_host=dead_url, embedder="ollama:nomic-embed-text"))
    assert embedder is not None
    with pytest.raises(BackendError, match="not answering"):
        embedder.embed(["x"])
    embedder.close()
    with pytest.raises(BackendError, match="is not one of"):
        make_embedder(Settings(embedder="word2vec"))
