"""Non-lexical ranking signals: conversation context, time spans, graph entities, vectors.

Each function returns one score per doc row (numpy), so signals combine by plain arithmetic and
cost a few vectorised passes even at 100k memories.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from dense_reference import graph
from memo_shell import temporal
from memo_shell.index.data import IndexData


def scaled(x: np.ndarray) -> np.ndarray:
    """Scale to a maximum of 1 (a signal that found nothing stays all zero)."""
    top = float(x.max()) if len(x) else 0.0
    return x / top if top > 0 else x


def top_n(
    values: np.ndarray,
    n: int,
    tiebreak: np.ndarray | None = None,
    nonzero: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of the ``n`` largest positive values, largest first.

    Ties go to the larger ``tiebreak`` value (e.g. the newer memory), then to the lower index.
    ``nonzero``: the indices of the positive values, if the caller has them already.
    """
    nz = np.flatnonzero(values > 0) if nonzero is None else nonzero
    if len(nz) > n:  # keep everything tied with the n-th value, so ties break as documented
        kth = np.partition(values[nz], len(nz) - n)[len(nz) - n]
        nz = nz[values[nz] >= kth]
    if tiebreak is None:
        return nz[np.lexsort((nz, -values[nz]))][:n]
    return nz[np.lexsort((nz, -tiebreak[nz], -values[nz]))][:n]


@dataclass
class Context:
    """How much each memory gains from its neighbours in the conversation."""

    prev: np.ndarray  # from the memory just before (and the one before that)
    next: np.ndarray  # from the memory just after


def context(
    data: IndexData, lex: np.ndarray, src: np.ndarray, w_prev: float, w_prev2: float, w_next: float
) -> Context:
    """memory -[next]-> memory: a reply inherits part of the relevance of what it answers.

    ``src``: the memories with a lexical score (only they pass anything on: sparse work).
    """
    cat = data.catalog
    gain_prev = np.zeros_like(lex)
    gain_next = np.zeros_like(lex)
    value = lex[src]
    nxt = cat.next.view[src]  # the memory after each match: its reply
    has = nxt >= 0
    gain_prev[nxt[has]] += w_prev * value[has]  # links are one-to-one: no index repeats
    if w_prev2:
        after = cat.next.view[nxt[has]]
        has2 = after >= 0
        np.add.at(gain_prev, after[has2], w_prev2 * value[has][has2])
    if w_next:
        before = cat.prev.view[src]
        has = before >= 0
        gain_next[before[has]] += w_next * value[has]
    return Context(gain_prev, gain_next)


@dataclass
class TimeMatch:
    """Memories inside a time span named by the question, and that span's label."""

    inside: np.ndarray
    labels: list[str]


def time_match(data: IndexData, query: str, now: datetime | None = None) -> TimeMatch | None:
    """Which memories fall in the spans the query names (None when it names none)."""
    tq = temporal.parse(query, now)
    if not tq.windows:
        return None
    created = data.catalog.created.view
    inside = np.zeros(len(created), dtype=bool)
    months: np.ndarray | None = None
    for window in tq.windows:
        if window.month:
            if months is None:
                months = created.astype("datetime64[s]").astype("datetime64[M]")
                months = months.astype(np.int64) % 12 + 1
            inside |= months == window.month
        else:
            inside |= (created >= window.start) & (created < window.end)
    return TimeMatch(inside, [w.label for w in tq.windows])


@dataclass
class GraphMatch:
    """Activation reaching each memory through the entity graph, and by which entity."""

    score: np.ndarray
    entity: np.ndarray  # entity number that contributed most (-1: none)
    hops: np.ndarray


def entity_spread(
    data: IndexData, query: str, lex: np.ndarray, best: np.ndarray, top_entities: int
) -> GraphMatch:
    """Spreading activation from the query's entities and its best lexical hits (``best``)."""
    weights = lex[best] / max(float(lex.max()), 1e-12) if len(best) else np.zeros(0)
    score, entity, hops = graph.spread(
        data,
        best,
        weights.astype(np.float64),
        graph.query_entities(data, query),
        top_entities=top_entities,
    )
    return GraphMatch(score, entity, hops)
