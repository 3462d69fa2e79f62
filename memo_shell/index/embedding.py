"""Background embedding of memories, so adding one never waits for a model.

``add`` costs microseconds; the memory's text is queued and a worker thread embeds queued memories
in batches (one model call per batch), then stores the vectors under the index lock. Memories met
at load time without a vector (new files, or a newly configured embedder) are queued the same way,
their text read from the record file. A failing embedder is reported once and the worker stops:
recall continues lexical + graph, which is the documented degradation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

#: Memories per model call: big enough to amortise the call, small enough to stay responsive.
BATCH = 32


class Embedder(Protocol):
    """Anything that turns texts into vectors; ``id`` names the model (its vector space)."""

    id: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


class EmbeddingQueue:
    """Memory ids waiting for a vector, and the daemon thread that works through them."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        read_text: Callable[[str], str | None],
        store_vectors: Callable[[list[str], list[list[float]]], None],
        notice: Callable[[str], None],
    ) -> None:
        self.embedder = embedder
        self._read_text = read_text
        self._store = store_vectors
        self._notice = notice
        self._queue: OrderedDict[str, str | None] = OrderedDict()  # id -> text if known
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = False
        self.failed = False
        self.closed = False

    def put(self, memory_id: str, text: str | None = None) -> None:
        self.put_many([(memory_id, text)])

    def put_many(self, items: Iterable[tuple[str, str | None]]) -> None:
        if self.failed or self.closed:
            return
        with self._cond:
            for memory_id, text in items:
                self._queue[memory_id] = text
            if self._queue and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memo-embed", daemon=True)
                self._thread.start()
            self._cond.notify()

    def discard(self, memory_id: str) -> None:
        with self._cond:
            self._queue.pop(memory_id, None)

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued memory has been embedded (tests and benchmarks)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (not self._queue and not self._busy) or self.failed or self.closed,
                timeout,
            )

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def _next_batch(self) -> list[tuple[str, str | None]]:
        with self._cond:
            while not self._queue and not self.closed:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait()
            if self.closed:
                self._busy = False
                self._cond.notify_all()
                return []
            self._busy = True
            batch: list[tuple[str, str | None]] = []
            while self._queue and len(batch) < BATCH:
                batch.append(self._queue.popitem(last=False))
            return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if not batch:
                return
            ids, texts = [], []
            for memory_id, text in batch:
                text = text if text is not None else self._read_text(memory_id)
                if text is not None:
                    ids.append(memory_id)
                    texts.append(text[:8000])
            if not ids:
                continue
            try:
                vectors: Any = self.embedder.embed(texts)
                self._store(ids, [list(v) for v in vectors])
            except Exception as exc:  # the model is down or broken: degrade, say so once
                self.failed = True
                self._notice(
                    f"embedding model {self.embedder.id} failed ({exc}); "
                    "recall continues without vectors"
                )
                with self._cond:
                    self._queue.clear()
                    self._busy = False
                    self._cond.notify_all()
                return
