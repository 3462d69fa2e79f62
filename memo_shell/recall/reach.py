"""What the candidate pool reaches beyond the lexical matches (``recall.pool``, at scale).

The lexical pool holds the memories that match the question best; the other signals lift
memories that match it less. These find, without a pass over the store, the ones they lift the
most: memories inside a time span the question names (the time signal), the memories of the
best sessions (the session signal), and the neighbours of the best hits in their conversation
(the context signal, which is also evaluated here, at the candidates only).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from memo_shell import temporal
from memo_shell.index.data import IndexData
from memo_shell.recall import signals
from memo_shell.recall.options import RecallOptions
from memo_shell.recall.pool import Scorer, cache_of
from memo_shell.recall.sparse import Sparse

#: How many of the best sessions' memories join the candidates, and how far each session's
#: list is walked (sessions of thousands of memories, a long imported chat, are cut there).
SESSIONS = 32
WALK = 256
#: The context signal's reach: the neighbours of this many of the best lexical hits join.
NEIGHBOURS_OF = 100


def _by_time(data: IndexData) -> tuple[np.ndarray, np.ndarray, int]:
    """Doc numbers sorted by creation time (times never change), for the rows known when it
    was built, and how many rows that was; rows added since are scanned directly."""
    cache = cache_of(data)
    created = data.catalog.created.view
    rows = len(created)
    if cache.by_time is None or rows > 2 * len(cache.by_time[1]) + 1024:
        order = np.argsort(created, kind="stable")
        cache.by_time = (created[order], order)
    times, order = cache.by_time
    return times, order, len(order)


def _spans(data: IndexData, window: temporal.Window, first: float, last: float) -> list:
    """[start, end) spans in epoch seconds for a window (a month alone: that month every year)."""
    if not window.month:
        return [(window.start, window.end)]
    spans = []
    for year in range(
        datetime.fromtimestamp(first, UTC).year, datetime.fromtimestamp(last, UTC).year + 1
    ):
        start = datetime(year, window.month, 1, tzinfo=UTC)
        end = datetime(year + window.month // 12, window.month % 12 + 1, 1, tzinfo=UTC)
        spans.append((start.timestamp(), end.timestamp()))
    return spans


def window_docs(data: IndexData, query: str, now: datetime | None) -> np.ndarray:
    """Live memories created inside a span the query names (sorted; empty if it names none).

    The time signal lifts them by up to 0.7, more than any other, so at scale they join the
    candidates (their lexical best, see ``recall._search``) rather than waiting to be reached
    lexically. Found by binary search on the memories sorted by time, not by a scan.
    """
    tq = temporal.parse(query, now)
    if not tq.windows or data.catalog.rows == 0:
        return np.zeros(0, dtype=np.int64)
    times, order, known = _by_time(data)
    created = data.catalog.created.view
    recent = np.arange(known, len(created))
    parts = []
    first = float(min(times[0] if len(times) else np.inf, created[known:].min(initial=np.inf)))
    last = float(max(times[-1] if len(times) else -np.inf, created[known:].max(initial=-np.inf)))
    for window in tq.windows:
        for start, end in _spans(data, window, first, last):
            lo, hi = np.searchsorted(times, [start, end])
            parts.append(order[lo:hi])
            when = created[known:]
            parts.append(recent[(when >= start) & (when < end)])
    docs = np.unique(np.concatenate(parts).astype(np.int64)) if parts else np.zeros(0, np.int64)
    return docs[data.catalog.alive.view[docs]]


def session_docs(data: IndexData, per_session: np.ndarray, sessions: int) -> np.ndarray:
    """Live memories of the ``sessions`` best sessions by session score (sorted).

    The session signal lifts every memory of a relevant session (up to 0.5, half the best
    lexical hit), so a memory of the best session that matches one common word of the question
    can outrank a better lexical match elsewhere: these join the candidates. Walked from each
    session's newest memory along the catalog's per-session list (at most ``WALK`` steps).
    """
    live = np.flatnonzero(per_session > 0)
    if not len(live) or sessions <= 0:
        return np.zeros(0, dtype=np.int64)
    if len(live) > sessions:
        live = live[np.argpartition(-per_session[live], sessions - 1)[:sessions]]
    tail = data.catalog.session_tail
    frontier = np.array([tail.get(int(s), -1) for s in live.tolist()], dtype=np.int64)
    frontier = frontier[frontier >= 0]
    found = [frontier]
    prev = data.catalog.prev.view
    for _ in range(WALK):
        frontier = prev[frontier]
        frontier = frontier[frontier >= 0].astype(np.int64)
        if not len(frontier):
            break
        found.append(frontier)
    return np.unique(np.concatenate(found))


def neighbours(data: IndexData, hits: Sparse, count: int) -> np.ndarray:
    """The memories right before and the two right after each of the ``count`` best ``hits``
    (sorted): the ones the context signal lifts from them."""
    if count <= 0 or not len(hits[0]):
        return np.zeros(0, dtype=np.int64)
    cat = data.catalog
    docs = hits[0][signals.top_n(hits[1], count, cat.created.view[hits[0]])]
    after = cat.next.view[docs]
    after2 = cat.next.view[after[after >= 0]]
    found = np.concatenate([cat.prev.view[docs], after, after2]).astype(np.int64)
    return np.unique(found[found >= 0])


def context(
    data: IndexData, docs: np.ndarray, pointer: Scorer, o: RecallOptions
) -> tuple[Sparse, Sparse]:
    """``signals.context`` evaluated at ``docs`` only: what each gains from its neighbours'
    pointer scores (prev: the memories before it; next: the one after)."""
    cat = data.catalog
    before = cat.prev.view[docs]
    before2 = np.where(before >= 0, cat.prev.view[np.maximum(before, 0)], -1)
    after = cat.next.view[docs]
    need = np.unique(np.concatenate([before, before2, after]))
    need = need[need >= 0]
    top = max(pointer.best(), 0.0)
    value = pointer.at(need)
    if top > 0:  # at most 1 (the pool's best may be a little below the store's, see top())
        value = np.minimum(value / top, 1.0) if pointer.budget is not None else value / top

    def at(which: np.ndarray) -> np.ndarray:
        out = np.zeros(len(which))
        has = which >= 0
        out[has] = value[np.searchsorted(need, which[has])]
        return out

    gain_prev = o.w_prev * at(before)
    if o.w_prev2:
        gain_prev = gain_prev + o.w_prev2 * at(before2)
    gain_next = o.w_next * at(after) if o.w_next else np.zeros(len(docs))
    return (docs, gain_prev), (docs, gain_next)
