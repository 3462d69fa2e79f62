"""Lexical signals: BM25 over memories, BM25 over sessions, and topic expansion terms.

Why our own BM25 rather than a library: recall needs (a) incremental add and forget in
microseconds, (b) our analyzer (chat stopwords, compounds, CJK bigrams, emoji), (c) the same doc
numbers as the graph and the metadata columns, and (d) per-session aggregation of term counts at
query time. bm25s rebuilds its sparse matrix to add a document, tantivy and FTS5 bring their own
tokenizers and storage, and none of them gives (d). The postings are numpy arrays, so scoring a
query is a handful of vectorised gathers; bench/recall.py measures it beside SQLite FTS5.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from memo_shell.analyzer import stem, words
from memo_shell.index import sides
from memo_shell.index.data import IndexData
from memo_shell.recall import sparse
from memo_shell.recall.options import RecallOptions
from memo_shell.recall.signals import top_n
from memo_shell.recall.sparse import Sparse
from memo_shell.stopwords import STOPWORDS

T = TypeVar("T")

#: Query terms kept (a 100 kB query is cut to its first, most distinct words).
MAX_QUERY_TERMS = 64


@dataclass(frozen=True)
class QueryTerms:
    """Analysed query: term numbers known to the index, their weights and display words.

    ``numbers[i]`` is one known key of the i-th term (for display and exclusion); ``sides[i]``
    holds its keys as the user's statement, in a question and in a model's claim (-1: unknown),
    see ``memo_shell.index.sides``.
    """

    numbers: list[int]
    weights: list[float]
    words: list[str]
    sides: list[tuple[int, int, int]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.numbers)

    def all_numbers(self) -> list[int]:
        return [n for keys in self.sides for n in keys if n >= 0]


def side_numbers(data: IndexData, term: str) -> tuple[int, int, int]:
    """The live keys of one stem as statement, question and claim (-1 where none)."""
    out = []
    for prefix in sides.SIDES:
        number = data.terms.get(prefix + term)
        out.append(number if number is not None and data.lexical.count(number) > 0 else -1)
    return out[0], out[1], out[2]


def analyse_query(data: IndexData, query: str) -> QueryTerms:
    """Query terms known to the index, counted, each with the word the user typed for it."""
    counts: Counter[str] = Counter()
    surface: dict[str, str] = {}
    for word in words(query):
        if word in STOPWORDS:
            continue
        term = stem(word)
        if term not in counts and len(counts) >= MAX_QUERY_TERMS:
            continue
        counts[term] += 1
        surface.setdefault(term, word)
    numbers, weights, shown, keys = [], [], [], []
    for term, n in counts.items():
        found = side_numbers(data, term)
        if max(found) >= 0:
            numbers.append(next(k for k in found if k >= 0))
            weights.append(float(n))
            shown.append(surface[term])
            keys.append(found)
    return QueryTerms(numbers, weights, shown, keys)


def side_weights(o: RecallOptions, evidence: bool = True) -> tuple[float, float, float]:
    """How much a word counts as statement, question and claim.

    ``evidence=False``: all alike, for signals where a question is a good *pointer* (the memory
    after a matching question is likely its answer) even though it is no evidence itself.
    """
    return (1.0, o.w_question, o.w_claim) if evidence else (1.0, 1.0, 1.0)


def _term_tf(
    data: IndexData, keys: tuple[int, int, int], weights: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, int]:
    """(docs, weighted term frequency, document frequency) of one term over its three sides.

    The document frequency counts live documents using the word on any side, so idf is the
    same whatever the weights (postings may still list forgotten documents until compaction).
    """
    return _cached(data, ("tf", keys, weights), lambda: _weighted_tf(data, keys, weights))


def _weighted_tf(
    data: IndexData, keys: tuple[int, int, int], weights: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, int]:
    parts = [(data.lexical.postings(k), w) for k, w in zip(keys, weights, strict=True) if k >= 0]
    if len(parts) == 1:
        (docs, tf), w = parts[0]
        return docs, tf * w if w != 1.0 else tf, data.lexical.count(next(k for k in keys if k >= 0))
    unique, slot = _union(data, keys)
    tf = np.concatenate([t * w for (_d, t), w in parts])
    df = _cached(data, ("df", keys), lambda: int(np.count_nonzero(data.catalog.alive.view[unique])))
    return unique, np.bincount(slot, weights=tf, minlength=len(unique)), df


def _union(data: IndexData, keys: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(docs, return_inverse=True)`` of a term's sides' docs, computed once a query.

    Shared by the signals of one search (``query_cache``).
    """

    def build() -> tuple[np.ndarray, np.ndarray]:
        docs = np.concatenate([data.lexical.postings(k)[0] for k in keys if k >= 0])
        return sparse.unique_inverse(docs, data, data.catalog.rows)

    return _cached(data, ("union", keys), build)


def _cached(data: IndexData, key: object, build: Callable[[], T]) -> T:
    """Per-query memo: the same term's union is needed by up to three signals of one search.

    Only inside ``query_cache`` (one ranking, under the index lock), so nothing computed here
    outlives a change to the index.
    """
    cache: dict[object, Any] | None = data.__dict__.get("_query_cache")
    if cache is None:
        return build()
    if key not in cache:
        cache[key] = build()
    return cache[key]


@contextmanager
def query_cache(data: IndexData) -> Iterator[None]:
    """Share per-term work between the signals of one search."""
    data.__dict__["_query_cache"] = {}
    try:
        yield
    finally:
        data.__dict__.pop("_query_cache", None)


def bm25(data: IndexData, q: QueryTerms, o: RecallOptions, *, evidence: bool = True) -> Sparse:
    """BM25 score of the live docs using any query term (a sparse vector: no other doc scores)."""
    n = max(data.n_docs, 1)
    doclen = data.doclen.view
    avgdl = data.avgdl or 1.0
    w = side_weights(o, evidence)
    parts: list[np.ndarray] = []
    values: list[np.ndarray] = []
    used = []
    for keys, qw in zip(q.sides, q.weights, strict=True):
        docs, tf, df = _term_tf(data, keys, w)
        if df <= 0 or not len(docs):
            continue
        idf = np.log1p((n - df + 0.5) / (df + 0.5))

        # the same for every weighting of the term: computed once a query
        def length_norm(d: Any = docs) -> Any:
            return o.k1 * (1.0 - o.b + o.b * doclen[d] / avgdl)

        norm = _cached(data, ("norm", keys), length_norm)
        parts.append(docs)
        values.append((qw * idf) * tf * (o.k1 + 1.0) / (tf + norm))
        used.append(keys)
    if len(parts) > 1:  # the union over terms is the same for every weighting: merge once
        unique, slot = _cached(
            data,
            ("terms", tuple(used)),
            lambda: sparse.unique_inverse(np.concatenate(parts), data, data.catalog.rows),
        )
        docs = unique
        scores = np.bincount(slot, weights=np.concatenate(values), minlength=len(unique))
    else:
        docs, scores = sparse.combine(parts, values, data, data.catalog.rows)
    scores = scores * data.catalog.alive.view[docs]  # forgotten memories score nothing
    return sparse.nonzero((docs, scores))


def session_bm25(data: IndexData, q: QueryTerms, o: RecallOptions) -> np.ndarray:
    """BM25 of each session taken as one document (its memories concatenated)."""
    cat = data.catalog
    alive = cat.alive.view
    sess = cat.session.view
    n_s = len(cat.session_names)
    # a session where the topic was asked about is on that topic: every side counts here
    w = side_weights(o, evidence=False)

    def side_tf(keys: tuple[int, int, int]) -> np.ndarray | None:
        docs, tf, _df = _term_tf(data, keys, w)
        keep = alive[docs]
        if not keep.any():
            return None
        return np.bincount(sess[docs[keep]], weights=tf[keep], minlength=n_s)

    return session_bm25_by(data, q, o, side_tf)


def session_bm25_by(
    data: IndexData,
    q: QueryTerms,
    o: RecallOptions,
    side_tf: Callable[[tuple[int, int, int]], np.ndarray | None],
) -> np.ndarray:
    """Session BM25 from ``side_tf(keys)``: each session's term count of one query word (its
    sides' keys), or None when no live memory uses it. The exhaustive path counts from the
    postings, the candidate pool from its cache (``recall.pool.session_bm25``)."""
    slen = data.session_lengths()
    live_sessions = max(int((slen > 0).sum()), 1)
    avg = max(float(slen.sum()) / live_sessions, 1e-9)
    scores = np.zeros(len(data.catalog.session_names), dtype=np.float64)
    norm = o.session_k1 * (1.0 - o.session_b + o.session_b * slen / avg)
    for keys, qw in zip(q.sides, q.weights, strict=True):
        stf = side_tf(keys)
        if stf is None:
            continue
        df = int(np.count_nonzero(stf))
        idf = np.log1p((live_sessions - df + 0.5) / (df + 0.5))
        scores += (qw * idf) * stf * (o.session_k1 + 1.0) / (stf + norm)
    return scores


def topic_terms(
    data: IndexData, seeds: np.ndarray, seed_scores: np.ndarray, q: QueryTerms, o: RecallOptions
) -> QueryTerms:
    """Topics the best hits share: one step of spreading activation over memory-topic edges.

    Each of the best hits (``seeds``, best first, with their lexical ``seed_scores``) passes its
    (relative) score to its content words,
    in proportion to their share of the memory; topics are then weighted by specificity (idf).
    Words in more than a fifth of all memories, seen only once, or already in the query, are
    skipped. This is pseudo-relevance feedback expressed as a walk on the graph.
    """
    if not len(seeds):
        return QueryTerms([], [], [])
    owners, keys, tf = data.lexical.forward_many(seeds.tolist())
    if not len(keys):
        return QueryTerms([], [], [])
    n = max(data.n_docs, 1)
    order = np.argsort(seeds)
    owner_scores = seed_scores[order][np.searchsorted(seeds[order], owners)]
    weight = owner_scores / float(seed_scores[0]) / np.maximum(data.doclen.view[owners], 1.0) * tf
    # work on the few distinct topics of the seeds, not on the whole vocabulary
    topics, slot = np.unique(keys, return_inverse=True)
    act = np.bincount(slot, weights=weight, minlength=len(topics))
    df = data.lexical.df.view[topics].astype(np.float64)
    act *= np.log1p(n / np.maximum(df, 1.0))
    # topics come from what the user stated, not from questions or the model's claims
    said_elsewhere = np.fromiter(
        (sides.is_side_key(data.terms.keys[t]) for t in topics.tolist()), bool, len(topics)
    )
    act[(df > 0.2 * n) | (df < 2) | np.isin(topics, q.all_numbers()) | said_elsewhere] = 0.0
    # ties between topics break by the word itself, not by its (insertion-order) number
    alphabetical = np.argsort(np.argsort([data.terms.keys[t] for t in topics.tolist()]))
    best = top_n(act, o.topic_terms, -alphabetical.astype(np.float64))
    if not len(best):
        return QueryTerms([], [], [])
    chosen = topics[best]
    w = act[best] / act[best[0]]
    stems = [data.terms.keys[c] for c in chosen]
    return QueryTerms(chosen.tolist(), w.tolist(), stems, [side_numbers(data, t) for t in stems])


def present(data: IndexData, doc: int, q: QueryTerms) -> list[str]:
    """The query words that occur in one memory (for its reasons)."""
    if not q.numbers:
        return []
    keys, _w = data.lexical.forward(doc)
    have = set(keys.tolist())
    return [w for found, w in zip(q.sides, q.words, strict=True) if have.intersection(found)]
