"""Sparse score vectors: (sorted distinct doc numbers, one value each).

Why: a recall touches the memories that match, not the store. Every signal is a sparse vector
over the docs it reaches, and the final blend is computed on the union of the candidates only,
so a query costs in proportion to its postings, not to the number of memories.

Sums are taken in the order the parts are given (a ``bincount`` over their concatenation), which
is the order a dense ``scores[docs] += part`` loop would add them in, so the floating-point
result is the same as a dense computation's, bit for bit, and so is every tie.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_EMPTY_DOCS = np.zeros(0, dtype=np.int64)
_EMPTY_VALUES = np.zeros(0, dtype=np.float64)

Sparse = tuple[np.ndarray, np.ndarray]


def empty() -> Sparse:
    return _EMPTY_DOCS, _EMPTY_VALUES


def unique_inverse(docs: np.ndarray, owner: Any, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(docs, return_inverse=True)`` for doc numbers below ``rows``, fast.

    When the docs are a sizable share of the store (a common word), a bitmap of the store is
    cheaper than any sort and still costs within a small factor of the docs themselves;
    otherwise a stable sort, which merges the sorted runs postings come in. Either way the
    inverse comes from ``owner``'s doc -> position table (see ``Positions``), not an argsort.
    """
    docs = np.asarray(docs, dtype=np.int64)
    if 8 * len(docs) >= rows:
        seen = np.zeros(rows, dtype=bool)
        seen[docs] = True
        unique = np.flatnonzero(seen)
    else:
        ordered = np.sort(docs, kind="stable")
        first = np.empty(len(ordered), dtype=bool)
        first[:1] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        unique = ordered[first]
    table = _table(owner, rows)
    table[unique] = np.arange(len(unique), dtype=np.int32)
    slot = table[docs].astype(np.intp)
    table[unique] = -1
    return unique, slot


def _table(owner: Any, rows: int) -> np.ndarray:
    """``owner``'s doc -> position table: all -1 between uses, grown with the store."""
    table: np.ndarray | None = owner.__dict__.get("_positions")
    if table is None or len(table) < rows:
        table = np.full(max(rows, 2 * len(table) if table is not None else 0), -1, np.int32)
        owner.__dict__["_positions"] = table
    return table


def combine(docs: list[np.ndarray], values: list[np.ndarray], owner: Any, rows: int) -> Sparse:
    """Sum of sparse parts (docs may repeat across parts), summed in the order given."""
    if not docs:
        return empty()
    if len(docs) == 1 and np.all(docs[0][1:] > docs[0][:-1]):  # already sorted and distinct
        return np.asarray(docs[0], dtype=np.int64), np.asarray(values[0], dtype=np.float64)
    unique, slot = unique_inverse(np.concatenate(docs), owner, rows)
    return unique, np.bincount(slot, weights=np.concatenate(values), minlength=len(unique))


def nonzero(x: Sparse) -> Sparse:
    docs, values = x
    keep = values != 0
    return (docs, values) if keep.all() else (docs[keep], values[keep])


def scaled(x: Sparse) -> Sparse:
    """Scale to a maximum of 1 (as ``signals.scaled`` does on a dense vector)."""
    docs, values = x
    top = float(values.max()) if len(values) else 0.0
    top = max(top, 0.0)  # a dense vector's maximum counts its zeros too
    return (docs, values / top) if top > 0 else (docs, values)


class Positions:
    """Where each doc sits among the candidates ``docs`` (sorted), for gathering sparse signals.

    A doc -> position table the size of the store, kept between searches and reset after each
    (only the candidates' entries are touched, so a search costs in proportion to them). Only
    one search may use a store's table at a time (the index lock guarantees it).
    """

    def __init__(self, owner: Any, rows: int, docs: np.ndarray) -> None:
        table = self.table = _table(owner, rows)
        self.docs = docs
        table[docs] = np.arange(len(docs), dtype=np.int32)

    def at(self, x: Sparse) -> np.ndarray:
        """Values of ``x`` at the candidates, zero where it has none."""
        docs, values = x
        out = np.zeros(len(self.docs), dtype=np.float64)
        if len(docs):
            where = self.table[docs]
            hit = where >= 0
            out[where[hit]] = values[hit]
        return out

    def of(self, docs: np.ndarray) -> np.ndarray:
        """Positions of ``docs`` among the candidates (-1: not a candidate)."""
        return self.table[docs]

    def close(self) -> None:
        self.table[self.docs] = -1

    def __enter__(self) -> Positions:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def union(owner: Any, rows: int, *docs: np.ndarray) -> np.ndarray:
    """Sorted distinct docs of several doc arrays."""
    parts = [np.asarray(d, dtype=np.int64) for d in docs if len(d)]
    if not parts:
        return _EMPTY_DOCS
    return unique_inverse(np.concatenate(parts), owner, rows)[0]
