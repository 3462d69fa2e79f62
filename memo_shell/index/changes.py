"""This process's own changes: ``add``, ``add_many``, ``update``, ``remove``, in the caller's
thread, and the vectors the embedding worker (the ``memo-embed`` thread) computes for them.

Changes never wait for the load. Each is appended to the change log (other processes tail it)
and reaches the data through one of two queues, which stay two because they feed different
data, at different times, with different bounds:

``_pending``
    ops for data that is not installed yet: a load in flight, a reload or a rebuild. Replayed
    onto the new data when it is installed (``_replay_pending``). Bounded by ``MAX_PENDING``:
    past it (a big import into an index nobody loads, like a CLI import) ops are dropped, and
    the change-log replay and the file walk that follow every install find them anyway.
``_deferred``
    our own single changes to the installed data, applied just before its next read (or when
    ``_MAX_DEFERRED`` wait). Acknowledging an add then costs a log append, not the ~0.7 ms of
    analysis, which keeps add close to the bare durable write. Dropped at install: they were
    made against the old data, and the new data has them (from the log and the files).

During a reload or rebuild one op goes to both: the data searched meanwhile and the data
being loaded each need it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memo_shell.index import filewatch
from memo_shell.index.base import MAX_PENDING, Analysing, IndexBase
from memo_shell.index.ops import Add, Kind, Op, Remove, State, Update
from memo_shell.records import Memory

if TYPE_CHECKING:
    from memo_shell.index.data import IndexData

#: At most this many of our own changes wait for the next read before being applied.
_MAX_DEFERRED = 256


class ChangesMixin(IndexBase):
    """Adds, updates and removes made by this process (see the module doc)."""

    def add(self, memory: Memory) -> None:
        """Index a memory just written to disk (queued if the index is still loading)."""
        self._record(Kind.ADD, [Add(memory)], defer=True)

    def add_many(self, memories: Sequence[Memory]) -> None:
        self._record(Kind.ADD, [Add(m) for m in memories])

    def update(self, memory: Memory) -> None:
        """A memory's pin or tags changed."""
        self._record(Kind.UPDATE, [Update(memory)], defer=True)

    def remove(self, memory_id: str) -> None:
        self._record(Kind.REMOVE, [Remove(memory_id)], defer=True)

    def _record(self, kind: Kind, ops: Sequence[Op], *, defer: bool = False) -> None:
        """Apply (or queue) ``ops``, all of ``kind``, and append them to the change log."""
        ids = [op.memory_id for op in ops]
        sigs = (
            {i: filewatch.signature(self.store.path_for(i)) for i in ids}
            if kind != Kind.REMOVE
            else {}
        )
        with self._lock:
            for memory_id in ids:
                sig = sigs.get(memory_id)
                if sig is None:
                    self._sigs.pop(memory_id, None)
                else:
                    self._sigs[memory_id] = sig
            if self._data is not None and not defer and kind == Kind.ADD:
                self._apply_deferred()  # the previous batch, analysed meanwhile
                analysing = self._submit(ops)
                if analysing is not None:
                    self._deferred.append(analysing)
                else:
                    self._apply_adds(self._data, ops)  # its analysis and tables at once
            for op in ops:
                if self._data is not None and defer:
                    self._deferred.append(op)
                elif self._data is not None and kind != Kind.ADD:
                    self._apply_deferred()
                    self._apply_op(self._data, op)
                if self._data is None or self._reloading or self._state == State.REBUILDING:
                    self._queue_op(op)
            self._dirty += len(ops)
            if kind == Kind.REMOVE:
                self._forgotten += len(ops)
            if len(self._deferred) >= _MAX_DEFERRED:
                self._apply_deferred()
        with contextlib.suppress(OSError):
            self._log.append(kind, ids, self._origin)
        if kind == Kind.REMOVE:
            self._schedule_scrub()

    def _queue_op(self, op: Op) -> None:
        """Remember an op for data still being loaded (bounded: see the module doc)."""
        if len(self._pending) < MAX_PENDING:
            self._pending.append(op)

    def _replay_pending(self, data: IndexData) -> None:
        """Give data about to be installed the ops queued meanwhile. Caller holds the lock."""
        for op in self._pending:
            self._apply_op(data, op)
        self._pending = []
        self._deferred = []  # they were made against the old data; the new data has them

    def _apply_deferred(self) -> None:
        """Bring the data up to date with our own deferred changes. Caller holds the lock."""
        if self._deferred and self._data is not None:
            deferred, self._deferred = self._deferred, []
            for op in deferred:
                if isinstance(op, Analysing):
                    self._apply_adds(self._data, op.ops, op)
                else:
                    self._apply_op(self._data, op)

    # ------------------------------------------------------------------ the embedding worker's

    def _read_text(self, memory_id: str) -> str | None:
        memory = self._read(memory_id)
        return memory.text if memory is not None else None

    def _store_vectors(self, ids: list[str], vectors: list[list[float]]) -> None:
        with self._lock:
            self._apply_deferred()
            data = self._data
            if data is None or data.vectors is None:
                return
            pairs = [(data.catalog.doc_of.get(i), v) for i, v in zip(ids, vectors, strict=True)]
            pairs = [(d, v) for d, v in pairs if d is not None]
            data.vectors.put([d for d, _ in pairs], [v for _, v in pairs])  # type: ignore[misc]
            self._vectors_dirty += len(pairs)
