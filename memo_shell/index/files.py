"""The index directory's files: one lock, one snapshot, one change log.

``index/lock``      fcntl lock: exclusive while writing the snapshot or appending to the log
``index/snapshot``  everything derived, one file, replaced atomically (temp + fsync + rename)
``index/changes``   append-only log of adds/updates/removes by every process using the data dir

Why a log as well as a snapshot: a CLI process that adds one memory must not load (or rewrite) a
100k-memory index. It appends one line to the log; a TUI running at the same time tails the log on
its next search (one ``stat``) and indexes the new file; the next process to load the snapshot
replays the log from the offset the snapshot recorded. The log's first line carries a generation;
when a snapshot is written and the log has grown, the log is restarted with a new generation,
under the same lock, so the snapshot covers everything in the old log. A reader that sees the
generation change reloads the snapshot.

Snapshot format: ``MAGIC``, version, a 4-byte header length, CRC-32 of everything after the fixed
part, then a msgpack header (strings and the dtype/shape/offset of each array) and the raw array
bytes. Loading is one read, one CRC and ``numpy.frombuffer`` views: no per-term objects.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import secrets
import shutil
import stat
import struct
import weakref
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import msgpack

from memo_shell import locks
from memo_shell.disk import atomic_write
from memo_shell.lazy import lazy

if TYPE_CHECKING:
    import numpy as np
else:  # only snapshots need it; appending to the change log must stay light
    np = lazy("numpy")

SNAPSHOT_MAGIC = b"MEMOIDX\x00"
SNAPSHOT_VERSION = 5  # 4: lexical weights by provenance (index/sides.py); 5: id columns
_FIXED = struct.Struct(">8sHII")  # magic, version, header length, crc32 of the rest
LOG_HEADER = "memo-shell-changes"
#: Restart the change log after a snapshot once it is bigger than this.
LOG_ROTATE_BYTES = 4 * 2**20


class SnapshotError(Exception):
    """The snapshot is missing, foreign, from another version, torn or inconsistent."""


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold the index directory's lock; a wait of over a second says whom it waits for."""
    lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with locks.hold(lock_path, "updating the index"):
        yield


def wipe(directory: Path) -> None:
    """Delete everything in the index directory but its lock file, under that lock.

    The lock file stays (empty): a process waiting on it, or holding it to write a snapshot,
    must keep excluding the others; deleting it would let a second lock file appear beside it.
    Processes that had the index loaded see the log gone and reload instead of saving.
    """
    if not directory.exists():
        return
    with locked(directory / "lock"):
        for entry in os.scandir(directory):
            if entry.name == "lock":
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _open_regular(path: Path) -> BinaryIO:
    """Open a file for reading only if it is a regular one: a named pipe (or device) put where
    the snapshot or the log belongs would block ``open()`` or ``read()`` forever, so it is
    opened non-blocking and refused (as damaged) before anything is read."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SnapshotError(f"{path.name} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _atomic_write(path: Path, chunks: list[bytes | memoryview]) -> None:
    atomic_write(path, chunks, 0o600)


def sweep_temps(directory: Path) -> int:
    """Delete temp files of writers that died mid-write (their pid is gone). Caller holds the lock.

    Temp names are ``.<name>.<pid>.<random>.tmp``; a live writer's file is left alone.
    """
    swept = 0
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            parts = entry.name.split(".")
            if not (entry.name.startswith(".") and entry.name.endswith(".tmp") and len(parts) >= 4):
                continue
            try:
                pid = int(parts[-3])
            except ValueError:
                continue
            if pid == os.getpid() or locks.pid_alive(pid):
                continue
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                swept += 1
    return swept


#: Arrays start on this boundary (from the start of the file), so mapped views are aligned.
ALIGN = 64
#: Snapshots at least this big are memory-mapped rather than read: pages recall never touches
#: (forward lists of memories no query reaches, most postings) stay on disk, out of the RSS.
MAP_BYTES = 8 * 2**20
#: Verification reads the file in pieces of this size (page cache, not this process's memory).
_CHUNK = 4 * 2**20


class Arrays(dict[str, "np.ndarray"]):
    """A snapshot's arrays by name, with ``bounds``: (min, max) of each non-empty integer
    array, found while the checksum was verified, so range checks need not touch (and so page
    in) a mapped array; and ``source``, the mapped file (None for a snapshot read whole)."""

    bounds: dict[str, tuple[int, int]]
    source: MappedFile | None = None


class MappedFile:
    """The file behind a snapshot's mapped arrays, to read a few scattered bytes of them.

    Why: touching a mapped page maps the whole page-cache folio around it (up to megabytes for
    a file just written), so a recall that reads a few hundred bytes here and there (one
    memory's forward list, one preview) grew the resident set by tens of kilobytes each, and a
    hundred recalls at a million memories by over 200 MB (bench/recall.py
    ``rss_open_recall_mb``). A ``pread`` copies only the bytes asked for. Holds the mapping,
    so its addresses cannot be reused by anything else while this object lives.
    """

    def __init__(self, fd: int, mapping: Any) -> None:
        self.fd = fd
        self._mapping = mapping
        self._base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
        self._size = len(mapping)
        weakref.finalize(self, os.close, fd)

    def slice(self, array: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """``array[lo:hi]`` (1-D), read with ``pread`` if ``array`` lies in this mapping."""
        at = array.ctypes.data - self._base
        if not 0 <= at < self._size or hi <= lo:
            return array[lo:hi]
        want = (hi - lo) * array.itemsize
        try:
            data = os.pread(self.fd, want, at + lo * array.itemsize)
        except OSError:
            data = b""
        if len(data) != want:  # cannot happen to a snapshot (replaced, never rewritten)
            return array[lo:hi]
        return np.frombuffer(data, dtype=array.dtype)


def _layout(arrays: dict[str, np.ndarray], start: int) -> tuple[dict[str, list[Any]], int]:
    """dtype, shape, offset (from ``start``, the first byte after the header) and size of each
    array, each starting on an ALIGN boundary of the file; returns (layout, blob length)."""
    layout = {}
    offset = 0
    for name, array in arrays.items():
        offset += -(start + offset) % ALIGN
        layout[name] = [array.dtype.str, list(array.shape), offset, array.nbytes]
        offset += array.nbytes
    return layout, offset


def write_snapshot(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> int:
    """Write header + arrays atomically; returns the file size. Caller holds the lock."""
    data = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    # the header holds the offsets, and its length moves them: settle in a step or two
    start = _FIXED.size
    for _attempt in range(8):
        layout, total = _layout(data, start)
        head = msgpack.packb({"meta": header, "arrays": layout}, use_bin_type=True)
        if _FIXED.size + len(head) == start:
            break
        start = _FIXED.size + len(head)
    # (had it not settled, the offsets written still match the head: arrays merely unaligned)
    chunks: list[bytes | memoryview] = [head]
    at = 0
    for name, array in data.items():
        gap = layout[name][2] - at
        if gap:
            chunks.append(bytes(gap))
        chunks.append(memoryview(array.reshape(-1)).cast("B"))  # (flat: (0, n) will not cast)
        at = layout[name][2] + array.nbytes
    crc = 0
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
    fixed = _FIXED.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, len(head), crc)
    _atomic_write(path, [fixed, *chunks])
    return _FIXED.size + len(head) + total


def read_snapshot(path: Path) -> tuple[dict[str, Any], Arrays]:
    """Read and verify a snapshot; raises FileNotFoundError or SnapshotError.

    The whole file is checksummed, in pieces, before anything in it is used; a big one is then
    memory-mapped (read-only views), a small one read. The snapshot is only ever replaced by a
    rename, never rewritten in place, so a mapping stays valid for as long as it is used.
    """
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        fixed = f.read(_FIXED.size)
        if len(fixed) < _FIXED.size:
            raise SnapshotError("index snapshot is truncated")
        magic, version, head_len, crc = _FIXED.unpack(fixed)
        if magic != SNAPSHOT_MAGIC:
            raise SnapshotError("index snapshot is not a memo-shell index")
        if version != SNAPSHOT_VERSION:
            raise SnapshotError(
                f"index snapshot is format {version}, this memo-shell writes {SNAPSHOT_VERSION}"
            )
        head = f.read(head_len) if head_len <= size else b""
        running = zlib.crc32(head)
        try:
            parsed = msgpack.unpackb(head, raw=False, strict_map_key=False)
            meta, layout = parsed["meta"], parsed["arrays"]
            start = _FIXED.size + head_len
            spans = _spans(layout, size - start)
        except (ValueError, TypeError, KeyError, AttributeError, msgpack.UnpackException):
            parsed = None  # a checksum mismatch, most likely: said below if so
        bounds: dict[str, tuple[int, int]] = {}
        if parsed is None:
            running = _crc_rest(f, running)
        else:
            running = _verify(f, start, spans, running, bounds)
        if running != crc:
            raise SnapshotError("index snapshot checksum mismatch (torn or damaged file)")
        if parsed is None:
            raise SnapshotError("index snapshot is malformed: its header cannot be read")
        try:
            if size >= MAP_BYTES:
                buffer: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            else:
                f.seek(0)
                buffer = f.read()
            arrays = Arrays()
            arrays.bounds = bounds
            if isinstance(buffer, mmap.mmap):
                arrays.source = MappedFile(os.dup(f.fileno()), buffer)
            for name, (dtype, shape, offset, count) in spans.items():
                array = np.frombuffer(buffer, dtype=dtype, count=count, offset=start + offset)
                arrays[name] = array.reshape(shape)
            return meta, arrays
        except (ValueError, TypeError, OSError) as exc:
            raise SnapshotError(f"index snapshot is malformed: {exc}") from exc


def _spans(layout: Any, room: int) -> dict[str, tuple[np.dtype, list[int], int, int]]:
    """(dtype, shape, offset, item count) of each array, checked against the file's length."""
    out = {}
    for name, (dtype_str, shape, offset, nbytes) in layout.items():
        dtype = np.dtype(dtype_str)
        if dtype.hasobject or not dtype.itemsize:
            raise ValueError(f"array {name} has dtype {dtype_str}")
        if offset < 0 or nbytes < 0 or offset + nbytes > room:
            raise SnapshotError(f"index snapshot array {name} runs past the end")
        if nbytes % dtype.itemsize or int(np.prod(shape)) * dtype.itemsize != nbytes:
            raise ValueError(f"array {name} has the wrong size for its shape")
        out[name] = (dtype, list(shape), int(offset), nbytes // dtype.itemsize)
    return out


def _crc_rest(f: BinaryIO, running: int) -> int:
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    while n := f.readinto(buf):  # type: ignore[attr-defined]
        running = zlib.crc32(view[:n], running)
    return running


def _verify(
    f: BinaryIO,
    start: int,
    spans: dict[str, tuple[np.dtype, list[int], int, int]],
    running: int,
    bounds: dict[str, tuple[int, int]],
) -> int:
    """The checksum of everything from ``start`` on, read in order, noting the (min, max) of
    each integer array on the way (one pass over the file, no copy of it kept)."""
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    at = 0  # bytes read since start
    for name, (dtype, _shape, offset, count) in sorted(spans.items(), key=lambda kv: kv[1][2]):
        if offset < at:  # overlapping arrays: checksum only (the layout is not ours)
            continue
        while at < offset:  # alignment padding
            n = f.readinto(view[: min(_CHUNK, offset - at)])  # type: ignore[attr-defined]
            if not n:
                return running
            running = zlib.crc32(view[:n], running)
            at += n
        integer = dtype.kind in "iu" and count > 0
        low, high = None, None
        step = _CHUNK - _CHUNK % dtype.itemsize
        left = count * dtype.itemsize
        while left:
            n = f.readinto(view[: min(step, left)])  # type: ignore[attr-defined]
            if not n:
                return running
            running = zlib.crc32(view[:n], running)
            if integer:
                whole = n - n % dtype.itemsize
                if whole:
                    part = np.frombuffer(buf, dtype=dtype, count=whole // dtype.itemsize)
                    lo, hi = int(part.min()), int(part.max())
                    low = lo if low is None else min(low, lo)
                    high = hi if high is None else max(high, hi)
            at += n
            left -= n
        if low is not None and high is not None:
            bounds[name] = (low, high)
    return _crc_rest(f, running)


@dataclass(frozen=True, slots=True)
class Change:
    """One line of the change log."""

    op: str  # "+" added, "~" updated (pin/tags), "-" removed
    id: str
    origin: str  # the writing Index instance's token, so it can skip its own lines


class ChangeLog:
    """The append-only change log shared by all processes using one data directory."""

    def __init__(self, path: Path, lock_path: Path) -> None:
        self.path = path
        self.lock_path = lock_path

    def generation(self) -> str | None:
        """The log's generation (first line), or None if there is no log yet."""
        try:
            with _open_regular(self.path) as f:
                first = f.readline(200).decode("ascii", "replace").split()
        except (FileNotFoundError, SnapshotError):
            return None  # a pipe or device in its place counts as no log: restart() replaces it
        if len(first) == 2 and first[0] == LOG_HEADER:
            return first[1]
        return None

    def ensure(self) -> tuple[str, int]:
        """Make sure a log exists; returns (generation, current size). Caller holds the lock."""
        gen = self.generation()
        if gen is None:
            return self.restart(), self.size()
        return gen, self.size()

    def restart(self) -> str:
        """Start a new, empty log with a fresh generation. Caller holds the lock."""
        gen = secrets.token_hex(8)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _atomic_write(self.path, [f"{LOG_HEADER} {gen}\n".encode()])
        return gen

    def size(self) -> int:
        return self.fingerprint()[1]

    def has_entries(self) -> bool:
        """Whether any change lines follow the header (they name memories by id)."""
        return self.size() > len(LOG_HEADER) + 18  # header, space, 16 hex digits, newline

    def fingerprint(self) -> tuple[int, int]:
        """(inode, size): changes whenever lines are appended or the log is restarted."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, 0)
        return (st.st_ino, st.st_size)

    def append(self, op: str, memory_ids: list[str], origin: str) -> None:
        """Append lines under the lock (no fsync: the catch-up scan repairs a lost tail)."""
        if not memory_ids:
            return
        data = "".join(f"{op} {mid} {origin}\n" for mid in memory_ids).encode()
        with locked(self.lock_path):
            if self.generation() is None:
                self.restart()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)

    def read_from(self, offset: int) -> tuple[str | None, list[Change], int]:
        """(generation, whole lines after ``offset``, new offset). A torn last line is left."""
        try:
            with _open_regular(self.path) as f:
                first = f.readline(200)
                parts = first.decode("ascii", "replace").split()
                gen = parts[1] if len(parts) == 2 and parts[0] == LOG_HEADER else None
                offset = max(offset, len(first))
                f.seek(offset)
                data = f.read()
        except (FileNotFoundError, SnapshotError):
            return None, [], 0
        end = data.rfind(b"\n") + 1
        changes = []
        for line in data[:end].decode("ascii", "replace").splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] in "+~-":
                changes.append(Change(parts[0], parts[1], parts[2]))
        return gen, changes, offset + end
