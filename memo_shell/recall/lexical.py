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
from dataclasses import dataclass

import numpy as np

from memo_shell.analyzer import stem, words
from memo_shell.index.data import IndexData
from memo_shell.recall.options import RecallOptions
from memo_shell.recall.signals import top_n
from memo_shell.stopwords import STOPWORDS

#: Query terms kept (a 100 kB query is cut to its first, most distinct words).
MAX_QUERY_TERMS = 64


@dataclass(frozen=True)
class QueryTerms:
    """Analysed query: term numbers known to the index, their weights and display words."""

    numbers: list[int]
    weights: list[float]
    words: list[str]

    def __bool__(self) -> bool:
        return bool(self.numbers)


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
    numbers, weights, shown = [], [], []
    for term, n in counts.items():
        number = data.terms.get(term)
        if number is not None and data.lexical.count(number) > 0:
            numbers.append(number)
            weights.append(float(n))
            shown.append(surface[term])
    return QueryTerms(numbers, weights, shown)


def bm25(data: IndexData, q: QueryTerms, o: RecallOptions) -> np.ndarray:
    """BM25 score of every doc row (rows of forgotten memories are zero)."""
    rows = data.catalog.rows
    scores = np.zeros(rows, dtype=np.float64)
    n = max(data.n_docs, 1)
    doclen = data.doclen.view
    avgdl = data.avgdl or 1.0
    for number, qw in zip(q.numbers, q.weights, strict=True):
        df = data.lexical.count(number)
        if df <= 0:
            continue
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        docs, tf = data.lexical.postings(number)
        norm = o.k1 * (1.0 - o.b + o.b * doclen[docs] / avgdl)
        scores[docs] += (qw * idf) * tf * (o.k1 + 1.0) / (tf + norm)
    scores[~data.catalog.alive.view] = 0.0
    return scores


def session_bm25(data: IndexData, q: QueryTerms, o: RecallOptions) -> np.ndarray:
    """BM25 of each session taken as one document (its memories concatenated)."""
    cat = data.catalog
    alive = cat.alive.view
    sess = cat.session.view
    n_s = len(cat.session_names)
    slen = data.session_lengths()
    live_sessions = max(int((slen > 0).sum()), 1)
    avg = max(float(slen.sum()) / live_sessions, 1e-9)
    scores = np.zeros(n_s, dtype=np.float64)
    norm = o.session_k1 * (1.0 - o.session_b + o.session_b * slen / avg)
    for number, qw in zip(q.numbers, q.weights, strict=True):
        docs, tf = data.lexical.postings(number)
        keep = alive[docs]
        if not keep.any():
            continue
        stf = np.bincount(sess[docs[keep]], weights=tf[keep], minlength=n_s)
        df = int(np.count_nonzero(stf))
        idf = np.log1p((live_sessions - df + 0.5) / (df + 0.5))
        scores += (qw * idf) * stf * (o.session_k1 + 1.0) / (stf + norm)
    return scores


def topic_terms(
    data: IndexData, lex: np.ndarray, seeds: np.ndarray, q: QueryTerms, o: RecallOptions
) -> QueryTerms:
    """Topics the best hits share: one step of spreading activation over memory-topic edges.

    Each of the best hits (``seeds``) passes its (relative) score to its content words,
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
    weight = lex[owners] / float(lex[seeds[0]]) / np.maximum(data.doclen.view[owners], 1.0) * tf
    # work on the few distinct topics of the seeds, not on the whole vocabulary
    topics, slot = np.unique(keys, return_inverse=True)
    act = np.bincount(slot, weights=weight, minlength=len(topics))
    df = data.lexical.df.view[topics].astype(np.float64)
    act *= np.log1p(n / np.maximum(df, 1.0))
    act[(df > 0.2 * n) | (df < 2) | np.isin(topics, q.numbers)] = 0.0
    # ties between topics break by the word itself, not by its (insertion-order) number
    alphabetical = np.argsort(np.argsort([data.terms.keys[t] for t in topics.tolist()]))
    best = top_n(act, o.topic_terms, -alphabetical.astype(np.float64))
    if not len(best):
        return QueryTerms([], [], [])
    chosen = topics[best]
    w = act[best] / act[best[0]]
    return QueryTerms(chosen.tolist(), w.tolist(), [data.terms.keys[c] for c in chosen])


def present(data: IndexData, doc: int, q: QueryTerms) -> list[str]:
    """The query words that occur in one memory (for its reasons)."""
    if not q.numbers:
        return []
    keys, _w = data.lexical.forward(doc)
    have = set(keys.tolist())
    return [w for number, w in zip(q.numbers, q.words, strict=True) if number in have]
