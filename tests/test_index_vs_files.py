"""The index is a cache of the files: however it is lost, damaged or bypassed, recall comes back
exactly as ``reindex`` would build it from the files.

Issue 6, item 4. Every test drives the public API (``memo_shell.open`` / ``Memories``) on real
files; the damage is done with plain file operations, the way a crash, a bad disk, a sync tool
or a user with a file manager would do it. The reference for "right" is always a full rebuild
from the record files (``reindex``, or deleting ``index/``), compared query by query, id by id and
score by score, so a repair that silently drops, keeps or mis-scores a single memory fails.
"""

from __future__ import annotations

import copy
import os
import random
import shutil
import time
from pathlib import Path

import pytest
from memory_workload import (
    QUERIES,
    Fingerprint,
    Workload,
    add_one,
    differences,
    fingerprint,
    random_ops,
)

import memo_shell
from memo_shell.paths import index_dir, quarantine_dir
from memo_shell.store import Store

SEEDS = [11, 23, 37]


def _queries(work: Workload) -> list[str]:
    """The fixed queries plus the unique words of a few live and a few forgotten memories."""
    live = [work.live[i] for i in sorted(work.live)[:4]]
    gone = [work.forgotten[i] for i in sorted(work.forgotten)[:4]]
    return [*QUERIES, *live, *gone]


def _build(data_dir: Path, seed: int, *, rounds: int = 3, ops: int = 45, **kw: bool) -> Workload:
    """A store shaped by ``rounds`` sessions of random API calls (each a fresh open/close).

    Several sessions matter: later ones start from a snapshot plus a change log, which is the
    path where a live index and a rebuilt one can drift apart.
    """
    rng = random.Random(seed)
    work = Workload()
    for _ in range(rounds):
        with memo_shell.open(data_dir) as memories:
            random_ops(memories, rng, work, ops, **kw)
    return work


def _rebuilt(data_dir: Path, queries: list[str]) -> Fingerprint:
    """Recall as a brand-new index built from the files alone would answer."""
    shutil.rmtree(index_dir(data_dir), ignore_errors=True)
    with memo_shell.open(data_dir) as memories:
        return fingerprint(memories, queries)


def _index_matches_files(memories: memo_shell.Memories, work: Workload | None = None) -> None:
    """The index lists exactly the record files, with the pins the files hold."""
    on_disk = set(memories.ids())
    assert set(memories.index.ids()) == on_disk
    if work is not None:
        assert on_disk == set(work.live)
        assert set(memories.index.ids(pinned=True)) == work.pinned


# ---------------------------------------------------------------------------------------------
# reindex reproduces the live index (property-style, several seeds)


@pytest.mark.parametrize("seed", SEEDS)
def test_live_recall_equals_reindex_and_a_fresh_build(data_dir: Path, seed: int) -> None:
    """Random adds (some back-dated), forgets, pins and tag changes over several sessions:
    live == reindex == index dir deleted, for every query, id by id and score by score."""
    work = _build(data_dir, seed, in_order=False, retag=True)
    queries = _queries(work)
    with memo_shell.open(data_dir) as memories:
        random_ops(memories, random.Random(seed + 1), work, 20, in_order=False, retag=True)
        _index_matches_files(memories, work)
        live = fingerprint(memories, queries)
        assert sum(map(len, live.values())) > 50, "the queries must actually recall things"
        for token in (work.forgotten[i] for i in work.forgotten):
            assert all(h.memory.id not in work.forgotten for h in memories.recall(token)), (
                "a forgotten memory was recalled"
            )
        assert memories.reindex() == len(work.live)
        after_reindex = fingerprint(memories, queries)
        _index_matches_files(memories, work)
    assert differences(live, after_reindex) == []
    assert differences(live, _rebuilt(data_dir, queries)) == []


def test_tag_changes_reach_recall_like_reindex(data_dir: Path) -> None:
    """Tags are indexed as words and entities, so changing them must re-index those."""
    with memo_shell.open(data_dir) as memories:
        mid = memories.add("we went down to the lake", tags=["pottery"])
        memories.add("another day at the office")
        memories.set_tags(mid, ["chess"])
        live = fingerprint(memories, ["chess", "pottery"])
    rebuilt = _rebuilt(data_dir, ["chess", "pottery"])
    assert rebuilt["chess"] and not rebuilt["pottery"]
    assert differences(live, rebuilt) == []


def test_back_dated_adds_recall_like_reindex(data_dir: Path) -> None:
    """Indexing order is not time order (imports, ``--at``): ties must not be broken by it."""
    rng = random.Random(0)  # 28 of 30 rankings differ at this seed; the same every run
    work = Workload()
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()  # every add goes straight into the loaded index: deterministic
        for _ in range(150):
            add_one(memories, rng, work, in_order=False)
        queries = _queries(work)
        live = fingerprint(memories, queries)
    assert differences(live, _rebuilt(data_dir, queries)) == []


def test_a_forgotten_memory_does_not_shape_how_later_ones_are_indexed(data_dir: Path) -> None:
    """Evidence from a forgotten memory ("alice" in lower case) must go with it."""
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        gone = memories.add("my cousin says alice is a lovely old word")
        memories.forget(gone)
        memories.add("Alice went hiking in the Alps last summer")
        live = [e.name for e in memories.index.entities()]
        memories.reindex()
        rebuilt = [e.name for e in memories.index.entities()]
    assert live == rebuilt


# ---------------------------------------------------------------------------------------------
# the index lost or damaged


@pytest.fixture(scope="module")
def _template(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Workload, list[str], Fingerprint]:
    """Built once per module (it is the slow part): a store after three sessions."""
    data_dir = tmp_path_factory.mktemp("template") / "data"
    with pytest.MonkeyPatch.context() as patch:  # runs before the per-test state dir is set
        patch.setenv("MEMO_SHELL_STATE_DIR", str(tmp_path_factory.mktemp("template-state")))
        work = _build(data_dir, 101)
        queries = _queries(work)
        with memo_shell.open(data_dir) as memories:
            memories.reindex()  # a snapshot that covers everything, and a new change log
            add_one(memories, random.Random(7), work, in_order=True)  # one change in the log
            reference = fingerprint(memories, queries)
        shutil.copytree(index_dir(data_dir), data_dir.parent / "index")  # this device's index
    return data_dir, work, queries, reference


@pytest.fixture
def built(
    data_dir: Path, _template: tuple[Path, Workload, list[str], Fingerprint]
) -> tuple[Workload, list[str], Fingerprint]:
    """A private copy of the template store, what it holds, the queries, a rebuild's answers."""
    source, work, queries, reference = _template
    shutil.copytree(source, data_dir, symlinks=True)
    shutil.copytree(source.parent / "index", index_dir(data_dir))
    return copy.deepcopy(work), list(queries), copy.deepcopy(reference)


def _reopened(data_dir: Path, work: Workload, queries: list[str]) -> tuple[Fingerprint, list[str]]:
    with memo_shell.open(data_dir) as memories:
        got = fingerprint(memories, queries)
        _index_matches_files(memories, work)
        return got, list(memories.index.notices)


def test_deleted_index_dir_is_rebuilt_to_the_same_answers(
    data_dir: Path, built: tuple[Workload, list[str], Fingerprint]
) -> None:
    work, queries, reference = built
    shutil.rmtree(index_dir(data_dir))
    got, notices = _reopened(data_dir, work, queries)
    assert differences(reference, got) == []
    assert any("missing" in n for n in notices), notices
    assert (index_dir(data_dir) / "snapshot").exists()


@pytest.mark.parametrize("keep", [0, 7, 21, 100, 0.5, -1])
def test_truncated_snapshot_is_rebuilt_to_the_same_answers(
    data_dir: Path, built: tuple[Workload, list[str], Fingerprint], keep: float
) -> None:
    """A torn write or a full disk leaves a prefix of the snapshot: any prefix is detected."""
    work, queries, reference = built
    snapshot = index_dir(data_dir) / "snapshot"
    raw = snapshot.read_bytes()
    cut = int(len(raw) * keep) if isinstance(keep, float) else keep % len(raw)
    snapshot.write_bytes(raw[:cut])
    got, notices = _reopened(data_dir, work, queries)
    assert differences(reference, got) == []
    assert any("corrupt" in n or "missing" in n for n in notices), notices


@pytest.mark.parametrize("how", ["bit flips", "zeroed block", "random bytes", "other store's"])
def test_garbled_snapshot_is_rebuilt_to_the_same_answers(
    data_dir: Path, tmp_path: Path, built: tuple[Workload, list[str], Fingerprint], how: str
) -> None:
    work, queries, reference = built
    snapshot = index_dir(data_dir) / "snapshot"
    raw = bytearray(snapshot.read_bytes())
    rng = random.Random(how)
    if how == "bit flips":
        for _ in range(3):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
    elif how == "zeroed block":  # a lost disk sector
        start = rng.randrange(len(raw) - 512)
        raw[start : start + 512] = bytes(512)
    elif how == "random bytes":
        raw = bytearray(rng.randbytes(len(raw)))
    else:  # a valid snapshot of a different store, e.g. synced in from another device
        other = tmp_path / "other"
        _build(other, 999, rounds=1, ops=40)
        with memo_shell.open(other) as memories:
            memories.reindex()
        raw = bytearray((index_dir(other) / "snapshot").read_bytes())
    snapshot.write_bytes(bytes(raw))
    got, _notices = _reopened(data_dir, work, queries)
    assert differences(reference, got) == []


@pytest.mark.parametrize(
    "damage",
    ["binary junk", "torn last line", "lies about files", "bad header", "huge ids", "emptied"],
)
def test_garbled_change_log_never_changes_what_is_recalled(
    data_dir: Path, built: tuple[Workload, list[str], Fingerprint], damage: str
) -> None:
    """The log is only a hint: every line is checked against the files before it is applied.

    "lies about files" claims removals of memories whose files exist and additions of forgotten
    ones: neither may hide a live memory nor resurrect a forgotten one.
    """
    work, queries, reference = built
    log = index_dir(data_dir) / "changes"
    text = log.read_bytes()
    rng = random.Random(damage)
    if damage == "binary junk":
        text += rng.randbytes(300) + b"\n" + rng.randbytes(50)
    elif damage == "torn last line":
        text += b"+ 01J0000000000000000000"
    elif damage == "lies about files":
        origin = b"99999-abcdef"
        lines = [b"- " + i.encode() + b" " + origin for i in sorted(work.live)]
        lines += [b"+ " + i.encode() + b" " + origin for i in sorted(work.forgotten)]
        lines += [b"~ " + i.encode() + b" " + origin for i in sorted(work.forgotten)]
        lines += [b"+ ../../../etc/passwd x", b"- \x00\x01 x", b"? what ever", b""]
        text += b"\n".join(lines) + b"\n"
    elif damage == "bad header":
        text = b"garbage" + text[7:]
    elif damage == "huge ids":
        text += b"+ " + b"7" * 100_000 + b" x\n" + b"- " + b"Z" * 26 + b" x\n"
    else:
        text = b""
    log.write_bytes(text)
    got, _notices = _reopened(data_dir, work, queries)
    assert differences(reference, got) == []
    with memo_shell.open(data_dir) as memories:  # and the repaired index stays right
        assert differences(reference, fingerprint(memories, queries)) == []


def test_a_live_handle_survives_its_change_log_being_garbled(
    data_dir: Path, built: tuple[Workload, list[str], Fingerprint]
) -> None:
    """Another process (or a sync tool) scribbles on the log while this one is running."""
    work, queries, reference = built
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        log = index_dir(data_dir) / "changes"
        junk = [f"- {i} 4242-beefed" for i in sorted(work.live)]
        junk += [f"+ {i} 4242-beefed" for i in sorted(work.forgotten)]
        with open(log, "a", encoding="ascii") as f:
            f.write("\n".join(junk) + "\n\x00\x00garbage\n")
        assert differences(reference, fingerprint(memories, queries)) == []
        _index_matches_files(memories, work)


# ---------------------------------------------------------------------------------------------
# record files added or removed behind the app's back


def _foreign_records(tmp_path: Path, count: int, seed: int) -> tuple[Path, list[str]]:
    """Records made on "another device": their own data dir, copied over file by file."""
    other = tmp_path / f"device-{seed}"
    rng = random.Random(seed)
    work = Workload(made=50_000 + seed)  # unique tokens of their own
    with memo_shell.open(other, preload=False) as memories:
        for _ in range(count):
            add_one(memories, rng, work, in_order=True)
    return other, sorted(work.live)


def _sync_in(source: Path, target: Path, ids: list[str]) -> None:
    """Copy record files the way Syncthing does: a hidden temp file, then a rename."""
    for memory_id in ids:
        relative = Store(source).path_for(memory_id).relative_to(source)
        final = target / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".syncthing.{final.name}.tmp")
        shutil.copyfile(source / relative, temp)
        os.rename(temp, final)


def test_files_synced_in_and_deleted_while_closed_are_caught_up_incrementally(
    data_dir: Path,
    tmp_path: Path,
    built: tuple[Workload, list[str], Fingerprint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On open, only the new files are read (no rebuild), and the result equals a rebuild."""
    work, queries, _reference = built
    with memo_shell.open(data_dir) as memories:
        memories.reindex()  # the snapshot covers every file: the catch-up has nothing else to do
    other, new_ids = _foreign_records(tmp_path, 12, seed=1)
    _sync_in(other, data_dir, new_ids)
    removed = sorted(work.live)[::5]
    for memory_id in removed:  # the user deletes some files in a file manager
        Store(data_dir).path_for(memory_id).unlink()
        work.forgotten[memory_id] = work.live.pop(memory_id)
        work.pinned.discard(memory_id)
    work.live.update({i: "" for i in new_ids})
    with memo_shell.open(other) as memories:
        work.pinned |= {i for i in new_ids if memories.get(i).pinned}

    reads: list[str] = []
    real_read = Store.read

    def counting_read(self: Store, memory_id: str) -> memo_shell.Memory:
        reads.append(memory_id)
        return real_read(self, memory_id)

    monkeypatch.setattr(Store, "read", counting_read)
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        assert sorted(reads) == new_ids, "the catch-up read more than the new files"
        assert not any("missing" in n or "corrupt" in n for n in memories.index.notices)
        _index_matches_files(memories, work)
        queries = [*queries, *(memories.get(i).user for i in new_ids[:3])]
        live = fingerprint(memories, queries)
    monkeypatch.undo()
    assert differences(live, _rebuilt(data_dir, queries)) == []


def test_records_deleted_while_open_are_never_recalled(
    data_dir: Path, built: tuple[Workload, list[str], Fingerprint]
) -> None:
    work = built[0]
    victim = sorted(work.live)[3]
    with memo_shell.open(data_dir) as memories:
        token = work.live[victim]
        assert [h.memory.id for h in memories.recall(token)][:1] == [victim]
        Store(data_dir).path_for(victim).unlink()  # another tool removes the file
        assert victim not in [h.memory.id for h in memories.recall(token)]
        assert memories.index.meta(victim) is None  # the stale entry was dropped too


def test_records_synced_in_while_open_are_recalled(
    data_dir: Path,
    tmp_path: Path,
    built: tuple[Workload, list[str], Fingerprint],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sync tool drops record files in while the app runs (no change-log line): the running
    index finds them on its periodic rescan, made frequent here instead of once a minute."""
    from memo_shell.index import freshness

    monkeypatch.setattr(freshness, "RESCAN_SECONDS", 0.1)
    other, new_ids = _foreign_records(tmp_path, 3, seed=2)
    with memo_shell.open(other) as memories:
        tokens = {i: memories.get(i).user.split()[-1] for i in new_ids}
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        memories.recall("anything")
        _sync_in(other, data_dir, new_ids)
        deadline = time.monotonic() + 10
        missing = set(new_ids)
        while missing and time.monotonic() < deadline:
            missing = {
                i for i in missing if i not in [h.memory.id for h in memories.recall(tokens[i])]
            }
            time.sleep(0.05)
        assert not missing, "files synced in were never recalled"
        assert set(memories.index.ids()) == set(memories.ids())


def test_a_sync_tools_files_in_flight_are_left_alone(
    data_dir: Path, tmp_path: Path, built: tuple[Workload, list[str], Fingerprint]
) -> None:
    """Syncthing's and rsync's temp files are someone else's writes in progress: moving or
    deleting them breaks the transfer. Our own crash debris is still swept."""
    work = built[0]
    shard = Store(data_dir).path_for(sorted(work.live)[0]).parent
    other, [incoming] = _foreign_records(tmp_path, 1, seed=3)
    payload = Store(other).path_for(incoming).read_bytes()
    in_flight = [
        shard / f".syncthing.{incoming}.memo.tmp",  # Syncthing (Unix)
        shard / f"~syncthing~{incoming}.memo.tmp",  # Syncthing (Windows-style name)
        shard / f".{incoming}.memo.Xy12Qz",  # rsync
    ]
    for path in in_flight:
        path.write_bytes(payload if path == in_flight[0] else payload[:-9])
    ours = shard / f".{incoming}.999999999.0.tmp"  # a crashed writer of ours (pid cannot exist)
    ours.write_bytes(b"half")
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        _index_matches_files(memories)
    assert all(p.exists() for p in in_flight), [p.name for p in in_flight if not p.exists()]
    assert not ours.exists()
    # the transfer completes (the tools rename or drop their temp files): the next start
    # indexes the memory and finds nothing left to tidy
    final = Store(data_dir).path_for(incoming)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.rename(in_flight[0], final)
    for path in in_flight[1:]:
        path.unlink()
    with memo_shell.open(data_dir) as memories:
        assert incoming in memories.index.ids()
        assert memories.get(incoming) == Store(other).read(incoming)  # the whole record
        assert memories.index.notices == []


def test_a_sync_conflict_copy_is_merged_into_its_record_not_quarantined(
    data_dir: Path, built: tuple[Workload, list[str], Fingerprint]
) -> None:
    """A sync tool's conflict copy of a record is another version of it, not damage: it is
    merged (see tests/test_sync.py for the merge rules) and deleted, and nothing is quarantined."""
    work = built[0]
    original = Store(data_dir).path_for(sorted(work.live)[1])
    conflict = original.with_name(f"{original.stem}.sync-conflict-20240301-101010-ABCDEFG.memo")
    shutil.copyfile(original, conflict)
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        _index_matches_files(memories, work)
        assert memories.index.notices == []
    assert not conflict.exists() and original.exists()
    assert not quarantine_dir(data_dir).exists()


def test_a_record_moved_into_another_date_folder_is_put_back(
    data_dir: Path, built: tuple[Workload, list[str], Fingerprint]
) -> None:
    """A record is read and deleted at the path its id names; one dragged into another date
    folder would be listed but unreadable and unforgettable. The next start moves it home (and
    a second copy of one that is already home goes to quarantine, not to the bin)."""
    work = built[0]
    moved, copied = sorted(work.live)[2], sorted(work.live)[-1]
    store = Store(data_dir)
    elsewhere = data_dir / "memories" / "2023" / "02" / "14"
    elsewhere.mkdir(mode=0o700, parents=True)
    os.rename(store.path_for(moved), elsewhere / f"{moved}.memo")
    misplaced_copy = elsewhere / f"{copied}.memo"
    shutil.copyfile(store.path_for(copied), misplaced_copy)
    assert moved not in list(store.iter_ids())  # listed only where it can be read
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        assert store.path_for(moved).exists() and not misplaced_copy.exists()
        assert memories.get(moved).id == moved
        _index_matches_files(memories, work)
        assert (quarantine_dir(data_dir) / misplaced_copy.name).exists()
        memories.forget(moved)
    assert not store.exists(moved)
