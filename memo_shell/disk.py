"""The one seam through which the store touches the file system.

Every durable step (create, write, fsync, rename, unlink, mkdir, directory fsync) is a method
here, so tests can record a run's operations and replay crash prefixes, or inject ENOSPC / EIO at
any step, without the store knowing. Nothing here retries: after a failed fsync the page cache
state is unknown (see PostgreSQL's "fsyncgate"), so the caller must treat the write as lost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import stat
import sys
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def _load_syncfs():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


_SYNCFS = _load_syncfs()


class Disk:
    """Real POSIX file operations. Subclass to observe or fail them in tests."""

    def open_new(self, path: Path) -> int:
        """Create a file that must not exist yet, private to the user."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)

    def write_all(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def rename(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def unlink(self, path: Path) -> None:
        os.unlink(path)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path, DIR_MODE)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_filesystem(self, path: Path) -> None:
        """Make everything written so far on ``path``'s file system durable in one call.

        Used by batched import: one ``syncfs`` replaces thousands of per-file fsyncs. Where
        ``syncfs`` is missing, ``sync()`` is the portable (coarser) equivalent.
        """
        if _SYNCFS is None:
            os.sync()
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if _SYNCFS(fd) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), str(path))
        finally:
            os.close(fd)

    def read(self, path: Path, limit: int) -> bytes:
        """Read a whole file, refusing (by fstat, before reading) anything over ``limit`` bytes.

        O_NONBLOCK so a named pipe at a record's path cannot block open() forever; anything
        but a regular file (pipe, directory, device) is refused before reading.
        """
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise NotARegularFile(path, st.st_mode)
            size = st.st_size
            if size > limit:
                raise FileTooLarge(path, size, limit)
            chunks = []
            remaining = size + 1  # one extra byte notices a file that grew since fstat
            while remaining > 0:
                chunk = os.read(fd, remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
            if len(data) > limit:
                raise FileTooLarge(path, len(data), limit)
            return data
        finally:
            os.close(fd)


class FileTooLarge(OSError):
    """A file larger than any record can be: refused before it is read into memory."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(f"{path} is {size} bytes, over the {limit}-byte record limit")
        self.path = path
        self.size = size


class NotARegularFile(OSError):
    """A pipe, directory or device where a record file should be: refused, never read."""

    def __init__(self, path: Path, mode: int) -> None:
        super().__init__(f"{path} is not a regular file ({stat.filemode(mode)})")
        self.path = path
