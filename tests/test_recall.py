"""Ranking: each signal does what it claims, reasons are given, vectors stay per embedder."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import pytest

import memo_shell
from memo_shell import recall, records
from memo_shell.index.data import IndexData
from memo_shell.paths import index_dir
from memo_shell.recall import RecallOptions

T0 = datetime(2023, 5, 1, 12, 0, tzinfo=UTC)


def _data(*turns: tuple[str, str, datetime]) -> tuple[IndexData, list[str]]:
    data = IndexData()
    ids = []
    for text, session, at in turns:
        memory = records.make_memory(user=text, session=session, at=at)
        data.add(memory)
        ids.append(memory.id)
    return data, ids


def _at(minutes: int = 0, days: int = 0) -> datetime:
    return T0 + timedelta(days=days, minutes=minutes)


def test_reply_to_a_matching_question_is_recalled_with_reason() -> None:
    data, ids = _data(
        ("Anna: how was the pottery workshop you went to?", "s1", _at(0)),
        ("Ben: amazing, I made a lopsided bowl and a pottery mug", "s1", _at(1)),
        ("Ben: pottery is relaxing", "s2", _at(days=30)),
        ("Anna: my workshop is busy", "s3", _at(days=60)),
    )
    hits = recall.search(data, "what did Ben make at the pottery workshop?", 4)
    assert hits[0].id == ids[1]
    assert any(w.startswith("reply to #") for w in hits[0].why), hits[0].why
    off = recall.search(data, "what did Ben make at the pottery workshop?", 4,
                        options=RecallOptions(session_context=False))
    assert [h.id for h in off].index(ids[1]) >= [h.id for h in hits].index(ids[1])


def test_session_relevant_as_a_whole_lifts_its_memories() -> None:
    data, ids = _data(
        ("we planned the trip to Lisbon", "trip", _at(0)),
        ("booked flights to Lisbon and a hotel", "trip", _at(1)),
        ("the hotel has a rooftop pool", "trip", _at(2)),
        ("the gym hotel discount ended", "other", _at(days=5)),
    )
    hits = recall.search(data, "hotel for the Lisbon trip", 4)
    top = [h.id for h in hits]
    assert top.index(ids[2]) < top.index(ids[3])  # same topic session beats a stray match
    assert any("same session as #" in w for h in hits for w in h.why)


def test_time_named_in_the_question_prefers_that_span() -> None:
    data, ids = _data(
        ("I went hiking with my sister", "a", datetime(2023, 3, 10, tzinfo=UTC)),
        ("I went hiking with my brother", "b", datetime(2023, 7, 10, tzinfo=UTC)),
    )
    hits = recall.search(data, "who did I go hiking with in July 2023?", 2)
    assert hits[0].id == ids[1]
    assert "time: July 2023" in hits[0].why
    hits = recall.search(data, "who did I go hiking with in March 2023?", 2)
    assert hits[0].id == ids[0]


def test_graph_finds_memories_linked_by_an_entity() -> None:
    data, ids = _data(
        ("Priya started a job at Acme Robotics", "a", _at(0)),
        ("Acme Robotics builds warehouse arms", "b", _at(days=3)),
        ("the weather was grey", "c", _at(days=4)),
    )
    hits = recall.search(data, "where does Priya work?", 3)
    assert [h.id for h in hits][:2] == ids[:2]
    linked = next(h for h in hits if h.id == ids[1])
    assert any(w.startswith("entity: Acme Robotics") for w in linked.why), linked.why
    assert ids[1] not in [h.id for h in recall.search(
        data, "where does Priya work?", 3, options=RecallOptions(graph=False))]


def test_speaker_named_in_question_ranks_their_lines_first() -> None:
    data, ids = _data(
        ("Melanie: Caroline, I love painting sunsets", "s1", _at(0)),
        ("Caroline: Melanie, painting sunsets is lovely", "s2", _at(1)),
    )
    hits = recall.search(data, "What does Melanie like painting?", 2)
    assert hits[0].id == ids[0] and "said by Melanie" in hits[0].why


def test_exact_old_answer_beats_newer_partial_matches() -> None:
    data, ids = _data(
        ("my passport number is in the blue folder", "old", _at(0)),
        *[(f"renewed the passport photo {i}", f"new{i}", _at(days=300 + i)) for i in range(5)],
    )
    assert recall.search(data, "where is my passport number?", 3)[0].id == ids[0]


def test_recency_breaks_exact_ties_only() -> None:
    data, ids = _data(("fed the cat", "a", _at(0)), ("fed the cat", "b", _at(days=9)))
    assert [h.id for h in recall.search(data, "cat", 2)] == [ids[1], ids[0]]


def test_unrelated_memories_are_not_returned_to_fill_k() -> None:
    data, ids = _data(("We ate Thai food", "s", _at(0)), ("My bike chain broke", "s", _at(1)))
    assert [h.id for h in recall.search(data, "thai", 10)] == [ids[0]]


def test_current_session_is_a_nudge_not_a_filter() -> None:
    data, ids = _data(("tea with lemon", "a", _at(0)), ("tea with lemon", "b", _at(0, days=-1)))
    hits = recall.search(data, "tea lemon", 2, session="b")
    assert [h.id for h in hits] == [ids[1], ids[0]]


class HashEmbedder:
    """A deterministic toy embedder: bag of hashed words (synonyms share a bucket)."""

    SYNONYMS: ClassVar[dict[str, str]] = {"automobile": "car", "vehicle": "car"}

    def __init__(self, name: str = "test:hash", dim: int = 64) -> None:
        self.id = name
        self.dim = dim
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        out = []
        for text in texts:
            vec = [0.0] * self.dim
            for word in text.lower().split():
                word = self.SYNONYMS.get(word.strip("?.,!"), word.strip("?.,!"))
                vec[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            out.append(vec)
        return out


def test_vectors_add_semantic_matches_and_are_kept_per_embedder(tmp_path: Path) -> None:
    embedder = HashEmbedder()
    with memo_shell.open(tmp_path, embedder=embedder) as mem:
        car = mem.add("the car needs new tyres", at=_at(0))
        mem.add("bought apples", at=_at(1))
        assert mem.index.wait_embedded(10)
        hits = mem.recall("automobile")  # no shared word: only the vector finds it
        assert [h.memory.id for h in hits] == [car]
        assert any(w.startswith("similar:") for w in hits[0].why)
        assert mem.index.stats()["vectors"] == 2
    vector_files = sorted(p.name for p in index_dir(tmp_path).glob("vectors-*"))
    assert len(vector_files) == 1
    # reopen with the same embedder: vectors come from disk, nothing is re-embedded
    again = HashEmbedder()
    with memo_shell.open(tmp_path, embedder=again) as mem:
        assert [h.memory.id for h in mem.recall("automobile")] == [car]
        assert again.calls == 1  # the query only
    # another model: its own file, its own space
    other = HashEmbedder("test:other", dim=32)
    with memo_shell.open(tmp_path, embedder=other) as mem:
        assert mem.index.wait_embedded(10)
        assert [h.memory.id for h in mem.recall("automobile")] == [car]
    assert len(list(index_dir(tmp_path).glob("vectors-*"))) == 2


def test_failing_embedder_degrades_to_lexical(tmp_path: Path) -> None:
    class Broken(HashEmbedder):
        def embed(self, texts: list[str]) -> list[list[float]]:
            raise ConnectionError("model server is down")

    with memo_shell.open(tmp_path, embedder=Broken()) as mem:
        mid = mem.add("the car needs new tyres", at=_at(0))
        mem.index.wait_embedded(10)
        assert [h.memory.id for h in mem.recall("car tyres")] == [mid]
        assert any("failed" in n for n in mem.index.notices)


LOCOMO = Path(__file__).parents[1] / ".." / "shared" / "bench" / "locomo-dev.json"


@pytest.mark.skipif(not LOCOMO.exists(), reason="LoCoMo dev set not present")
def test_locomo_first_conversation_beats_plain_lexical(tmp_path: Path) -> None:
    """On one real conversation, the full ranker clearly beats its own lexical-only mode."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import locomo  # type: ignore[import-not-found]

    one = tmp_path / "one.json"
    one.write_text(json.dumps(json.loads(LOCOMO.read_text())[:1]))
    _sid, turns, questions = locomo.load(one)[0]
    data = IndexData()
    dia = {}
    for turn in turns:
        memory = records.make_memory(user=turn.text, session=f"session_{turn.session}",
                                     at=turn.at, meta={"dia_id": turn.dia_id})
        data.add(memory)
        dia[memory.id] = turn.dia_id
    full, plain = locomo.Scores(), locomo.Scores()
    lexical_only = replace(RecallOptions(), graph=False, session_context=False, temporal=False)
    for q in questions:
        full.add(q, [dia[h.id] for h in recall.search(data, q.text, 10)], 10)
        plain.add(q, [dia[h.id] for h in recall.search(data, q.text, 10, options=lexical_only)],
                  10)
    f, p = full.summary()["all"], plain.summary()["all"]
    assert f["R@10"] >= p["R@10"] + 0.05, (f, p)
    assert f["R@10"] >= 0.75 and f["S@5"] >= 0.9, f


def test_last_slot_goes_to_another_session_when_one_dominates() -> None:
    turns = [(f"garden tomatoes note {i}", "big", _at(i)) for i in range(8)]
    turns += [("garden tomatoes and basil", "other", _at(days=40))]
    data, ids = _data(*turns)
    hits = recall.search(data, "garden tomatoes", 5)
    assert hits[-1].id == ids[-1]
    assert len({h.id for h in hits}) == 5
    short = recall.search(data, "garden tomatoes", 3)  # short lists stay purely by score
    assert ids[-1] not in [h.id for h in short]
