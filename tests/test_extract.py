"""Offline entity extraction, the analyzer and time parsing."""

from __future__ import annotations

from datetime import UTC, datetime

from memo_shell import temporal
from memo_shell.analyzer import analyze, words
from memo_shell.extract import extract


def _keys(text: str, **kw: object) -> dict[str, str]:
    return {e.key: e.kind for e in extract(text, **kw)}  # type: ignore[arg-type]


def test_names_places_organisations_titles_and_speakers() -> None:
    found = _keys(
        'Jon: I moved from Sweden to New York and joined Stanford University. '
        'I loved "Charlotte\'s Web" and met Dr. Seuss at Bank of America.',
    )
    assert found["jon"] == "person"
    assert found["sweden"] == "place" and found["new york"] == "place"
    assert found["stanford university"] == "organisation"
    assert found["charlotte web"] == "title"
    assert "dr seuss" in found and "bank of america" in found


def test_sentence_initial_words_are_only_guesses() -> None:
    found = {e.key: e for e in extract("Family is everything. We met Caroline. Dune rocks.")}
    assert found["family"].guessed and found["dune"].guessed
    assert not found["caroline"].guessed  # mid-sentence: a name
    # a word written in lower case in the same text is an ordinary word, not even a guess
    assert "garden" not in _keys("Garden party today, the garden was lovely.")
    # extraction is a pure function of the text
    assert extract("Alice went to Oslo.") == extract("Alice went to Oslo.")


def test_graph_accepts_a_guess_only_on_live_evidence(tmp_path: object) -> None:
    import memo_shell

    with memo_shell.open(tmp_path) as mem:  # type: ignore[arg-type]
        mem.add("Painting is fun on Sundays")
        mem.add("Zanele moved to Oslo")
        names = {e.name for e in mem.index.entities()}
        assert "Zanele" in names  # never written in lower case anywhere: a name
        assert "Painting" in names  # no evidence against it yet
        other = mem.add("my painting of the harbour")
        assert "Painting" not in {e.name for e in mem.index.entities()}
        mem.forget(other)  # the evidence is gone: the guess stands again
        assert "Painting" in {e.name for e in mem.index.entities()}


def test_dates_and_relative_times() -> None:
    found = _keys("We met on Friday, 7 May 2023, and again last week. May I join?")
    assert found["may 2023"] == "date" and found["friday"] == "date"
    assert found["last week"] == "when"


def test_analyzer_handles_scripts_compounds_and_noise() -> None:
    assert analyze("The restaurants were great!") == ["restaur"]
    assert "destress" in words("I need to de-stress")
    assert words("東京タワー") == ["東京", "京タ", "タワ", "ワー"]
    assert "🎸" in words("new 🎸!")
    assert analyze("x" * 200) == []  # absurdly long "words" are dropped
    assert analyze("the of and it was") == []


def test_time_windows_in_questions() -> None:
    now = datetime(2024, 3, 15, tzinfo=UTC)
    day = temporal.parse("What did Gina find on 1 February, 2023?", now)
    assert day.windows[0].label == "2023-02-01"
    start = datetime(2023, 2, 1, tzinfo=UTC).timestamp()
    assert day.windows[0].contains(start)
    assert not day.windows[0].contains(start + 30 * 86400)
    month = temporal.parse("What did Maria start in December 2023?", now)
    assert month.windows[0].label == "December 2023"
    bare = temporal.parse("When did Melanie go camping in June?", now)
    assert bare.asks_when and bare.windows[0].month == 6
    relative = temporal.parse("what did I cook last week", now)
    assert relative.windows[0].contains(datetime(2024, 3, 10, tzinfo=UTC).timestamp())
    assert temporal.parse("May I ask about pottery?", now).windows == []


def test_chat_interjections_are_not_names() -> None:
    for text in ("Noted. I will call tomorrow.", "Perfect. Let me know.", "Sorry, running late"):
        assert not [e for e in extract(text) if e.kind in ("name", "person")], text


def test_unknown_capitalised_words_are_places_only_where_someone_goes() -> None:
    assert _keys("Noted. I will switch to Dagster next week.")["dagster"] == "name"
    assert _keys("I migrated everything to Airflow.")["airflow"] == "name"
    assert _keys("Thanks! The bill from KPN was high.")["kpn"] == "organisation"
    assert _keys("Sure, we moved to Brno last spring.")["brno"] == "place"
    assert _keys("We flew back home to Lisbon.")["lisbon"] == "place"
