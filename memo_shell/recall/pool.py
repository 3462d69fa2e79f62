"""A bounded candidate pool: at scale, recall re-ranks the lexical top-K, not every match.

Why: a word used by a third of a million memories would otherwise make every signal touch a
third of a million rows on every question. When the query's words have more than
``RecallOptions.exhaustive_below`` postings in all, each lexical signal (BM25 of the question,
its "pointer" weighting for the conversation context, BM25 of the topic expansion terms) yields
only its ``RecallOptions.lexical_pool`` best memories, and the context, session, graph, time and
vector signals re-rank that pool (plus the graph's reach, the pins and the vectors' matches)
instead of every memory that shares a word with the question, together with the memories those
signals lift the most (``recall.reach``: inside a time span the question names, in the best
sessions, next to the best hits); ``recall.bounds`` then drops, exactly, the candidates that
cannot make the shortlist before the costlier signals run. Below the threshold (every store of
a few thousand memories, LoCoMo included) the exhaustive path runs unchanged, bit for bit.

How a pool is found: MaxScore dynamic pruning. Words are taken in decreasing order of the most
they can add to a memory (idf times the BM25 saturation of their largest weight in the shortest
memory); each word's memories not reached yet are scored in full (every query word, the others
only *looked up*: a binary search each, or one walk of a short list); as soon as the K-th best
score reached beats everything the remaining words could add up to, no memory only they reach
can enter the top K, and they are never walked. Every score is exactly what exhaustive BM25
gives that memory, to the last bit, and ties at the cut go to the newest memory, so which
memories make it never depends on doc numbers. Without a budget the pool is exactly the
exhaustive top K (tests/test_recall_pool.py).

What is approximate, and measured: a word with more than ``RecallOptions.long_postings``
postings (used by ~5% of a million memories) is not walked unless every word of the question
is that long; the pool is then the best K of the memories the rarer words reach, and a memory
sharing only common words with the question is left to the reach (sessions, neighbours, time).
And a memory outside every pool and its reach could be lifted into the top k by context,
session and time alone (those add up to ~2.25 on the scale where the best lexical hit is 1, so
no bound on BM25 alone prunes with them). The exhaustive ranking is the reference:
bench/recall_pool.py measures top-10 agreement on the synthetic 100k/1M workloads (0.97 of the
top 10 lists identical at 1M, 0.994 of their members) and on LoCoMo, its real-chat variants
and truth-over-echo with the pool forced on (CONTRIBUTING.md, "Recall at scale");
tests/test_recall_pool.py pins exactness and agreement on a small store.

Per-term figures the pruning needs that would cost a pass over a long posting list (the
document frequency of a word over its three sides, a word's term counts per session) are cached
per base segment of the postings (``InvertedIndex.segment``): recent additions (the delta) are
counted live, any removal since the last compaction recomputes them, and a compaction or load
starts afresh, so a cached figure is never stale. The cache is bounded (``CACHE_BYTES``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from memo_shell.index.data import IndexData
from memo_shell.recall import sparse
from memo_shell.recall.lexical import QueryTerms, session_bm25_by, side_weights
from memo_shell.recall.options import RecallOptions
from memo_shell.recall.sparse import Sparse

#: Memory the per-term cache may hold (per index): a few dozen common words at a million memories.
CACHE_BYTES = 48 << 20

#: Reading a memory's forward list costs about this many postings' worth of work, so above this
#: many postings per doc asked for, read those. Not the ~200 the arithmetic alone suggests: the
#: forward lists are scattered over a mapped file, and each memory read maps a page (or a large
#: folio) nobody else needs, which at a million memories was most of the resident set after a
#: hundred recalls (bench/recall.py ``rss_open_recall_mb``: 787 MB at 200, 748 MB at 2000).
_FORWARD_COST = 2000

#: Scoring a memory in full (every query word looked up) costs about as much as walking this
#: many postings (adding a word's share to the memories it reaches): bench/recall.py, 1M.
_LOOKUP_COST = 4

#: Batches of memories scored or read larger than this are not kept for reuse within a query.
_MEMO_DOCS = 50_000

#: Computed bounds round differently from the float32 arithmetic of the scores: a little slack.
_SLACK = 1.0 + 1e-6


class _Cache:
    """Per-term figures derived from one base segment of the lexical postings, LRU-bounded."""

    def __init__(self, segment: int) -> None:
        self.segment = segment
        self.entries: OrderedDict[object, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.rows_seen = 0
        self.min_len = np.inf
        self.by_time: tuple[np.ndarray, np.ndarray] | None = None  # (sorted created, docs)

    def scratch(self, rows: int, dtype: type) -> np.ndarray:
        """A store-sized scratch array of ``dtype``, all zero (callers reset what they set)."""
        arrays: dict[type, np.ndarray] = self.__dict__.setdefault("_scratch", {})
        held = arrays.get(dtype)
        if held is None or len(held) < rows:
            held = arrays[dtype] = np.zeros(max(rows, 1024), dtype=dtype)
        return held

    def get(self, key: object) -> Any:
        found = self.entries.get(key)
        if found is None:
            return None
        self.entries.move_to_end(key)
        return found[0]

    def put(self, key: object, value: Any, size: int) -> None:
        self.entries[key] = (value, size)
        self.bytes += size
        while self.bytes > CACHE_BYTES and len(self.entries) > 1:
            _key, (_value, freed) = self.entries.popitem(last=False)
            self.bytes -= freed


def cache_of(data: IndexData) -> _Cache:
    cache: _Cache | None = data.__dict__.get("_pool_cache")
    if cache is None or cache.segment != data.lexical.segment:
        cache = data.__dict__["_pool_cache"] = _Cache(data.lexical.segment)
    return cache


def _shortest(data: IndexData) -> float:
    """A lower bound on the length of any memory with words (for the pruning bounds).

    Kept up to date incrementally: rows only grow, and forgetting a memory can only raise the
    true minimum, so the bound stays safe.
    """
    cache = cache_of(data)
    rows = len(data.doclen)
    if rows > cache.rows_seen:
        new = data.doclen.view[cache.rows_seen : rows]
        new = new[new > 0]
        if len(new):
            cache.min_len = min(cache.min_len, float(new.min()))
        cache.rows_seen = rows
    return cache.min_len if np.isfinite(cache.min_len) else 1.0


def _docs_of(data: IndexData, keys: list[int], base: bool) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated (docs, weights) of some keys' base or delta postings."""
    inv = data.lexical
    got = [inv.base_postings(k) if base else inv.delta_postings(k) for k in keys]
    if not got:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    return np.concatenate([d for d, _ in got]), np.concatenate([w for _, w in got])


def _union_df(data: IndexData, keys: list[int]) -> int:
    """Live documents using any of a word's side keys (as ``lexical._weighted_tf`` counts)."""
    cache = cache_of(data)
    alive = data.catalog.alive.view
    name = ("df", tuple(keys), data.lexical.removals)
    base = cache.get(name)
    if base is None:
        # side by side through a bitmap kept for the purpose (all False between uses): each
        # side's docs are distinct, so only the ones no earlier side had count again
        seen = cache.scratch(len(alive), bool)
        base, marked = 0, []
        for key in keys:
            docs, _w = data.lexical.base_postings(key)
            new = docs[~seen[docs]]
            base += int(np.count_nonzero(alive[new]))
            seen[new] = True
            marked.append(new)
        for new in marked:
            seen[new] = False
        cache.put(name, base, 64)
    docs, _w = _docs_of(data, keys, base=False)  # added since the last compaction: few
    return base + (int(np.count_nonzero(alive[np.unique(docs)])) if len(docs) else 0)


def session_tf(data: IndexData, keys: list[int]) -> np.ndarray:
    """A word's term counts per session, over live memories, all sides alike (dense)."""
    cat = data.catalog
    n_s = len(cat.session_names)
    alive = cat.alive.view
    cache = cache_of(data)
    name = ("sessions", tuple(keys), data.lexical.removals)
    base = cache.get(name)
    if base is None:
        docs, tf = _docs_of(data, keys, base=True)
        keep = alive[docs]
        stf = np.bincount(cat.session.view[docs[keep]], weights=tf[keep], minlength=n_s)
        where = np.flatnonzero(stf)
        base = (where.astype(np.int32), stf[where])
        cache.put(name, base, 12 * len(where) + 64)
    docs, tf = _docs_of(data, keys, base=False)
    keep = alive[docs]
    return np.bincount(
        np.concatenate([base[0], cat.session.view[docs[keep]]]),
        weights=np.concatenate([base[1], tf[keep].astype(np.float64)]),
        minlength=n_s,
    )


def session_bm25(data: IndexData, q: QueryTerms, o: RecallOptions) -> np.ndarray:
    """``lexical.session_bm25`` from cached per-session term counts (cost: sessions, not
    postings)."""

    def side_tf(keys: tuple[int, int, int]) -> np.ndarray | None:
        stf = session_tf(data, [k for k in keys if k >= 0])
        return stf if stf.any() else None

    return session_bm25_by(data, q, o, side_tf)


def size(data: IndexData, q: QueryTerms) -> int:
    """How many live memories use ``q``'s words, side by side: about the postings exhaustive
    ranking would walk. Live counts, not postings (which list forgotten memories until the
    next compaction), so a live index and a rebuilt one make the same choices."""
    return sum(data.lexical.count(k) for k in q.all_numbers())


class _Table:
    """The store-sized doc -> position table of ``sparse.Positions``, filled only if needed."""

    def __init__(self, data: IndexData, docs: np.ndarray) -> None:
        self.data, self.docs = data, docs
        self.filled: sparse.Positions | None = None

    def positions(self) -> np.ndarray:
        if self.filled is None:
            self.filled = sparse.Positions(self.data, self.data.catalog.rows, self.docs)
        return self.filled.table

    def __enter__(self) -> _Table:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.filled is not None:
            self.filled.close()


def _lookup(
    batches: list[tuple[np.ndarray, np.ndarray]], docs: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Fill ``out`` at the ``docs`` some batch of (sorted docs, values) holds; which it did."""
    found = np.zeros(len(docs), dtype=bool)
    for known, values in batches:
        if not len(known):
            continue
        where = np.searchsorted(known, docs)
        where[where == len(known)] = 0
        hit = (known[where] == docs) & ~found
        out[hit] = values[where[hit]]
        found |= hit
    return found


class Reader:
    """Query keys' weights at memories, read once per memory and shared by the scorers of one
    query (its evidence and its pointer weighting use the same keys)."""

    def __init__(self, data: IndexData, keys: list[int]) -> None:
        self.data = data
        self.keys = sorted(set(keys))
        self.column = {k: j for j, k in enumerate(self.keys)}
        # what was read so far, in batches (each sorted): merging them would cost more
        self._batches: list[tuple[np.ndarray, np.ndarray]] = []
        self._walks: dict[tuple[int, ...], tuple[np.ndarray, list[np.ndarray], np.ndarray]] = {}

    def walk(self, keys: tuple[int, ...]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """The live memories some side keys of one word reach (sorted, distinct), each key's
        weight at them, and their lengths: walked once per query, whatever the weighting."""
        found = self._walks.get(keys)
        if found is None:
            inv = self.data.lexical
            parts = [p for key in keys for p in (inv.base_postings(key), inv.delta_postings(key))]
            rows = self.data.catalog.rows
            docs, slot = sparse.unique_inverse(
                np.concatenate([d for d, _w in parts]), self.data, rows
            )
            weights, at = [], 0
            for n in range(len(keys)):
                w = np.zeros(len(docs), dtype=np.float32)
                for p_docs, p_w in parts[2 * n : 2 * n + 2]:
                    w[slot[at : at + len(p_docs)]] = p_w
                    at += len(p_docs)
                weights.append(w)
            live = self.data.catalog.alive.view[docs]
            if not live.all():
                docs, weights = docs[live], [w[live] for w in weights]
            found = self._walks[keys] = (docs, weights, self.data.doclen.view[docs])
        return found

    def weights(self, docs: np.ndarray) -> np.ndarray:
        """(len(docs), keys) float32: each key's weight at each of ``docs`` (0 where absent)."""
        out = np.zeros((len(docs), len(self.keys)), dtype=np.float32)
        found = _lookup(self._batches, docs, out)
        if not found.all():
            new = docs[~found]
            rows = self._read(new)
            out[~found] = rows
            if len(new) <= _MEMO_DOCS:  # a long word's whole list is not worth keeping
                self._batches.append((new, rows))
        return out

    def _read(self, docs: np.ndarray) -> np.ndarray:
        """From whichever costs less: the docs' forward lists (a few dozen entries per memory,
        whatever the words' frequencies), or the keys' postings, walked through a doc ->
        position table or binary-searched per doc when the docs are few."""
        inv = self.data.lexical
        out = np.zeros((len(docs), len(self.keys)), dtype=np.float32)
        if not len(docs) or not self.keys:
            return out
        if sum(inv.length(k) for k in self.keys) > _FORWARD_COST * len(docs):
            rows, fkeys, fw = inv.forward_rows(docs)
            wanted = np.asarray(self.keys, dtype=fkeys.dtype)
            slot = np.searchsorted(wanted, fkeys)
            slot[slot == len(wanted)] = 0
            hit = wanted[slot] == fkeys
            out[rows[hit], slot[hit]] = fw[hit]
            return out
        with _Table(self.data, docs) as table:
            for j, key in enumerate(self.keys):
                if 16 * len(docs) < inv.length(key):
                    out[:, j] = inv.weights_at(key, docs)
                    continue
                where = table.positions()
                for p_docs, p_w in (inv.base_postings(key), inv.delta_postings(key)):
                    slot = where[p_docs]
                    hit = slot >= 0
                    out[slot[hit], j] = p_w[hit]
        return out


@dataclass
class _Stem:
    """One query word under one weighting: its side keys, BM25 factor and score bound."""

    parts: list[tuple[int, float]]  # (key, side weight)
    coef: float  # query weight x idf
    bound: float  # the most it adds to any memory
    size: int  # postings


class Scorer:
    """BM25 of some query terms under one side weighting, scored only where asked.

    ``at(docs)`` gives exactly what ``lexical.bm25`` gives those memories (same arithmetic, in
    the same order, so the same bits); ``top(k)`` finds the best ``k`` by MaxScore.
    """

    def __init__(
        self,
        data: IndexData,
        q: QueryTerms,
        o: RecallOptions,
        *,
        evidence: bool,
        reader: Reader | None = None,
        budget: int | None = None,
    ) -> None:
        self.data, self.o, self.budget = data, o, budget
        self.reader = reader or Reader(data, q.all_numbers())
        inv = data.lexical
        n = max(data.n_docs, 1)
        self.avgdl = data.avgdl or 1.0
        shortest = _shortest(data)
        w = side_weights(o, evidence)
        self.stems: list[_Stem] = []
        for keys, qw in zip(q.sides, q.weights, strict=True):
            parts = [(k, ws) for k, ws in zip(keys, w, strict=True) if k >= 0]
            if not parts or not sum(inv.length(k) for k, _ws in parts):
                continue
            size = sum(inv.count(k) for k, _ws in parts)  # live: see ``size``
            live = [k for k, _ws in parts]
            df = inv.count(live[0]) if len(parts) == 1 else _union_df(data, live)
            if df <= 0:
                continue
            idf = np.log1p((n - df + 0.5) / (df + 0.5))
            tf = sum(ws * inv.max_weight(k) for k, ws in parts)
            norm = o.k1 * (1.0 - o.b + o.b * shortest / self.avgdl)
            bound = float(qw * idf) * tf * (o.k1 + 1.0) / (tf + norm) * _SLACK
            self.stems.append(_Stem(parts, qw * idf, bound, size))
        #: postings the exhaustive computation would walk
        self.size = sum(s.size for s in self.stems)
        self._best: float | None = None
        self._known: list[tuple[np.ndarray, np.ndarray]] = []  # scores computed, in batches
        #: after ``top``: the most any memory it left out scores
        self.floor = 0.0

    def at(self, docs: np.ndarray) -> np.ndarray:
        """BM25 of each of ``docs`` (sorted distinct doc numbers); 0 for forgotten memories.

        Scores computed before (by ``top`` or an earlier call) are reused, not recomputed.
        """
        docs = np.asarray(docs, dtype=np.int64)
        out = np.zeros(len(docs), dtype=np.float64)
        found = _lookup(self._known, docs, out)
        if not found.all():
            new = docs[~found]
            scores = self._score(new)
            out[~found] = scores
            self._known.append((new, scores))
        return out

    def _score(self, docs: np.ndarray) -> np.ndarray:
        o = self.o
        total = np.zeros(len(docs), dtype=np.float64)
        if not len(docs):
            return total
        weights = self.reader.weights(docs)
        column = self.reader.column
        doclen = self.data.doclen.view[docs]
        norm = o.k1 * (1.0 - o.b + o.b * doclen / self.avgdl)
        for stem in self.stems:
            if len(stem.parts) == 1:  # float32, as lexical._weighted_tf leaves it
                key, w = stem.parts[0]
                t = weights[:, column[key]]
                tf = t * w if w != 1.0 else t
            else:  # float32 products summed in float64, side by side
                tf = np.zeros(len(docs), dtype=np.float64)
                for key, w in stem.parts:
                    tf += weights[:, column[key]] * w
            with np.errstate(invalid="ignore", divide="ignore"):
                value = stem.coef * tf * (o.k1 + 1.0) / (tf + norm)
            total += np.where(tf > 0, value, 0.0)
        return total * self.data.catalog.alive.view[docs]

    def _walk(self, stem: _Stem) -> tuple[np.ndarray, np.ndarray]:
        """The live memories ``stem`` reaches (sorted, distinct) and the share of their score
        it gives (within ``_SLACK`` of what ``_score`` computes for it in float32)."""
        docs, weights, doclen = self.reader.walk(tuple(k for k, _ws in stem.parts))
        tf = np.zeros(len(docs), dtype=np.float64)
        for w, (_key, ws) in zip(weights, stem.parts, strict=True):
            tf += w * ws
        o = self.o
        norm = o.k1 * (1.0 - o.b + o.b * doclen / self.avgdl)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = stem.coef * tf * (o.k1 + 1.0) / (tf + norm)
        return docs, np.where(tf > 0, share, 0.0)

    def top(self, k: int) -> Sparse:
        """The ``k`` best memories and their scores (all tied with the k-th: newest first).

        Term at a time: each word walked adds its share to the memories it reaches (an
        accumulator the size of the store, reset after), so after some words every memory
        reached has a partial score, a lower bound on its score, and at most the bounds of the
        words not walked above it. Walking stops when the k-th best partial beats what the
        remaining words could add up to; then only the memories whose partial plus that could
        still reach the k-th best partial are scored in full (every word looked up).

        With a ``budget``, a word with more postings than that is not walked (unless every word
        is that long: then the first one is): the result is the best ``k`` of the memories the
        shorter words reach, each scored exactly, the long words looked up. That is the
        approximation the pool makes at scale (``bench/recall_pool.py`` measures it): a memory
        that only shares common words with the question is left to context, session and time
        to find through the pool's reach; ``floor`` still bounds what it scores.
        """
        data = self.data
        budget = self.budget
        rows = data.catalog.rows
        if not self.stems:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        order = sorted(range(len(self.stems)), key=lambda i: -self.stems[i].bound)
        rest = [*np.cumsum([self.stems[i].bound for i in order][::-1])[::-1].tolist(), 0.0]
        cache = cache_of(data)
        partial = cache.scratch(rows, np.float64)  # all 0: reset below
        # all False: reset below (a memory reached can have a share of 0: a side weighed 0)
        seen = cache.scratch(rows, bool)
        reached: list[np.ndarray] = []
        waiting: list[int] = []  # words not walked: long ones, and those after the stop
        skipped = 0.0  # bounds of the long words not walked
        j = 0
        try:
            for j, i in enumerate(order):
                stem = self.stems[i]
                if (
                    budget is not None
                    and stem.size > budget
                    and (reached or any(self.stems[x].size <= budget for x in order[j + 1 :]))
                ):
                    skipped += stem.bound
                    waiting.append(i)
                    continue
                docs, share = self._walk(stem)
                fresh = docs[~seen[docs]]
                seen[fresh] = True
                reached.append(fresh)
                partial[docs] += share
                if j == len(order) - 1 or sum(map(len, reached)) < k:
                    continue
                if kth(partial[np.concatenate(reached)], k) / _SLACK > rest[j + 1]:
                    waiting += order[j + 1 :]
                    break  # nothing reached only through the remaining words can enter the top k
            # what a memory not reached can score at most
            unreached = rest[j + 1] + skipped
            cand = np.concatenate(reached) if reached else np.zeros(0, dtype=np.int64)
            # The words not walked still add to the memories reached. Each is either looked up
            # in every memory that could still make the top k, or walked, adding its share to
            # the memories reached (and reaching no new one), whichever costs less.
            waiting.sort(key=lambda x: self.stems[x].size)
            while waiting and len(cand) > k:
                lower = partial[cand]
                ahead = sum(self.stems[x].bound for x in waiting)
                could = (lower * _SLACK + ahead) * _SLACK >= kth(lower, k) / _SLACK
                if _LOOKUP_COST * int(np.count_nonzero(could)) < self.stems[waiting[0]].size:
                    break
                docs, share = self._walk(self.stems[waiting.pop(0)])
                known = seen[docs]
                partial[docs[known]] += share[known]
            lower = partial[cand]
        finally:
            for docs in reached:
                partial[docs] = 0.0
                seen[docs] = False
        pruned = 0.0  # the most a memory reached but not scored in full can score
        if len(cand) > k:
            ahead = sum(self.stems[x].bound for x in waiting)
            most = (lower * _SLACK + ahead) * _SLACK
            keep = most >= kth(lower, k) / _SLACK
            if not keep.all():
                pruned = float(most[~keep].max())
                cand = cand[keep]
        cand = np.sort(cand)
        scores = self._score(cand)
        if len(cand) <= _MEMO_DOCS:
            self._known.append((cand, scores))
        if len(scores):
            self._best = float(scores.max())
        docs, values = cut(data, cand, scores, k)
        self._known.append((docs, values))
        # what a memory left out can score at most: the cut, or what the unwalked words add
        left = kth(scores, k) if len(docs) < len(cand) else 0.0
        self.floor = max(left, unreached, pruned)
        return docs, values

    def known(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(scores, known?) at ``docs`` from what was scored so far (0 where unknown)."""
        out = np.zeros(len(docs), dtype=np.float64)
        return out, _lookup(self._known, docs, out)

    def best(self) -> float:
        """The highest score any memory gets (0 if none)."""
        if self._best is None:
            _docs, values = self.top(1)
            self._best = float(values.max()) if len(values) else 0.0
        return self._best


def kth(scores: np.ndarray, k: int) -> float:
    if len(scores) < k:
        return -np.inf
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def cut(data: IndexData, docs: np.ndarray, scores: np.ndarray, k: int) -> Sparse:
    """The best ``k`` of (docs, scores) with a score, in doc order; ties at the cut by time
    (newest first), so which tied memories make it never depends on doc numbers."""
    keep = scores > 0
    docs, scores = docs[keep], scores[keep]
    if len(docs) <= k:
        return docs, scores
    cutoff = kth(scores, k)
    above = scores > cutoff
    tied = np.flatnonzero(scores == cutoff)
    need = k - int(np.count_nonzero(above))
    if len(tied) > need:
        created = data.catalog.created.view[docs[tied]]
        newest = np.partition(-created, need - 1)[need - 1]
        tied = tied[-created <= newest]  # everything as new as the need-th newest stays
    above[tied] = True
    return docs[above], scores[above]
