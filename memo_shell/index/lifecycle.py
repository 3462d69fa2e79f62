"""How the index's data comes to be and goes: start, load (or build), install, close, rebuild.

1. ``Index(...)`` only remembers its arguments (``memo_shell.open()`` returns at once).
2. ``start()`` spawns one daemon thread (``memo-index``) that loads ``index/snapshot`` (or builds
   from the record files when there is none, or when it is corrupt, with a notice), replays the
   change log from the offset the snapshot covers, then walks the files once (``store.scan``) to
   add memories it lacks and drop those whose files are gone, sweeping crash debris on the way.
   Changes made meanwhile are queued and replayed at install (memo_shell.index.changes).
3. ``close()`` scrubs what this process forgot, stops and waits for a load still in flight (no
   index file is written after it returns), and writes a snapshot past ``SAVE_AFTER_CHANGES``
   changes (fewer: the log suffices), under the lock file, atomically.
4. ``rebuild()`` reads every record file again, in the caller's thread (``memo-shell reindex``);
   a store of ``build.POOL_THRESHOLD`` files or more is read and analysed by worker processes
   (``memo_shell.index.build``), applied here in scan order.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from memo_shell.disk import Disk
from memo_shell.index import filewatch
from memo_shell.index.base import Analysing, IndexBase
from memo_shell.index.files import SnapshotError, locked, read_snapshot, sweep_temps
from memo_shell.index.ops import State
from memo_shell.lazy import lazy
from memo_shell.store import ScanResult

# Heavy (numpy) modules load on first use, in the loader thread, not at `import memo_shell`.
_data = lazy("memo_shell.index.data")
_vectors = lazy("memo_shell.index.vectors")
_signatures = lazy("memo_shell.index.signatures")
_build = lazy("memo_shell.index.build")

if TYPE_CHECKING:
    from memo_shell.index.analysis import Analysis
    from memo_shell.index.data import IndexData

#: close() rewrites the snapshot only past these many unsaved changes (fewer: the log suffices)
SAVE_AFTER_CHANGES = 500
#: close() waits this long for a load still in flight (it stops at its next check of closing)
LOAD_JOIN_SECONDS = 5.0


class LifecycleMixin(IndexBase):
    """Start, load, install, close and rebuild (see the module doc)."""

    def start(self) -> None:
        """Load (or build) in a daemon thread; returns at once."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = self._loader = threading.Thread(
                target=self._load_thread, name="memo-index", daemon=True
            )
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        self.start()
        return self._ready.wait(timeout)

    def wait_embedded(self, timeout: float | None = None) -> bool:
        """Block until queued memories have vectors (no-op without an embedder)."""
        if self._embedding is None:
            return True
        self.wait_ready(timeout)
        with self._lock:
            self._apply_deferred()  # queues their embeddings
        return self._embedding.wait_idle(timeout)

    def close(self) -> None:
        """Save a snapshot if this process changed anything.

        Waits for a load only when this process forgot something that the index on disk may
        still hold (a one-off ``mem forget``): that must be scrubbed before the process ends.
        """
        self._cancel_scrub()
        try:
            if self._forgotten and self._traces_on_disk():
                self._scrub()
        except OSError as exc:
            self._notice(f"index could not be rewritten without forgotten memories ({exc})")
        self._closing.set()
        with self._lock:
            if any(isinstance(op, Analysing) for op in self._deferred):
                self._apply_deferred()  # an import's last batch, from its workers
        self._stop_import_workers()
        # a load still running stops at its next check of _closing; wait for it, so that no
        # index file is written after close() returns (the directory may be moved or wiped)
        loader = self._loader
        if loader is not None and loader is not threading.current_thread():
            loader.join(LOAD_JOIN_SECONDS)
        if self._watcher is not None:
            self._watcher.join(2.0)
        self._save_folders()
        if self._embedding is not None:
            self._embedding.close()
        # a few changes are already in the change log, which the next load replays (reading
        # those files); only many are worth rewriting the snapshot. Vectors are not in the log
        # (they cost model calls), so new ones are always saved, in their own file.
        if self._ready.is_set() and (self._dirty >= SAVE_AFTER_CHANGES or self._vectors_dirty):
            try:
                self._save(snapshot=self._dirty >= SAVE_AFTER_CHANGES)
            except OSError as exc:
                self._notice(f"index could not be saved ({exc}); it will be rebuilt next time")

    # ------------------------------------------------------------------ loading

    def _load_thread(self) -> None:
        try:
            self._load()
        except Exception as exc:  # never leave searches hanging on a dead thread
            self._notice(f"index could not be loaded ({exc}); recall is empty until `reindex`")
            with self._lock:
                if self._data is None:
                    self._install(_data.IndexData(), None, 0)
        finally:
            with self._lock:
                if self._data is None:  # closed before it finished: nothing to serve
                    self._install(_data.IndexData(), None, 0)
                self._state = State.READY
            self._ready.set()
        self._schedule_scrub()  # the log named memories forgotten since the snapshot

    def _read_snapshot(self) -> tuple[IndexData, str | None, int] | None:
        """The persisted index, or None (``_corrupt`` says why if it existed but was unusable)."""
        try:
            header, arrays = read_snapshot(self.snapshot_path)
            data = _data.IndexData.from_parts(header["data"], arrays)
            return data, header.get("log_gen"), int(header.get("log_offset", 0))
        except FileNotFoundError:
            return None
        except (SnapshotError, ValueError, KeyError, TypeError, IndexError) as exc:
            self._corrupt = str(exc)
            return None

    def _load(self) -> None:
        try:
            with locked(self.lock_path):
                gen: str | None = self._log.ensure()[0]
                sweep_temps(self.directory)
        except OSError as exc:  # read-only data dir: index in memory only
            self._notice(f"index directory is not writable ({exc}); the index lives in memory")
            # what is there can still be read: with no generation at all, every search would
            # see the log's as "new" and reload, forever
            gen = self._log.generation()
        loaded = self._read_snapshot()
        if loaded is not None:
            data, snap_gen, offset = loaded
            sigs = _signatures.load(self.directory)
            folders = filewatch.load_folders(self.directory)
            with self._lock:
                self._sigs = sigs  # before the replay, which records the files it reads
                self._folders = self._folders_saved = folders
            if snap_gen == gen:
                _g, changes, offset = self._log.read_from(offset)
                for change in changes:
                    if self._closing.is_set():
                        return
                    self._apply_change(data, change)
            else:  # the log was restarted since: the scan below catches up, listing every
                offset = self._log.size()  # folder (the saved mtimes vouch for that log)
                with self._lock:
                    self._folders = {}
            self._attach_vectors(data)
            with self._lock:
                self._install(data, gen, offset)
            self._catch_up()
            return
        offset = self._log.size()
        data = _data.IndexData()
        count = self._build_into(data, None)
        if count < 0:
            return
        self._attach_vectors(data)
        with self._lock:
            self._install(data, gen, offset)
            self._dirty += 1
        if self._corrupt:
            self._notice(f"index was corrupt ({self._corrupt}); rebuilt from {count} memory files")
            self._corrupt = None
        elif count:
            self._notice(f"index was missing; built it from {count} memory files")
        self._catch_up()
        if self._closing.is_set():
            return  # closed meanwhile: the next open builds again rather than write after close
        try:
            self._save()
        except OSError as exc:
            self._notice(f"index could not be saved ({exc}); it will be rebuilt next time")

    def _install(self, data: IndexData, gen: str | None, offset: int) -> None:
        """Adopt loaded data, replaying ops queued meanwhile. Caller holds the lock."""
        self._replay_pending(data)
        self._data = data
        self._log_gen = gen
        self._log_offset = offset
        if self._embedding is not None and data.vectors is not None:
            missing = data.vectors.missing(data.catalog.alive.view)
            self._embedding.put_many((data.catalog.ids[d] or "", None) for d in missing.tolist())

    def _build_into(self, data: IndexData, progress: Callable[[int, int], None] | None) -> int:
        """Read every record file into ``data``; returns the count, or -1 if closing."""
        scan = self.store.scan()
        self._tidy(scan)
        total = len(scan.ids)
        folders = filewatch.folder_mtimes(scan.shards)  # before the reads: a change meanwhile
        data.begin_bulk()  # moves the mtime, and the folder is looked into again next time
        sig_ids: list[str] = []
        sig_values: list[filewatch.Signature] = []

        def read_inline(memory_id: str) -> None:
            sig = filewatch.signature(self.store.path_for(memory_id))
            memory = self._read(memory_id)
            if memory is not None:
                data.add(memory)
                if sig is not None:
                    sig_ids.append(memory_id)
                    sig_values.append(sig)

        def tick(n: int) -> bool:
            """Report progress; False when the index is closing under a load."""
            if progress is not None and (n % 500 == 0 or n == total):
                progress(n, total)
            return not (self._closing.is_set() and self._state == State.LOADING)

        n = 0
        # workers only for the real disk: tests inject faulty ones, which workers would bypass
        if total >= _build.POOL_THRESHOLD and type(self.store.disk) is Disk:
            pairs = [(i, str(self.store.path_for(i))) for i in scan.ids]
            try:
                with _build.Workers(_build.worker_count()) as workers:
                    for results in workers.map(pairs):
                        forgotten = self.store.tombstones.ids()  # as each inline read checks
                        run: list[Analysis] = []  # applied together, in scan order
                        for result in results:
                            memory_id = scan.ids[n]
                            n += 1
                            if result is None or memory_id in forgotten:
                                data.apply_many(run)
                                run = []
                                read_inline(memory_id)  # reports, quarantines, drops as usual
                                continue
                            run.append(result[0])
                            if result[1] is not None:
                                sig_ids.append(memory_id)
                                sig_values.append(result[1])
                        data.apply_many(run)
                        if not tick(n):
                            return -1
            except (_build.WorkerFailed, OSError) as exc:  # the rest is read here
                self._notice(f"index build workers stopped ({exc}); reading the rest here")
        for memory_id in scan.ids[n:]:
            if self._closing.is_set() and self._state == State.LOADING:
                return -1
            read_inline(memory_id)
            n += 1
            tick(n)
        data.end_bulk()
        sigs = _signatures.Signatures.from_pairs(sig_ids, sig_values)
        with self._lock:
            self._sigs = sigs
            self._folders = folders
        if progress is not None and total == 0:
            progress(0, 0)
        return data.n_docs

    def _tidy(self, scan: ScanResult) -> None:
        with contextlib.suppress(OSError):
            self.store.sweep_temps(scan.temps)
        for entry in self.store.quarantine_foreign(scan.foreign):
            self._notice(f"moved a foreign file out of the memory folders: {entry.moved_to}")

    def _attach_vectors(self, data: IndexData) -> None:
        """Give ``data`` this embedder's vectors (from its own file, matched by memory id)."""
        if self.embedder is None:
            return
        path = self.vectors_path
        assert path is not None
        try:
            header, arrays = read_snapshot(path)
            if header.get("embedder") != self.embedder.id:
                raise SnapshotError("vectors belong to another embedder")
            data.vectors = _vectors.VectorSet.from_parts(header, arrays, data.catalog.doc_of)
        except FileNotFoundError:
            data.vectors = _vectors.VectorSet(self.embedder.id)
        except (SnapshotError, ValueError, KeyError, TypeError) as exc:
            self._notice(f"stored vectors were unreadable ({exc}); re-embedding")
            data.vectors = _vectors.VectorSet(self.embedder.id)

    # ------------------------------------------------------------------ rebuilding

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild everything from the record files (``memo-shell reindex``); returns the count.

        Never loads the old snapshot first: if the index was not started, the rebuild *is* the
        load. Other processes notice the new log generation and reload the new snapshot.
        """
        with self._lock:
            fresh = self._thread is None
            if fresh:
                self._thread = threading.current_thread()
            self._state = State.REBUILDING
        if not fresh:
            self._ready.wait()
            with self._lock:
                self._state = State.REBUILDING
        try:
            data = _data.IndexData()
            old = self._data
            count = self._build_into(data, progress)
            if old is not None and old.vectors is not None:  # keep vectors, matched by id
                parts = old.vectors.to_parts(old.catalog.ids)
                vector_set = _vectors.VectorSet
                data.vectors = vector_set.from_parts(parts[0], parts[1], data.catalog.doc_of)
            else:
                self._attach_vectors(data)
            with self._lock:
                self._install(data, self._log_gen, self._log_offset)
                self._dirty += 1
                self._vectors_dirty += 1 if data.vectors is not None else 0
            self._save(restart_log=True, rebuilt=True)
            return count
        finally:
            with self._lock:
                self._state = State.READY
            self._ready.set()
