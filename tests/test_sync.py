"""The store under a sync tool, with the tool's effects done by hand on real files: forget
markers, conflict copies, sync temp files, the per-device index, changed files noticed.

Issue 18. The same scenarios with two real Syncthing peers are in tests/test_sync_syncthing.py;
these pin down each rule on its own, fast. Every file operation here is one a sync tool does:
write a temp file, rename it over the record (a new inode), or put a renamed copy beside it.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import memo_shell
from memo_shell import records, sync
from memo_shell.conflicts import conflict_original, is_sync_temp
from memo_shell.errors import NotFound
from memo_shell.paths import device_dir, index_dir, quarantine_dir
from memo_shell.records import Memory
from memo_shell.store import STALE_TEMP_SECONDS, Store
from memo_shell.tombstones import KEEP_DAYS, Tombstones


def _land(path: Path, memory: Memory, *, mtime: float | None = None) -> None:
    """Put a record file in place the way a sync tool does: temp file, then rename over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".syncthing.{path.name}.tmp")
    temp.write_bytes(records.encode(memory))
    if mtime is not None:
        os.utime(temp, (mtime, mtime))
    os.replace(temp, path)


def _conflict(path: Path, device: str = "ABCDEFG") -> Path:
    return path.with_name(f"{path.stem}.sync-conflict-20260101-101010-{device}{path.suffix}")


def _add(data_dir: Path, *texts: str) -> list[str]:
    with memo_shell.open(data_dir, preload=False) as memories:
        return [memories.add(text) for text in texts]


# ---------------------------------------------------------------------------------------------
# forget wins


def test_forget_leaves_an_empty_marker_and_a_file_that_comes_back_is_deleted(
    data_dir: Path,
) -> None:
    [keep, gone] = _add(data_dir, "keep the violin lesson", "forget the secret plum code")
    store = Store(data_dir)
    copy = store.read(gone).with_changes(pinned=True)  # edited on another device meanwhile
    with memo_shell.open(data_dir) as memories:
        memories.forget(gone)
    marker = data_dir / "forgotten" / gone
    assert marker.exists() and marker.stat().st_size == 0  # no text, only the id in its name
    _land(store.path_for(gone), copy)  # the sync tool brings the edit back
    with memo_shell.open(data_dir) as memories:
        assert memories.ids() == [keep] and memories.count() == 1
        with pytest.raises(NotFound, match="forgotten"):
            memories.get(gone)
        assert [h.memory.id for h in memories.recall("plum code")] == []
        assert memories.index.ids() == [keep]
    assert not store.path_for(gone).exists()


def test_pin_and_tag_of_a_forgotten_id_are_refused_with_a_sentence(data_dir: Path) -> None:
    [gone] = _add(data_dir, "a memory to forget")
    store = Store(data_dir)
    copy = store.read(gone)
    with memo_shell.open(data_dir, preload=False) as memories:
        memories.forget(gone)
        _land(store.path_for(gone), copy)
        with pytest.raises(NotFound, match=r"was forgotten"):
            memories.pin(gone)
        _land(store.path_for(gone), copy)
        with pytest.raises(NotFound, match=r"was forgotten"):
            memories.set_tags(gone, ["x"])
    assert not store.path_for(gone).exists()


def test_pin_through_the_cli_of_a_forgotten_id_says_so(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    [gone] = _add(data_dir, "cli forgotten memory")
    copy = Store(data_dir).read(gone)
    assert run_cli("mem", "forget", gone, "--yes").exit_code == 0
    _land(Store(data_dir).path_for(gone), copy)
    result = run_cli("mem", "pin", gone)
    assert result.exit_code == 1
    assert "was forgotten" in result.stderr and "Traceback" not in result.stdout + result.stderr


def test_import_does_not_bring_back_a_forgotten_id(data_dir: Path) -> None:
    [gone] = _add(data_dir, "imported then forgotten")
    copy = Store(data_dir).read(gone)
    with memo_shell.open(data_dir, preload=False) as memories:
        memories.forget(gone)
        fresh = records.make_memory(user="a new one")
        assert memories.add_many([copy, fresh]) == [fresh.id]
        assert memories.ids() == [fresh.id]


def test_undo_puts_a_memory_back_and_drops_its_marker(data_dir: Path) -> None:
    [mid] = _add(data_dir, "undo me")
    with memo_shell.open(data_dir, preload=False) as memories:
        memory = memories.get(mid)
        memories.forget(mid)
        memories.restore(memory)
        assert memories.get(mid) == memory
    assert not (data_dir / "forgotten" / mid).exists()


def test_markers_expire_and_their_conflict_copies_fold_into_one(tmp_path: Path) -> None:
    a, b = records.new_id(), records.new_id()
    stones = Tombstones(tmp_path)
    stones.add([a, b])
    copy = tmp_path / "forgotten" / f"{a}.sync-conflict-20260101-101010-ABCDEFG"
    copy.touch()
    old = time.time() - (KEEP_DAYS + 1) * 86_400
    os.utime(tmp_path / "forgotten" / b, (old, old))
    assert stones.ids() == {a, b}
    assert stones.tidy() == 2
    assert sorted(p.name for p in (tmp_path / "forgotten").iterdir()) == [a]
    assert stones.ids() == {a}


# ---------------------------------------------------------------------------------------------
# conflict copies


def test_edit_vs_edit_conflict_is_merged_pinned_and_tags_united(data_dir: Path) -> None:
    [mid] = _add(data_dir, "the shared memory about sailing")
    store = Store(data_dir)
    base = store.read(mid)
    live = store.path_for(mid)
    now = time.time()
    _land(live, base.with_changes(tags=("boat", "b-side")), mtime=now)  # B's edit won the name
    _land(_conflict(live), base.with_changes(pinned=True, tags=("a-side",)), mtime=now - 5)
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        merged = memories.get(mid)
        assert merged.pinned and merged.tags == ("boat", "b-side", "a-side")
        assert merged.user == base.user and not any(k.startswith("sync") for k in merged.meta)
        assert memories.index.ids(pinned=True) == [mid]
        assert not any("foreign" in n for n in memories.index.notices)
    assert sorted(p.name for p in live.parent.iterdir()) == [live.name]
    assert not quarantine_dir(data_dir).exists()


def test_a_text_conflict_keeps_the_newer_text_and_the_other_in_meta() -> None:
    base = records.make_memory(user="old words", assistant="old reply")
    newer = base.with_changes(user="new words", tags=("n",))
    merged = sync.merge(newer, base.with_changes(pinned=True))
    assert (merged.user, merged.pinned, merged.tags) == ("new words", True, ("n",))
    assert merged.meta[sync.OTHER_USER] == "old words"
    assert merged.meta[sync.OTHER_ASSISTANT] == "old reply"


def test_a_conflict_copy_of_a_forgotten_id_is_dropped(data_dir: Path) -> None:
    [mid] = _add(data_dir, "forget versus conflict")
    store = Store(data_dir)
    copy = store.read(mid).with_changes(tags=("x",))
    with memo_shell.open(data_dir, preload=False) as memories:
        memories.forget(mid)
    conflict = _conflict(store.path_for(mid))
    _land(conflict, copy)
    assert Store(data_dir).scan().ids == []
    assert not conflict.exists() and not quarantine_dir(data_dir).exists()


def test_a_conflict_copy_without_a_live_record_becomes_the_record(data_dir: Path) -> None:
    memory = records.make_memory(user="only the copy arrived")
    store = Store(data_dir)
    _land(_conflict(store.path_for(memory.id), "ZZZZZZZ"), memory)
    assert store.scan().ids == [memory.id]
    assert store.read(memory.id) == memory


@pytest.mark.parametrize(
    "name",
    [
        "{id}.sync-conflict-20260101-101010-ABCDEFG.memo",
        "{id} (conflicted copy 2026-01-01).memo",
        "{id} (Ann's conflicted copy 2026-01-01) (1).memo",
        "{id} (conflicted copy 2026-01-01 101010).memo",
        "{id} (conflict on laptop 2026-01-01).memo",
        "{id}.memo.unison.conflict",
    ],
)
def test_other_tools_conflict_names_are_merged_too(data_dir: Path, name: str) -> None:
    [mid] = _add(data_dir, "many tools")
    store = Store(data_dir)
    path = store.path_for(mid)
    _land(path.with_name(name.format(id=mid)), store.read(mid).with_changes(pinned=True))
    assert store.scan().foreign == []
    assert store.read(mid).pinned
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_a_damaged_conflict_copy_is_quarantined_not_merged(data_dir: Path) -> None:
    [mid] = _add(data_dir, "damaged copy")
    store = Store(data_dir)
    conflict = _conflict(store.path_for(mid))
    conflict.write_bytes(b"not a record")
    scan = store.scan()
    assert scan.foreign == [conflict] and scan.ids == [mid]


def test_sync_temp_files_are_left_alone_even_when_old(data_dir: Path) -> None:
    [mid] = _add(data_dir, "temp neighbours")
    store = Store(data_dir)
    folder = store.path_for(mid).parent
    temps = [folder / f".syncthing.{mid}.memo.tmp", folder / f"~syncthing~{mid}.memo.tmp"]
    old = time.time() - 2 * STALE_TEMP_SECONDS
    for temp in temps:
        temp.write_bytes(b"partial")
        os.utime(temp, (old, old))
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
    assert all(t.exists() for t in temps)
    assert not quarantine_dir(data_dir).exists()


@given(st.text(max_size=80))
def test_conflict_name_parsing_never_raises(name: str) -> None:
    original = conflict_original(name)
    assert original is None or len(original) < len(name)
    is_sync_temp(name)


@given(
    st.booleans(),
    st.booleans(),
    st.lists(st.sampled_from("abcdef"), unique=True),
    st.lists(st.sampled_from("abcdef"), unique=True),
)
def test_merge_keeps_every_pin_and_tag_whichever_side_is_newer(
    pin_a: bool, pin_b: bool, tags_a: list[str], tags_b: list[str]
) -> None:
    base = records.make_memory(user="same")
    a = base.with_changes(pinned=pin_a, tags=tuple(tags_a))
    b = base.with_changes(pinned=pin_b, tags=tuple(tags_b))
    for merged in (sync.merge(a, b), sync.merge(b, a)):
        assert merged.pinned == (pin_a or pin_b)
        assert set(merged.tags) == set(tags_a) | set(tags_b)
        assert merged.meta == {}


# ---------------------------------------------------------------------------------------------
# the index is per device


def test_nothing_device_specific_is_written_into_the_data_dir(data_dir: Path) -> None:
    [mid] = _add(data_dir, "where do files go")
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        memories.pin(mid)
        memories.reindex()
    store = Store(data_dir)
    store.quarantine(store.path_for(mid), "testing")
    assert sorted(p.name for p in data_dir.iterdir()) == ["memories"]
    assert (index_dir(data_dir) / "snapshot").exists()
    assert quarantine_dir(data_dir).is_dir()
    assert (
        data_dir.resolve() != device_dir(data_dir) and data_dir not in device_dir(data_dir).parents
    )


def test_the_old_layout_is_adopted(data_dir: Path) -> None:
    [mid] = _add(data_dir, "from an older version")
    old_index = data_dir / "index"
    old_index.mkdir()
    (old_index / "snapshot.sync-conflict-20250101-101010-ABCDEFG").write_bytes(b"forgotten text")
    (old_index / "lock").touch()
    (data_dir / "quarantine").mkdir()
    (data_dir / "quarantine" / "broken.memo").write_bytes(b"damaged")
    (data_dir / "quarantine" / "log.jsonl").write_text('{"file": "x"}\n')
    (data_dir / ".lock").touch()
    with memo_shell.open(data_dir) as memories:
        assert memories.ids() == [mid]
        assert [h.memory.id for h in memories.recall("older version")] == [mid]
    assert sorted(p.name for p in data_dir.iterdir()) == ["memories"]
    assert (quarantine_dir(data_dir) / "broken.memo").read_bytes() == b"damaged"
    assert "x" in (quarantine_dir(data_dir) / "log.jsonl").read_text()


def test_two_data_dirs_get_two_indexes_and_a_symlink_shares_one(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    link = tmp_path / "link"
    link.symlink_to(a)
    assert index_dir(a) != index_dir(b)
    assert index_dir(a) == index_dir(link)


# ---------------------------------------------------------------------------------------------
# changed files are noticed


def test_a_pin_made_elsewhere_is_seen_at_the_next_start(data_dir: Path) -> None:
    ids = _add(data_dir, "alpha memory", "beta memory", "gamma memory")
    with memo_shell.open(data_dir) as memories:
        memories.reindex()  # snapshot and file signatures saved
    store = Store(data_dir)
    for mid in ids[:2]:  # the other device pinned two: same size? no matter, a new inode
        _land(store.path_for(mid), store.read(mid).with_changes(pinned=True))
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        assert memories.stats()["pinned"] == 2
        assert sorted(memories.index.ids(pinned=True)) == sorted(ids[:2])


def test_a_pin_landing_in_a_folder_indexed_long_ago_is_seen(data_dir: Path) -> None:
    """Loads look inside only the date folders whose mtime moved since they were indexed; a
    sync tool renaming a changed record into place moves it."""
    ids = _add(data_dir, "delta memory", "epsilon memory")
    store = Store(data_dir)
    folder = store.path_for(ids[0]).parent
    old = time.time() - 3600
    os.utime(folder, (old, old))  # indexed long ago: not "racy", so its mtime is trusted
    with memo_shell.open(data_dir) as memories:
        memories.reindex()
    with memo_shell.open(data_dir) as memories:  # unchanged folder: nothing re-read
        assert memories.stats()["pinned"] == 0
    _land(store.path_for(ids[1]), store.read(ids[1]).with_changes(pinned=True))
    with memo_shell.open(data_dir) as memories:
        assert memories.index.ids(pinned=True) == [ids[1]]


def _until(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_an_open_process_sees_synced_files_within_seconds(data_dir: Path, tmp_path: Path) -> None:
    """The watcher: a new file, a changed file and a deleted file, each arriving the way a
    sync tool lands them, are reflected by recall without a restart or the minute's rescan."""
    [mid] = _add(data_dir, "the harbour memory")
    store = Store(data_dir)
    with memo_shell.open(data_dir) as memories:
        memories.recall("harbour")
        memories.recall("harbour")  # a process that searches twice starts watching
        assert memories.index._watcher is not None
        assert memories.index._watcher.started.wait(10)
        new = records.make_memory(user="a lighthouse seen from the other laptop")
        _land(store.path_for(new.id), new)
        started = time.monotonic()
        assert _until(lambda: [h.memory.id for h in memories.recall("lighthouse")] == [new.id])
        assert time.monotonic() - started < 5.0
        _land(store.path_for(mid), store.read(mid).with_changes(pinned=True))
        assert _until(lambda: memories.index.ids(pinned=True) == [mid])
        store.path_for(new.id).unlink()
        assert _until(lambda: memories.index.ids() == [mid])


def test_a_log_line_whose_file_has_not_arrived_waits_for_it(data_dir: Path) -> None:
    memory = records.make_memory(user="arrives after its log line")
    store = Store(data_dir)
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        memories.index._log.append("+", [memory.id], "another-process")
        assert memories.index.ids() == []
        assert memory.id in memories.index._awaiting
        _land(store.path_for(memory.id), memory)
        assert _until(lambda: memories.index.ids() == [memory.id])


def test_a_conflict_copy_holding_another_record_is_quarantined(data_dir: Path) -> None:
    """A copy named after one id but holding another record is not merged into either."""
    [mid, other] = _add(data_dir, "one memory", "another memory")
    store = Store(data_dir)
    conflict = _conflict(store.path_for(mid))
    _land(conflict, store.read(other).with_changes(pinned=True))
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        assert not memories.get(mid).pinned and not memories.get(other).pinned
    assert (quarantine_dir(data_dir) / conflict.name).exists()


def test_a_scan_tidies_expired_markers(data_dir: Path) -> None:
    [mid] = _add(data_dir, "long forgotten")
    with memo_shell.open(data_dir, preload=False) as memories:
        memories.forget(mid)
    old = time.time() - (KEEP_DAYS + 1) * 86_400
    os.utime(data_dir / "forgotten" / mid, (old, old))
    Store(data_dir).scan()
    assert not (data_dir / "forgotten" / mid).exists()


def test_forget_many_marks_every_id_it_forgets(data_dir: Path) -> None:
    ids = _add(data_dir, "one", "two", "three")
    with memo_shell.open(data_dir, preload=False) as memories:
        assert memories.forget_many([*ids[:2], records.new_id()]) == ids[:2]
    assert sorted(p.name for p in (data_dir / "forgotten").iterdir()) == sorted(ids[:2])


@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
            min_size=1,
            max_size=40,
        ),
        max_size=8,
    )
)
def test_junk_in_the_forgotten_folder_is_ignored(
    tmp_path_factory: pytest.TempPathFactory, names: list[str]
) -> None:
    """Whatever a user or a sync tool puts in forgotten/ (junk names, folders, symlinks) never
    raises and never stands for an id it does not name."""
    root = tmp_path_factory.mktemp("junk")
    folder = root / "forgotten"
    folder.mkdir()
    real = records.new_id()
    for i, name in enumerate(names):
        with contextlib.suppress(OSError):
            (folder / name).mkdir() if i % 3 == 0 else (folder / name).write_bytes(b"x")
    with contextlib.suppress(OSError):
        (folder / "link").symlink_to("/nonexistent")
    stones = Tombstones(root)
    stones.add([real, "not-an-id", "../escape"])
    assert real in stones.ids()
    assert all(records.is_valid_id(i) for i in stones.ids())
    stones.tidy()
    assert real in stones.ids()
    assert not (root / "escape").exists()
