"""Noticing what a sync tool (or another program) did to the record files.

Two mechanisms, the second a fallback for the first:

- ``Watcher``: inotify (through ``watchfiles``, a Rust-backed, well-kept library) on the data
  directory, in a daemon thread. Events name files; the index re-checks those ids at once, so a
  memory synced from another device is recallable in an open process within a second of landing.
- ``Signature``s: (mtime ns, size) of each record file as the index last read it, kept beside
  the snapshot (``index/files``), and the mtime of each date folder whose files all matched
  (``index/folders``). A pin or tag made on another device arrives as a new file renamed into
  place, with that device's modification time: its folder's mtime moves, and the file's
  signature differs. So the periodic rescan and each load find changed files, not only new and
  missing ones, for one ``stat`` per date folder plus one per file in the folders that moved.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Container, Iterable, Mapping
from pathlib import Path

from memo_shell.index.files import SnapshotError, read_snapshot, write_snapshot
from memo_shell.lazy import lazy

np = lazy("numpy")

#: (mtime ns, size). Not the inode: a backup restore or ``cp -a`` gives every file a new inode
#: without changing a byte, and re-reading a whole store for that would be waste. Sync tools
#: (Syncthing, rsync -a, unison) copy the mtime of the edit, which differs from the old one.
Signature = tuple[int, int]
FOLDERS_NAME = "folders"


def signature(path: Path | str) -> Signature | None:
    """(mtime ns, size) of a file, or None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def save_folders(directory: Path, folders: dict[str, int]) -> int:
    """Write the folder mtimes (small: one per date folder) atomically, under the index lock.

    Written on its own, whenever they moved: what they vouch for ("the snapshot plus the change
    log reflect every file in this folder") holds because every change the index picks up from
    the files is also appended to the change log.
    """
    return write_snapshot(directory / FOLDERS_NAME, {"folders": folders}, {})


def load_folders(directory: Path) -> dict[str, int]:
    try:
        header, _arrays = read_snapshot(directory / FOLDERS_NAME)
        return {str(k): int(v) for k, v in header["folders"].items()}
    except (FileNotFoundError, SnapshotError, KeyError, TypeError, ValueError, AttributeError):
        return {}


def folder_mtimes(folders: Iterable[Path]) -> dict[str, int]:
    """Current mtimes of folders, leaving out racy ones (see RACY_SECONDS)."""
    racy_after = (time.time() - RACY_SECONDS) * 1e9
    out = {}
    for folder in folders:
        with contextlib.suppress(OSError):
            mtime = os.stat(folder).st_mtime_ns
            if mtime < racy_after:
                out[str(folder)] = mtime
    return out


#: A folder modified this recently may change again within the file system's timestamp
#: granularity without its mtime moving ("racy" like git's index): it is re-checked next time.
RACY_SECONDS = 2.0


def changed_in(
    shards: dict[Path, list[str]],
    known: Container[str],
    signatures: Mapping[str, Signature],
    folders: dict[str, int],
) -> tuple[list[str], dict[str, Signature], dict[str, int]]:
    """Which indexed records changed on disk, stat-ing only files in folders whose mtime moved.

    Every way a sync tool or memo-shell replaces a record (a temp file renamed over it) changes
    its folder's mtime, so an unchanged folder needs no look inside: a load costs one ``stat``
    per date folder, not per memory. (An editor rewriting a file in place is seen by the
    watcher, or by ``doctor``.) Returns (changed ids, signatures to adopt for files indexed
    before signatures existed, the folders' mtimes to remember).
    """
    changed: list[str] = []
    adopt: dict[str, Signature] = {}
    seen: dict[str, int] = {}
    racy_after = (time.time() - RACY_SECONDS) * 1e9
    for folder, ids in shards.items():
        key = str(folder)
        try:
            mtime = os.stat(key).st_mtime_ns
        except OSError:
            continue
        if folders.get(key) != mtime:
            for memory_id in ids:
                if memory_id not in known:
                    continue  # new: the caller reads it anyway
                sig = signature(os.path.join(key, memory_id + ".memo"))
                if sig is None:
                    continue
                old = signatures.get(memory_id)
                if old is None:
                    adopt[memory_id] = sig
                elif old != sig:
                    changed.append(memory_id)
        if mtime < racy_after:
            seen[key] = mtime
    return changed, adopt, seen


class Watcher:
    """Calls ``on_change(paths)`` from a daemon thread when files under ``root`` change.

    Once the watches are in place it reports ``{root}`` (anything may have changed between the
    index's last walk and now: the caller walks everything once). Stops when ``stop`` is set or
    when the owner of ``on_change`` is garbage-collected (the callbacks are weak references, so
    a handle nobody closed does not keep an inotify instance forever). ``start`` returns False
    if watching is impossible (no ``watchfiles``): the caller's periodic rescan then suffices.
    """

    def __init__(
        self,
        root: Path,
        on_change: Callable[[set[Path]], None],
        stop: threading.Event,
        on_error: Callable[[str], None],
    ) -> None:
        self.root = root
        self._on_change = weakref.WeakMethod(on_change)
        self._on_error = weakref.WeakMethod(on_error)
        self.stop = stop
        self.started = threading.Event()  # set once the watches are in place (tests wait on it)
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        try:
            import watchfiles  # noqa: F401  (the Rust extension may be missing on odd platforms)
        except ImportError:
            return False
        self._thread = threading.Thread(target=self._run, name="memo-index-watch", daemon=True)
        self._thread.start()
        return True

    def join(self, timeout: float) -> None:
        """Wait for the thread to end (after ``stop`` is set): it leaves native code cleanly."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        import watchfiles

        # watchfiles logs every batch at INFO; the app has its own notices
        logging.getLogger("watchfiles").setLevel(logging.WARNING)
        try:
            for changes in watchfiles.watch(
                self.root,
                watch_filter=None,
                debounce=400,
                step=50,
                stop_event=self.stop,
                rust_timeout=500,
                yield_on_timeout=True,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                callback = self._on_change()
                if callback is None:
                    return  # the index is gone
                paths = {Path(path) for _change, path in changes}
                if not self.started.is_set():
                    self.started.set()
                    paths.add(self.root)
                if paths:
                    callback(paths)
                del callback
        except Exception as exc:  # inotify limits, a vanished root: the rescan takes over
            report = self._on_error()
            if report is not None:
                report(f"not watching {self.root} for changes ({exc}); checking every minute")
        finally:
            self.started.set()


def ids_in(paths: Iterable[Path], memories_dir: Path, suffix: str) -> tuple[set[str], bool]:
    """(ids of record files named by ``paths``, whether anything else changed in the shards or
    beside them — a conflict copy, a forget marker, a new folder — that needs a full scan)."""
    ids: set[str] = set()
    other = False
    for path in paths:
        name = path.name
        if name.endswith(suffix) and memories_dir in path.parents and len(name) == 26 + len(suffix):
            ids.add(name[: -len(suffix)])
        elif name.endswith(".tmp") or name.startswith((".syncthing.", "~syncthing~")):
            continue  # a temp file: its rename into place is the event that matters
        elif name in (".stfolder", ".stignore") or ".stversions" in path.parts:
            continue
        else:
            other = True
    return ids, other
