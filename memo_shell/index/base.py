"""The state every part of ``Index`` shares, and the few things they all do with it.

``Index`` (memo_shell.index.core) is put together from one class per job, each in its own
module with its own threads:

==========================  ==========================================  ======================
module                      job                                         runs in
==========================  ==========================================  ======================
``lifecycle``               start, load or build, install, close,       the loader thread
                            rebuild
``changes``                 this process's adds, updates and removes    the caller's thread
``changelog_sync``          other processes' changes: tail the log,     callers; the reload
                            reload a new generation                     thread
``freshness``               files changed behind the index's back       the watcher and the
                            (a sync tool): watch, re-read, rescan       rescan threads
``persistence``             save the snapshot and vectors; scrub what   callers; the scrub
                            was forgotten from them                     timer
``queries``                 search, stats, sessions, ids, meta,         the caller's thread
                            entities, graph
``build``                   read and analyse files (large builds) or    worker processes
                            an import's batches
==========================  ==========================================  ======================

This base holds their shared state, guarded by ``_lock`` (re-entrant: searches hold it for their
few milliseconds), applies a typed operation to the data, reads a record and reports notices.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memo_shell.errors import NotFound
from memo_shell.index import filewatch
from memo_shell.index.embedding import Embedder, EmbeddingQueue
from memo_shell.index.files import ChangeLog
from memo_shell.index.ops import Add, Op, Remove, State, Update
from memo_shell.lazy import lazy
from memo_shell.records import CorruptRecord, Memory, RecordError, UnsupportedVersion
from memo_shell.store import Store

_vectors = lazy("memo_shell.index.vectors")
_analysis = lazy("memo_shell.index.analysis")
_build = lazy("memo_shell.index.build")

if TYPE_CHECKING:
    from memo_shell.index import build
    from memo_shell.index.analysis import Analysis
    from memo_shell.index.data import IndexData
    from memo_shell.index.files import Change
    from memo_shell.store import ScanResult

#: Batches of at least this many memories are analysed in worker processes (an import's)...
IMPORT_POOL_BATCH = 1000
#: ... which stop when no batch came for this long (and at close)
IMPORT_POOL_IDLE_SECONDS = 10.0
#: Ops remembered while the index is not loaded, and change-log lines awaiting their file;
#: beyond this the change log and the file walk catch up.
MAX_PENDING = 10_000


class Analysing:
    """A batch of adds whose analysis is under way in the import's workers (see _submit)."""

    __slots__ = ("ops", "ticket")

    def __init__(self, ops: Sequence[Op], ticket: build.Ticket) -> None:
        self.ops = ops
        self.ticket = ticket


class IndexBase:
    """Shared state of ``Index``; see the module doc for which part owns what."""

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
        # changes: ops made before the data is installed, and our own single changes applied
        # to the data before its next read (why two: see memo_shell.index.changes)
        self._pending: list[Op] = []
        self._deferred: list[Op | Analysing] = []
        # lifecycle
        self._ready = threading.Event()
        self._state = State.LOADING
        self._thread: threading.Thread | None = None
        self._loader: threading.Thread | None = None  # the background load thread we started
        self._closing = threading.Event()
        self._corrupt: str | None = None
        # changelog_sync: this process's token in the log, and how far the data follows it
        self._origin = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._log = ChangeLog(self.directory / "changes", self.directory / "lock")
        self._log_gen: str | None = None
        self._log_offset = 0
        self._log_seen = (-1, -1)  # the log's (inode, size) when last tailed (never yet)
        self._reloading = False
        self._reload_lock = threading.Lock()
        # persistence: changes not in the snapshot yet, and the scrub after a forget
        self._dirty = 0
        self._vectors_dirty = 0
        #: memories removed since the snapshot was last written without them (see persistence)
        self._forgotten = 0
        self._scrub_timer: threading.Timer | None = None
        self._save_lock = threading.Lock()  # one save at a time per process
        # freshness
        self._rescanning = False
        self._last_scan = time.monotonic()
        # What each record file looked like when the index read it (see filewatch): a file
        # another device changed has a new signature. Guarded by ``_lock``.
        # (a plain dict until a load installs the saved table: no numpy for a one-off add)
        self._sigs: MutableMapping[str, filewatch.Signature] = {}
        #: mtime of each date folder when its files last matched ``_sigs`` (see filewatch)
        self._folders: dict[str, int] = {}
        self._folders_saved: dict[str, int] = {}  # as last written to index/folders
        #: ids a change-log line named before their file arrived (kept until it does)
        self._awaiting: set[str] = set()
        self._scan_lock = threading.Lock()  # one walk of the files at a time
        self._watcher: filewatch.Watcher | None = None
        self._embedding: EmbeddingQueue | None = None
        # an import's analysis workers (see _submit): memories added in large batches,
        # the workers, and the timer that stops them once the import is over
        self._imported = 0
        self._workers: build.Workers | None = None
        self._workers_lock = threading.Lock()
        self._idle_timer: threading.Timer | None = None
        if embedder is not None:
            self._embedding = EmbeddingQueue(
                embedder,
                read_text=self._read_text,
                store_vectors=self._store_vectors,
                notice=self._notice,
            )

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

    @property
    def state(self) -> State:
        return self._state

    # ------------------------------------------------------------------ shared by every part

    def _notice(self, message: str) -> None:
        self.notices.append(message)
        for listener in list(self.notice_listeners):
            with contextlib.suppress(Exception):  # a listener's failure is not the index's
                listener(message)

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

    def _apply_op(self, data: IndexData, op: Op) -> None:
        match op:
            case Add(memory):
                data.add(memory)
                if self._embedding is not None and data is self._data:
                    self._embedding.put(memory.id, memory.text)
            case Update(memory):
                if data.update(memory) is None:
                    self._apply_op(data, Add(memory))
            case Remove(memory_id):
                data.remove(memory_id)
                if self._embedding is not None:
                    self._embedding.discard(memory_id)

    def _apply_adds(
        self, data: IndexData, ops: Sequence[Op], analysed: Analysing | None = None
    ) -> None:
        """``_apply_op`` of many adds, in order: runs of memories new to ``data`` are analysed
        and applied as one batch (``IndexData.apply_many``); any other op goes one by one.
        ``analysed``: the ops' analyses, being made in the import's workers."""
        ready = self._collect(analysed) if analysed is not None else None
        run: list[Memory] = []
        done: list[Analysis] = []  # run's analyses, when the workers made them
        ids: set[str] = set()

        def flush() -> None:
            if run:
                data.apply_many(done if ready else [_analysis.analyse(m) for m in run])
            if self._embedding is not None and data is self._data:
                for memory in run:
                    self._embedding.put(memory.id, memory.text)
            run.clear()
            done.clear()
            ids.clear()

        for i, op in enumerate(ops):
            new = isinstance(op, Add) and op.memory.id not in ids
            if new and op.memory.id not in data.catalog.doc_of:  # type: ignore[union-attr]
                run.append(op.memory)  # type: ignore[union-attr]
                ids.add(op.memory.id)  # type: ignore[union-attr]
                if ready:
                    done.append(ready[i])
                continue
            flush()
            self._apply_op(data, op)
        flush()

    def _submit(self, ops: Sequence[Op]) -> Analysing | None:
        """Hand a large batch of adds to the import's workers, to be applied at the next read
        or batch: meanwhile the caller writes the next batch's files. None: apply it now."""
        if len(ops) < IMPORT_POOL_BATCH:
            return None
        self._imported += len(ops)
        if self._imported <= len(ops):
            return None  # the first batch: maybe a one-off, not worth starting workers
        workers = self._import_workers()
        if workers is None:
            return None
        memories = [op.memory for op in ops if isinstance(op, Add)]
        if len(memories) != len(ops):
            return None
        try:
            return Analysing(ops, workers.submit(memories))
        except OSError:
            self._stop_import_workers()
            return None

    def _collect(self, analysed: Analysing) -> list[Analysis] | None:
        """The analyses of a submitted batch, one per op (None if the workers failed: the
        batch is then analysed here)."""
        try:
            results = analysed.ticket.workers.collect(analysed.ticket)
        except (_build.WorkerFailed, OSError):
            self._stop_import_workers()
            return None
        return results if len(results) == len(analysed.ops) else None

    def _import_workers(self) -> build.Workers | None:
        """The import's workers (started on first use), kept until idle or close."""
        with self._workers_lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            if self._workers is None or not self._workers.alive:
                if self._workers is not None:
                    self._workers.close()
                try:
                    # one CPU fewer than a build: this process is busy writing the files
                    self._workers = _build.Workers(max(1, _build.worker_count() - 1))
                except OSError:
                    self._workers = None
                    return None
            self._idle_timer = threading.Timer(IMPORT_POOL_IDLE_SECONDS, self._import_over)
            self._idle_timer.daemon = True
            self._idle_timer.start()
            return self._workers

    def _import_over(self) -> None:
        """No batch for a while: apply what the workers analysed, then stop them."""
        with self._lock:
            self._apply_deferred()
        self._stop_import_workers()

    def _stop_import_workers(self) -> None:
        with self._workers_lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.close()

    if TYPE_CHECKING:  # each part calls a few of the others'

        def wait_ready(self, timeout: float | None = None) -> bool: ...
        def _read_text(self, memory_id: str) -> str | None: ...
        def _store_vectors(self, ids: list[str], vectors: list[list[float]]) -> None: ...
        def _install(self, data: IndexData, gen: str | None, offset: int) -> None: ...
        def _build_into(
            self, data: IndexData, progress: Callable[[int, int], None] | None
        ) -> int: ...
        def _attach_vectors(self, data: IndexData) -> None: ...
        def _read_snapshot(self) -> tuple[IndexData, str | None, int] | None: ...
        def _tidy(self, scan: ScanResult) -> None: ...
        def _apply_deferred(self) -> None: ...
        def _replay_pending(self, data: IndexData) -> None: ...
        def _tail(self, *, reload: bool = True) -> bool: ...
        def _reload(self) -> None: ...
        def _apply_change(self, data: IndexData, change: Change) -> None: ...
        def _catch_up(self) -> None: ...
        def _refresh(self, data: IndexData, memory_id: str) -> None: ...
        def _check_awaiting(self) -> None: ...
        def _watch(self) -> None: ...
        def _maybe_rescan(self) -> None: ...
        def _save_folders(self) -> None: ...
        def _save(
            self, *, restart_log: bool = False, snapshot: bool = True, rebuilt: bool = False
        ) -> int | None: ...
        def _schedule_scrub(self) -> None: ...
        def _cancel_scrub(self) -> None: ...
        def _scrub(self) -> None: ...
        def _traces_on_disk(self) -> bool: ...
