"""Other processes' changes, through the shared change log (memo_shell.index.files.ChangeLog).

Every read of the index tails the log (one ``stat`` when nothing changed) and applies the lines
other processes appended, by looking at each named file itself: the log says *which* memory
changed, the file says *how*. When the log has a new generation (another process rebuilt,
scrubbed or wiped the index), this process's data is stale: it is reloaded, in a background
thread (``memo-index-reload``), while searches go on over what is loaded.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from memo_shell.index import filewatch
from memo_shell.index.base import MAX_PENDING, IndexBase
from memo_shell.index.files import Change, locked
from memo_shell.index.ops import Kind, Remove, Update
from memo_shell.lazy import lazy
from memo_shell.records import is_valid_id

_data = lazy("memo_shell.index.data")

if TYPE_CHECKING:
    from memo_shell.index.data import IndexData


class ChangelogSyncMixin(IndexBase):
    """Tail the change log; reload a new generation (see the module doc)."""

    def _tail(self, *, reload: bool = True) -> bool:
        """Apply other processes' changes appended to the log since we last looked.

        Returns False when the log has a new generation (another process rebuilt, scrubbed or
        wiped the index): the data is stale, and is reloaded in the background if ``reload``.
        """
        if self._data is None:
            return True
        if self._log.fingerprint() == self._log_seen:
            return self._log_gen is not None
        with self._lock:
            self._apply_deferred()  # ours first: the log holds them before others' later lines
            seen = self._log.fingerprint()
            gen, changes, offset = self._log.read_from(self._log_offset)
            if gen != self._log_gen:  # stale until reloaded: look again every time
                if reload:
                    self._reload_async()
                return False
            self._log_seen = seen
            if gen is None:  # no log at all (a read-only directory): nothing to save into
                return False
            for change in changes:
                if change.origin != self._origin:
                    self._apply_change(self._data, change)
                    self._dirty += 1
            self._log_offset = offset
        if self._forgotten:
            self._schedule_scrub()
        return True

    def _apply_change(self, data: IndexData, change: Change) -> None:
        """Apply one change-log line (from any process) by looking at the file itself."""
        kind, memory_id = Kind.of_log(change.op), change.id
        if kind == Kind.REMOVE:
            if not self.store.exists(memory_id) and memory_id in data.catalog.doc_of:
                self._apply_op(data, Remove(memory_id))
                self._forgotten += 1
            return
        if kind == Kind.ADD and memory_id in data.catalog.doc_of:
            return
        if not is_valid_id(memory_id):  # a damaged or hostile log line names no file
            return
        sig = filewatch.signature(self.store.path_for(memory_id))
        memory = self._read(memory_id)
        if memory is None:
            self._apply_op(data, Remove(memory_id))
            waiting = sig is None and not self.store.tombstones.has(memory_id)
            if waiting and len(self._awaiting) < MAX_PENDING:
                self._awaiting.add(memory_id)  # a sync tool may not have brought it yet
        else:
            self._apply_op(data, Update(memory))
            if sig is not None:
                self._sigs[memory_id] = sig

    # ------------------------------------------------------------------ reloading

    def _reload_async(self) -> None:
        """Another process rebuilt or scrubbed the index: load its snapshot in the background."""
        if self._reloading or self._closing.is_set():
            return
        threading.Thread(target=self._reload_quietly, name="memo-index-reload", daemon=True).start()

    def _reload_quietly(self) -> None:
        try:
            self._reload()
        except Exception as exc:  # a read-only or vanished directory: say so, never a trace
            self._notice(f"index could not be reloaded ({exc}); searching what is loaded")

    def _reload(self) -> None:
        """Adopt the current generation: its snapshot plus the log since, or (when there is no
        snapshot of it, e.g. after ``forget --all``) a build from the record files."""
        with self._reload_lock:
            if self._log_gen is not None and self._log_gen == self._log.generation():
                return  # another thread got there first
            with self._lock:
                self._reloading = True
                # what the reloaded data still holds is counted again as the log is replayed
                self._forgotten = 0
            try:
                gen: str | None
                try:
                    with locked(self.lock_path):
                        gen, _ = self._log.ensure()
                        loaded = self._read_snapshot()
                        offset = self._log.size()
                except OSError:  # a read-only data dir: read what is there, without the lock
                    gen = self._log.generation()
                    loaded = self._read_snapshot()
                    offset = self._log.size()
                if loaded is None or loaded[1] != gen:
                    data = _data.IndexData()
                    self._build_into(data, None)
                else:
                    data = loaded[0]
                    _g, changes, offset = self._log.read_from(loaded[2])
                    for change in changes:
                        self._apply_change(data, change)
                self._attach_vectors(data)
                with self._lock:
                    self._install(data, gen, offset)
                    self._log_seen = (-1, -1)  # tail from the new offset at the next read
            finally:
                with self._lock:
                    self._reloading = False
