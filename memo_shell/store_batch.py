"""Writing many new records at once (import), for ``memo_shell.store.Store``.

A part of the store kept in its own module: a batch trades the per-record fsyncs of ``write``
for two syncs of the whole file system, and at a million records its per-record cost is the
import's, so it works on ``str`` paths and one folder lookup per day, not Path objects.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from memo_shell import records, shards
from memo_shell.errors import StoreError, describe_os_error
from memo_shell.records import Memory

if TYPE_CHECKING:
    from memo_shell.disk import Disk, StrPath


def _names_in(directory: Path) -> set[str]:
    """Names in a folder (none if it does not exist yet)."""
    try:
        return set(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return set()


class BatchWrites:
    """``write_batch`` and ``withdraw_batch`` of ``Store``."""

    disk: Disk
    memories_dir: Path
    _known_dirs: set[Path]

    if TYPE_CHECKING:  # provided by Store

        def path_for(self, memory_id: str) -> Path: ...
        def _ensure_dir(self, path: Path, *, sync: bool = True) -> None: ...
        def _discard(self, path: StrPath) -> None: ...

    def write_batch(self, memories: Iterable[Memory]) -> list[str]:
        """Write many new records with two file-system syncs in all (used by import).

        All temp files are written, the file system is synced (data durable), each is moved
        onto its final name (``Disk.rename_new``: never onto a taken one), and it is synced
        again (names durable). A record whose id is taken already is skipped, never replaced:
        the ids returned are those actually written. Nothing is acknowledged before the end;
        on failure every temp file of the batch is removed and the records it had moved into
        place are deleted again.
        """
        batch = list(memories)
        try:
            return self._write_batch_once(batch)
        except StoreError as exc:
            if not isinstance(exc.__cause__, FileNotFoundError):
                raise
            # a folder vanished mid-batch (another process's `forget --all`): the batch left
            # nothing behind and nothing was acknowledged, so write it again, once
            return self._write_batch_once(batch)

    def _write_batch_once(self, memories: list[Memory]) -> list[str]:
        # Per record only string work and three file calls (create, write, close) before the
        # sync, one (rename_new) after: at a million records every Path object and stat counts.
        disk = self.disk
        staged: list[tuple[str, str, str]] = []  # temp name, final name, id
        moved: list[str] = []
        written: list[str] = []
        # per date folder: its path and the names already in it (one listing per folder, not
        # a stat per record; rename_new below is the real, race-free guard against replacing)
        folders: dict[int, tuple[Path, str, set[str]]] = {}
        try:
            for memory in memories:
                memory_id = memory.id
                data = records.encode(memory)
                day = records.id_milliseconds(memory_id) // 86_400_000
                folder = folders.get(day)
                if folder is None:
                    directory = self.path_for(memory_id).parent
                    self._ensure_dir(directory, sync=False)
                    folder = folders[day] = (directory, os.fspath(directory), _names_in(directory))
                directory, prefix, names = folder
                name = memory_id + shards.RECORD_SUFFIX
                if name in names:
                    continue  # already present, or an earlier line of this batch
                names.add(name)
                temp = f"{prefix}/{shards.temp_name(memory_id)}"
                try:
                    fd = disk.open_new(temp)
                except FileNotFoundError:
                    # the folder vanished since we made it (another process's `forget --all`):
                    # the cache of folders known to exist is stale, so heal it and retry
                    self._known_dirs.clear()
                    self._ensure_dir(directory, sync=False)
                    fd = disk.open_new(temp)
                staged.append((temp, f"{prefix}/{name}", memory_id))
                try:
                    disk.write_all(fd, data)
                finally:
                    disk.close(fd)
            if not staged:
                return []
            disk.sync_filesystem(self.memories_dir)
            for temp, final, memory_id in staged:
                try:
                    disk.rename_new(temp, final)
                except FileExistsError:
                    self._discard(temp)
                    continue  # another process (or an earlier line) made it meanwhile
                moved.append(final)
                written.append(memory_id)
            disk.sync_filesystem(self.memories_dir)
        except BaseException as exc:
            # Also on StoreError from a mkdir, InvalidRecord from encode, or Ctrl-C: no debris.
            self._known_dirs.clear()  # dirs made for this batch may not be durable: re-check
            for temp, _final, _id in staged:
                self._discard(temp)
            for final in moved:
                self._discard(final)
            if isinstance(exc, OSError):
                raise StoreError(describe_os_error(exc, "saving the imported memories")) from exc
            raise
        return written

    def withdraw_batch(self, ids: Iterable[str]) -> None:
        """Remove records a batch wrote that nobody was told about (an import that stopped
        while this batch was written ahead of the index), then sync, so they stay gone.

        Best effort: a file that cannot be removed is a complete, durable record, which a
        later import of the same lines finds present.
        """
        removed = False
        for memory_id in ids:
            with contextlib.suppress(OSError):
                self.disk.unlink(self.path_for(memory_id))
                removed = True
        if removed:
            with contextlib.suppress(OSError):
                self.disk.sync_filesystem(self.memories_dir)
