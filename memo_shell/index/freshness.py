"""Keeping a loaded index in step with files changed behind its back (a sync tool, a file
manager): the watcher's callback (the watcher's thread), re-reading one changed file,
change-log lines whose file has not arrived yet, and a walk of every file (``_catch_up``: after
each load, and at most every ``RESCAN_SECONDS`` while the index is in use, in the
``memo-index-rescan`` thread).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Container
from pathlib import Path
from typing import TYPE_CHECKING

from memo_shell.index import filewatch
from memo_shell.index.base import IndexBase
from memo_shell.index.files import locked
from memo_shell.index.ops import Kind, Remove, Update

if TYPE_CHECKING:
    from memo_shell.index.data import IndexData

#: While searches happen, the memory folders are re-walked in the background this often.
RESCAN_SECONDS = 60.0


class FreshnessMixin(IndexBase):
    """Re-checks of the files for ``Index`` (see the module doc)."""

    _reads: int = 0  # index reads so far (see _watch)

    def _refresh(self, data: IndexData, memory_id: str) -> None:
        """Re-read one record file whose signature changed (or that is new) into ``data``."""
        sig = filewatch.signature(self.store.path_for(memory_id))  # before the read: see api
        memory = self._read(memory_id) if sig is not None else None
        with self._lock:
            if memory is not None:
                self._apply_op(data, Update(memory))
                self._sigs[memory_id] = sig  # type: ignore[assignment]
                self._awaiting.discard(memory_id)
            elif memory_id in data.catalog.doc_of and not self.store.exists(memory_id):
                self._apply_op(data, Remove(memory_id))
                self._sigs.pop(memory_id, None)
                self._forgotten += 1
            else:
                return
            self._dirty += 1
        # in the change log too: other processes pick it up, and the next load replays it (the
        # folder mtimes saved beside the snapshot vouch for that; see filewatch.save_folders)
        with contextlib.suppress(OSError):
            kind = Kind.UPDATE if memory is not None else Kind.REMOVE
            self._log.append(kind, [memory_id], self._origin)

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

    def _catch_up(self) -> None:
        """Walk the files once: index what is missing or changed, drop what is gone."""
        with self._scan_lock:
            with self._lock:
                known_folders = dict(self._folders)

            def unchanged(folder: Path, mtime: int) -> bool:
                return known_folders.get(str(folder)) == mtime

            # date folders whose mtime is what the index saved hold what it knows: not listed
            scan = self.store.scan(unchanged)
            self._tidy(scan)
            with self._lock:
                self._apply_deferred()
                data = self._data
                assert data is not None
                catalog = data.catalog
                missing, gone = catalog.diff_ids(scan.ids, scan.skipped_days)
                folders = dict(self._folders)
            # no copies of every id and signature: only files in folders that moved are looked
            # up, and a lookup racing a concurrent change sees the newer state, which is as good
            new = set(missing)
            known = _Known(catalog.doc_of, new)
            changed, adopt, folders = filewatch.changed_in(scan.shards, known, self._sigs, folders)
            folders.update((str(folder), mtime) for folder, mtime in scan.skipped.items())
            with self._lock:
                for memory_id, sig in adopt.items():
                    self._sigs.setdefault(memory_id, sig)
            for memory_id in gone:
                if not self.store.exists(memory_id):  # it may have been written since the walk
                    with self._lock:
                        self._apply_op(data, Remove(memory_id))
                        self._sigs.pop(memory_id, None)
                        self._dirty += 1
                        self._forgotten += 1
            if gone:
                self._schedule_scrub()
            for memory_id in [*missing, *changed]:
                if self._closing.is_set():
                    return
                self._refresh(data, memory_id)
            with self._lock:  # only now: a save in between must not claim these are clean
                self._folders = folders

    def _maybe_rescan(self) -> None:
        """Files a sync tool drops in (or deletes) without a change-log line: a background walk
        at most every ``RESCAN_SECONDS`` while the index is in use picks them up."""
        now = time.monotonic()
        with self._lock:
            if self._rescanning or now - self._last_scan < RESCAN_SECONDS:
                return
            self._rescanning = True
            self._last_scan = now

        def run() -> None:
            try:
                self._catch_up()
            except Exception as exc:  # a vanished directory, permissions: try again later
                self._notice(f"could not check the memory folders for changes ({exc})")
            finally:
                self._rescanning = False

        threading.Thread(target=run, name="memo-index-rescan", daemon=True).start()


class _Known:
    """Membership in the index as of the walk: indexed, and not among the new files."""

    def __init__(self, doc_of: Container[str], new: set[str]) -> None:
        self.doc_of, self.new = doc_of, new

    def __contains__(self, memory_id: object) -> bool:
        return memory_id not in self.new and memory_id in self.doc_of
