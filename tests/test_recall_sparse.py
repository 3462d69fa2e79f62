"""Sparse recall ranks exactly like the dense computation it replaced.

``recall.search`` now computes every signal only on the memories a query reaches (its postings,
their neighbours, the graph's reach, pins), so a query's cost follows its matches rather than the
size of the store. ``dense_reference`` is the previous implementation (one numpy pass over every
row per signal), kept verbatim as the oracle: on a workload that exercises every signal (names,
speakers, places, titles, months, tags, pins, forgotten and re-tagged memories, back-dated
imports) and on many queries and options, both must return the same ids, the same scores (bit
for bit) and the same reasons.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import dense_reference
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from memory_workload import NAMES, PLACES, QUERIES, SESSIONS, TOPICS, Workload, random_ops

import memo_shell
from memo_shell import recall
from memo_shell.index.data import IndexData
from memo_shell.index.vectors import VectorSet
from memo_shell.recall import RecallOptions

NOW = datetime(2023, 6, 1, tzinfo=UTC)

OPTIONS = [
    RecallOptions(),
    RecallOptions(graph=False),
    RecallOptions(session_context=False),
    RecallOptions(temporal=False),
    RecallOptions(w_question=1.0, w_claim=1.0),
    RecallOptions(w_prev2=0.0, w_next=0.0, w_speaker=0.0),
    RecallOptions(pool=5, fresh_session_slots=0),
]


def _queries(rng: random.Random, n: int) -> list[str]:
    words = [w.lower() for w in NAMES + PLACES + TOPICS] + ["the", "zq00007x", "alise", "mel"]
    out = [*QUERIES, "", "   ", "?!", "in July", "last week with Bob", "Caroline: sushi"]
    for _ in range(n):
        pick = rng.sample(words, rng.randint(1, 4))
        if rng.random() < 0.3:
            pick[0] = pick[0].capitalize()
        out.append(" ".join(pick) + rng.choice(["", "?", " in March 2023", " last month"]))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> IndexData:
    rng = random.Random(17)
    mem = memo_shell.open(Path(tmp_path_factory.mktemp("sparse")))
    random_ops(mem, rng, Workload(), 500, in_order=False, retag=True)
    data = mem.index._ready_data()
    mem.close()
    return data


def _same(data: IndexData, query: str, k: int, **kw: object) -> None:
    new = recall.search(data, query, k, now=NOW, **kw)  # type: ignore[arg-type]
    old = dense_reference.search(data, query, k, now=NOW, **kw)  # type: ignore[arg-type]
    assert [(h.id, h.score, h.why) for h in new] == [(h.id, h.score, h.why) for h in old], query


@pytest.mark.parametrize("options", OPTIONS, ids=range(len(OPTIONS)))
def test_sparse_ranking_equals_dense(data: IndexData, options: RecallOptions) -> None:
    rng = random.Random(hash(repr(options)) % 1000)
    for query in _queries(rng, 40):
        _same(data, query, rng.choice([1, 5, 10, 30]), options=options)


def test_sparse_equals_dense_with_session_exclusions_and_vectors(data: IndexData) -> None:
    rng = random.Random(3)
    ids = [i for i in data.catalog.ids if i is not None]
    vectors = VectorSet("test", 8)
    docs = list(range(0, data.catalog.rows, 3))
    vectors.put(docs, np.random.default_rng(1).normal(size=(len(docs), 8)).tolist())
    for query in _queries(rng, 30):
        _same(
            data,
            query,
            10,
            session=rng.choice([*SESSIONS, "nope"]),
            exclude=rng.sample(ids, 5),
            options=replace(RecallOptions(), pool=rng.choice([20, 200])),
            vectors=vectors,
            query_vector=np.random.default_rng(len(query)).normal(size=8).tolist(),
        )


def test_search_leaves_no_state_behind(data: IndexData) -> None:
    """The doc -> position table is reset after every search, even one that matches nothing."""
    recall.search(data, "pottery Paris Alice in July", 10, now=NOW)
    recall.search(data, "zzzz", 10, now=NOW)
    table = data.__dict__.get("_positions")
    assert table is None or bool((table == -1).all())
    assert "_query_cache" not in data.__dict__


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    query=st.one_of(
        st.text(max_size=80),
        st.lists(st.sampled_from([*NAMES, *PLACES, *TOPICS, "July", "2023", "mel", "?"])).map(
            " ".join
        ),
    ),
    k=st.integers(min_value=-1, max_value=40),
)
def test_sparse_equals_dense_on_any_query(data: IndexData, query: str, k: int) -> None:
    _same(data, query, k)
