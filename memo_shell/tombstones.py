"""Forget wins: an empty, synced marker file per forgotten id, ``<data>/forgotten/<ULID>``.

A sync tool that sees one device delete a file and another edit it keeps the edit (Syncthing
does), so a forgotten memory pinned elsewhere before the devices met would come back, text and
all. The marker travels with the data; every device that has it deletes a record file with that
id whenever one appears, and refuses to pin or tag it. The marker holds no text (it is empty),
only the id in its name, which the sync tool's own database keeps anyway.

Markers are kept ``KEEP_DAYS`` after they were written (their mtime, which sync tools copy),
then removed: a device that stays offline longer than that, holding an edited copy of a
forgotten memory, brings it back. A year covers a laptop left in a drawer; an empty file costs
an inode, no data blocks.

Several devices forgetting the same id at once make the sync tool keep conflict copies of the
marker (``<ULID>.sync-conflict-…``); any name that is an id plus a known conflict suffix counts
as the marker, and ``tidy`` removes the copies.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable
from pathlib import Path

from memo_shell import records
from memo_shell.conflicts import conflict_original

DIR_NAME = "forgotten"
#: How long a marker is kept (see the module docstring).
KEEP_DAYS = 365


def _marker_id(name: str) -> str | None:
    """The id a file in ``forgotten/`` stands for (a marker or a sync tool's copy of one)."""
    if records.is_valid_id(name):
        return name
    original = conflict_original(name)
    if original is not None and records.is_valid_id(original):
        return original
    return None


class Tombstones:
    """The ``forgotten/`` directory of one data directory."""

    def __init__(self, root: Path) -> None:
        self.directory = Path(root) / DIR_NAME
        self._seen: tuple[int, int] | None = None  # (inode, mtime ns) of the listed directory
        self._ids: frozenset[str] = frozenset()
        #: monotonic time of the next tidy a scan may run (memo_shell.sync.reconcile)
        self.next_tidy = 0.0

    def _fingerprint(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.directory)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def ids(self) -> frozenset[str]:
        """Every forgotten id; re-listed only when the directory changed (one ``stat``)."""
        seen = self._fingerprint()
        if seen is None:
            self._seen, self._ids = None, frozenset()
            return self._ids
        if seen != self._seen:
            try:
                with os.scandir(self.directory) as it:
                    found = {_marker_id(entry.name) for entry in it}
            except FileNotFoundError:
                found = set()
            found.discard(None)
            self._ids = frozenset(found)  # type: ignore[arg-type]
            self._seen = seen
        return self._ids

    def has(self, memory_id: str) -> bool:
        return memory_id in self.ids()

    def add(self, memory_ids: Iterable[str]) -> None:
        """Write a marker per id, durably (one directory fsync for all of them).

        An empty file is complete the moment it exists, so there is no temp file to rename.
        """
        created = False
        for memory_id in memory_ids:
            if not records.is_valid_id(memory_id):
                continue
            if not created:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.directory / memory_id, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
            created = True
        if created:
            _fsync_dir(self.directory)

    def discard(self, memory_id: str) -> None:
        """Drop an id's markers (an undo put the memory back on purpose)."""
        if memory_id not in self.ids():
            return
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as it:
            for entry in it:
                if _marker_id(entry.name) == memory_id:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
        _fsync_dir(self.directory)

    def tidy(self, now: float | None = None) -> int:
        """Fold conflict copies into their marker and remove expired markers; returns how many
        files were removed."""
        now = time.time() if now is None else now
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        names = {entry.name for entry in entries}
        for entry in entries:
            memory_id = _marker_id(entry.name)
            if memory_id is None:
                continue
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
                if entry.name != memory_id:  # a sync tool's copy of a marker
                    if memory_id not in names:
                        os.rename(entry.path, self.directory / memory_id)
                        names.add(memory_id)
                    else:
                        os.unlink(entry.path)
                    removed += 1
                elif age > KEEP_DAYS * 86_400:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                continue
        if removed:
            with contextlib.suppress(OSError):
                _fsync_dir(self.directory)
        return removed


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
