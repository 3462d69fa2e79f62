"""Keeping a loaded index in step with files changed behind its back (a sync tool, a file
manager): the watcher's callback, re-reading one changed file, and change-log lines whose file
has not arrived yet. A mixin of ``Index`` (memo_shell.index.core), kept apart to keep that
module to its lifecycle and persistence; it uses the index's lock, data and notices.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo_shell.index import filewatch
from memo_shell.index.files import locked

if TYPE_CHECKING:
    from memo_shell.index.data import IndexData
    from memo_shell.store import Store


class FreshnessMixin:
    """Re-checks of single files for ``Index`` (see the module doc)."""

    store: Store
    _data: IndexData | None
    _lock: threading.RLock
    _sigs: dict[str, filewatch.Signature]
    _folders: dict[str, int]
    _folders_saved: dict[str, int]
    _log: Any
    _origin: str
    directory: Path
    _awaiting: set[str]
    _closing: threading.Event
    _watcher: filewatch.Watcher | None
    _last_scan: float
    _reads: int = 0  # index reads so far (see _watch)
    _forgotten: int
    _dirty: int

    if TYPE_CHECKING:  # provided by Index

        def _read(self, memory_id: str) -> Any: ...
        def _apply_op(self, data: IndexData, op: str, arg: Any) -> None: ...
        def _catch_up(self) -> None: ...
        def _notice(self, message: str) -> None: ...
        def _schedule_scrub(self) -> None: ...

    def _refresh(self, data: IndexData, memory_id: str) -> None:
        """Re-read one record file whose signature changed (or that is new) into ``data``."""
        sig = filewatch.signature(self.store.path_for(memory_id))  # before the read: see api
        memory = self._read(memory_id) if sig is not None else None
        with self._lock:
            if memory is not None:
                self._apply_op(data, "~", memory)
                self._sigs[memory_id] = sig  # type: ignore[assignment]
                self._awaiting.discard(memory_id)
            elif memory_id in data.catalog.doc_of and not self.store.exists(memory_id):
                self._apply_op(data, "-", memory_id)
                self._sigs.pop(memory_id, None)
                self._forgotten += 1
            else:
                return
            self._dirty += 1
        # in the change log too: other processes pick it up, and the next load replays it (the
        # folder mtimes saved beside the snapshot vouch for that; see filewatch.save_folders)
        with contextlib.suppress(OSError):
            self._log.append("~" if memory is not None else "-", [memory_id], self._origin)

    def _save_folders(self) -> None:
        """Persist the date folders' mtimes if they moved (a small file; see filewatch)."""
        with self._lock:
            folders = dict(self._folders)
            if folders == self._folders_saved or self._data is None:
                return
        try:
            with locked(self.directory / "lock"):
                filewatch.save_folders(self.directory, folders)
        except OSError:
            return
        with self._lock:
            self._folders_saved = folders

    def _files_changed(self, changed: set[Path]) -> None:
        """The watcher saw files change: re-check those records, or walk everything when a
        conflict copy, a forget marker or a new folder appeared."""
        ids, other = filewatch.ids_in(changed, self.store.memories_dir, ".memo")
        data = self._data
        if data is None or self._closing.is_set():
            return
        try:
            if other:
                self._catch_up()
                with self._lock:
                    self._last_scan = time.monotonic()
                return
            for memory_id in sorted(ids):
                sig = filewatch.signature(self.store.path_for(memory_id))
                with self._lock:
                    same = sig is not None and self._sigs.get(memory_id) == sig
                if not same:
                    self._refresh(data, memory_id)
        except Exception as exc:  # keep watching; the rescan repairs what this missed
            self._notice(f"could not index a changed memory file ({exc})")
        if self._forgotten:
            self._schedule_scrub()

    def _watch(self) -> None:
        """Start watching the data directory, once, in a process that reads the index a second
        time (the app, a server, a script): a one-off ``recall`` or ``ask`` never pays for it."""
        if self._watcher is not None or self._closing.is_set():
            return
        self._reads += 1
        if self._reads < 2:
            return
        self._watcher = filewatch.Watcher(
            self.store.root, self._files_changed, self._closing, self._notice
        )
        if not self._watcher.start():
            self._notice("watchfiles is not available; checking the memory folders every minute")

    def _check_awaiting(self) -> None:
        """Change-log lines whose file had not arrived: index those that have now."""
        with self._lock:
            waiting = [m for m in self._awaiting if self.store.path_for(m).exists()]
        for memory_id in waiting:
            assert self._data is not None
            self._refresh(self._data, memory_id)
