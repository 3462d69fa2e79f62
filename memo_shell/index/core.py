"""The ``Index``: a lazily loaded, derived, disposable recall index over one data directory.

Life of an index (each step in its own module; the table in memo_shell.index.base says which
thread runs what):

1. ``Index(...)`` only remembers its arguments (``memo_shell.open()`` returns at once).
2. ``start()`` loads the snapshot (or builds from the record files) in a daemon thread, replays
   the change log and walks the files once (``lifecycle``).
3. ``add``/``update``/``remove`` never wait: before the data is installed they are queued and
   replayed at install time; after, applied before the next read (``changes``).
4. Every change this process makes is appended to the change log; every read tails the log to
   pick up other processes' changes, and reloads when another process started a new
   generation (``changelog_sync``). Files changed without a log line (a sync tool) are watched
   and rescanned (``freshness``).
5. ``close()`` writes a snapshot past a number of changes; forgetting rewrites the snapshot
   without the forgotten memories soon after, and at the latest on close (``persistence``).
6. Searches and listings wait for the load (``queries``).
"""

from __future__ import annotations

import os
import secrets
import threading
import weakref
from pathlib import Path

from memo_shell.index.base import IndexBase
from memo_shell.index.changelog_sync import ChangelogSyncMixin
from memo_shell.index.changes import ChangesMixin
from memo_shell.index.embedding import Embedder
from memo_shell.index.freshness import FreshnessMixin
from memo_shell.index.lifecycle import LifecycleMixin
from memo_shell.index.ops import State
from memo_shell.index.persistence import PersistenceMixin
from memo_shell.index.queries import QueriesMixin, Ranking
from memo_shell.store import Store

__all__ = ["Embedder", "Index", "Ranking", "State"]

#: Every open Index, so a forked child can make each one usable again (see _reset_after_fork).
_open_indexes: weakref.WeakSet[Index] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for index in list(_open_indexes):
        index._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Index(
    QueriesMixin,
    ChangesMixin,
    ChangelogSyncMixin,
    FreshnessMixin,
    PersistenceMixin,
    LifecycleMixin,
    IndexBase,
):
    """Derived, disposable, lazily loaded recall index over one data directory's records."""

    def __init__(self, store: Store, directory: Path, *, embedder: Embedder | None = None) -> None:
        super().__init__(store, directory, embedder=embedder)
        _open_indexes.add(self)

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
        self._workers_lock = threading.Lock()
        self._workers = None  # the parent's processes: theirs to stop, not ours to use
        self._idle_timer = None
        if not self._ready.is_set():
            self._thread = None
            self._data = None
            self._state = State.LOADING
            self._ready = threading.Event()
