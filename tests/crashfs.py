"""Test helpers: record what the store asks of the disk, inject faults, and replay power loss.

The store's durability promise ("acknowledged means it survives power loss") cannot be checked
by killing the process: after SIGKILL the page cache still holds everything, so even a store that
never fsyncs looks perfect. Instead, like SQLite's crash tests and the ALICE paper, we record the
sequence of file-system operations of a real run (through the ``Disk`` seam, on real files with
real fsyncs) and then, for each prefix of that log, construct the on-disk states a power cut at
that point could leave behind, under a deliberately pessimistic POSIX model:

* file data written but not yet made durable (by ``fsync`` of that file, or ``syncfs``) may be
  kept, dropped, zeroed, truncated, or torn (half kept, rest zeros);
* a directory-entry change (create, mkdir, rename, unlink) is durable only once its directory
  was fsynced afterwards (or ``syncfs`` ran); until then each one may independently be lost or
  kept, in any combination (file systems do reorder them);
* a kept change whose preconditions were lost (a file created in a directory whose ``mkdir`` was
  lost) cannot happen and is skipped.

Each state is then written into a fresh directory and opened with a fresh ``Store``.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from memo_shell import records
from memo_shell.disk import Disk
from memo_shell.errors import MemoShellError, NotFound
from memo_shell.records import CorruptRecord, Memory, decode, validate
from memo_shell.store import Store

# --------------------------------------------------------------------------- deterministic data


def det_id(at: datetime, rng: random.Random) -> str:
    """A ULID for ``at`` whose random part comes from ``rng``, so every run is identical."""
    millis = int(at.timestamp() * 1000)
    return records.id_from_parts(millis, int.from_bytes(rng.randbytes(10), "big"))


def det_memory(rng: random.Random, at: datetime, **fields: object) -> Memory:
    """A valid record with a seeded id and a body large enough to span several blocks' worth."""
    body = " ".join(
        rng.choice(["paris", "ünïcödé", "日本語", "fsync", "🙂", "rename"])
        for _ in range(rng.randint(5, 400))
    )
    values: dict[str, object] = {
        "id": det_id(at, rng),
        "session": "s1",
        "created_at": at,
        "user": f"question {rng.random():.6f}: {body}",
        "assistant": f"answer {rng.random():.6f}",
        "model": "gemma3:270m",
        "backend": "llama.cpp",
    }
    values.update(fields)
    return validate(Memory(**values))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the recorded log


@dataclass(frozen=True)
class Op:
    """One step of a run. Paths are POSIX strings relative to the store root ("" is the root)."""

    index: int
    kind: str  # create write fsync rename rename_new link unlink mkdir fsync_dir syncfs | begin ack
    path: str = ""
    dst: str = ""
    inode: int = -1
    offset: int = 0
    data: bytes = b""


@dataclass
class OpLog:
    """The operations of one or more "processes" on one store root, in order."""

    ops: list[Op] = field(default_factory=list)
    _inodes: Iterator[int] = field(default_factory=itertools.count)

    def add(self, kind: str, **kw: object) -> Op:
        op = Op(len(self.ops), kind, **kw)  # type: ignore[arg-type]
        self.ops.append(op)
        return op

    def new_inode(self) -> int:
        return next(self._inodes)


class ProcessCrash(BaseException):
    """Simulated SIGKILL. A BaseException so the store's ``except OSError`` cleanups do not run."""


Fault = Callable[[str, str], OSError | None]


class RecordingDisk(Disk):
    """A real ``Disk`` that logs every state-changing call and can fail or "die" on demand.

    ``fault(kind, path)`` is asked before each operation and may return an OSError to raise
    instead of performing it (nothing is done, nothing logged). ``crash_at`` kills the "process"
    once the log holds that many entries: that call and every later one raise ``ProcessCrash``.
    ``calls`` counts attempts per kind, including failed ones; ``attempts`` lists them in order
    as (kind, absolute path or "").
    """

    def __init__(
        self,
        root: Path,
        log: OpLog | None = None,
        *,
        fault: Fault | None = None,
        crash_at: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.log = log if log is not None else OpLog()
        self.fault = fault
        self.crash_at = crash_at
        self.dead = False
        self.calls: Counter[str] = Counter()
        self.attempts: list[tuple[str, str]] = []
        self._fds: dict[int, tuple[int, int]] = {}  # fd -> (inode, next write offset)

    def rel(self, path: Path) -> str:
        """``path`` relative to the root; ".." for anything outside it (assumed durable)."""
        if not Path(path).is_relative_to(self.root):
            return ".."
        rel = Path(path).relative_to(self.root).as_posix()
        return "" if rel == "." else rel

    def _before(self, kind: str, path: Path | None) -> None:
        self.calls[kind] += 1
        self.attempts.append((kind, str(path) if path is not None else ""))
        if self.dead or (self.crash_at is not None and len(self.log.ops) >= self.crash_at):
            self.dead = True
            raise ProcessCrash(kind)
        if self.fault is not None:
            exc = self.fault(*self.attempts[-1])
            if exc is not None:
                raise exc

    def open_new(self, path: Path) -> int:
        self._before("create", path)
        fd = super().open_new(path)
        inode = self.log.new_inode()
        self._fds[fd] = (inode, 0)
        self.log.add("create", path=self.rel(path), inode=inode)
        return fd

    def write_all(self, fd: int, data: bytes) -> None:
        inode, offset = self._fds[fd]
        self._before("write", None)
        super().write_all(fd, data)
        self._fds[fd] = (inode, offset + len(data))
        self.log.add("write", inode=inode, offset=offset, data=bytes(data))

    def fsync(self, fd: int) -> None:
        self._before("fsync", None)
        super().fsync(fd)
        self.log.add("fsync", inode=self._fds[fd][0])

    def close(self, fd: int) -> None:
        # Closing has no durability meaning, and a real kill closes every fd anyway.
        self._fds.pop(fd, None)
        super().close(fd)

    def rename(self, src: Path, dst: Path) -> None:
        self._before("rename", src)
        super().rename(src, dst)
        self.log.add("rename", path=self.rel(src), dst=self.rel(dst))

    def link(self, src: Path, dst: Path) -> None:
        self._before("link", src)
        super().link(src, dst)
        self.log.add("link", path=self.rel(src), dst=self.rel(dst))

    def rename_noreplace(self, src: Path | str, dst: Path | str) -> bool:
        # ``rename_new``'s fast path; its fallback (link, unlink) is recorded by those methods
        self._before("rename_new", Path(src))
        if not super().rename_noreplace(src, dst):
            return False
        self.log.add("rename_new", path=self.rel(Path(src)), dst=self.rel(Path(dst)))
        return True

    def unlink(self, path: Path) -> None:
        self._before("unlink", path)
        super().unlink(path)
        self.log.add("unlink", path=self.rel(path))

    def mkdir(self, path: Path) -> None:
        self._before("mkdir", path)
        super().mkdir(path)
        self.log.add("mkdir", path=self.rel(path))

    def fsync_dir(self, path: Path) -> None:
        self._before("fsync_dir", path)
        super().fsync_dir(path)
        self.log.add("fsync_dir", path=self.rel(path))

    def sync_filesystem(self, path: Path) -> None:
        self._before("syncfs", path)
        super().sync_filesystem(path)
        self.log.add("syncfs", path=self.rel(path))


class SkippingDisk(RecordingDisk):
    """A disk that silently skips some durability calls: stands in for a store that forgot them.

    Used only to prove the crash checker has teeth: against it, the checker must find losses.
    """

    def __init__(self, root: Path, log: OpLog | None = None, *, skip: frozenset[str]) -> None:
        super().__init__(root, log)
        self.skip = skip

    def fsync(self, fd: int) -> None:
        if "fsync" not in self.skip:
            super().fsync(fd)

    def fsync_dir(self, path: Path) -> None:
        if "fsync_dir" not in self.skip:
            super().fsync_dir(path)

    def sync_filesystem(self, path: Path) -> None:
        if "syncfs" not in self.skip:
            super().sync_filesystem(path)


def os_error(code: int, path: Path | str | None = None) -> OSError:
    """An OSError exactly as the kernel would report it (errno, strerror, optional filename)."""
    if path is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), str(path))


# --------------------------------------------------------------------------- what was promised

ABSENT = None  # the expected "value" of a record that does not exist


@dataclass
class StoreCall:
    """One store operation of a workload and the record states it leads to."""

    label: str
    begin: int  # log length when the call started
    effects: dict[str, Memory | None]  # id -> new version (None: deleted)
    ack: int | None = None  # log index of the ack marker, None if it never returned


class Tracker:
    """Runs store calls, writing a ``begin``/``ack`` marker into the log around each one.

    A power cut "after" the ack marker means the caller had been told the data was safe.
    """

    def __init__(self, log: OpLog) -> None:
        self.log = log
        self.calls: list[StoreCall] = []

    def _run(self, label: str, effects: dict[str, Memory | None], fn: Callable[[], object]) -> bool:
        call = StoreCall(label, len(self.log.ops), effects)
        self.calls.append(call)
        self.log.add("begin", path=label)
        try:
            fn()
        except MemoShellError:
            return False  # reported to the user (StoreError, NotFound): never acknowledged
        call.ack = self.log.add("ack", path=label).index
        return True

    def write(self, store: Store, memory: Memory) -> bool:
        """A new record, or (for an id written before) a rewrite of it, as pin/tag do."""
        rewrite = any(memory.id in call.effects for call in self.calls)
        return self._run(
            f"write {memory.id}",
            {memory.id: memory},
            lambda: store.write(memory, overwrite=rewrite),
        )

    def write_batch(self, store: Store, memories: Sequence[Memory]) -> bool:
        effects: dict[str, Memory | None] = {m.id: m for m in memories}
        return self._run(
            f"batch {len(memories)}", effects, lambda: store.write_batch(list(memories))
        )

    def delete(self, store: Store, memory_id: str) -> bool:
        effects: dict[str, Memory | None] = {memory_id: ABSENT}
        return self._run(f"delete {memory_id}", effects, lambda: store.delete(memory_id))

    def ids(self) -> list[str]:
        return sorted({i for call in self.calls for i in call.effects})

    def allowed(self, memory_id: str, prefix: int) -> tuple[list[Memory | None], bool]:
        """What ``read(memory_id)`` may return after a power cut leaving ``prefix`` ops.

        The outcome of the last call acknowledged before the cut (or "absent" if none was), or
        the outcome of any later call that had started. Also says whether an ack constrains it.
        """
        touching = [c for c in self.calls if memory_id in c.effects and c.begin < prefix]
        acked = [i for i, c in enumerate(touching) if c.ack is not None and c.ack < prefix]
        start = acked[-1] if acked else -1
        allowed: list[Memory | None] = [ABSENT] if start < 0 else []
        allowed += [c.effects[memory_id] for c in touching[max(start, 0) :]]
        return allowed, start >= 0


# --------------------------------------------------------------------------- power-loss states

DATA_MODES = ("keep", "drop", "zero", "truncate", "torn")
_NAMESPACE = frozenset({"create", "mkdir", "rename", "rename_new", "link", "unlink"})


def _parent(path: str) -> str:
    return path.rpartition("/")[0]  # paths are relative POSIX strings; "" is the root


def _dirs_of(op: Op) -> tuple[str, ...]:
    if op.kind in ("rename", "rename_new", "link"):
        return (_parent(op.path), _parent(op.dst))
    return (_parent(op.path),)


@dataclass(frozen=True)
class Image:
    """One possible on-disk state after a power cut: directories and file contents."""

    dirs: frozenset[str]
    files: tuple[tuple[str, bytes], ...]

    def materialise(self, target: Path) -> None:
        target.mkdir(mode=0o700)
        for d in sorted(self.dirs, key=lambda p: p.count("/")):
            if d:
                (target / d).mkdir(mode=0o700)
        for name, data in self.files:
            (target / name).write_bytes(data)


def _content(writes: list[Op], durable_before: int, mode: str) -> bytes:
    buf = bytearray()

    def put(offset: int, data: bytes) -> None:
        if len(buf) < offset + len(data):
            buf.extend(b"\0" * (offset + len(data) - len(buf)))
        buf[offset : offset + len(data)] = data

    pending = []
    for w in writes:
        if w.index < durable_before:
            put(w.offset, w.data)
        else:
            pending.append(w)
    if not pending or mode == "drop":
        return bytes(buf)
    total = sum(len(w.data) for w in pending)
    budget = {"keep": total, "zero": 0, "truncate": total // 2, "torn": total // 2}[mode]
    for w in pending:
        kept = w.data[: max(0, min(len(w.data), budget))]
        budget -= len(kept)
        if mode in ("zero", "torn"):
            put(w.offset, kept + b"\0" * (len(w.data) - len(kept)))
        elif kept:
            put(w.offset, kept)
    return bytes(buf)


def crash_images(
    ops: Sequence[Op], prefix: int, rng: random.Random, *, exhaustive: int = 6, samples: int = 24
) -> list[tuple[Image, str]]:
    """Every distinct state (deduplicated) a power cut after ``ops[:prefix]`` may leave.

    Pending namespace changes are enumerated exhaustively up to ``exhaustive`` of them, else
    sampled (all kept, none kept, each one alone dropped or kept, and random subsets).
    """
    ops = ops[:prefix]
    last_syncfs = max((op.index for op in ops if op.kind == "syncfs"), default=-1)
    last_dir_sync: dict[str, int] = {}
    last_file_sync: dict[int, int] = {}
    writes: dict[int, list[Op]] = {}
    for op in ops:
        if op.kind == "fsync_dir":
            last_dir_sync[op.path] = op.index
        elif op.kind == "fsync":
            last_file_sync[op.inode] = op.index
        elif op.kind == "write":
            writes.setdefault(op.inode, []).append(op)

    namespace = [op for op in ops if op.kind in _NAMESPACE]
    durable_ops = {
        op.index
        for op in namespace
        if op.index < last_syncfs or all(op.index < last_dir_sync.get(d, -1) for d in _dirs_of(op))
    }
    pending = [op.index for op in namespace if op.index not in durable_ops]
    n = len(pending)
    if n <= exhaustive:
        subsets = [
            frozenset(itertools.compress(pending, mask))
            for mask in itertools.product((0, 1), repeat=n)
        ]
    else:
        subsets = [frozenset(pending), frozenset()]
        subsets += [frozenset(pending) - {i} for i in pending]
        subsets += [frozenset({i}) for i in pending]
        subsets += [frozenset(i for i in pending if rng.random() < 0.5) for _ in range(samples)]

    images: dict[Image, str] = {}
    for kept in dict.fromkeys(subsets):
        dirs, entries = _replay_namespace(namespace, kept | durable_ops)
        live_inodes = sorted(set(entries.values()))
        assignments = [(mode, dict.fromkeys(live_inodes, mode)) for mode in DATA_MODES]
        assignments.append(("mixed", {i: rng.choice(DATA_MODES) for i in live_inodes}))
        for label, modes in assignments:
            files = tuple(
                sorted(
                    (
                        name,
                        _content(
                            writes.get(inode, []),
                            max(last_syncfs, last_file_sync.get(inode, -1)),
                            modes[inode],
                        ),
                    )
                    for name, inode in entries.items()
                )
            )
            image = Image(frozenset(dirs), files)
            images.setdefault(image, f"prefix={prefix} kept={sorted(kept)} of {pending} {label}")
    return list(images.items())


def _replay_namespace(namespace: list[Op], kept: frozenset[int]) -> tuple[set[str], dict[str, int]]:
    """Apply the surviving directory changes in order, skipping any whose precondition was lost."""
    dirs: set[str] = {""}
    entries: dict[str, int] = {}
    for op in namespace:
        if op.index not in kept:
            continue
        if op.kind == "mkdir":
            if _parent(op.path) in dirs and op.path not in entries:
                dirs.add(op.path)
        elif op.kind == "create":
            if _parent(op.path) in dirs and op.path not in entries and op.path not in dirs:
                entries[op.path] = op.inode
        elif op.kind in ("rename", "rename_new"):  # rename_new only ever ran onto a free name
            if op.path in dirs:
                raise NotImplementedError("directory renames are not modelled")
            if op.path in entries and _parent(op.dst) in dirs and op.dst not in dirs:
                entries[op.dst] = entries.pop(op.path)
        elif op.kind == "link":  # a second name for the same inode; the source name stays
            if op.path in entries and _parent(op.dst) in dirs and op.dst not in dirs:
                entries[op.dst] = entries[op.path]
        elif op.kind == "unlink":
            entries.pop(op.path, None)
    return dirs, entries


# --------------------------------------------------------------------------- the checker


@dataclass
class CrashReport:
    """What a sweep over power-loss states found."""

    prefixes: int = 0
    images: int = 0
    torn_files_seen: int = 0  # states with a torn/zeroed/short file in them (temp debris)
    violations: list[str] = field(default_factory=list)

    def kinds(self) -> set[str]:
        return {v.split(":", 1)[0] for v in self.violations}


def check_image(image_dir: Path, tracker: Tracker, prefix: int) -> list[str]:
    """Open a fresh Store on one power-loss state and check every promise made before the cut."""
    problems: list[str] = []
    store = Store(image_dir)
    seen: dict[str, Memory | None] = {}
    for memory_id in tracker.ids():
        allowed, promised = tracker.allowed(memory_id, prefix)
        try:
            got: Memory | None = store.read(memory_id)
        except NotFound:
            got = ABSENT
        except CorruptRecord as exc:
            problems.append(f"torn: {memory_id} is visible but corrupt ({exc})")
            continue
        seen[memory_id] = got
        if any(got == a for a in allowed):
            continue
        if got is ABSENT:
            problems.append(f"lost: acknowledged record {memory_id} is gone")
        elif promised and allowed == [ABSENT]:
            problems.append(f"resurrected: {memory_id} came back after an acknowledged delete")
        elif promised:
            problems.append(f"stale: {memory_id} reads as a version older than acknowledged")
        else:
            problems.append(f"phantom: {memory_id} reads as a version never written")
    scan = store.scan()
    if scan.foreign:
        problems.append(f"foreign: unexpected files {scan.foreign}")
    if scan.ids != sorted(scan.ids) or {i for i, m in seen.items() if m is not None} != set(
        scan.ids
    ):
        problems.append(f"listing: scan ids {scan.ids} disagree with reads")
    # Debris from the cut: age the temp files so the sweep treats them as a dead writer's.
    for temp in scan.temps:
        os.utime(temp, (1_000_000_000, 1_000_000_000))
    swept = store.sweep_temps(scan.temps)
    after = Store(image_dir).scan()
    if swept != len(scan.temps) or after.temps or after.ids != scan.ids:
        problems.append(f"sweep: swept {swept} of {scan.temps}, ids {scan.ids} -> {after.ids}")
    return problems


def check_power_loss(
    log: OpLog,
    tracker: Tracker,
    workdir: Path,
    *,
    prefixes: Sequence[int] | None = None,
    seed: int = 0,
    until: set[str] | None = None,
) -> CrashReport:
    """Replay every (or the given) prefix of ``log`` into all its power-loss images and check them.

    ``until`` ends the sweep early once violations of all those kinds were found (for the
    self-tests, which only need to see the checker bite).
    """
    rng = random.Random(seed)
    report = CrashReport()
    workdir.mkdir(exist_ok=True)
    counter = itertools.count()
    seen: set[tuple[object, ...]] = set()
    for prefix in prefixes if prefixes is not None else range(len(log.ops) + 1):
        report.prefixes += 1
        promises = frozenset(
            (c.label, c.ack) for c in tracker.calls if c.ack is not None and c.ack < prefix
        )
        begun = frozenset((c.label, -1) for c in tracker.calls if c.begin < prefix)
        for image, description in crash_images(log.ops, prefix, rng):
            if any(name.endswith(".tmp") and not _is_whole(data) for name, data in image.files):
                report.torn_files_seen += 1
            # The store never reads a temp file (scan and sweep go by name and age), so states
            # differing only in temp contents are the same test: check one of them.
            files = tuple((n, b"" if n.endswith(".tmp") else d) for n, d in image.files)
            key = (image.dirs, files, promises | begun)
            if key in seen:
                continue  # same state, same promises: already checked
            seen.add(key)
            report.images += 1
            target = workdir / f"img{next(counter)}"
            image.materialise(target)
            for problem in check_image(target, tracker, prefix):
                report.violations.append(f"{problem} [{description}]")
            shutil.rmtree(target)
            if until is not None and until <= report.kinds():
                return report
    return report


def _is_whole(data: bytes) -> bool:
    try:
        decode(data)
    except CorruptRecord:
        return False
    return True


def files_under(root: Path) -> list[str]:
    """Every file below ``root`` (relative POSIX paths, sorted): for "no debris" assertions."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
