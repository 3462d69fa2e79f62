"""What the store does when the disk says no: full, failing, read-only.

Real files throughout; the ``Disk`` seam injects only the errors a test cannot provoke for real
(a full disk, an fsync EIO). Every case checks the same contract: the call raises ``StoreError``
with a sentence a user can act on, no record file appears for the refused write, no temp file is
left behind, and a fresh ``Store`` still reads everything acknowledged before. A failed fsync is
never retried into an acknowledgement (PostgreSQL's "fsyncgate": after a failed fsync the dirty
pages may be gone while a retry reports success).
"""

from __future__ import annotations

import errno
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from crashfs import Fault, RecordingDisk, det_memory, files_under, os_error

from memo_shell.errors import NotFound, StoreError
from memo_shell.paths import quarantine_dir
from memo_shell.records import CorruptRecord, InvalidRecord, Memory, encode
from memo_shell.store import TEMP_SUFFIX, Store

SEED = 1066
DAY = datetime(2024, 3, 1, 9, tzinfo=UTC)


def fail(kind: str, code: int, *, nth: int = 1, where: str | None = None) -> Fault:
    """A fault: the ``nth`` call of ``kind`` (optionally only on paths containing ``where``)."""
    count = 0

    def fault(op_kind: str, path: str) -> OSError | None:
        nonlocal count
        if op_kind != kind or (where is not None and where not in path):
            return None
        count += 1
        if count != nth:
            return None
        # Like the kernel: calls that take a path name it in the error; fsync/write do not.
        return os_error(
            code,
            path if kind in ("create", "mkdir", "rename", "rename_new", "link", "unlink") else None,
        )

    return fault


@pytest.fixture
def rng() -> random.Random:
    return random.Random(SEED)


@pytest.fixture
def seeded(tmp_path: Path, rng: random.Random) -> tuple[Path, dict[str, Memory]]:
    """A store holding three acknowledged records, two on DAY, one a month later."""
    root = tmp_path / "data"
    store = Store(root)
    acked = {}
    for when in (DAY, DAY.replace(hour=10), DAY.replace(month=4)):
        memory = det_memory(rng, when)
        store.write(memory)
        acked[memory.id] = memory
    return root, acked


def assert_intact(root: Path, acked: dict[str, Memory]) -> None:
    """A fresh Store sees exactly the acknowledged records, and no temp or stray files."""
    store = Store(root)
    for memory_id, memory in acked.items():
        assert store.read(memory_id) == memory
    scan = store.scan()
    assert sorted(scan.ids) == sorted(acked), "a refused write left a record file"
    assert scan.temps == [], "a temp file was left behind"
    assert scan.foreign == []
    assert not [f for f in files_under(root) if f.endswith(TEMP_SUFFIX)]


# --------------------------------------------------------------------------- single writes


class PartialWriteDisk(RecordingDisk):
    """Writes half the bytes for real, then reports ENOSPC: what a filling disk really does."""

    def write_all(self, fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise os_error(errno.ENOSPC)


@pytest.mark.parametrize("partial", [False, True], ids=["nothing-written", "half-written"])
def test_disk_full_refuses_the_write_and_leaves_no_trace(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random, partial: bool
) -> None:
    root, acked = seeded
    disk = PartialWriteDisk(root) if partial else RecordingDisk(root, fault=fail("write", 28))
    store = Store(root, disk)
    new = det_memory(rng, DAY.replace(hour=11))

    with pytest.raises(StoreError) as info:
        store.write(new)

    assert "saving the memory failed" in str(info.value)
    assert "the disk is full; free some space and try again" in str(info.value)
    assert disk.calls["fsync"] == 0 and disk.calls["rename"] == 0
    assert not store.exists(new.id)
    assert_intact(root, acked)


@pytest.mark.parametrize("rewrite", [False, True], ids=["new", "pin-rewrite"])
def test_fsync_eio_is_never_retried_into_an_acknowledgement(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random, rewrite: bool
) -> None:
    root, acked = seeded
    disk = RecordingDisk(root, fault=fail("fsync", errno.EIO))
    store = Store(root, disk)
    target = (
        next(iter(acked.values())).with_changes(pinned=True)
        if rewrite
        else det_memory(rng, DAY.replace(hour=12))
    )

    with pytest.raises(StoreError) as info:
        store.write(target, overwrite=rewrite)

    assert "the disk reported an I/O error; check the device" in str(info.value)
    assert disk.calls["fsync"] == 1, "a failed fsync must not be retried"
    assert disk.calls["rename"] + disk.calls["link"] == 0, "unsynced data got the final name"
    assert_intact(root, acked)  # for a rewrite: the old version, whole


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (errno.EIO, "the disk reported an I/O error"),
        (errno.EACCES, "permission denied; check the directory's owner and mode"),
    ],
)
@pytest.mark.parametrize("rewrite", [False, True], ids=["new", "pin-rewrite"])
def test_failed_rename_keeps_the_old_state(
    seeded: tuple[Path, dict[str, Memory]],
    rng: random.Random,
    code: int,
    hint: str,
    rewrite: bool,
) -> None:
    root, acked = seeded
    # a rewrite renames over the old file; a new record is linked (it never replaces a file)
    store = Store(root, RecordingDisk(root, fault=fail("rename" if rewrite else "link", code)))
    target = (
        next(iter(acked.values())).with_changes(tags=("x",))
        if rewrite
        else det_memory(rng, DAY.replace(hour=13))
    )

    with pytest.raises(StoreError) as info:
        store.write(target, overwrite=rewrite)

    assert str(info.value).startswith("saving the memory failed")
    assert hint in str(info.value)
    assert_intact(root, acked)


def test_failed_directory_fsync_after_rename_withdraws_a_new_record(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random
) -> None:
    """The rename happened but may not be durable: the record must not linger unacknowledged."""
    root, acked = seeded
    new = det_memory(rng, DAY.replace(hour=14))
    day = "/memories/2024/03/01"  # fsynced only after the rename; its parents before
    disk = RecordingDisk(root, fault=fail("fsync_dir", errno.EIO, where=day))
    store = Store(root, disk)

    with pytest.raises(StoreError, match=r"^saving the memory failed: the disk reported an I/O"):
        store.write(new)

    assert disk.calls["link"] == 1  # it failed after the link, not before
    assert not store.exists(new.id)
    assert_intact(root, acked)


def test_failed_directory_fsync_after_rename_of_a_rewrite_leaves_a_whole_version(
    seeded: tuple[Path, dict[str, Memory]],
) -> None:
    root, acked = seeded
    old = next(iter(acked.values()))
    pinned = old.with_changes(pinned=True)
    disk = RecordingDisk(root, fault=fail("fsync_dir", errno.EIO, where="/memories/2024/03/01"))
    store = Store(root, disk)

    with pytest.raises(StoreError, match=r"^saving the memory failed: the disk reported an I/O"):
        store.write(pinned, overwrite=True)

    assert disk.calls["rename"] == 1
    assert Store(root).read(old.id) in (old, pinned)  # unacknowledged, but never torn
    assert_intact(root, {**acked, old.id: Store(root).read(old.id)})


def test_failed_fsync_of_a_new_shard_directory_is_redone_before_the_next_ack(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random
) -> None:
    """mkdir worked, fsync of its parent failed: the next write must fsync that parent again.

    Otherwise the directory exists (so no mkdir), the record inside it is fsynced and
    acknowledged, and a power cut takes the directory and the record with it.
    """
    root, acked = seeded
    first = det_memory(rng, datetime(2024, 3, 5, tzinfo=UTC))  # new day dir in 2024/03
    disk = RecordingDisk(root, fault=fail("fsync_dir", errno.EIO, where="2024/03"))
    store = Store(root, disk)

    with pytest.raises(StoreError) as info:
        store.write(first)
    assert "creating" in str(info.value) and "I/O error" in str(info.value)
    assert (root / "memories/2024/03/05").is_dir()  # the mkdir itself succeeded

    second = det_memory(rng, datetime(2024, 3, 5, 1, tzinfo=UTC))
    store.write(second)

    month_syncs = [
        op for op in disk.log.ops if op.kind == "fsync_dir" and op.path == "memories/2024/03"
    ]
    mkdir_day = next(op for op in disk.log.ops if op.path == "memories/2024/03/05")
    assert any(op.index > mkdir_day.index for op in month_syncs), "the new day dir is not durable"
    assert_intact(root, {**acked, second.id: second})


# --------------------------------------------------------------------------- batches


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (fail("write", errno.ENOSPC, nth=3), "the disk is full"),
        (fail("syncfs", errno.EIO, nth=1), "I/O error"),  # data not durable
        (fail("syncfs", errno.EIO, nth=2), "I/O error"),  # names not durable
        (fail("rename_new", errno.EIO, nth=2), "I/O error"),
        (fail("mkdir", errno.EACCES, nth=2), "permission denied"),
        (fail("create", errno.ENOSPC, nth=3), "the disk is full"),  # present ones: no temp
    ],
    ids=["enospc-write", "syncfs-data", "syncfs-names", "rename_new", "mkdir", "create"],
)
def test_failed_batch_leaves_nothing_and_loses_nothing(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random, fault: Fault, message: str
) -> None:
    """Including re-importing records that already exist: a failed batch must not delete them."""
    root, acked = seeded
    already = list(acked.values())[:2]  # an import that overlaps what is stored
    batch = [
        det_memory(rng, DAY.replace(hour=15)),
        *already,
        det_memory(rng, datetime(2024, 6, 1, tzinfo=UTC)),  # new month and day dirs
        det_memory(rng, datetime(2025, 7, 1, tzinfo=UTC)),  # new year
    ]
    disk = RecordingDisk(root, fault=fault)
    store = Store(root, disk)

    with pytest.raises(StoreError) as info:
        store.write_batch(batch)

    assert str(info.value).startswith(("saving the imported memories failed", "creating"))
    assert message in str(info.value)
    assert_intact(root, acked)


def test_invalid_record_midway_through_a_batch_leaves_no_temp_files(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random
) -> None:
    root, acked = seeded
    too_big = det_memory(rng, DAY.replace(hour=16), user="x" * (5 * 1024 * 1024))
    batch = [det_memory(rng, DAY.replace(hour=17)), too_big, det_memory(rng, DAY.replace(hour=18))]

    with pytest.raises(InvalidRecord, match="limit is 4 MiB"):
        Store(root).write_batch(batch)

    assert_intact(root, acked)


# --------------------------------------------------------------------------- deletes


def test_delete_refused_by_the_disk_keeps_the_record(
    seeded: tuple[Path, dict[str, Memory]],
) -> None:
    root, acked = seeded
    victim = next(iter(acked))
    store = Store(root, RecordingDisk(root, fault=fail("unlink", errno.EACCES)))

    with pytest.raises(StoreError) as info:
        store.delete(victim)

    assert str(info.value).startswith(f"forgetting {victim} failed")
    assert "permission denied" in str(info.value)
    assert_intact(root, acked)


def test_delete_whose_directory_fsync_fails_is_not_acknowledged(
    seeded: tuple[Path, dict[str, Memory]],
) -> None:
    root, acked = seeded
    victim = next(iter(acked))
    disk = RecordingDisk(root, fault=fail("fsync_dir", errno.EIO, where="2024/03/01"))
    store = Store(root, disk)

    with pytest.raises(StoreError, match=f"forgetting {victim} failed: the disk reported an I/O"):
        store.delete(victim)

    shard = str(root / "memories/2024/03/01")
    assert disk.attempts.count(("fsync_dir", shard)) == 1, "a failed fsync must not be retried"
    with pytest.raises(NotFound):  # gone from the page cache, just not promised durable
        Store(root).read(victim)


# --------------------------------------------------------------------------- read-only data


@pytest.fixture
def read_only_dir(seeded: tuple[Path, dict[str, Memory]]) -> Iterator[Path]:
    """The seeded store's 2024/03/01 shard, chmod 0500 (restored afterwards)."""
    root, _acked = seeded
    shard = root / "memories/2024/03/01"
    shard.chmod(0o500)
    try:
        yield shard
    finally:
        shard.chmod(0o700)


def _chmod_is_enforced(directory: Path) -> bool:
    probe = directory / ".probe"
    try:
        probe.touch()
    except PermissionError:
        return True
    probe.unlink()
    return False


def test_read_only_shard_directory_for_real(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random, read_only_dir: Path
) -> None:
    if not _chmod_is_enforced(read_only_dir):
        pytest.skip(
            "running with CAP_DAC_OVERRIDE (root): chmod 0500 does not stop writes here; "
            "test_read_only_data_injected covers the same path with EACCES/EROFS"
        )
    root, acked = seeded
    store = Store(root)
    new = det_memory(rng, DAY.replace(hour=19))

    with pytest.raises(StoreError, match="permission denied; check the directory's owner"):
        store.write(new)
    with pytest.raises(StoreError, match="permission denied"):
        store.delete(next(iter(acked)))

    read_only_dir.chmod(0o700)
    assert_intact(root, acked)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (errno.EROFS, "the file system is read-only; choose another --data-dir"),
        (errno.EACCES, "permission denied; check the directory's owner and mode"),
    ],
)
def test_read_only_data_injected(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random, code: int, message: str
) -> None:
    """The same refusal as a 0500 directory or a read-only mount, where chmod cannot show it."""
    root, acked = seeded

    def refuse_changes(kind: str, path: str) -> OSError | None:
        return os_error(code, path) if kind in ("create", "mkdir", "unlink", "rename") else None

    store = Store(root, RecordingDisk(root, fault=refuse_changes))
    for memory in (det_memory(rng, DAY.replace(hour=20)), det_memory(rng, DAY.replace(year=2030))):
        with pytest.raises(StoreError) as info:
            store.write(memory)
        assert message in str(info.value)
    with pytest.raises(StoreError, match=message.split(";")[0]):
        store.write_batch([det_memory(rng, DAY.replace(hour=21))])
    with pytest.raises(StoreError, match=message.split(";")[0]):
        store.delete(next(iter(acked)))
    assert all(store.read(i) == m for i, m in acked.items())  # reading still works
    assert_intact(root, acked)


def test_corrupt_file_in_a_read_only_store_is_reported_not_moved(
    seeded: tuple[Path, dict[str, Memory]], rng: random.Random
) -> None:
    """Quarantine cannot move the file on a read-only store: read still says CorruptRecord."""
    root, acked = seeded
    bad = det_memory(rng, DAY.replace(hour=22))
    path = Store(root).path_for(bad.id)
    path.write_bytes(encode(bad)[:-3])  # torn

    def read_only(kind: str, p: str) -> OSError | None:
        return os_error(errno.EROFS, p) if kind in ("mkdir", "rename", "create") else None

    store = Store(root, RecordingDisk(root, fault=read_only))
    with pytest.raises(CorruptRecord):
        store.read(bad.id)
    assert path.exists() and not quarantine_dir(root).exists()
    assert all(store.read(i) == m for i, m in acked.items())
