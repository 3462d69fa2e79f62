"""Power-loss safety of the store, checked the way SQLite's crash tests and ALICE do it.

Killing the process proves little (the page cache survives SIGKILL), so each test runs a real
workload on real files through a recording ``Disk``, then replays every prefix of the operation
log into every on-disk state a power cut could leave (see ``crashfs``) and opens a fresh
``Store`` on each. The promises checked in every state:

* every acknowledged write (``write``/``write_batch`` returned) reads back exactly, and a pin-style
  rewrite never reverts to the older version once acknowledged;
* ``read`` never returns half-written data: a visible record file is always whole;
* a record whose delete was acknowledged never comes back;
* crash debris is only ever our temp files, which ``sweep_temps`` removes without touching records.

The last tests run the same checker against a disk that skips fsyncs, to prove it can fail.
"""

from __future__ import annotations

import errno
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crashfs import (
    CrashReport,
    Fault,
    OpLog,
    ProcessCrash,
    RecordingDisk,
    SkippingDisk,
    Tracker,
    check_power_loss,
    det_memory,
    os_error,
)

from memo_shell.store import Store

SEED = 6_2024


@pytest.fixture
def images(tmp_path: Path) -> Iterator[Path]:
    """Where power-loss states are materialised: RAM-backed when available.

    The live run always uses ``tmp_path`` on the real disk with real fsyncs. The thousands of
    crash images are only written and read back, never power-cycled, so a tmpfs changes
    nothing but speed (checking one opens a Store, whose directory fsyncs cost a disk flush).
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="memo-crash-") as d:
            yield Path(d)
    else:
        yield tmp_path / "images"


def at(year: int, month: int, day: int, hour: int = 9) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def mixed_workload(store: Store, tracker: Tracker, rng: random.Random) -> None:
    """A realistic mix: new shard dirs, pin rewrites, deletes and imports, interleaved."""
    a1 = det_memory(rng, at(2024, 3, 1))
    a2 = det_memory(rng, at(2024, 3, 1, 10))
    b1 = det_memory(rng, at(2024, 3, 2))
    tracker.write(store, a1)
    tracker.write(store, a2)
    tracker.write(store, b1)  # new day dir in an existing month
    tracker.write(store, a1.with_changes(pinned=True))  # pin = rewrite of an existing id
    tracker.delete(store, a2.id)
    batch = [
        det_memory(rng, at(2024, 3, 1, 11)),  # existing day
        det_memory(rng, at(2024, 4, 15)),  # new month
        det_memory(rng, at(2025, 1, 1)),  # new year
        det_memory(rng, at(2024, 3, 2, 12)),
    ]
    tracker.write_batch(store, batch)
    tracker.write(store, batch[1].with_changes(tags=("travel", "pinned-later")))
    tracker.delete(store, batch[0].id)  # forget an imported memory
    tracker.write(store, det_memory(rng, at(2024, 4, 15, 18), assistant=""))
    tracker.delete(store, b1.id)
    tracker.write_batch(
        store, [det_memory(rng, at(2024, 3, 1, 20)), det_memory(rng, at(2026, 2, 28))]
    )
    tracker.write(store, a1.with_changes(pinned=False, tags=("unpinned",)))


def run(
    root: Path,
    workload: Callable[[Store, Tracker, random.Random], None],
    fault: Fault | None = None,
) -> tuple[OpLog, Tracker, RecordingDisk]:
    """Run ``workload`` on a fresh store at ``root`` (real disk, real fsyncs), recording it."""
    root.mkdir()
    log = OpLog()
    tracker = Tracker(log)
    disk = RecordingDisk(root, log, fault=fault)
    workload(Store(root, disk), tracker, random.Random(SEED))
    return log, tracker, disk


def assert_clean(report: CrashReport) -> None:
    shown = "\n".join(report.violations[:15])
    assert not report.violations, f"{len(report.violations)} violations, e.g.:\n{shown}"


@pytest.mark.parametrize("move", ["renameat2", "link+unlink"])
def test_every_power_cut_keeps_every_promise(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch, move: str
) -> None:
    """Both ways a batch's record takes its name: renameat2, or (where refused) link + unlink."""
    if move == "link+unlink":
        monkeypatch.setattr(RecordingDisk, "_noreplace_refused", True)
    log, tracker, _disk = run(tmp_path / "live", mixed_workload)
    assert all(call.ack is not None for call in tracker.calls)
    kinds = {op.kind for op in log.ops}
    assert {"create", "write", "fsync", "rename", "unlink", "mkdir", "fsync_dir", "syncfs"} <= kinds
    assert ("rename_new" in kinds) == (move == "renameat2")

    report = check_power_loss(log, tracker, images, seed=SEED)

    assert_clean(report)
    assert report.prefixes == len(log.ops) + 1
    assert report.torn_files_seen > 0, "the model never produced torn data: it tested nothing"


def test_power_cut_after_a_process_crash(tmp_path: Path, images: Path) -> None:
    """A process dies mid-write (page cache intact), a new one carries on, then power fails.

    The new process inherits directories whose entries the dead one never made durable; a
    record it acknowledges inside them must still survive the power cut.
    """
    rng_seed = random.Random(SEED)
    first = [det_memory(rng_seed, at(2024, 3, 1)), det_memory(rng_seed, at(2024, 3, 2))]
    later = [
        det_memory(rng_seed, at(2024, 3, 1, 13)),
        det_memory(rng_seed, at(2024, 3, 2, 14)),
        det_memory(rng_seed, at(2024, 5, 5)),
    ]

    def phase1(store_root: Path, disk: RecordingDisk, tracker: Tracker) -> None:
        store = Store(store_root, disk)
        for memory in first:
            tracker.write(store, memory)

    # Length of an uninterrupted phase 1, to crash at each of its steps.
    probe_log = OpLog()
    (tmp_path / "probe").mkdir()
    phase1(tmp_path / "probe", RecordingDisk(tmp_path / "probe", probe_log), Tracker(probe_log))
    crash_points = [op.index for op in probe_log.ops if op.kind not in ("begin", "ack")]
    assert len(crash_points) > 10

    total_images = 0
    for crash_at in crash_points:
        root = tmp_path / f"live{crash_at}"
        root.mkdir()
        log = OpLog()
        tracker = Tracker(log)
        with pytest.raises(ProcessCrash):
            phase1(root, RecordingDisk(root, log, crash_at=crash_at), tracker)
        restart = len(log.ops)
        store = Store(root, RecordingDisk(root, log))  # the next process
        for memory in later:
            tracker.write(store, memory)
        tracker.write_batch(store, [det_memory(random.Random(crash_at), at(2024, 3, 1, 23))])
        assert all(call.ack is not None for call in tracker.calls[len(first) :])

        report = check_power_loss(
            log, tracker, images / f"img{crash_at}", prefixes=range(restart, len(log.ops) + 1)
        )
        assert_clean(report)
        total_images += report.images
    assert total_images > len(crash_points)


@pytest.mark.parametrize(
    ("kind", "where", "nth"),
    [
        ("fsync_dir", "/memories", 1),  # making memories/2024 durable
        ("fsync_dir", "/memories/2024", 1),  # ... memories/2024/03
        ("fsync_dir", "/memories/2024/03", 1),  # ... the first day directory
        ("fsync_dir", "/memories/2024/03/01", 1),  # after a rename: write refused, withdrawn
        ("fsync_dir", "/memories/2024/03/01", 3),  # after the rename of a pin rewrite
        ("fsync_dir", "/memories/2024/03/02", 2),  # after the unlink of an acknowledged delete
        ("fsync", "", 2),
        ("rename", "", 3),
        ("syncfs", "", 1),  # batch data not durable
        ("syncfs", "", 2),  # batch names not durable
        ("unlink", ".memo", 1),  # a delete (a temp name's unlink after its link may fail)
        ("link", "", 2),  # a new record's link
        ("rename_new", "", 2),  # a batch record's move onto its final name
        ("mkdir", "/memories/2025", 1),  # a batch's new year directory
    ],
)
def test_power_cut_after_an_io_error(
    tmp_path: Path, images: Path, kind: str, where: str, nth: int
) -> None:
    """An I/O error fails one store call; the app carries on; later the power fails.

    Whatever the error left behind (a directory whose fsync failed, a withdrawn rename, a batch
    that never synced), every call acknowledged before or after it must survive the cut.
    """
    seen = 0

    def fault(op_kind: str, path: str) -> OSError | None:
        nonlocal seen
        if op_kind == kind and path.endswith(where):
            seen += 1
            if seen == nth:
                return os_error(errno.EIO)
        return None

    log, tracker, _disk = run(tmp_path / "live", mixed_workload, fault=fault)
    assert seen >= nth, "the fault was never injected"
    refused = [call for call in tracker.calls if call.ack is None]
    assert refused, "the faulted call must be refused, not acknowledged"
    start = refused[0].begin  # later refusals: deletes of the record the fault kept out

    report = check_power_loss(
        log, tracker, images, prefixes=range(start, len(log.ops) + 1), seed=SEED
    )
    assert_clean(report)


@pytest.mark.parametrize(
    ("skip", "expected"),
    [
        (frozenset({"fsync"}), {"torn"}),  # rename before the data is durable
        (frozenset({"fsync_dir"}), {"lost", "resurrected"}),  # renames and unlinks not durable
        (frozenset({"syncfs"}), {"lost"}),  # batch import with no sync at all
    ],
)
def test_checker_catches_a_store_that_skips_syncs(
    tmp_path: Path, images: Path, skip: frozenset[str], expected: set[str]
) -> None:
    """Against a disk that silently drops durability calls, the checker must report losses."""
    root = tmp_path / "live"
    root.mkdir()
    log = OpLog()
    tracker = Tracker(log)
    store = Store(root, SkippingDisk(root, log, skip=skip))
    mixed_workload(store, tracker, random.Random(SEED))

    report = check_power_loss(log, tracker, images, seed=SEED, until=expected)

    assert expected <= report.kinds(), report.violations[:5]
