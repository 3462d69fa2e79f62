"""The durable store on real files: layout, permissions, the fsync protocol, quarantine, sweep."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memo_shell import records
from memo_shell.disk import Disk
from memo_shell.errors import NotFound, StoreError
from memo_shell.paths import quarantine_dir
from memo_shell.records import CorruptRecord
from memo_shell.store import Store


def memory(text: str = "hello", **kw: object) -> records.Memory:
    return records.make_memory(user=text, **kw)  # type: ignore[arg-type]


class RecordingDisk(Disk):
    """Logs the order of durable steps so the protocol itself can be asserted."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def open_new(self, path: Path) -> int:
        self.log.append(("open", path.name))
        return super().open_new(path)

    def fsync(self, fd: int) -> None:
        self.log.append(("fsync", ""))
        super().fsync(fd)

    def rename(self, src: Path, dst: Path) -> None:
        self.log.append(("rename", dst.name))
        super().rename(src, dst)

    def link(self, src: Path, dst: Path) -> None:
        self.log.append(("link", dst.name))
        super().link(src, dst)

    def fsync_dir(self, path: Path) -> None:
        self.log.append(("fsync_dir", path.name))
        super().fsync_dir(path)

    def unlink(self, path: Path) -> None:
        self.log.append(("unlink", path.name))
        super().unlink(path)


def test_write_follows_temp_fsync_link_dirsync(tmp_path: Path) -> None:
    disk = RecordingDisk()
    store = Store(tmp_path, disk)
    m = memory()
    store.write(m)  # first write also creates the shard dirs
    disk.log.clear()
    second = memory("again")
    store.write(second)
    ops = [op for op, _ in disk.log]
    # a new record is linked (never renamed over anything), then its temp name dropped
    assert ops == ["open", "fsync", "link", "unlink", "fsync_dir"]
    disk.log.clear()
    store.write(second.with_changes(pinned=True), overwrite=True)  # a rewrite replaces
    assert [op for op, _ in disk.log] == ["open", "fsync", "rename", "fsync_dir"]
    assert disk.log[0][1].startswith(f".{second.id}.") and disk.log[0][1].endswith(".tmp")
    assert disk.log[2][1] == f"{second.id}.memo"


def test_delete_unlinks_then_syncs_directory(tmp_path: Path) -> None:
    disk = RecordingDisk()
    store = Store(tmp_path, disk)
    m = memory()
    store.write(m)
    disk.log.clear()
    store.delete(m.id)
    assert [op for op, _ in disk.log] == ["unlink", "fsync_dir"]
    with pytest.raises(NotFound):
        store.read(m.id)
    with pytest.raises(NotFound):
        store.delete(m.id)


def test_layout_is_date_sharded_and_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    m = memory(at=datetime(2023, 5, 8, 23, 30, tzinfo=UTC))
    store.write(m)
    path = store.path_for(m.id)
    assert path.relative_to(tmp_path / "data").parts[:4] == ("memories", "2023", "05", "08")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for directory in (tmp_path / "data" / "memories", path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert store.read(m.id) == m


def test_listing_is_in_time_order_without_reading_files(tmp_path: Path) -> None:
    store = Store(tmp_path)
    days = [
        datetime(2022, 12, 31, tzinfo=UTC),
        datetime(2023, 1, 2, tzinfo=UTC),
        datetime(2023, 1, 1, tzinfo=UTC),
    ]
    written = [memory(f"m{i}", at=day) for i, day in enumerate(days)]
    store.write_batch(written)
    expected = sorted(m.id for m in written)
    assert list(store.iter_ids()) == expected
    assert list(store.iter_ids(newest_first=True)) == expected[::-1]


def test_batch_write_is_all_visible_and_readable(tmp_path: Path) -> None:
    store = Store(tmp_path)
    batch = [memory(f"item {i}") for i in range(50)]
    assert len(store.write_batch(batch)) == 50
    assert {store.read(m.id).user for m in batch} == {f"item {i}" for i in range(50)}
    assert not store.scan().temps


def test_corrupt_file_is_quarantined_with_a_reason_and_others_still_load(tmp_path: Path) -> None:
    store = Store(tmp_path)
    good, bad = memory("good"), memory("bad")
    store.write_batch([good, bad])
    path = store.path_for(bad.id)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(CorruptRecord):
        store.read(bad.id)
    assert not path.exists()
    assert (quarantine_dir(tmp_path) / path.name).exists()
    log = (quarantine_dir(tmp_path) / "log.jsonl").read_text()
    assert path.name in log and "declares" in log
    assert store.read(good.id) == good
    assert list(store.iter_ids()) == [good.id]


def test_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    m = memory()
    store.write(m)
    path = store.path_for(m.id)
    with open(path, "r+b") as handle:
        handle.truncate(records.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(CorruptRecord, match="record limit"):
        store.read(m.id)
    assert store.quarantined and store.quarantined[0].original == path


def test_stray_temp_files_of_dead_writers_are_swept(tmp_path: Path) -> None:
    store = Store(tmp_path)
    m = memory()
    store.write(m)
    shard = store.path_for(m.id).parent
    dead = shard / f".{m.id}.999999999.0.tmp"  # a pid that cannot exist
    dead.write_bytes(b"half a record")
    mine = shard / f".{m.id}.{os.getpid()}.7.tmp"  # a write in flight in this process
    mine.write_bytes(b"in progress")
    foreign = shard / "notes.txt"
    foreign.write_text("not ours")
    scan = store.scan()
    assert set(scan.temps) == {dead, mine} and scan.foreign == [foreign]
    assert store.sweep_temps(scan.temps) == 1
    assert not dead.exists() and mine.exists()
    moved = store.quarantine_foreign(scan.foreign)
    assert moved[0].moved_to.read_text() == "not ours" and not foreign.exists()
    assert list(store.iter_ids()) == [m.id]


def test_ids_that_are_not_ulids_never_reach_the_file_system(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for bad in ("../../etc/passwd", "", "01ARZ3NDEKTSV4RRFFQ69G5FA", "81ARZ3NDEKTSV4RRFFQ69G5FAV"):
        with pytest.raises(NotFound):
            store.read(bad)


def test_world_readable_data_dir_is_reported(tmp_path: Path) -> None:
    store = Store(tmp_path / "data")
    assert store.permission_problem() is None
    (tmp_path / "data").chmod(0o755)
    warning = store.permission_problem()
    assert warning is not None and "chmod 700" in warning


def test_unusable_data_dir_gives_one_clear_message(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("I am a file, not a directory")
    with pytest.raises(StoreError, match="creating"):
        Store(blocker / "data")
