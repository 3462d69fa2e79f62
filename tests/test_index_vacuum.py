"""Vacuum: an index that forgot memories equals an index built from the survivors alone.

Equal in what it can recall (same ids, scores, reasons) and in what it holds: not one term,
entity name, session name, preview or vector that only a forgotten memory used.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from memo_shell import recall, records
from memo_shell.index.data import IndexData
from memo_shell.index.vectors import VectorSet

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
PEOPLE = ["Caroline", "Melanie", "Jon", "Gina", "Dr. Okafor", "Acme Robotics"]
THINGS = ["pottery", "marathon", "violin", "sourdough", "Lisbon", "tax return", "kayak"]


def _memories(n: int, seed: int = 7) -> list[records.Memory]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        who, what = rng.choice(PEOPLE), rng.choice(THINGS)
        out.append(
            records.make_memory(
                user=f"{who}: I talked about {what} again, note {i} word{i}x",
                assistant=f"Noted that {who} likes {what}.",
                session=f"session-{i % 5}" if i % 11 else f"lonely-{i}",
                at=T0 + timedelta(hours=i),
                tags=[f"tag{i % 3}"] if i % 4 == 0 else [],
            )
        )
    return out


def _vector(memory: records.Memory) -> list[float]:
    rng = np.random.default_rng(int(memory.id[-6:], 36))
    return rng.standard_normal(8).tolist()


def _build(memories: list[records.Memory]) -> IndexData:
    data = IndexData()
    data.vectors = VectorSet("test")
    for memory in memories:
        doc = data.add(memory)
        data.vectors.put([doc], [_vector(memory)])
    return data


def _strings(data: IndexData) -> tuple[set[str], ...]:
    header, arrays = data.to_parts()
    cat = header["catalog"]
    ptr, text = arrays["cat.preview_ptr"], arrays["cat.preview_text"]
    previews = [text[ptr[i] : ptr[i + 1]].tobytes().decode() for i in range(len(ptr) - 1)]
    return (
        set(header["terms"]["keys"]),
        set(header["entities"]["keys"]),
        set(header["entities"]["names"]),
        set(cat["sessions"]),
        {p for p in previews if p},
        {i.decode() for i in arrays["cat.ids"].tolist() if i},
    )


QUERIES = ["pottery", "Caroline marathon", "what did Jon say about Lisbon", "tag1", "word17x"]


def _results(data: IndexData) -> list[list[tuple[str, float, tuple[str, ...]]]]:
    now = T0 + timedelta(days=30)
    out = []
    for query in QUERIES:
        hits = recall.search(
            data, query, 10, vectors=data.vectors, query_vector=[0.5] * 8, now=now
        )
        out.append([(h.id, round(h.score, 9), tuple(h.why)) for h in hits])
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_vacuumed_index_equals_one_built_from_the_survivors(seed: int) -> None:
    memories = _memories(60, seed)
    rng = random.Random(seed)
    forgotten = set(rng.sample([m.id for m in memories], 25))
    forgotten |= {m.id for m in memories if m.session.startswith("lonely")}
    survivors = [m for m in memories if m.id not in forgotten]

    data = _build(memories)
    for memory_id in forgotten:
        data.remove(memory_id)
    leftovers = _strings(data)
    assert data.vacuum() is True
    fresh = _build(survivors)

    assert _strings(data) == _strings(fresh)
    assert not any(s.startswith("lonely") for s in _strings(data)[3])
    assert data.catalog.rows == len(survivors)
    assert data.vacuum() is False  # nothing left to drop
    assert leftovers != _strings(data)  # the test data did leave traces to vacuum
    assert _results(data) == _results(fresh)
    assert data.catalog.sessions() == fresh.catalog.sessions()
    for memory in survivors:
        doc = data.catalog.doc_of[memory.id]
        expected = np.asarray(_vector(memory), dtype=np.float32)
        expected /= np.linalg.norm(expected)
        assert np.allclose(data.vectors.row(doc), expected)
    assert int(data.vectors.has.view.sum()) == len(survivors)


def test_vacuumed_index_keeps_working_for_adds_and_forgets() -> None:
    memories = _memories(30)
    data = _build(memories[:20])
    for memory in memories[:10]:
        data.remove(memory.id)
    data.vacuum()
    for memory in memories[20:]:
        doc = data.add(memory)
        data.vectors.put([doc], [_vector(memory)])
    data.remove(memories[25].id)
    data.vacuum()
    survivors = [m for m in memories[10:] if m.id != memories[25].id]
    assert _results(data) == _results(_build(survivors))
    assert _strings(data) == _strings(_build(survivors))


def test_forgetting_everything_vacuums_to_an_empty_index() -> None:
    memories = _memories(8)
    data = _build(memories)
    for memory in memories:
        data.remove(memory.id)
    data.vacuum()
    assert _strings(data) == (set(), set(), set(), set(), set(), set())
    assert recall.search(data, "pottery") == []
    IndexData.from_parts(*data.to_parts())  # and the empty snapshot loads
