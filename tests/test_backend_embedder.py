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


class SlowEmbedder:
    """A backend whose every embedding request takes ``delay`` seconds (one at a time, like
    llama_cpp.server), recording what it was asked, in order."""

    name = "slow"
    model = "slow"

    def __init__(self, delay: float) -> None:
        import asyncio

        self.delay = delay
        self.calls: list[list[str]] = []
        self._busy = asyncio.Lock()

    async def embed(self, texts: list[str]) -> list[list[float]]:
        import asyncio

        async with self._busy:
            self.calls.append(list(texts))
            await asyncio.sleep(self.delay)
            return [[float(len(t)), 1.0] for t in texts]

    async def aclose(self) -> None:
        pass


def test_a_question_never_waits_behind_a_background_backlog() -> None:
    import time

    from memo_shell.backends.embedder import BACKFILL_CHUNK, BackendEmbedder

    backend = SlowEmbedder(0.1)
    embedder = BackendEmbedder("slow", backend)  # type: ignore[arg-type]
    backlog = [f"memory {n}" for n in range(BACKFILL_CHUNK * 6)]
    done: list[list[list[float]]] = []
    thread = threading.Thread(target=lambda: done.append(embedder.embed(backlog)))
    thread.start()
    time.sleep(0.15)  # the backlog is under way
    started = time.perf_counter()
    assert embedder.embed_query("what is my dog called?") == [22.0, 1.0]
    waited = time.perf_counter() - started
    thread.join(10)
    assert len(done[0]) == len(backlog)  # the backlog completes, in order
    assert [v[0] for v in done[0]] == [float(len(t)) for t in backlog]
    assert waited < 0.35  # at most the one request in flight, not the 0.6 s backlog
    position = backend.calls.index(["what is my dog called?"])
    assert position < len(backend.calls) - 2
    embedder.close()


def test_a_slow_question_embedding_gives_up_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    from memo_shell.backends import embedder as module

    monkeypatch.setattr(module, "QUERY_TIMEOUT_S", 0.2)
    embedder = module.BackendEmbedder("slow", SlowEmbedder(5.0))  # type: ignore[arg-type]
    with pytest.raises(BackendError, match=r"no vector for the question within 0\.2 s"):
        embedder.embed_query("hello")
    embedder.close()


def test_the_surfaces_wire_the_configured_embedder_and_close_it(
    fake_ollama: FakeOllama, tmp_path
) -> None:
    """The library builds no backends: ``open_memories`` (what the CLI, TUI, MCP server and
    proxy call) gives the handle the ``embedder`` setting's vectors, and closing the handle
    closes the embedder."""
    from memo_shell.api import Memories
    from memo_shell.cli.context import CliContext
    from memo_shell.wiring import open_memories

    settings = Settings(
        data_dir=tmp_path, ollama_host=fake_ollama.url, embedder="ollama:nomic-embed-text"
    )
    with Memories(settings=settings) as bare:
        assert bare.index.embedder is None  # Settings alone name the directory, nothing more
    memories = open_memories(settings)
    embedder = memories.index.embedder
    assert embedder is not None and embedder.id == "ollama:nomic-embed-text"
    memories.add("my dog is called Rex", "noted")
    assert memories.recall("what is my dog called?")
    memories.close()
    assert not embedder._thread.is_alive()  # type: ignore[attr-defined]
    with CliContext(settings).open_memories(preload=True) as memories:
        assert memories.index.embedder is not None


def test_without_an_embedder_opening_the_store_imports_no_backend(tmp_path) -> None:
    """Short CLI commands (``mem list``) open the store this way: the model clients' imports
    are paid only when an embedder is configured."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from memo_shell.config import Settings\n"
        "from memo_shell.wiring import open_memories\n"
        f"open_memories(Settings(data_dir={str(tmp_path)!r}), preload=False).close()\n"
        "assert 'memo_shell.backends' not in sys.modules, 'backends imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
