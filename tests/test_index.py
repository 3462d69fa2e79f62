"""The Index contract: lazy start, incremental changes, persistence, catch-up, bad input."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import memo_shell
from memo_shell import records
from memo_shell.index import Index
from memo_shell.index.files import read_snapshot
from memo_shell.index.schema import IndexHit
from memo_shell.paths import index_dir
from memo_shell.store import Store

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _add(
    mem: memo_shell.Memories, text: str, *, session: str = "s1", minutes: int = 0, **kw: object
) -> str:
    return mem.add(text, session=session, at=T0 + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def _search(index: Index, query: str) -> list[IndexHit]:
    """A bare index ranks nothing itself: recall ranks what it holds (as ``Memories`` does)."""
    from memo_shell import recall

    return index.search(lambda data, _vector: recall.search(data, query), query)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_recall_finds_by_words_and_explains(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        thai = _add(mem, "We had dinner at the Thai restaurant on Elm Street", minutes=1)
        _add(mem, "My bike needs a new chain", minutes=2)
        hits = mem.recall("thai restaurant")
        assert [h.memory.id for h in hits] == [thai]
        assert any("thai" in w and "restaurant" in w for w in hits[0].why), hits[0].why


def test_add_before_load_is_queued_not_lost(data_dir: Path) -> None:
    store = Store(data_dir)
    index = Index(store, index_dir(data_dir))  # not started: nothing loaded
    memory = records.make_memory(user="remember the blue umbrella", at=T0)
    store.write(memory)
    index.add(memory)
    assert index.state == "loading"
    index.start()
    assert index.wait_ready(10)
    assert [h.id for h in _search(index, "umbrella")] == [memory.id]
    index.close()


def test_snapshot_is_reused_on_reopen(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with memo_shell.open(data_dir) as mem:
        mid = _add(mem, "Grandma's apple pie recipe uses cinnamon")
        mem.wait_ready()
    assert (index_dir(data_dir) / "snapshot").exists()

    def no_build(*_a: object, **_k: object) -> int:
        raise AssertionError("the index was rebuilt instead of loaded")

    monkeypatch.setattr(Index, "_build_into", no_build)
    with memo_shell.open(data_dir) as mem:
        assert [h.memory.id for h in mem.recall("cinnamon pie")] == [mid]
        assert mem.index.notices == []


def test_corrupt_snapshot_is_rebuilt_with_notice(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        mid = _add(mem, "The wifi password is on the fridge")
        mem.wait_ready()
    snap = index_dir(data_dir) / "snapshot"
    raw = bytearray(snap.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    snap.write_bytes(bytes(raw))
    with memo_shell.open(data_dir) as mem:
        assert [h.memory.id for h in mem.recall("wifi password")] == [mid]
        assert any("corrupt" in n and "rebuilt from 1 memory" in n for n in mem.index.notices)
    read_snapshot(snap)  # and the rebuilt snapshot is whole again


def test_missing_index_dir_is_rebuilt(data_dir: Path) -> None:
    import shutil

    with memo_shell.open(data_dir) as mem:
        mid = _add(mem, "The dentist appointment is on Tuesday")
    shutil.rmtree(index_dir(data_dir))
    with memo_shell.open(data_dir) as mem:
        assert [h.memory.id for h in mem.recall("dentist")] == [mid]
        assert any("missing" in n and "1 memory" in n for n in mem.index.notices)


def test_files_added_and_removed_behind_its_back_are_noticed(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        old = _add(mem, "The old car was a red Volvo")
    store = Store(data_dir)
    new = records.make_memory(user="The new car is a green Volvo", at=T0 + timedelta(hours=1))
    store.write(new)  # written by a process that never told any index
    store.delete(old)
    with memo_shell.open(data_dir) as mem:
        assert [h.memory.id for h in mem.recall("volvo car")] == [new.id]


def test_two_handles_see_each_others_changes(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as a, memo_shell.open(data_dir) as b:
        a.wait_ready()
        b.wait_ready()
        mid = _add(a, "Tickets for the Radiohead concert arrived")
        assert [h.memory.id for h in b.recall("radiohead concert")] == [mid]
        a.pin(mid)
        assert b.index.meta(mid).pinned  # type: ignore[union-attr]
        a.forget(mid)
        assert b.recall("radiohead concert") == []


def test_short_lived_writer_does_not_load_but_is_seen_later(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        for i in range(30):
            _add(mem, f"filler memory number {i} about gardening", minutes=i)
    store = Store(data_dir)
    index = Index(store, index_dir(data_dir))  # a CLI `add` that never starts the index
    memory = records.make_memory(user="Call the plumber about the leaking tap", at=T0)
    store.write(memory)
    index.add(memory)
    index.close()
    assert index.state == "loading"  # it never loaded anything
    with memo_shell.open(data_dir) as mem:
        assert [h.memory.id for h in mem.recall("plumber")] == [memory.id]


def test_forget_pin_and_exclude(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        a = _add(mem, "Lunch with Priya at the noodle bar", minutes=1)
        b = _add(mem, "Priya recommended the noodle place downtown", minutes=2)
        c = _add(mem, "Allergic to peanuts", minutes=3)
        mem.pin(c)
        found = [h.memory.id for h in mem.recall("noodle", k=5)]
        assert set(found) == {a, b, c}  # the pin is always eligible...
        assert found[-1] == c  # ...but ranks after real matches
        assert "pinned" in mem.recall("noodle", k=5)[-1].why
        assert [h.id for h in mem.rank("noodle", k=5, exclude=[a])] == [b, c]
        mem.forget(a)
        assert a not in [h.memory.id for h in mem.recall("noodle", k=5)]
        stats = mem.index.stats()
        assert stats["memories"] == 2 and stats["pinned"] == 1 and stats["sessions"] == 1


def test_metadata_for_the_tui(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        a = _add(mem, "Caroline moved from Sweden to Boston", session="work", minutes=1)
        b = _add(mem, "Caroline and Melanie went camping", session="home", minutes=2)
        c = _add(mem, "Melanie paints sunsets", session="home", minutes=3, tags=["art"])
        mem.pin(b)
        index = mem.index
        sessions = {s.name: s for s in index.sessions()}
        assert sessions["home"].count == 2 and sessions["work"].count == 1
        assert sessions["home"].first_at < sessions["home"].last_at
        assert index.ids() == [c, b, a]
        assert index.ids(session="home", newest_first=False) == [b, c]
        assert index.ids(pinned=True) == [b]
        assert index.ids(since=T0 + timedelta(minutes=2)) == [c, b]
        meta = index.meta(c)
        assert meta is not None and meta.tags == ("art",) and meta.preview.startswith("Melanie")
        assert index.meta("01ARZ3NDEKTSV4RRFFQ69G5FAV") is None
        names = {e.name: e for e in index.entities()}
        assert names["Caroline"].count == 2 and names["Sweden"].kind == "place"
        assert dict(index.neighbours("Caroline"))["Melanie"] == 1.0
        assert index.mentions("melanie") == [c, b]
        view = index.subgraph("Caroline")
        assert view.has_edge("Caroline", "Melanie") and view["Caroline"]["Melanie"]["weight"] == 1
        assert view.nodes["Sweden"]["kind"] == "place"


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "the and of it was",
        "x" * 100_000,
        "日本語のテキスト",
        "مرحبا بالعالم",
        "🎸🔥",
        "\x00\x01\u200b",
        "a" * 50 + " " + "b" * 50,
    ],
)
def test_bad_queries_never_raise(data_dir: Path, query: str) -> None:
    with memo_shell.open(data_dir) as mem:
        _add(mem, "Some ordinary memory about guitars")
        hits = mem.recall(query)
        assert isinstance(hits, list)


def test_non_latin_scripts_are_searchable(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        ja = _add(mem, "東京の天気はとても良かった", minutes=1)
        ar = _add(mem, "ذهبت إلى المكتبة لقراءة الكتب", minutes=2)
        emo = _add(mem, "new guitar day 🎸", minutes=3)
        _add(mem, "nothing to see here", minutes=4)
        assert mem.recall("東京")[0].memory.id == ja
        assert mem.recall("المكتبة")[0].memory.id == ar
        assert mem.recall("🎸")[0].memory.id == emo


def test_rebuild_matches_and_reports_progress(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        ids = [_add(mem, f"note {i} about topic{i % 3}", minutes=i) for i in range(12)]
        before = [h.memory.id for h in mem.recall("topic1", k=20)]
        seen: list[tuple[int, int]] = []
        assert mem.reindex(lambda n, total: seen.append((n, total))) == len(ids)
        assert seen[-1] == (12, 12)
        assert [h.memory.id for h in mem.recall("topic1", k=20)] == before
        assert mem.index.state == "ready"


def test_corrupt_record_is_skipped_and_reported(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        good = _add(mem, "the spare key is under the plant pot", minutes=1)
        bad = _add(mem, "this record will be damaged", minutes=2)
    store = Store(data_dir)
    path = store.path_for(bad)
    path.write_bytes(path.read_bytes()[:-3])
    import shutil

    shutil.rmtree(index_dir(data_dir))
    with memo_shell.open(data_dir) as mem:
        mem.wait_ready()
        assert [h.memory.id for h in mem.recall("spare key")] == [good]
        assert any(bad in n for n in mem.index.notices)
        assert not path.exists()  # quarantined by the store


def test_debris_is_swept_and_foreign_files_quarantined(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        mid = _add(mem, "keep me")
    shard = Store(data_dir).path_for(mid).parent
    (shard / ".01ARZ3NDEKTSV4RRFFQ69G5FAV.99999999.0.tmp").write_bytes(b"half")
    (shard / "notes.txt").write_text("not a record")
    with memo_shell.open(data_dir) as mem:
        mem.wait_ready()
        assert sorted(p.name for p in shard.iterdir()) == [f"{mid}.memo"]
        assert any("foreign" in n for n in mem.index.notices)


def test_a_separate_process_adding_is_seen_without_reopening(data_dir: Path) -> None:
    import subprocess
    import sys

    repo = Path(__file__).parents[1]
    with memo_shell.open(data_dir) as mem:
        _add(mem, "something to make the index exist")
        mem.wait_ready()
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); import memo_shell\n"
            "with memo_shell.open(sys.argv[2]) as m:\n"
            "    print(m.add('the spare tyre is in the garage loft'))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(repo), str(data_dir)],
            capture_output=True,
            text=True,
            check=True,
        )
        mid = out.stdout.strip()
        assert [h.memory.id for h in mem.recall("spare tyre")] == [mid]


def test_another_process_reindexing_is_followed(data_dir: Path) -> None:
    import time

    with memo_shell.open(data_dir) as a, memo_shell.open(data_dir) as b:
        _add(a, "first memory about kayaks")
        assert b.recall("kayaks")
        a.reindex()  # a new snapshot and a new change-log generation
        mid = _add(a, "second memory about canoes", minutes=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if [h.memory.id for h in b.recall("canoes")] == [mid]:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the other handle never saw the reindexed data")


def test_files_synced_in_while_open_appear_after_a_rescan(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from memo_shell.index import freshness

    monkeypatch.setattr(freshness, "RESCAN_SECONDS", 0.0)
    with memo_shell.open(data_dir) as mem:
        _add(mem, "an early memory about lighthouses")
        mem.wait_ready()
        synced = records.make_memory(user="a synced note about lighthouses and fog", at=T0)
        Store(data_dir).write(synced)  # another device's file, no change-log line
        deadline = time.monotonic() + 10
        while synced.id not in [h.memory.id for h in mem.recall("fog")]:
            assert time.monotonic() < deadline, "the synced file was never indexed"
            time.sleep(0.05)


def test_a_deleted_file_is_never_recalled_and_its_entry_is_dropped(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        victim = _add(mem, "the old locker code is 4512")
        assert [h.memory.id for h in mem.recall("locker code")] == [victim]
        Store(data_dir).path_for(victim).unlink()  # a file manager, not memo-shell
        assert mem.rank("locker code") == []
        assert mem.index.meta(victim) is None


def test_a_dead_writers_temp_file_in_the_index_dir_is_swept(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        _add(mem, "anything")
        mem.wait_ready()
    debris = index_dir(data_dir) / ".snapshot.999999999.abcd.tmp"  # no such pid
    debris.write_bytes(b"half a snapshot")
    with memo_shell.open(data_dir) as mem:
        mem.wait_ready()
    assert not debris.exists()


def test_no_index_file_is_written_after_close_returns(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load still in flight at close() stops, and close() waits for it: the caller may move
    or wipe the index directory at once (a test, `forget --all`, a backup)."""
    with memo_shell.open(data_dir, preload=False) as mem:
        _add(mem, "The dentist appointment is on Tuesday")
    shutil.rmtree(index_dir(data_dir))
    finishing = threading.Event()
    real_catch_up = Index._catch_up

    def slow_catch_up(self: Index) -> None:
        finishing.set()
        time.sleep(0.5)  # a big store: the load is still finishing when the caller closes
        real_catch_up(self)

    monkeypatch.setattr(Index, "_catch_up", slow_catch_up)
    mem = memo_shell.open(data_dir)  # builds the index in the background
    assert finishing.wait(30)
    mem.close()

    def listing() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in index_dir(data_dir).iterdir()}

    after_close = listing()
    time.sleep(1.0)
    assert listing() == after_close
