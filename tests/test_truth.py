"""Who said what: the user's statements outrank questions and the model's (wrong) claims."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from memo_shell import recall, records
from memo_shell.index import sides
from memo_shell.index.data import IndexData
from memo_shell.recall import RecallOptions

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def _data(*turns: tuple[str, str]) -> tuple[IndexData, list[str]]:
    data = IndexData()
    ids = []
    for i, (user, assistant) in enumerate(turns):
        memory = records.make_memory(
            user=user, assistant=assistant, session=f"day{i % 3}", at=T0 + timedelta(hours=7 * i)
        )
        data.add(memory)
        ids.append(memory.id)
    return data, ids


ECHO = (
    ("My sister Priya moved to Brno last spring.", "Got it."),
    ("Where does my sister Priya live?", "Your sister Priya lives in Lisbon."),
    ("Which city is my sister Priya living in now?", "Priya lives in Lisbon, United States."),
    ("Where does my sister Priya live?", "Your sister Priya lives in Lisbon."),
    ("Tell me a joke about computers.", "Why did the computer go to therapy?"),
)


def test_stated_fact_outranks_stored_wrong_answers_to_the_same_question() -> None:
    data, ids = _data(*ECHO)
    for probe in ("Where does my sister Priya live?", "Where is Priya living now?"):
        hits = recall.search(data, probe, k=3)
        assert hits[0].id == ids[0], probe


def test_without_provenance_weights_the_echo_wins() -> None:
    """The ablation: with every side counted alike, the stored wrong answer comes first."""
    data, ids = _data(*ECHO)
    flat = replace(RecallOptions(), w_question=1.0, w_claim=1.0)
    hits = recall.search(data, "Where does my sister Priya live?", k=3, options=flat)
    assert hits[0].id != ids[0]


def test_a_question_still_points_at_its_answer() -> None:
    """Conversation context uses the unweighted match: the reply to a matching question gains."""
    data = IndexData()
    ids = []
    for i, text in enumerate(
        [
            "Anna: how was the pottery workshop you went to?",
            "Ben: amazing, I made a lopsided pottery bowl",
            "Anna: my old pottery teacher retired",
        ]
    ):
        memory = records.make_memory(user=text, session="s", at=T0 + timedelta(minutes=i))
        data.add(memory)
        ids.append(memory.id)
    ranked = [h.id for h in recall.search(data, "How was the pottery workshop?", k=3)]
    assert ranked.index(ids[1]) < ranked.index(ids[2])


def test_sides_key_words_by_who_said_them() -> None:
    memory = records.make_memory(
        user="Priya moved to Brno. Where is Brno?",
        assistant="Brno is in Czechia.",
        session="s",
        tags=("family",),
    )
    counts, length, _plain = sides.term_counts(memory)
    assert counts["brno"] == 1 and counts["?brno"] == 1 and counts["~brno"] == 1
    assert counts["~czechia"] == 1 and counts["famili"] == 1
    assert length == sum(counts.values())


def test_a_question_without_an_answer_keeps_its_words() -> None:
    """A transcript line asking something is no echo of a model's answer: full weight."""
    memory = records.make_memory(user="Anna: did you like the pottery class?", session="s")
    counts, _length, _plain = sides.term_counts(memory)
    assert counts["potteri"] == 1 and not any(sides.is_side_key(k) for k in counts)


def test_rhetorical_questions_are_statements() -> None:
    memory = records.make_memory(
        user="Quick update: did I mention Katya relocated to Porto?", assistant="Nice!", session="s"
    )
    counts, _length, _plain = sides.term_counts(memory)
    assert counts["porto"] == 1 and "?porto" not in counts
