"""The one seam through which the store touches the file system.

Every durable step (create, write, fsync, rename, unlink, mkdir, directory fsync) is a method
here, so tests can record a run's operations and replay crash prefixes, or inject ENOSPC / EIO at
any step, without the store knowing. Nothing here retries: after a failed fsync the page cache
state is unknown (see PostgreSQL's "fsyncgate"), so the caller must treat the write as lost.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import stat
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: A path as the store passes it: a Path, or (in the batch path, where Path objects cost) a str.
StrPath = str | os.PathLike[str]

FILE_MODE = 0o600
DIR_MODE = 0o700


def _libc(name: str, argtypes: list[Any]) -> Callable[..., int] | None:
    """A libc function (Linux), or None where there is none; looked up on first use: ctypes
    costs the app's start-up ~7 ms, and only a batched import needs these. ``CDLL(None)`` is the
    process's own symbols (libc among them), so nothing is searched for on disk."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, or None."""
    import ctypes

    return _libc("syncfs", [ctypes.c_int])


#: ``renameat2`` arguments: the flag that refuses to replace an existing name, and "relative to
#: the working directory" for both paths (they are absolute or cwd-relative like any path here).
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
#: errnos meaning "this kernel or file system cannot rename without replacing" (not "taken").
_NO_NOREPLACE = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}


@functools.cache
def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    """libc's ``renameat2`` (glibc 2.28+ / musl 1.2.2+), or None."""
    import ctypes

    c_int, c_char_p = ctypes.c_int, ctypes.c_char_p
    return _libc("renameat2", [c_int, c_char_p, c_int, c_char_p, ctypes.c_uint])


class Disk:
    """Real POSIX file operations. Subclass to observe or fail them in tests."""

    #: set once ``renameat2`` was refused here (an old kernel, a file system without the flag):
    #: every later ``rename_new`` goes straight to link + unlink instead of asking again
    _noreplace_refused = False

    def open_new(self, path: StrPath) -> int:
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

    def link(self, src: StrPath, dst: StrPath) -> None:
        """Give ``src``'s file the name ``dst`` too, failing (FileExistsError) if it is taken.

        This is how a new record appears: unlike a rename, a hard link never replaces an
        existing file, so an id collision can never destroy an acknowledged memory. On a file
        system without hard links (FAT, some network and FUSE mounts) a checked rename stands
        in; it has a tiny race window, but only there.
        """
        try:
            os.link(src, dst, follow_symlinks=False)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from None
            os.rename(src, dst)

    def rename_new(self, src: StrPath, dst: StrPath) -> None:
        """Move ``src`` to the name ``dst``, failing (FileExistsError) if ``dst`` is taken.

        Atomic and never replacing, like ``link``, but one directory change instead of two
        (link, then unlink of the temp name). Where the kernel, libc or file system refuses
        ``RENAME_NOREPLACE``, ``link`` then ``unlink`` do the same job (the temp name's unlink
        may fail: it is then debris for ``Store.sweep_temps``, not an error, since the record
        itself is in place).
        """
        if not self._noreplace_refused:
            if self.rename_noreplace(src, dst):
                return
            self._noreplace_refused = True
        self.link(src, dst)
        with contextlib.suppress(OSError):
            self.unlink(src)

    def rename_noreplace(self, src: StrPath, dst: StrPath) -> bool:
        """One ``renameat2(RENAME_NOREPLACE)``; False (nothing done) where it is refused."""
        fn = _renameat2()
        if fn is None:
            return False
        if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
            return True
        import ctypes

        err = ctypes.get_errno()
        if err in _NO_NOREPLACE:
            return False
        raise OSError(err, os.strerror(err), os.fsdecode(src), None, os.fsdecode(dst))

    def unlink(self, path: StrPath) -> None:
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
        syncfs = _syncfs()
        if syncfs is None:
            os.sync()
            return
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if syncfs(fd) != 0:
                import ctypes

                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), str(path))
        finally:
            os.close(fd)

    def read(self, path: Path, limit: int) -> bytes:
        """Read a whole file, refusing (by fstat, before reading) anything over ``limit`` bytes.

        O_NONBLOCK so a named pipe at a record's path cannot block open() forever; anything
        but a regular file (pipe, directory, device, symbolic link) is refused before reading.
        """
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symlink: reading it would read outside the store
                raise NotARegularFile(path, stat.S_IFLNK) from exc
            raise
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


#: errnos meaning "this file system cannot make hard links" (not "this name is taken").
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS}


#: What ``atomic_write`` takes, whole or in chunks (a snapshot's arrays go in as memoryviews).
Chunk = bytes | bytearray | memoryview


def atomic_write(path: Path, data: Chunk | Iterable[Chunk], mode: int = FILE_MODE) -> int:
    """Replace ``path`` with ``data`` (bytes, or chunks) all at once, durably, with ``mode``.

    Temp file beside it (created O_EXCL, then ``fchmod`` so the umask cannot widen ``mode``)
    -> write -> fsync -> rename -> fsync the directory. A crash leaves the old file or the new
    one, never a mix; the temp file is removed on any failure. Used for every whole-file write
    outside the record store (config, theme choice, index snapshot and log, exports), so none
    of them can leave a torn file or one other users can read. Returns the bytes written.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    size = 0
    try:
        try:
            os.fchmod(fd, mode)
            for chunk in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                view = memoryview(chunk)
                size += len(view)
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return size


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
