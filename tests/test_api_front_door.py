"""What the surfaces need from ``Memories`` (so none of them reaches ``.index`` or ``.store``):
one selection for the index and the files, forget-for-undo, stale entries, notices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memo_shell
from memo_shell.api import Memories
from memo_shell.selection import Selection

START = datetime(2024, 1, 1, tzinfo=UTC)
SESSIONS = ("a", "b", "c")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Memories]:
    """Thirty memories over three sessions, one every 12 hours, every fourth pinned."""
    mem = memo_shell.open(tmp_path_factory.mktemp("front") / "data")
    for n in range(30):
        mem.add(
            f"note {n} about Lisbon",
            session=SESSIONS[n % 3],
            at=START + timedelta(hours=12 * n),
            pinned=n % 4 == 0,
        )
    mem.wait_ready(30)
    yield mem
    mem.close()


moments = st.one_of(
    st.none(), st.integers(-2, 17).map(lambda d: START + timedelta(days=d, hours=12 * (d % 2)))
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    session=st.one_of(st.none(), st.sampled_from((*SESSIONS, "nope"))),
    since=moments,
    until=moments,
    pinned=st.one_of(st.none(), st.booleans()),
    newest_first=st.booleans(),
)
def test_the_index_and_the_files_select_the_same_memories(
    store: Memories,
    session: str | None,
    since: datetime | None,
    until: datetime | None,
    pinned: bool | None,
    newest_first: bool,
) -> None:
    where = Selection(session, since, until, pinned)
    from_files = [m.id for m in store.iter_memories(newest_first=newest_first, where=where)]
    assert store.select(where, newest_first=newest_first) == from_files
    assert all(where.admits(store.get(i)) for i in from_files)


def test_until_is_exclusive_since_inclusive(store: Memories) -> None:
    at = START + timedelta(hours=12 * 5)
    assert [store.get(i).user for i in store.select(Selection(since=at, until=at))] == []
    (only,) = store.select(Selection(since=at, until=at + timedelta(seconds=1)))
    assert store.get(only).user == "note 5 about Lisbon"


def test_the_index_queries_the_ui_uses(store: Memories) -> None:
    assert {s.name for s in store.sessions()} == set(SESSIONS)
    first = store.select(Selection(session="a"), newest_first=False)[0]
    meta = store.meta(first)
    assert meta is not None and meta.session == "a" and meta.pinned
    assert store.meta("01HZZZZZZZZZZZZZZZZZZZZZZZ") is None
    assert "Lisbon" in {e.name for e in store.entities()}
    assert len(store.mentions("Lisbon")) == 30
    assert store.index_state == "ready" and store.index_stats()["memories"] == 30
    assert not store.is_empty() and store.disk_usage() > 0


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[Memories]:
    with memo_shell.open(tmp_path / "data") as m:
        yield m


def test_forget_for_undo_returns_the_records_and_restore_puts_them_back(mem: Memories) -> None:
    ids = [mem.add(f"secret {n}", "ok", session="s", tags=("t",)) for n in range(3)]
    kept = mem.forget_for_undo([ids[0], "01HZZZZZZZZZZZZZZZZZZZZZZZ", ids[2]])
    assert [m.id for m in kept] == [ids[0], ids[2]]  # unknown ids are skipped
    assert [m.user for m in kept] == ["secret 0", "secret 2"] and kept[0].tags == ("t",)
    assert not mem.exists(ids[0]) and mem.exists(ids[1]) and not mem.exists(ids[2])
    assert mem.forget_for_undo([ids[0]]) == []  # already gone: nothing to undo
    for memory in kept:
        mem.restore(memory)
    assert [mem.get(i) for i in (ids[0], ids[2])] == kept
    assert sorted(h.memory.id for h in mem.recall("secret", 5)) == sorted(ids)


def test_forget_for_undo_of_a_damaged_record_forgets_it_without_keeping_it(
    mem: Memories,
) -> None:
    bad, good = mem.add("damaged"), mem.add("fine")
    mem.store.path_for(bad).write_bytes(b"\x00not msgpack")
    kept = mem.forget_for_undo([bad, good])
    assert [m.id for m in kept] == [good]
    assert not mem.exists(bad) and not mem.exists(good)
    assert mem.forget_many([bad, good]) == []


def test_drop_stale_removes_an_entry_only_when_its_file_is_gone(mem: Memories) -> None:
    alive, gone = mem.add("alive and well"), mem.add("vanished behind our back")
    mem.wait_ready(30)
    mem.drop_stale(alive)
    assert mem.meta(alive) is not None  # the file is the truth: it is there, so is its entry
    mem.store.path_for(gone).unlink()
    mem.drop_stale(gone)
    assert mem.meta(gone) is None


def test_on_notice_hears_every_new_notice(mem: Memories) -> None:
    heard: list[str] = []
    mem.on_notice(heard.append)
    mem.on_notice(lambda _: 1 / 0)  # a failing listener stops neither the index nor the others
    mem.index._notice("the index could not be saved (disk full)")
    assert heard == ["the index could not be saved (disk full)"]
    assert mem.notices[-1] == heard[0]
