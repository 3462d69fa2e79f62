"""Seeded, realistic memory workloads and recall fingerprints shared by the reliability tests.

The text is built to exercise every part of the derived index, not just BM25: names that open a
sentence (only entities once the graph has seen them mid-sentence), the same word in lower case
(which demotes it from a name), speakers (``Name: ...``), places after a locative, quoted titles,
hashtags, month names (the time signal), tags, and one unique token per memory so a test can ask
for exactly one of them. Everything is a pure function of the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import memo_shell

NAMES = ["Alice", "Bob", "Caroline", "Dmitri", "Emma", "Farid", "Grace"]
PLACES = ["Paris", "Lisbon", "Kyoto", "Berlin", "Nairobi", "Oslo"]
TOPICS = ["pottery", "hiking", "sushi", "guitar", "chess", "gardening", "kayak", "violin", "tea"]
TITLES = ["Charlotte's Web", "The Hobbit", "Blue Planet", "Dune"]
MONTHS = ["January", "March", "July", "October"]
SESSIONS = ["home", "work", "trip", "2024-05-08-193000"]
T0 = datetime(2023, 1, 1, tzinfo=UTC)

QUERIES = [
    "Alice",
    "what did Bob say about Paris",
    "pottery class",
    "hiking in Kyoto with Emma",
    "sushi",
    "Charlotte's Web",
    "#chess",
    "what happened in July",
    "Farid: guitar",
    "where did we go kayaking",
    "gardening tea Oslo",
]


def unique_token(n: int) -> str:
    """A word that occurs in exactly one memory (the n-th one made by a workload)."""
    return f"zq{n:05d}x"


def sentence(rng: random.Random, n: int) -> str:
    """One line of text; ``n`` is the memory's ordinal (its unique token).

    The shapes are chosen to make indexing depend on context if it can: a capitalised word
    opening a sentence is a name only if the corpus says so, and the same name also appears in
    lower case ("alice is also a word"), so an index that decides such things from what it saw
    *before* a memory (in whatever order memories arrived, forgotten ones included) ends up
    different from one rebuilt from the files.
    """
    name, other = rng.sample(NAMES, 2)
    place = rng.choice(PLACES)
    topic, topic2 = rng.sample(TOPICS, 2)
    shapes = [
        f"{name} went to {place} for {topic} with {other}",
        f"{name}: I love {topic} and {topic2}, see you in {place}",
        f"we talked about {topic} and {topic2} with {name}",
        f"{name.lower()} is also a word, like {topic}",  # lower case: not a name
        f'{other} recommended "{rng.choice(TITLES)}" after {topic}',
        f"In {rng.choice(MONTHS)} {name} tried {topic} #{topic2}",
        f"Yesterday {name} and {other} visited {place}",
    ]
    return f"{rng.choice(shapes)} {unique_token(n)}"


@dataclass
class Workload:
    """What a random run did through the public API (the model the tests check against)."""

    live: dict[str, str] = field(default_factory=dict)  # id -> unique token
    forgotten: dict[str, str] = field(default_factory=dict)
    pinned: set[str] = field(default_factory=set)
    made: int = 0
    #: minutes after T0 already given to back-dated memories (times are kept distinct so the
    #: run is deterministic: equal times would be ordered by the ids' random bits)
    used: set[int] = field(default_factory=set)


def add_one(
    memories: memo_shell.Memories, rng: random.Random, work: Workload, *, in_order: bool
) -> str:
    """Add one memory; ``in_order=False`` back-dates some (an import of old chats does that)."""
    n = work.made
    work.made += 1
    at = T0 + timedelta(minutes=10 * n)
    if not in_order and rng.random() < 0.5:
        minute = 2 * rng.randrange(5 * n + 5) + 1  # odd: never an in-order time
        while minute in work.used:
            minute += 2
        work.used.add(minute)
        at = T0 + timedelta(minutes=minute)
    tags = rng.sample(TOPICS, rng.choice([0, 0, 1, 2]))
    memory_id = memories.add(
        sentence(rng, n),
        sentence(rng, n) if rng.random() < 0.7 else "",
        session=rng.choice(SESSIONS),
        at=at,
        tags=tags,
        pinned=rng.random() < 0.05,
    )
    work.live[memory_id] = unique_token(n)
    if memories.get(memory_id).pinned:
        work.pinned.add(memory_id)
    return memory_id


def random_ops(
    memories: memo_shell.Memories,
    rng: random.Random,
    work: Workload,
    count: int,
    *,
    in_order: bool = True,
    retag: bool = False,
) -> None:
    """``count`` random adds, forgets, pins and unpins (and tag changes if ``retag``)."""
    for _ in range(count):
        roll = rng.random()
        if roll < 0.6 or len(work.live) < 3:
            add_one(memories, rng, work, in_order=in_order)
            continue
        target = rng.choice(sorted(work.live))
        if roll < 0.78:
            memories.forget(target)
            work.forgotten[target] = work.live.pop(target)
            work.pinned.discard(target)
        elif roll < 0.9 or not retag:
            pin = target not in work.pinned
            memories.pin(target, pin)
            (work.pinned.add if pin else work.pinned.discard)(target)
        else:
            memories.set_tags(target, rng.sample(TOPICS, rng.randint(0, 2)))


Fingerprint = dict[str, list[tuple[str, float]]]


def fingerprint(memories: memo_shell.Memories, queries: list[str], k: int = 8) -> Fingerprint:
    """Every query's ranked (id, score) list, plus the same with a session nudge."""
    out: Fingerprint = {}
    for query in queries:
        out[query] = [(h.memory.id, h.score) for h in memories.recall(query, k=k)]
        out[f"{query} @home"] = [
            (h.memory.id, h.score) for h in memories.recall(query, k=k, session="home")
        ]
    return out


def differences(a: Fingerprint, b: Fingerprint, tol: float = 1e-9) -> list[str]:
    """Human-readable differences between two fingerprints (ids exact, scores within tol)."""
    problems = []
    for query in a:
        ids_a = [i for i, _ in a[query]]
        ids_b = [i for i, _ in b.get(query, [])]
        if ids_a != ids_b:
            problems.append(f"{query!r}: {ids_a} != {ids_b}")
            continue
        for (mid, sa), (_, sb) in zip(a[query], b[query], strict=True):
            if abs(sa - sb) > tol * max(1.0, abs(sa)):
                problems.append(f"{query!r}: {mid} scored {sa!r} vs {sb!r}")
    return problems
