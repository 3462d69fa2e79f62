"""Safe pruning of the candidates at scale: drop those that cannot make the shortlist.

Every signal of the blend is bounded (each is scaled to at most 1, then weighted), so before
the expensive parts run (exact BM25 away from the pools, the context signal), each candidate's
final score is known to lie between a least and a most; a candidate whose most is below the
shortlist-th best least cannot be ranked in the shortlist, and dropping it changes no hit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memo_shell.index.data import IndexData
from memo_shell.recall.options import RecallOptions
from memo_shell.recall.pool import Scorer, kth
from memo_shell.recall.sparse import Sparse


@dataclass
class Blend:
    """What the blend of ``recall._search`` will add to each candidate, as far as it is known
    before the expensive parts (exact BM25 away from the pools, the context signal) run."""

    per_session: np.ndarray | None
    entities: Sparse | None  # scaled
    topics: Scorer | Sparse | None  # a pooled scorer, or exact scaled values
    vectors: np.ndarray | None  # scaled, every row
    inside: np.ndarray | None  # in a time span the query names, per candidate
    excluded: np.ndarray  # per candidate
    speaker: bool  # the query names a person (the speaker signal may apply)
    current: bool  # the caller's session gets its nudge


def _at(x: Sparse, docs: np.ndarray) -> np.ndarray:
    where = np.searchsorted(x[0], docs)
    where[where == len(x[0])] = 0
    hit = x[0][where] == docs if len(x[0]) else np.zeros(len(docs), dtype=bool)
    return np.where(hit, x[1][where] if len(x[0]) else 0.0, 0.0)


def contenders(
    data: IndexData, docs: np.ndarray, lex: Scorer, b: Blend, o: RecallOptions, shortlist: int
) -> np.ndarray:
    """The candidates that can still make the final shortlist (safe pruning: exact).

    Every signal is bounded: a candidate's score lies between what is known of it (its BM25
    where scored, session, graph, vectors, time when its own evidence is known) and that plus
    the most the unknown parts can add (BM25 up to the pool's cut, context up to its weights,
    speaker and current-session nudges). A candidate whose most is below the ``shortlist``-th
    best least of the surely eligible ones cannot be ranked there; dropping it changes no hit.
    """
    cat = data.catalog
    top = lex.best() or 1.0
    lo, known = lex.known(docs)
    lo = lo / top
    hi = np.where(known, lo, lex.floor / top)
    own = lo > 0
    if b.per_session is not None:
        gain = o.w_session * b.per_session[cat.session.view[docs]]
        lo, hi = lo + gain, hi + gain + o.w_prev + o.w_prev2 + o.w_next
    if b.entities is not None:
        gain = o.w_entities * _at(b.entities, docs)
        lo, hi, own = lo + gain, hi + gain, own | (gain > 0)
    if isinstance(b.topics, Scorer):
        best = b.topics.best() or 1.0
        value, seen = b.topics.known(docs)
        lo, own = lo + o.w_topics * value / best, own | (value > 0)
        hi = hi + o.w_topics * np.where(seen, value, b.topics.floor) / best
    elif b.topics is not None:
        gain = o.w_topics * _at(b.topics, docs)
        lo, hi, own = lo + gain, hi + gain, own | (gain > 0)
    if b.vectors is not None:
        gain = o.w_vectors * b.vectors[docs]
        lo, hi, own = lo + gain, hi + gain, own | (gain > 0)
    if b.inside is not None:
        lo, hi = lo + o.w_time * (b.inside & own), hi + o.w_time * b.inside
    hi = hi + o.w_speaker * b.speaker + o.w_current * b.current
    sure = own & cat.alive.view[docs] & ~b.excluded
    if np.count_nonzero(sure) <= shortlist:
        return docs
    theta = kth(lo[sure], shortlist)
    # sums taken in another order than the blend's may differ in the last bits: keep a margin
    keep = (hi >= theta - 1e-9 * max(1.0, abs(theta))) | cat.pinned.view[docs]
    return docs[keep]
