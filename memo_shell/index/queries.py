"""What the index answers, in the caller's thread: search, stats, and the TUI's listings
(sessions, ids, meta, entities and their graph).

Each query first brings the data up to date (``_ready_data``): it waits for the load, applies
this process's deferred changes, tails the change log, and checks the files awaited or changed
behind its back; then it reads under the lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memo_shell.index.base import IndexBase
from memo_shell.index.ops import Remove
from memo_shell.index.schema import EntityInfo, IndexHit, MemoryMeta, SessionInfo
from memo_shell.lazy import lazy

np = lazy("numpy")
graph = lazy("memo_shell.index.graph")

if TYPE_CHECKING:
    import networkx as nx

    from memo_shell.index.data import IndexData

#: How a caller ranks what the index holds: ``(data, query_vector or None) -> hits, best first``.
Ranking = Callable[["IndexData", "list[float] | None"], list[IndexHit]]


class QueriesMixin(IndexBase):
    """Search and listings over the loaded data (see the module doc)."""

    def _ready_data(self) -> IndexData:
        self.wait_ready()
        with self._lock:
            self._apply_deferred()
        self._tail()
        if self._awaiting:
            self._check_awaiting()
        self._watch()
        self._maybe_rescan()
        assert self._data is not None
        return self._data

    def search(self, rank: Ranking, query: str, *, vectors: bool = True) -> list[IndexHit]:
        """What ``rank`` finds for ``query`` in the loaded data, best first.

        The index holds the data and does not rank: the caller passes the ranking (recall's,
        through ``Memories``), which gets the data and the query's vector (with ``vectors`` and
        a working embedder; else None). Hits whose file has gone are dropped.
        """
        if not isinstance(query, str):
            return []
        data = self._ready_data()
        self.last_query_embed_seconds = 0.0
        query_vector = self._embed_query(query) if vectors else None
        for _attempt in range(3):
            with self._lock:
                hits = rank(data, query_vector)
            # a sync tool or a file manager may have deleted a record behind our back: one stat
            # per hit finds it, and the stale entry is dropped before anyone sees it
            gone = [h.id for h in hits if not self.store.exists(h.id)]
            if not gone:
                return hits
            with self._lock:
                for memory_id in gone:
                    self._apply_op(data, Remove(memory_id))
                    self._dirty += 1
                    self._forgotten += 1
            self._schedule_scrub()
        return [h for h in hits if h.id not in gone]

    def _embed_query(self, query: str) -> list[float] | None:
        """The query's vector (timed apart from ranking), or None without a working embedder."""
        self.last_query_embed_seconds = 0.0
        queue = self._embedding
        if queue is None or queue.failed or not query.strip():
            return None
        started = time.perf_counter()
        try:
            # an embedder with its own (short, prioritised) path for questions uses it
            embed_query = getattr(queue.embedder, "embed_query", None)
            if embed_query is not None:
                vector = list(embed_query(query[:8000]))
            else:
                vector = list(queue.embedder.embed([query[:8000]])[0])
        except Exception as exc:
            self._notice(f"embedding model {queue.embedder.id} failed on a query ({exc})")
            return None
        finally:
            self.last_query_embed_seconds = time.perf_counter() - started
        return vector

    def stats(self) -> dict[str, Any]:
        """Counts for `memo-shell stats` and the TUI status bar (cheap, no file reads)."""
        out: dict[str, Any] = {"state": self._state.value, "bytes_on_disk": self._bytes_on_disk()}
        with self._lock:
            self._apply_deferred()
            data = self._data
            if data is None:
                out.update(memories=None, sessions=None, pinned=None, entities=None, edges=None)
                return out
            cat = data.catalog
            alive = cat.alive.view
            out.update(
                memories=len(cat),
                sessions=len(set(cat.session.view[alive].tolist())),
                pinned=int((cat.pinned.view & alive).sum()),
                entities=int(graph.valid(data, np.flatnonzero(data.graph.df.view > 0)).sum()),
                edges=int(data.graph.df.view.sum()),
                terms=int((data.lexical.df.view > 0).sum()),
                embedder=self.embedder.id if self.embedder else None,
                vectors=int(data.vectors.has.view.sum()) if data.vectors is not None else 0,
                notices=list(self.notices),
            )
        return out

    def _bytes_on_disk(self) -> int:
        total = 0
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.directory):
                with contextlib.suppress(OSError):
                    total += entry.stat(follow_symlinks=False).st_size
        return total

    # ------------------------------------------------------------------ for the TUI

    def sessions(self) -> list[SessionInfo]:
        """Every session with its count and date range, most recently active first."""
        data = self._ready_data()
        with self._lock:
            return data.catalog.sessions()

    def ids(
        self,
        *,
        session: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        pinned: bool | None = None,
        newest_first: bool = True,
    ) -> list[str]:
        """Memory ids matching every given filter, in time order (metadata only)."""
        data = self._ready_data()
        with self._lock:
            return data.catalog.select(
                session=session, since=since, until=until, pinned=pinned, newest_first=newest_first
            )

    def meta(self, memory_id: str) -> MemoryMeta | None:
        data = self._ready_data()
        with self._lock:
            return data.catalog.meta(memory_id)

    def entities(self, limit: int | None = None) -> list[EntityInfo]:
        """Entities by how many memories mention them, most first."""
        data = self._ready_data()
        with self._lock:
            return graph.top_entities(data, limit)

    def neighbours(self, entity: str, limit: int = 20) -> list[tuple[str, float]]:
        """Entities that co-occur with ``entity``, with the number of memories they share."""
        data = self._ready_data()
        with self._lock:
            return graph.neighbours(data, entity, limit)

    def subgraph(self, entity: str, limit: int = 20) -> nx.Graph:
        """An entity and its strongest neighbours as a weighted networkx graph (graph view)."""
        data = self._ready_data()
        with self._lock:
            return graph.subgraph(data, entity, limit=limit)

    def mentions(self, entity: str) -> list[str]:
        """Ids of the memories that mention ``entity``, newest first."""
        data = self._ready_data()
        with self._lock:
            return graph.mentions(data, entity)
