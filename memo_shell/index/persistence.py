"""Writing the index to disk, and forgetting reaching the disk too.

``_save`` writes the snapshot and/or dirty vectors atomically under the lock file, one save at a
time per process (``_save_lock``). A snapshot is only written from data that follows the current
log generation (or was just rebuilt from the files). When another process has started a new one
(a rebuild, a scrub, ``forget --all``), this process's data is stale: writing it would bring
back what the other process forgot, so it reloads instead.

Forgetting reaches the disk, not just memory: a process that forgot something rewrites the
snapshot (and cached vectors) without it ``SCRUB_AFTER_SECONDS`` later, in a timer thread
(``memo-index-scrub``), and at the latest on ``close()``, vacuumed of every word and name only
the forgotten memories used, and restarts the change log so not even their ids stay.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from memo_shell.index.base import IndexBase
from memo_shell.index.files import (
    LOG_ROTATE_BYTES,
    SnapshotError,
    locked,
    read_snapshot,
    write_snapshot,
)
from memo_shell.index.ops import Remove
from memo_shell.lazy import lazy

np = lazy("numpy")
_signatures = lazy("memo_shell.index.signatures")

if TYPE_CHECKING:
    from memo_shell.index.data import IndexData

#: After a forget, the snapshot is scrubbed this long after the last one (a prune of many
#: memories, one by one, costs one rewrite), and at the latest when the index is closed.
SCRUB_AFTER_SECONDS = 2.0


class PersistenceMixin(IndexBase):
    """Save; scrub forgotten memories from what is saved (see the module doc)."""

    def _save(
        self, *, restart_log: bool = False, snapshot: bool = True, rebuilt: bool = False
    ) -> int | None:
        """Write the snapshot and/or dirty vectors atomically under the lock; returns bytes.

        Returns None, writing nothing, when another process has started a new log generation
        since this data was loaded: its snapshot is newer, and ours may hold memories it has
        forgotten since. Only a ``rebuilt`` index (just read from the files) is written anyway,
        after dropping memories whose files are gone by now.
        """
        if self._data is None:
            return 0
        with self._save_lock, locked(self.lock_path):
            current = self._tail(reload=False)
            if not current and not rebuilt:
                return None
            with self._lock:
                self._apply_deferred()
                data = self._data
                if not current:
                    self._drop_missing(data)
                dropped = data.vacuum() if snapshot else False
                parts = data.to_parts() if snapshot else None
                vectors = (
                    data.vectors.to_parts(data.catalog.ids)
                    if data.vectors is not None and (self._vectors_dirty or dropped)
                    else None
                )
                live_ids = set(data.catalog.doc_of) if dropped else None
                dirty, vectors_dirty = self._dirty, self._vectors_dirty
                forgotten = self._forgotten if snapshot else 0
                gen, offset = self._log_gen, self._log_offset
            size = 0
            if parts is not None:
                # a vacuum that dropped rows also restarts the log: it holds their ids
                # and so does a save after this process forgot memories: the log names them
                restart = restart_log or dropped or forgotten or not current
                if restart or self._log.size() > LOG_ROTATE_BYTES:
                    gen = self._log.restart()
                    offset = self._log.size()
                    with self._lock:
                        self._log_gen, self._log_offset = gen, offset
                        self._log_seen = self._log.fingerprint()
                meta = {
                    "data": parts[0],
                    "log_gen": gen,
                    "log_offset": offset,
                    "saved_at": time.time(),
                }
                size += write_snapshot(self.snapshot_path, meta, parts[1])
                with self._lock:
                    ids, table = _signatures.table_for(self._sigs, data.catalog.live_ids())
                size += _signatures.save(self.directory, ids, table)
            if vectors is not None and self.vectors_path is not None:
                size += write_snapshot(self.vectors_path, vectors[0], vectors[1])
            if live_ids is not None:
                self._scrub_other_vectors(live_ids)
        with self._lock:
            if parts is not None:
                self._dirty -= dirty
            self._vectors_dirty -= vectors_dirty
            self._forgotten -= forgotten
        return size

    def _drop_missing(self, data: IndexData) -> None:
        """Drop memories whose files are gone (a rebuild raced a forget). Caller holds the lock.

        The folder listings against the index's ids, and the forget markers, find the few
        candidates, each then checked as before: a check of every memory was a ``stat`` or
        three each, ~10 s of every ``reindex`` at a million memories.
        """
        _new, gone = data.catalog.diff_ids(list(self.store.iter_ids()))
        marked = [i for i in self.store.tombstones.ids() if i in data.catalog.doc_of]
        for memory_id in sorted({*gone, *marked}):
            if not self.store.exists(memory_id):
                self._apply_op(data, Remove(memory_id))

    def _scrub_other_vectors(self, live_ids: set[str]) -> None:
        """Rewrite other embedders' vector files without forgotten memories' vectors.

        A user may have embedded with one model and forget with another (or with none, from
        the CLI): those files are keyed by memory id, so they can be filtered without the model.
        Caller holds the lock.
        """
        own = self.vectors_path
        for path in self.directory.glob("vectors-*"):
            if path == own:
                continue
            try:
                header, arrays = read_snapshot(path)
                keep = [i for i, memory_id in enumerate(header["ids"]) if memory_id in live_ids]
                if len(keep) == len(header["ids"]):
                    continue
                header = {**header, "ids": [header["ids"][i] for i in keep]}
                vectors = np.asarray(arrays["vectors"]).reshape(len(arrays["vectors"]), -1)
                write_snapshot(path, header, {"vectors": vectors[keep].copy()})
            except (SnapshotError, KeyError, TypeError, ValueError):
                path.unlink(missing_ok=True)  # unreadable: only a re-embedding can recreate it

    # ------------------------------------------------------------------ forgetting

    def _traces_on_disk(self) -> bool:
        """Whether the index directory holds a snapshot, vectors or change lines that may name
        memories (a forget before any snapshot existed left "+ id" and "- id" in the log)."""
        return (
            self.snapshot_path.exists()
            or any(self.directory.glob("vectors-*"))
            or self._log.has_entries()
        )

    def _schedule_scrub(self) -> None:
        """Scrub ``SCRUB_AFTER_SECONDS`` after the last forget, in the background."""
        if not self._forgotten or self._closing.is_set() or not self._ready.is_set():
            return  # close() scrubs for a process that never loaded the index
        timer = threading.Timer(SCRUB_AFTER_SECONDS, self._scrub_in_background)
        timer.daemon = True
        timer.name = "memo-index-scrub"
        with self._lock:
            if self._scrub_timer is not None:
                self._scrub_timer.cancel()
            self._scrub_timer = timer
        timer.start()

    def _cancel_scrub(self) -> None:
        with self._lock:
            timer, self._scrub_timer = self._scrub_timer, None
        if timer is not None:
            timer.cancel()

    def _scrub_in_background(self) -> None:
        try:
            self._scrub()
        except Exception as exc:  # a full disk: the next save or close tries again
            self._notice(f"index could not be rewritten without forgotten memories ({exc})")

    def _scrub(self) -> None:
        """Rewrite the snapshot and vector files without forgotten memories (loading the index
        first if this process never did). A stale generation is reloaded and the scrub tried
        again: the newer snapshot may still hold what this process forgot."""
        self.wait_ready()
        for _attempt in range(3):
            if not self._forgotten:
                return
            if self._save() is not None:
                return
            self._reload()
        self._notice(
            "other processes kept rewriting the index; forgotten memories are dropped "
            "from it at the next save"
        )
