"""The ``embedder`` setting, turned into what the index needs: a synchronous ``embed(texts)``.

The index embeds from its own threads, while backends are async. Rather than a second, sync
copy of every client (and of its error handling), one small event loop runs in a daemon thread
and the backend's ``embed`` runs there; the calling thread waits for the result.

Spec strings (the ``embedder`` setting):

* ``ollama:MODEL`` — e.g. ``ollama:nomic-embed-text`` (host: ``ollama_host``/OLLAMA_HOST)
* ``openai:MODEL`` — the server at ``openai_base_url``
* ``llama-cpp:FILE.gguf`` — in-process, mean-pooled; ``embedded`` for the Gemma 3 270M itself
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from memo_shell.backends import embedded
from memo_shell.backends.base import Backend
from memo_shell.backends.llamacpp import LlamaCppBackend
from memo_shell.backends.ollama import OllamaBackend
from memo_shell.backends.openai import OpenAIBackend
from memo_shell.errors import BackendError

if TYPE_CHECKING:
    from memo_shell.config import Settings

#: Longest wait for one batch of embeddings before the index is told it failed.
EMBED_TIMEOUT_S = 120.0
#: Longest a question's recall waits for its vector; then it goes on without vectors.
QUERY_TIMEOUT_S = 5.0
#: Texts per request in background embedding, so a question's embedding (sent between two
#: requests) never waits behind a whole backlog on a server that answers one at a time.
BACKFILL_CHUNK = 8


class BackendEmbedder:
    """A backend's ``embed`` behind the index's synchronous Embedder protocol.

    ``id`` is the spec string: vectors made by different models live in different spaces, and
    the index keeps them apart by this name.
    """

    def __init__(self, spec: str, backend: Backend) -> None:
        self.id = spec
        self.backend = backend
        self._loop = asyncio.new_event_loop()
        self._queries = 0  # question embeddings in flight (touched on the loop only)
        self._no_queries = asyncio.Event()
        self._no_queries.set()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="memo-embedder", daemon=True
        )
        self._thread.start()

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Vectors for ``texts`` (raises BackendError when the backend cannot embed).

        Sent in small requests; a question's embedding waiting to go out goes first."""
        future = asyncio.run_coroutine_threadsafe(self._backfill(list(texts)), self._loop)
        try:
            return future.result(EMBED_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise BackendError(
                f"the embedder {self.id} gave no vectors within {EMBED_TIMEOUT_S:.0f} s"
            ) from None

    def embed_query(self, text: str) -> list[float]:
        """The vector of a question, within QUERY_TIMEOUT_S (BackendError after that, so recall
        goes on without vectors instead of waiting on a busy embedding server)."""
        future = asyncio.run_coroutine_threadsafe(self._query(text), self._loop)
        try:
            return future.result(QUERY_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise BackendError(
                f"the embedder {self.id} gave no vector for the question within"
                f" {QUERY_TIMEOUT_S:g} s; this recall goes on without vectors"
            ) from None

    async def _query(self, text: str) -> list[float]:
        self._queries += 1
        self._no_queries.clear()
        try:
            return (await self.backend.embed([text]))[0]
        finally:
            self._queries -= 1
            if not self._queries:
                self._no_queries.set()

    async def _backfill(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BACKFILL_CHUNK):
            await self._no_queries.wait()  # questions first
            vectors += await self.backend.embed(texts[start : start + BACKFILL_CHUNK])
        return vectors

    def close(self) -> None:
        if not self._loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(self.backend.aclose(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def make_embedder(settings: Settings) -> BackendEmbedder | None:
    """The embedder the ``embedder`` setting names, or None when it is unset (no vectors)."""
    spec = (settings.embedder or "").strip()
    if not spec:
        return None
    kind, _, name = spec.partition(":")
    if spec == "embedded":
        backend: Backend = LlamaCppBackend(embedded.model_path(), model_name=embedded.MODEL_NAME)
    elif kind == "ollama" and name:
        backend = OllamaBackend(settings.ollama_host, name, embed_model=name)
    elif kind == "openai" and name and settings.openai_base_url:
        backend = OpenAIBackend(settings.openai_base_url, name, api_key=settings.openai_api_key)
    elif kind == "llama-cpp" and name:
        backend = LlamaCppBackend(Path(name))
    else:
        raise BackendError(
            f"embedder {spec!r} is not one of ollama:MODEL, openai:MODEL (with openai_base_url),"
            " llama-cpp:FILE.gguf or embedded"
        )
    return BackendEmbedder(spec, backend)
