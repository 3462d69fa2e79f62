"""What the index derives from one memory alone: a pure, picklable function of the record.

Indexing a memory is two steps of very different nature. *Analysis* (term counts by side,
entity extraction, the catalog's preview) reads nothing but the memory and costs about nine
tenths of the time; *applying* it interns words and entities into the corpus-wide tables and
appends rows, in doc order. Split this way, analysis can run in worker processes
(``memo_shell.index.build``) while the main process applies the results in order, and the index
is the same bit for bit as one built memory by memory: the tables see the same keys in the
same order.
"""

from __future__ import annotations

from typing import NamedTuple

from memo_shell.extract import Entity, extract, lowercase_words
from memo_shell.index import sides
from memo_shell.index.catalog import preview_of
from memo_shell.index.entities import code
from memo_shell.records import Memory


class Analysis(NamedTuple):
    """Everything indexing needs of one memory (plain values: cheap to pickle)."""

    memory_id: str
    created: float  # seconds since the epoch
    session: str
    pinned: bool
    tags: tuple[str, ...]
    preview: str
    #: lexical keys (by side), in order of first appearance, and their counts
    terms: list[str]
    counts: list[int]
    length: float
    #: entity keys in order of first mention, each with its smallest display form in this
    #: memory and its mention code (``entities.code``)
    entities: list[str]
    names: list[str]
    codes: list[float]
    #: index into ``entities`` of the line's speaker, -1 if none
    speaker: int


def analyse(memory: Memory) -> Analysis:
    """The index's view of one memory (see the module doc); depends on nothing else."""
    text = memory.text
    if memory.tags:
        text = f"{text}\n{' '.join(memory.tags)}"
    # words are keyed by who said them (statement, question, claim): recall weighs them
    counts, length, plain = sides.term_counts(memory)
    found = extract(text, lower_here=lowercase_words(text), words_here=plain)
    found.extend(Entity(tag.casefold(), tag, "tag") for tag in memory.tags)
    # Per key, as interning them one by one would leave things: the position of the first
    # mention, the smallest display form (the table keeps the smallest it has seen), and the
    # code of the first mention, replaced by a later one while it is only a guess (confirmed
    # beats guessed). The speaker is the last speaking entity.
    at: dict[str, int] = {}
    names: list[str] = []
    codes: list[float] = []
    speaker = -1
    for entity in found:
        i = at.get(entity.key)
        if i is None:
            i = at[entity.key] = len(names)
            names.append(entity.name)
            codes.append(code(entity))
        else:
            if entity.name < names[i]:
                names[i] = entity.name
            if codes[i] % 1:
                codes[i] = code(entity)
        if entity.speaker:
            speaker = i
    return Analysis(
        memory.id,
        memory.created_at.timestamp(),
        memory.session,
        memory.pinned,
        tuple(memory.tags),
        preview_of(memory),
        list(counts),
        list(counts.values()),
        length,
        list(at),
        names,
        codes,
        speaker,
    )
