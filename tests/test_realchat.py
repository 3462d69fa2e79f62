"""Real chat: numeric dates in the writer's locale, and names spelled differently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import memo_shell
from memo_shell import temporal

NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _labels(text: str) -> list[str]:
    return [w.label for w in temporal.parse(text, NOW).windows]


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("what did I buy on 10.01.2024?", ["2024-01-10"]),  # dots: day first
        ("on 1.2.24", ["2024-02-01"]),
        ("on 13/10/2024", ["2024-10-13"]),  # only day-first fits
        ("on 10/13/2024", ["2024-10-13"]),  # only month-first fits
        ("on 01/10/2024", ["2024-10-01", "2024-01-10"]),  # ambiguous: both, day-first first
        ("on 2024/01/10", ["2024-01-10"]),  # year first
        ("on 2024.01.10", ["2024-01-10"]),
        ("on 31.02.2024", []),  # no such day
        ("version 1.2.3 and 192.168.1.1", []),
        ("10 Jan 2024 and 2024-01-11", ["2024-01-10", "2024-01-11"]),
    ],
)
def test_numeric_dates(text: str, days: list[str]) -> None:
    assert _labels(text) == days


@given(st.text(alphabet="0123456789./- ", max_size=40))
def test_numeric_dates_never_fail_on_digit_soup(text: str) -> None:
    for found in temporal.numeric_dates(text):
        assert found.days and 0 <= found.start < found.end <= len(text)


def test_a_numeric_date_in_the_question_finds_that_day(tmp_path: Path) -> None:
    day = datetime(2024, 1, 10, 15, tzinfo=UTC)
    with memo_shell.open(tmp_path / "d") as mem:
        mem.add("I bought a blue bicycle", at=day - timedelta(days=60))
        wanted = mem.add("I bought a red bicycle", at=day)
        mem.add("I bought a green bicycle", at=day + timedelta(days=60))
        for question in ("What bicycle did I buy on 10.01.2024?", "bicycle 01/10/2024"):
            hits = mem.recall(question, k=3)
            assert hits[0].memory.id == wanted, question
            assert any(w.startswith("time:") and "2024-01-10" in w for w in hits[0].why)


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("Mohammed", "what did Muhammad say about the bus"),
        ("Melanie", "what did mel say about the bus"),
        ("John", "what did jon say about the bus"),
        ("Caroline", "what did Carol say about the bus"),
    ],
)
def test_name_variants_find_the_person(tmp_path: Path, stored: str, asked: str) -> None:
    with memo_shell.open(tmp_path / "d") as mem:
        wanted = mem.add(f"{stored}: the bus was late again", session="s")
        for name in ("Dana", "Ravi", "Olga", "Tomas"):  # newer, same words: they win ties
            mem.add(f"{name}: the bus was late again", session="s")
        mem.wait_ready()
        hits = mem.recall(asked, k=3)
        assert hits and hits[0].memory.id == wanted
        assert f"name spelled differently: {stored.casefold()}" in hits[0].why


@given(st.text(max_size=60))
def test_name_variants_take_any_query(query: str) -> None:
    from memo_shell import records
    from memo_shell.index import names
    from memo_shell.index.data import IndexData

    data = IndexData()
    for text in ("Melanie: I painted a lake", "Mohammed: the bus was late", "John: hi there"):
        data.add(records.make_memory(user=text, session="s"))
    found = names.variants(data, query)
    assert all(name in ("Melanie", "Mohammed", "John") for name in found)
