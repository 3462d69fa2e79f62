"""The quarantine folder's file operations: moving a bad file aside, logging why, and deleting
every quarantined copy of a forgotten memory. ``Store`` owns the policy; these own the files.

Quarantine keeps what could not be read, so it may hold the last copy of some memory's text:
nothing here ever replaces a file there, and forget must reach it all the same.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import stat
import time
from pathlib import Path

from memo_shell import records
from memo_shell.disk import Disk
from memo_shell.errors import StoreError, describe_os_error

LOG_NAME = "log.jsonl"


def move_aside(disk: Disk, path: Path, directory: Path) -> Path:
    """Move ``path`` into ``directory`` under a free name, never over another file there:
    link, then unlink (a rename would silently replace a same-named quarantined file)."""
    for n in itertools.count():
        target = directory / (path.name if n == 0 else f"{path.name}.{n}")
        if target.exists():
            continue
        try:
            disk.link(path, target)
        except FileExistsError:
            continue  # another process quarantined a file of that name just now
        disk.unlink(path)
        return target
    raise AssertionError("unreachable: itertools.count() never ends")


def make_private(target: Path) -> None:
    """0600: a quarantined file may hold memory text and have arrived world-readable. Never
    through a link: a symlink's mode cannot be set (Linux raises), and a file with other hard
    links is also someone else's file, perhaps outside the data dir."""
    with contextlib.suppress(OSError):
        st = os.lstat(target)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
            os.chmod(target, 0o600, follow_symlinks=False)


def log(directory: Path, original: Path, target: Path, reason: str) -> None:
    """Append one line to the quarantine log (private: it names files and says what is wrong).

    Non-blocking and never through a link: a named pipe put there must not hang the caller,
    and a symlink must not make it append to a file elsewhere. Best effort.
    """
    line = json.dumps(
        {"file": str(original), "moved_to": str(target), "reason": reason, "at": time.time()}
    )
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
    try:
        fd = os.open(directory / LOG_NAME, flags, 0o600)
    except OSError:
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.write(fd, (line + "\n").encode("utf-8"))
    except OSError:
        pass
    finally:
        os.close(fd)


#: What a quarantined file holds: (inode, size, mtime) -> the id it decodes as, or None.
IdCache = dict[tuple[int, int, int], str | None]


def _holds(disk: Disk, entry: os.DirEntry[str], cache: IdCache) -> str | None:
    """The id a quarantined file decodes as (None: not a record), read once per version, so
    forgetting many memories does not re-read the whole quarantine for each."""
    try:
        st = entry.stat(follow_symlinks=False)
    except OSError:
        return None
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in cache:
        try:
            cache[key] = records.decode(disk.read(Path(entry.path), records.MAX_FILE_BYTES)).id
        except (OSError, records.RecordError):
            cache[key] = None
    return cache[key]


def purge(disk: Disk, directory: Path, memory_id: str, cache: IdCache | None = None) -> int:
    """Delete every quarantined copy of a memory (forget must reach them too); returns how many.

    A copy is a file whose name holds the id (a second copy, a sync tool's conflict or temp
    file) or one that still decodes as that record under another name. Files that decode as
    nothing are kept: they cannot be told apart from other memories' debris.
    """
    cache = {} if cache is None else cache
    try:
        with os.scandir(directory) as it:
            entries = [e for e in it if e.is_file(follow_symlinks=False)]
    except OSError:
        return 0
    purged = 0
    for entry in entries:
        path = Path(entry.path)
        if path.name == LOG_NAME:
            continue
        if memory_id not in path.name and _holds(disk, entry, cache) != memory_id:
            continue
        try:
            disk.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(describe_os_error(exc, f"forgetting {memory_id}")) from exc
        purged += 1
    if purged:
        with contextlib.suppress(OSError):
            disk.fsync_dir(directory)
    return purged
