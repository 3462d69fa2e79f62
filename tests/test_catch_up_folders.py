"""The walk at open lists only date folders that moved since the index saved their mtimes; what
happened in the others (nothing can, without moving the mtime) is taken as the index knows it.
Every change made behind the index's back must still be found."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import memo_shell
from memo_shell import records
from memo_shell.store import Store
from memo_shell.tombstones import Tombstones

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, list[str]]:
    """Four days of memories, indexed and closed (snapshot and folder mtimes saved)."""
    data_dir = tmp_path / "data"
    with memo_shell.open(data_dir) as mem:
        ids = [
            mem.add(f"day {i // 3} note {i} about the garden shed", at=T0 + timedelta(hours=8 * i))
            for i in range(12)
        ]
    hour_ago = int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1e9)
    for folder in {Store(data_dir).path_for(i).parent for i in ids}:  # written long ago:
        os.utime(folder, ns=(hour_ago, hour_ago))  # not within the racy window of a save
    with memo_shell.open(data_dir) as mem:
        mem.reindex()
    return data_dir, ids


def _recalled(mem: memo_shell.Memories) -> set[str]:
    return {h.memory.id for h in mem.recall("garden shed note", k=50)}


def test_an_open_with_nothing_changed_lists_no_date_folder(
    seeded: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, ids = seeded
    scans: list[memo_shell.store.ScanResult] = []
    real = Store.scan

    def spy(self: Store, *args: object) -> memo_shell.store.ScanResult:
        result = real(self, *args)  # type: ignore[arg-type]
        scans.append(result)
        return result

    monkeypatch.setattr(Store, "scan", spy)
    with memo_shell.open(data_dir) as mem:
        assert _recalled(mem) == set(ids)
    folders = {Store(data_dir).path_for(i).parent for i in ids}
    assert scans and scans[0].ids == [] and set(scans[0].skipped) == folders


def test_changes_behind_its_back_are_found_in_the_folders_that_moved(
    seeded: tuple[Path, list[str]],
) -> None:
    data_dir, ids = seeded
    store = Store(data_dir)
    new = records.make_memory(user="a new garden shed note", at=T0 + timedelta(hours=9))
    store.write(new)  # another program: no change-log line
    store.path_for(ids[4]).unlink()  # a file manager
    day = store.path_for(ids[9]).parent
    that_day = {i for i in ids if store.path_for(i).parent == day}
    shutil.rmtree(day)  # a whole day
    expected = (set(ids) - {ids[4]} - that_day) | {new.id}
    with memo_shell.open(data_dir) as mem:
        assert _recalled(mem) == expected
        assert mem.count() == len(expected)


def test_a_forget_marker_for_a_file_in_an_unchanged_folder_still_deletes_it(
    seeded: tuple[Path, list[str]],
) -> None:
    """A marker synced in from another device: the folder of its file did not move, yet the
    file goes (forgetting leaves no trace) and the memory is not recalled."""
    data_dir, ids = seeded
    Tombstones(data_dir).add([ids[1]])
    with memo_shell.open(data_dir) as mem:
        assert ids[1] not in _recalled(mem)
    assert not Store(data_dir).path_for(ids[1]).exists()


def test_a_snapshot_of_another_log_generation_lists_everything(
    seeded: tuple[Path, list[str]],
) -> None:
    """The saved folder mtimes vouch for the snapshot plus its log; with a log restarted
    since (a crash between the two), every folder is listed again."""
    from memo_shell.paths import index_dir

    data_dir, ids = seeded
    changes = index_dir(data_dir) / "changes"
    changes.write_text("memo-shell-changes 00000000deadbeef\n")
    store = Store(data_dir)
    # written without moving its folder's mtime: only a full listing can find it
    folder = store.path_for(ids[0]).parent
    mtime = folder.stat().st_mtime_ns
    new = records.make_memory(user="a quiet garden shed note", at=T0 + timedelta(hours=1))
    store.write(new)
    os.utime(folder, ns=(mtime, mtime))
    with memo_shell.open(data_dir) as mem:
        assert new.id in _recalled(mem)


def test_a_rebuild_drops_what_was_forgotten_while_it_read(
    seeded: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process forgets memories the rebuild has already read (file deleted; a marker
    synced in): the snapshot written at its end holds neither."""
    data_dir, ids = seeded
    real_read = Store.read

    def read(self: Store, memory_id: str) -> records.Memory:
        memory = real_read(self, memory_id)
        if memory_id == ids[5]:  # ids 0..5 are read by now
            self.path_for(ids[1]).unlink()
            Tombstones(data_dir).add([ids[2]])
        return memory

    monkeypatch.setattr(Store, "read", read)
    with memo_shell.open(data_dir, preload=False) as mem:
        mem.reindex()
        assert mem.index.meta(ids[1]) is None and mem.index.meta(ids[2]) is None
        assert mem.index.meta(ids[3]) is not None
    monkeypatch.undo()
    with memo_shell.open(data_dir) as mem:
        assert _recalled(mem) == set(ids) - {ids[1], ids[2]}
