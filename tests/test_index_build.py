"""Builds in worker processes (``memo_shell.index.build``) give the index an inline build gives.

Real files, real worker processes; the pool threshold is lowered so a store of a few hundred
memories takes the pooled path. The reference is always the inline build of the same files.
"""

from __future__ import annotations

import random
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memo_shell
from memo_shell import records
from memo_shell.index import build
from memo_shell.index.data import IndexData
from memo_shell.index.ops import Add
from memo_shell.paths import index_dir, quarantine_dir
from memo_shell.tombstones import Tombstones

TEXTS = [
    "Caroline: I moved to Paris last week with Dr. Seuss and NASA.",
    "Where does Priya live? She lives in Brno since March 2023.",
    "Did I mention Jon went to Stanford University on Friday?",
    '"Charlotte\'s Web" is #great and so is "Dune"',
    "Painting is fun. caroline said painting is fun",
    "Mel: Melanie and MEL went to New York, then to Sweden.",
    "what about the Red Cross Club? Ahmed went there from Lisbon",
    "",
]
WORDS = [
    "apple",
    "river",
    "stone",
    "garden",
    "bright",
    "quiet",
    "window",
    "market",
    "letter",
    "violin",
]
QUERIES = ["Caroline Paris", "where does Priya live", "violin market", "Jon Stanford", "Dune"]


def _memories(n: int, seed: int = 3, first: int = 0) -> list[records.Memory]:
    rng = random.Random(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    out = []
    for i in range(first, first + n):
        text = f"{rng.choice(TEXTS)} {' '.join(rng.choices(WORDS, k=rng.randint(0, 9)))}"
        memory = records.make_memory(
            user=text,
            assistant=rng.choice(["", "Yes, Caroline lives in Paris.", "I think so?"]),
            session=f"s{i % 5}",
            at=start + timedelta(hours=7 * i),
            tags=tuple(rng.sample(["work", "Caroline", "family"], rng.randint(0, 2))),
            pinned=rng.random() < 0.1,
        )
        ms = records.id_milliseconds(memory.id)
        out.append(memory.with_changes(id=records.id_from_parts(ms, 1000 + i)))
    return out


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    with memo_shell.open(data_dir) as mem:
        mem.add_many(_memories(240))
    return data_dir


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[build.Workers]:
    """Every worker pool started (the pooled path taken), for tests that look at processes."""
    pools: list[build.Workers] = []
    real = build.Workers

    class Recorded(real):  # type: ignore[misc, valid-type]
        def __init__(self, n: int) -> None:
            super().__init__(n)
            pools.append(self)

    monkeypatch.setattr(build, "Workers", Recorded)
    monkeypatch.setattr(build, "CHUNK", 16)  # many chunks: the ordering is exercised
    return pools


def _reindexed(data_dir: Path, pooled: bool, monkeypatch: pytest.MonkeyPatch) -> tuple:
    monkeypatch.setattr(build, "POOL_THRESHOLD", 1 if pooled else 10**9)
    with memo_shell.open(data_dir) as mem:
        count = mem.reindex()
        header, arrays = mem.index._data.to_parts()
        ranks = [[(h.id, round(h.score, 9)) for h in mem.rank(q, k=5)] for q in QUERIES]
        notices = [
            n.replace(str(quarantine_dir(data_dir)), "<q>").replace(str(data_dir), "<dir>")
            for n in mem.index.notices
        ]
    return count, header, {k: np.asarray(v).copy() for k, v in arrays.items()}, ranks, notices


def _assert_same(a: tuple, b: tuple) -> None:
    assert a[0] == b[0]
    assert a[1] == b[1]
    assert a[2].keys() == b[2].keys()
    for name in a[2]:
        assert a[2][name].dtype == b[2][name].dtype, name
        assert np.array_equal(a[2][name], b[2][name]), name
    assert a[3] == b[3]
    assert a[4] == b[4]


def _dead(pools: list[build.Workers]) -> bool:
    return all(proc.poll() is not None for pool in pools for proc in pool._procs)


def test_pooled_build_equals_inline(store_dir, monkeypatch, started):
    inline = _reindexed(store_dir, False, monkeypatch)
    assert not started
    pooled = _reindexed(store_dir, True, monkeypatch)
    assert len(started) == 1 and len(started[0]._procs) == build.worker_count()
    _assert_same(inline, pooled)
    assert inline[0] == 240
    assert _dead(started)


def test_damaged_foreign_and_forgotten_files_as_inline(store_dir, monkeypatch, started, tmp_path):
    with memo_shell.open(store_dir) as mem:
        paths = {m: mem.store.path_for(m) for m in mem.store.iter_ids()}
    ids = sorted(paths)
    corrupt, mismatched, forgotten, short = ids[3], ids[40], ids[77], ids[150]
    paths[corrupt].chmod(0o600)
    paths[corrupt].write_bytes(b"\x00garbage" * 20)  # not a record at all
    paths[mismatched].chmod(0o600)
    paths[mismatched].write_bytes(paths[ids[41]].read_bytes())  # another memory's record
    paths[short].chmod(0o600)
    paths[short].write_bytes(paths[short].read_bytes()[:-7])  # torn
    Tombstones(store_dir).add([forgotten])
    (paths[ids[0]].parent / "notes.txt").write_text("not ours")
    other = tmp_path / "copy"
    shutil.copytree(store_dir, other, symlinks=True)
    shutil.rmtree(index_dir(store_dir))  # both load by building (inline / pooled), then reindex

    inline = _reindexed(store_dir, False, monkeypatch)
    pooled = _reindexed(other, True, monkeypatch)
    assert started
    # each build quarantined, dropped and reported the same files in the same words
    _assert_same(inline, pooled)
    assert any("damaged" in n for n in pooled[4])
    for data_dir in (store_dir, other):
        with memo_shell.open(data_dir) as mem:
            for memory_id in (corrupt, mismatched, short, forgotten):
                assert not mem.store.path_for(memory_id).exists()
    assert inline[0] == 236


def test_worker_death_finishes_inline(store_dir, monkeypatch, started):
    inline = _reindexed(store_dir, False, monkeypatch)
    real_receive = build.Workers._receive
    calls = []

    def dying(self: build.Workers, w: int) -> list:
        calls.append(w)
        if len(calls) == 3:
            self._procs[w].kill()
            self._procs[w].wait()
        return real_receive(self, w)  # EOF from the killed one: WorkerFailed

    monkeypatch.setattr(build.Workers, "_receive", dying)
    pooled = _reindexed(store_dir, True, monkeypatch)
    stopped = [n for n in pooled[4] if "workers stopped" in n]
    assert len(stopped) == 1  # said once, and the build went on
    _assert_same(inline, (*pooled[:4], [n for n in pooled[4] if n not in stopped]))
    assert _dead(started)


def test_no_workers_left_after_an_exception(store_dir, monkeypatch, started):
    monkeypatch.setattr(build, "POOL_THRESHOLD", 1)
    real_apply = IndexData.apply_many
    applied = []

    def failing(self: IndexData, analyses):
        applied.append(1)
        if len(applied) == 3:
            raise RuntimeError("boom")
        return real_apply(self, analyses)

    with memo_shell.open(store_dir) as mem:
        mem.index.wait_ready()
        monkeypatch.setattr(IndexData, "apply_many", failing)
        with pytest.raises(RuntimeError, match="boom"):
            mem.reindex()
    assert started and _dead(started)


def test_no_workers_left_after_close_during_a_build(store_dir, monkeypatch, started):
    monkeypatch.setattr(build, "POOL_THRESHOLD", 1)
    real_apply = IndexData.apply_many

    def slow(self: IndexData, analyses):
        time.sleep(0.2)
        return real_apply(self, analyses)

    monkeypatch.setattr(IndexData, "apply_many", slow)
    shutil.rmtree(index_dir(store_dir), ignore_errors=True)
    mem = memo_shell.open(store_dir)
    mem.index.start()
    deadline = time.monotonic() + 20
    while not started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert started, "the load did not build in workers"
    mem.close()
    assert _dead(started)


def test_worker_count_is_bounded():
    assert 1 <= build.worker_count() <= build.MAX_WORKERS


def _live_state(data: IndexData) -> tuple:
    """Everything a read sees before any compaction: postings, df, forward lists, counts."""
    out = []
    for inv, n_keys in ((data.lexical, len(data.terms)), (data.graph, len(data.entities))):
        out.append([tuple(map(np.ndarray.tolist, inv.postings(k))) for k in range(n_keys)])
        out.append(inv.df.view.tolist())
        out.append([tuple(map(np.ndarray.tolist, inv.forward(d))) for d in range(data.n_docs)])
    ent = data.entities
    out += [ent.keys, ent.names, ent._votes[: len(ent)].tolist(), ent._confirmed.tolist()]
    out += [data.terms.keys, data.doclen.view.tolist(), data.speaker.view.tolist()]
    out += [data.session_lengths().tolist(), data.total_len]
    return tuple(out)


@pytest.mark.parametrize("bulk", [False, True])
def test_batched_add_equals_one_by_one(bulk):
    from memo_shell.index.analysis import analyse

    memories = _memories(300, seed=9)
    one, many = IndexData(), IndexData()
    if bulk:
        one.begin_bulk()
        many.begin_bulk()
    for memory in memories:
        one.add(memory)
    for i in range(0, len(memories), 64):
        many.apply_many([analyse(m) for m in memories[i : i + 64]])
    if bulk:
        one.end_bulk()
        many.end_bulk()
    assert _live_state(one) == _live_state(many)
    h1, a1 = one.to_parts()
    h2, a2 = many.to_parts()
    assert h1 == h2
    assert all(np.array_equal(a1[k], a2[k]) and a1[k].dtype == a2[k].dtype for k in a1)


def test_index_add_many_batches_equal_single_adds(tmp_path, monkeypatch):
    """Through ``Index.add_many`` (an import's path), a repeated id included."""
    memories = _memories(120, seed=4)
    batch = [*memories[:50], memories[10].with_changes(tags=("moved",)), *memories[50:]]
    with memo_shell.open(tmp_path / "a") as a, memo_shell.open(tmp_path / "b") as b:
        a.index.wait_ready()
        b.index.wait_ready()
        for memory in batch:
            a.index.add(memory)
        b.index.add_many(batch)
        a.index._apply_deferred()
        assert _live_state(a.index._data) == _live_state(b.index._data)


def test_import_batches_analysed_in_workers(tmp_path, monkeypatch):
    """From the second large batch on, an import's analysis runs in workers the index owns,
    while the caller writes the next batch; applied before the next read or batch, it gives
    the same index (a repeated id included). The workers stop when idle and at close."""
    from memo_shell.index import base

    monkeypatch.setattr(base, "IMPORT_POOL_BATCH", 20)
    memories = _memories(150, seed=5)
    memories[120] = memories[60].with_changes(tags=("again",))  # an update inside a batch
    with memo_shell.open(tmp_path / "a") as a, memo_shell.open(tmp_path / "b") as b:
        a.index.wait_ready()
        b.index.wait_ready()
        for i in range(0, 150, 50):
            a.index._apply_adds(a.index._data, [Add(m) for m in memories[i : i + 50]])
            b.index.add_many(memories[i : i + 50])
            if i == 0:
                assert b.index._workers is None  # a one-off batch stays here
            else:
                assert isinstance(b.index._deferred[-1], base.Analysing)
        workers = b.index._workers
        assert workers is not None and workers.alive
        assert b.index.stats()["memories"] == 149  # a read applies the batch in flight
        assert not b.index._deferred
        assert _live_state(a.index._data) == _live_state(b.index._data)
        monkeypatch.setattr(base, "IMPORT_POOL_IDLE_SECONDS", 0.0)  # stop right after use
        b.index.add_many(_memories(30, seed=6, first=1000))
        deadline = time.monotonic() + 10
        while workers.alive and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not workers.alive
        assert b.index._workers is None
        assert not b.index._deferred  # the idle stop applied it first
        monkeypatch.setattr(base, "IMPORT_POOL_IDLE_SECONDS", 60.0)
        b.index.add_many(_memories(25, seed=7, first=2000))  # started again for the next import
        again = b.index._workers
        assert again is not None and again.alive
    assert not again.alive


def test_import_workers_dying_mid_batch(tmp_path, monkeypatch):
    """Workers killed while analysing a batch: it is analysed here instead, nothing lost."""
    from memo_shell.index import base

    monkeypatch.setattr(base, "IMPORT_POOL_BATCH", 20)
    memories = _memories(90, seed=8)
    with memo_shell.open(tmp_path / "a") as a, memo_shell.open(tmp_path / "b") as b:
        a.index.wait_ready()
        b.index.wait_ready()
        a.index._apply_adds(a.index._data, [Add(m) for m in memories])
        b.index.add_many(memories[:30])
        b.index.add_many(memories[30:60])
        workers = b.index._workers
        assert workers is not None
        for proc in workers._procs:
            proc.kill()
        b.index.add_many(memories[60:])
        with b.index._lock:
            b.index._apply_deferred()
        assert _live_state(a.index._data) == _live_state(b.index._data)
        assert not workers.alive


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.text(max_size=80),
            st.text(max_size=40),
            st.lists(st.text(min_size=1, max_size=12), max_size=3),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(1, 7),
)
def test_batched_add_equals_one_by_one_on_any_text(rows, size):
    """Whatever the text (control characters, other scripts, empty), a batch is indexed as its
    memories one by one, in any batch size."""
    from memo_shell.index.analysis import analyse

    start = datetime(2024, 5, 1, tzinfo=UTC)
    memories = []
    for i, (user, assistant, tags, session) in enumerate(rows):
        try:
            memory = records.make_memory(
                user=user or "x",
                assistant=assistant,
                session=f"s{session}",
                at=start + timedelta(minutes=i),
                tags=tuple(tags),
            )
        except (ValueError, records.RecordError):
            continue  # the record itself refuses it (not the index's business)
        ms = records.id_milliseconds(memory.id)
        memories.append(memory.with_changes(id=records.id_from_parts(ms, 7 + i)))
    one, many = IndexData(), IndexData()
    for memory in memories:
        one.add(memory)
    for i in range(0, len(memories), size):
        many.apply_many([analyse(m) for m in memories[i : i + size]])
    assert _live_state(one) == _live_state(many)
