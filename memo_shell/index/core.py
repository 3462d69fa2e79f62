"""The ``Index``: lifecycle, locking and persistence around the in-memory ``IndexData``.

Life of an index:

1. ``Index(...)`` only remembers its arguments (``memo_shell.open()`` returns at once).
2. ``start()`` spawns a daemon thread that loads ``index/snapshot`` (or builds from the record
   files when there is none, or when it is corrupt, with a notice), replays the change log from
   the offset the snapshot covers, then walks the files once (``store.scan``) to add memories it
   lacks and drop those whose files are gone, sweeping crash debris on the way.
3. ``add``/``update``/``remove`` never wait: before the data is installed they are queued (a
   bounded queue: a process that never loads, like a CLI import, relies on the change log
   instead) and replayed on the data at install time. Searches wait for the load.
4. Every change this process makes is appended to the change log; every search tails the log
   (one ``stat`` when nothing changed) to pick up other processes' changes.
5. ``close()`` writes a snapshot past ``SAVE_AFTER_CHANGES`` changes (fewer: the log suffices),
   under the lock file, atomically.
6. Forgetting reaches the disk, not just memory: a process that forgot something rewrites the
   snapshot (and cached vectors) without it ``SCRUB_AFTER_SECONDS`` later and at the latest on
   ``close()``, vacuumed of every word and name only the forgotten memories used, and restarts
   the change log so not even their ids stay (see ``_scrub``).

A snapshot is only written from data that follows the current log generation (or was just
rebuilt from the files). When another process has started a new one (a rebuild, a scrub,
``forget --all``), this process's data is stale: writing it would bring back what the other
process forgot, so it reloads instead.

Thread safety: one re-entrant lock guards the data; searches hold it for their few milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from memo_shell.errors import NotFound
from memo_shell.index import filewatch
from memo_shell.index.embedding import Embedder, EmbeddingQueue
from memo_shell.index.files import (
    LOG_ROTATE_BYTES,
    ChangeLog,
    SnapshotError,
    locked,
    read_snapshot,
    sweep_temps,
    write_snapshot,
)
from memo_shell.index.freshness import FreshnessMixin
from memo_shell.index.schema import EntityInfo, IndexHit, MemoryMeta, SessionInfo
from memo_shell.lazy import lazy
from memo_shell.records import (
    CorruptRecord,
    Memory,
    RecordError,
    UnsupportedVersion,
    is_valid_id,
)
from memo_shell.store import ScanResult, Store

#: At most this many of our own changes wait for the next read before being applied.
_MAX_DEFERRED = 256

# Heavy (numpy) modules load on first use, in the loader thread, not at `import memo_shell`.
np = lazy("numpy")
graph = lazy("memo_shell.index.graph")
_data = lazy("memo_shell.index.data")
_vectors = lazy("memo_shell.index.vectors")

if TYPE_CHECKING:
    import networkx as nx

    from memo_shell.index.data import IndexData

__all__ = ["Embedder", "Index", "Ranking"]

#: How a caller ranks what the index holds: ``(data, query_vector or None) -> hits, best first``.
Ranking = Callable[["IndexData", "list[float] | None"], list[IndexHit]]

State = Literal["loading", "ready", "rebuilding"]
#: Ops remembered while the index is not loaded; beyond this the change log and scan catch up.
MAX_PENDING = 10_000

#: While searches happen, the memory folders are re-walked in the background this often.
RESCAN_SECONDS = 60.0
#: close() rewrites the snapshot only past these many unsaved changes (fewer: the log suffices)
SAVE_AFTER_CHANGES = 500
#: After a forget, the snapshot is scrubbed this long after the last one (a prune of many
#: memories, one by one, costs one rewrite), and at the latest when the index is closed.
SCRUB_AFTER_SECONDS = 2.0
#: close() waits this long for a load still in flight (it stops at its next check of closing)
LOAD_JOIN_SECONDS = 5.0

Op = tuple[str, Any]  # ("+", Memory) | ("~", Memory) | ("-", memory id)


#: Every open Index, so a forked child can make each one usable again (see _reset_after_fork).
_open_indexes: weakref.WeakSet[Index] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for index in list(_open_indexes):
        index._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Index(FreshnessMixin):
    """Derived, disposable, lazily loaded recall index over one data directory's records."""

    def __init__(self, store: Store, directory: Path, *, embedder: Embedder | None = None) -> None:
        self.store = store
        self.directory = Path(directory)
        self.embedder = embedder
        self.notices: list[str] = []
        #: Called with each new notice, from whichever thread noticed it (the TUI's toasts).
        self.notice_listeners: list[Callable[[str], object]] = []
        #: seconds the last search spent embedding its query (reported apart from ranking)
        self.last_query_embed_seconds = 0.0
        self._data: IndexData | None = None
        self._lock = threading.RLock()
        self._pending: list[Op] = []  # ops made before the data is installed
        # Our own single changes, applied to the data before its next read. Acknowledging an
        # add then costs a log append, not the ~0.7 ms of analysis: that runs when recall next
        # looks (or when the cap is reached), which keeps add close to the bare durable write.
        self._deferred: list[Op] = []
        self._ready = threading.Event()
        self._state: State = "loading"
        self._thread: threading.Thread | None = None
        self._loader: threading.Thread | None = None  # the background load thread we started
        self._closing = threading.Event()
        self._origin = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._log = ChangeLog(self.directory / "changes", self.directory / "lock")
        self._log_gen: str | None = None
        self._log_offset = 0
        self._log_seen = (-1, -1)  # the log's (inode, size) when last tailed (never yet)
        self._dirty = 0
        self._vectors_dirty = 0
        #: memories removed since the snapshot was last written without them (see ``_scrub``)
        self._forgotten = 0
        self._scrub_timer: threading.Timer | None = None
        self._save_lock = threading.Lock()  # one save at a time per process
        self._reloading = False
        self._reload_lock = threading.Lock()
        self._corrupt: str | None = None
        self._rescanning = False
        self._last_scan = time.monotonic()
        # What each record file looked like when the index read it (see filewatch): a file
        # another device changed has a new signature. Guarded by ``_lock``.
        self._sigs: dict[str, filewatch.Signature] = {}
        #: mtime of each date folder when its files last matched ``_sigs`` (see filewatch)
        self._folders: dict[str, int] = {}
        self._folders_saved: dict[str, int] = {}  # as last written to index/folders
        #: ids a change-log line named before their file arrived (kept until it does)
        self._awaiting: set[str] = set()
        self._scan_lock = threading.Lock()  # one walk of the files at a time
        self._watcher: filewatch.Watcher | None = None
        self._embedding: EmbeddingQueue | None = None
        _open_indexes.add(self)
        if embedder is not None:
            self._embedding = EmbeddingQueue(
                embedder,
                read_text=self._read_text,
                store_vectors=self._store_vectors,
                notice=self._notice,
            )

    def _reset_after_fork(self) -> None:
        """In a forked child only the forking thread lives on: a load, save, reload or scrub
        that was running in the parent is gone, and any lock it held stays held forever.
        Re-create the locks and, if the load had not finished, start it again on demand. The
        child also writes the change log under its own origin, or the parent would skip its
        lines as its own."""
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._origin = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._scrub_timer = None
        self._reloading = False
        self._rescanning = False
        self._scan_lock = threading.Lock()
        self._watcher = None  # its thread stayed in the parent; the child starts its own
        self._loader = None  # the parent's; it does not run here
        if not self._ready.is_set():
            self._thread = None
            self._data = None
            self._state = "loading"
            self._ready = threading.Event()

    # ------------------------------------------------------------------ paths

    @property
    def snapshot_path(self) -> Path:
        return self.directory / "snapshot"

    @property
    def lock_path(self) -> Path:
        return self.directory / "lock"

    @property
    def vectors_path(self) -> Path | None:
        return self.directory / _vectors.file_name(self.embedder.id) if self.embedder else None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load (or build) in a daemon thread; returns at once."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = self._loader = threading.Thread(
                target=self._load_thread, name="memo-index", daemon=True
            )
        self._thread.start()

    @property
    def state(self) -> State:
        return self._state

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

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        for listener in list(self.notice_listeners):
            with contextlib.suppress(Exception):  # a listener's failure is not the index's
                listener(message)

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
                self._state = "ready"
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
            sigs = filewatch.load_signatures(self.directory)
            folders = filewatch.load_folders(self.directory)
            with self._lock:
                self._sigs = sigs  # before the replay, which records the files it reads
                self._folders = self._folders_saved = folders
            if snap_gen == gen:
                _g, changes, offset = self._log.read_from(offset)
                for change in changes:
                    if self._closing.is_set():
                        return
                    self._apply_change(data, change.op, change.id)
            else:  # the log was restarted since: the scan below catches up
                offset = self._log.size()
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
        for op, arg in self._pending:
            self._apply_op(data, op, arg)
        self._pending = []
        self._deferred = []  # they were made against the old data; the new data has them
        self._data = data
        self._log_gen = gen
        self._log_offset = offset
        if self._embedding is not None and data.vectors is not None:
            missing = data.vectors.missing(data.catalog.alive.view)
            self._embedding.put_many((data.catalog.ids[d] or "", None) for d in missing.tolist())

    def _queue_op(self, op: str, arg: Any) -> None:
        """Remember an op for data still being loaded.

        Bounded by MAX_PENDING: past it (a big import into an index nobody loads) ops are not
        kept in memory; the change log replay and the file walk that follow every install find
        the added and removed files anyway.
        """
        if len(self._pending) < MAX_PENDING:
            self._pending.append((op, arg))

    def _build_into(self, data: IndexData, progress: Callable[[int, int], None] | None) -> int:
        """Read every record file into ``data``; returns the count, or -1 if closing."""
        scan = self.store.scan()
        self._tidy(scan)
        total = len(scan.ids)
        folders = filewatch.folder_mtimes(scan.shards)  # before the reads: a change meanwhile
        data.begin_bulk()  # moves the mtime, and the folder is looked into again next time
        sigs: dict[str, filewatch.Signature] = {}
        for n, memory_id in enumerate(scan.ids, 1):
            if self._closing.is_set() and self._state == "loading":
                return -1
            sig = filewatch.signature(self.store.path_for(memory_id))
            memory = self._read(memory_id)
            if memory is not None:
                data.add(memory)
                if sig is not None:
                    sigs[memory_id] = sig
            if progress is not None and (n % 500 == 0 or n == total):
                progress(n, total)
        data.end_bulk()
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

    def _read(self, memory_id: str) -> Memory | None:
        try:
            return self.store.read(memory_id)
        except CorruptRecord as exc:
            self._notice(f"memory {memory_id} is damaged and was quarantined ({exc})")
        except UnsupportedVersion as exc:
            self._notice(f"memory {memory_id} skipped: {exc}")
        except (NotFound, RecordError, OSError):
            pass
        except Exception as exc:  # a StoreError (permissions, I/O): report, keep going
            self._notice(f"memory {memory_id} could not be read ({exc})")
        return None

    def _catch_up(self) -> None:
        """Walk the files once: index what is missing or changed, drop what is gone."""
        with self._scan_lock:
            scan = self.store.scan()
            self._tidy(scan)
            on_disk = set(scan.ids)
            with self._lock:
                self._apply_deferred()
                data = self._data
                assert data is not None
                known = set(data.catalog.doc_of)
                sigs, folders = dict(self._sigs), dict(self._folders)
            changed, adopt, folders = filewatch.changed_in(scan.shards, known, sigs, folders)
            with self._lock:
                for memory_id, sig in adopt.items():
                    self._sigs.setdefault(memory_id, sig)
            missing = [mid for mid in scan.ids if mid not in known]
            gone = [mid for mid in known if mid not in on_disk]
            for memory_id in gone:
                if not self.store.exists(memory_id):  # it may have been written since the walk
                    with self._lock:
                        self._apply_op(data, "-", memory_id)
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

    # ------------------------------------------------------------------ vectors

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

    # ------------------------------------------------------------------ applying changes

    def _apply_op(self, data: IndexData, op: str, arg: Any) -> None:
        if op == "+":
            data.add(arg)
            if self._embedding is not None and data is self._data:
                self._embedding.put(arg.id, arg.text)
        elif op == "~":
            if data.update(arg) is None:
                self._apply_op(data, "+", arg)
        elif op == "-":
            data.remove(arg)
            if self._embedding is not None:
                self._embedding.discard(arg)

    def _apply_change(self, data: IndexData, op: str, memory_id: str) -> None:
        """Apply one change-log line (from any process) by looking at the file itself."""
        if op == "-":
            if not self.store.exists(memory_id) and memory_id in data.catalog.doc_of:
                self._apply_op(data, "-", memory_id)
                self._forgotten += 1
            return
        if op == "+" and memory_id in data.catalog.doc_of:
            return
        if not is_valid_id(memory_id):  # a damaged or hostile log line names no file
            return
        sig = filewatch.signature(self.store.path_for(memory_id))
        memory = self._read(memory_id)
        if memory is None:
            self._apply_op(data, "-", memory_id)
            waiting = sig is None and not self.store.tombstones.has(memory_id)
            if waiting and len(self._awaiting) < MAX_PENDING:
                self._awaiting.add(memory_id)  # a sync tool may not have brought it yet
        else:
            self._apply_op(data, "~", memory)
            if sig is not None:
                self._sigs[memory_id] = sig

    def _apply_deferred(self) -> None:
        """Bring the data up to date with our own deferred changes. Caller holds the lock."""
        if self._deferred and self._data is not None:
            deferred, self._deferred = self._deferred, []
            for kind, arg in deferred:
                self._apply_op(self._data, kind, arg)

    def _record(self, ops: list[Op], ids: list[str], op: str, *, defer: bool = False) -> None:
        sigs = {i: filewatch.signature(self.store.path_for(i)) for i in ids} if op != "-" else {}
        with self._lock:
            for memory_id in ids:
                sig = sigs.get(memory_id)
                if sig is None:
                    self._sigs.pop(memory_id, None)
                else:
                    self._sigs[memory_id] = sig
            for kind, arg in ops:
                if self._data is not None:
                    if defer:
                        self._deferred.append((kind, arg))
                    else:
                        self._apply_deferred()
                        self._apply_op(self._data, kind, arg)
                if self._data is None or self._reloading or self._state == "rebuilding":
                    self._queue_op(kind, arg)
            self._dirty += len(ops)
            if op == "-":
                self._forgotten += len(ops)
            if len(self._deferred) >= _MAX_DEFERRED:
                self._apply_deferred()
        with contextlib.suppress(OSError):
            self._log.append(op, ids, self._origin)
        if op == "-":
            self._schedule_scrub()

    def add(self, memory: Memory) -> None:
        """Index a memory just written to disk (queued if the index is still loading)."""
        self._record([("+", memory)], [memory.id], "+", defer=True)

    def add_many(self, memories: Sequence[Memory]) -> None:
        self._record([("+", m) for m in memories], [m.id for m in memories], "+")

    def update(self, memory: Memory) -> None:
        """A memory's pin or tags changed."""
        self._record([("~", memory)], [memory.id], "~", defer=True)

    def remove(self, memory_id: str) -> None:
        self._record([("-", memory_id)], [memory_id], "-", defer=True)

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
                    self._apply_change(self._data, change.op, change.id)
                    self._dirty += 1
            self._log_offset = offset
        if self._forgotten:
            self._schedule_scrub()
        return True

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
                        self._apply_change(data, change.op, change.id)
                self._attach_vectors(data)
                with self._lock:
                    self._install(data, gen, offset)
                    self._log_seen = (-1, -1)  # tail from the new offset at the next read
            finally:
                with self._lock:
                    self._reloading = False

    # ------------------------------------------------------------------ persistence

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
                    sigs = {i: self._sigs[i] for i in data.catalog.doc_of if i in self._sigs}
                size += filewatch.save_signatures(self.directory, sigs)
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
        """Drop memories whose files are gone (a rebuild raced a forget). Caller holds the lock."""
        for memory_id in list(data.catalog.doc_of):
            if not self.store.exists(memory_id):
                self._apply_op(data, "-", memory_id)

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

    def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild everything from the record files (``memo-shell reindex``); returns the count.

        Never loads the old snapshot first: if the index was not started, the rebuild *is* the
        load. Other processes notice the new log generation and reload the new snapshot.
        """
        with self._lock:
            fresh = self._thread is None
            if fresh:
                self._thread = threading.current_thread()
            self._state = "rebuilding"
        if not fresh:
            self._ready.wait()
            with self._lock:
                self._state = "rebuilding"
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
                self._state = "ready"
            self._ready.set()

    # ------------------------------------------------------------------ queries

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
                    self._apply_op(data, "-", memory_id)
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
        out: dict[str, Any] = {"state": self._state, "bytes_on_disk": self._bytes_on_disk()}
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
