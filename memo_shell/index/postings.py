"""An incremental inverted index (key -> documents) with its forward twin (document -> keys).

Used twice: for BM25 terms and for knowledge-graph entities (memory -[mentions]-> entity is just
an inverted index whose keys are entities).

Layout, and why: a compact *base* segment in CSR form (three flat numpy arrays), which is what the
snapshot stores and loads without any per-key Python objects, plus a small *delta* of keys and
documents added since the last compaction, held in growable ``array.array`` buffers so an add costs
microseconds. Reads see base + delta; ``compact()`` folds the delta into a new base with one
stable sort (done when persisting). Removal only touches document frequencies; stale postings of a
removed document are masked by the caller's ``alive`` column and dropped at the next compaction.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from memo_shell.index.files import MappedFile

_EMPTY_I = np.zeros(0, dtype=np.int32)
_EMPTY_F = np.zeros(0, dtype=np.float32)

#: Up to this many memories' forward lists are read from a mapped snapshot with ``pread`` (see
#: ``files.MappedFile``); more are gathered through the mapping, vectorised.
_PREAD_DOCS = 512
#: ... and only from forward lists this large (the graph's are a few megabytes at a million
#: memories: mapped, they are soon all resident, and a read costs less than a system call).
_PREAD_ABOVE = 32 << 20

#: Each base segment gets a number no other segment has had, so caches of figures derived from
#: one (``recall.pool``) can tell it was replaced by a compaction or a load.
_SEGMENTS = itertools.count(1)


class Growable:
    """A 1-D numpy column that grows by doubling, so appending is amortised O(1)."""

    __slots__ = ("_data", "size")

    def __init__(self, dtype: np.dtype | type, data: np.ndarray | None = None) -> None:
        if data is None:
            self._data = np.zeros(64, dtype=dtype)
            self.size = 0
        else:
            self._data = np.array(data, dtype=dtype)
            self.size = len(data)

    def ensure(self, size: int) -> None:
        if size > len(self._data):
            new = np.zeros(max(size, 2 * len(self._data)), dtype=self._data.dtype)
            new[: self.size] = self._data[: self.size]
            self._data = new
        if size > self.size:
            self.size = size

    def extend(self, values: Sequence[Any] | np.ndarray) -> None:
        start = self.size
        self.ensure(start + len(values))
        self._data[start : self.size] = values

    def append(self, value: object) -> None:
        self.ensure(self.size + 1)
        self._data[self.size - 1] = value

    @property
    def view(self) -> np.ndarray:
        """The live values (a view: valid until the next growth)."""
        return self._data[: self.size]

    def __getitem__(self, i: int) -> Any:  # a numpy scalar: int(), float() and comparisons work
        return self._data[i]

    def __setitem__(self, i: int, value: object) -> None:
        self._data[i] = value

    def __len__(self) -> int:
        return self.size


class InvertedIndex:
    """Postings (key -> docs, weights) and forward lists (doc -> keys, weights), incremental."""

    def __init__(self) -> None:
        # base segment, CSR by key
        self._b_ptr = np.zeros(1, dtype=np.int64)
        self._b_docs = _EMPTY_I
        self._b_w = _EMPTY_F
        # base forward segment, CSR by doc
        self._f_ptr = np.zeros(1, dtype=np.int64)
        self._f_keys = _EMPTY_I
        self._f_w = _EMPTY_F
        # delta: postings appended to keys, forward lists of docs >= len(_f_ptr) - 1
        self._d_post: dict[int, tuple[array, array]] = {}
        self._d_fwd: dict[int, tuple[array, array]] = {}
        self._d_count = 0
        self.df = Growable(np.int32)
        self._removed: set[int] = set()
        self._stale = False  # forward-only adds not yet inverted (see ``add``)
        self.segment = next(_SEGMENTS)
        self._max_w: np.ndarray | None = None  # per key: largest base weight (lazy)
        #: the mapped snapshot the base forward lists are in, read by ``forward`` with pread
        self._source: MappedFile | None = None

    # ------------------------------------------------------------------ writing

    def add(self, doc: int, items: Mapping[int, float], *, forward_only: bool = False) -> None:
        """Index document ``doc`` (a new number, never reused) with ``{key: weight}``.

        ``forward_only`` (bulk builds): record only the forward list; postings and document
        frequencies are then derived all at once by ``compact``, which must run before any read.
        """
        keys = array("i", items.keys())
        weights = array("f", items.values())
        self._d_fwd[doc] = (keys, weights)
        if not keys or forward_only:
            self._stale = self._stale or forward_only
            return
        self.df.ensure(max(keys) + 1)
        post = self._d_post
        for key, weight in items.items():
            entry = post.get(key)
            if entry is None:
                entry = post[key] = (array("i"), array("f"))
            entry[0].append(doc)
            entry[1].append(weight)
        self.df.view[np.array(keys, dtype=np.int32)] += 1  # keys are distinct
        self._d_count += len(keys)

    def add_batch(
        self,
        docs: Sequence[int],
        lengths: Sequence[int],
        keys: np.ndarray,
        weights: np.ndarray,
        *,
        forward_only: bool = False,
    ) -> None:
        """``add`` of many new documents at once: ``docs[i]`` has the next ``lengths[i]`` of
        ``keys`` and ``weights`` (distinct keys per document), as ``add`` would store them.

        Postings are appended once per distinct key of the batch rather than once per
        (key, document): a stable sort by key keeps each key's documents in ascending order.
        """
        keys = np.asarray(keys, dtype=np.int32)
        weights = np.asarray(weights, dtype=np.float32)
        all_keys = array("i", keys.tobytes())
        all_w = array("f", weights.tobytes())
        at = 0
        fwd = self._d_fwd
        for doc, n in zip(docs, lengths, strict=True):
            fwd[doc] = (all_keys[at : at + n], all_w[at : at + n])
            at += n
            if not n:
                self._stale = True  # a wordless document: compaction gives it its empty row
        if forward_only:
            self._stale = self._stale or bool(len(docs))
            return
        if not len(keys):
            return
        owners = np.repeat(np.asarray(docs, dtype=np.int32), np.asarray(lengths, dtype=np.int64))
        order = np.argsort(keys, kind="stable")
        s_keys, s_docs, s_w = keys[order], owners[order], weights[order]
        starts = np.flatnonzero(np.r_[True, s_keys[1:] != s_keys[:-1]])
        ends = np.r_[starts[1:], len(s_keys)]
        post = self._d_post
        for key, lo, hi in zip(
            s_keys[starts].tolist(), starts.tolist(), ends.tolist(), strict=True
        ):
            entry = post.get(key)
            if entry is None:
                entry = post[key] = (array("i"), array("f"))
            entry[0].frombytes(s_docs[lo:hi].tobytes())
            entry[1].frombytes(s_w[lo:hi].tobytes())
        self.df.ensure(int(s_keys[-1]) + 1)
        self.df.view[: int(s_keys[-1]) + 1] += np.bincount(keys).astype(np.int32)
        self._d_count += len(keys)

    def remove(self, doc: int) -> None:
        """Forget a document's contribution to document frequencies (its postings are masked)."""
        if doc in self._removed:
            return
        keys, _weights = self.forward(doc)
        if len(keys):
            np.subtract.at(self.df.view, keys, 1)
        self._removed.add(doc)

    # ------------------------------------------------------------------ reading

    def postings(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """(doc numbers, weights) of every document ever indexed under ``key``."""
        docs: np.ndarray = _EMPTY_I
        weights: np.ndarray = _EMPTY_F
        if key + 1 < len(self._b_ptr):
            lo, hi = self._b_ptr[key], self._b_ptr[key + 1]
            docs, weights = self._b_docs[lo:hi], self._b_w[lo:hi]
        delta = self._d_post.get(key)
        if delta is not None:
            d_docs = np.frombuffer(delta[0], dtype=np.int32).copy()
            d_w = np.frombuffer(delta[1], dtype=np.float32).copy()
            if len(docs):
                return np.concatenate([docs, d_docs]), np.concatenate([weights, d_w])
            return d_docs, d_w
        return docs, weights

    def base_postings(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """(docs, weights) of ``key`` in the base segment only (views, sorted by doc)."""
        if key + 1 < len(self._b_ptr):
            lo, hi = self._b_ptr[key], self._b_ptr[key + 1]
            return self._b_docs[lo:hi], self._b_w[lo:hi]
        return _EMPTY_I, _EMPTY_F

    def delta_postings(self, key: int) -> tuple[np.ndarray, np.ndarray]:
        """(docs, weights) of ``key`` added since the last compaction (docs above the base's).

        Copies: a view would pin the growable buffers, and the next add could not extend them.
        """
        delta = self._d_post.get(key)
        if delta is None:
            return _EMPTY_I, _EMPTY_F
        docs = np.frombuffer(delta[0], dtype=np.int32).copy()
        return docs, np.frombuffer(delta[1], dtype=np.float32).copy()

    def length(self, key: int) -> int:
        """How many postings ``key`` has (forgotten documents' included until compaction)."""
        n = int(self._b_ptr[key + 1] - self._b_ptr[key]) if key + 1 < len(self._b_ptr) else 0
        delta = self._d_post.get(key)
        return n + (len(delta[0]) if delta is not None else 0)

    def max_weight(self, key: int) -> float:
        """The largest weight ``key`` has in any document (an upper bound for pruning).

        The base segment's maximum is computed per key on first use after a load or
        compaction (one pass over that key's postings) and kept; the delta's on the fly.
        """
        if self._max_w is None:
            self._max_w = np.full(len(self._b_ptr) - 1, -1.0, dtype=np.float32)
        top_w = 0.0
        if key < len(self._max_w):
            if self._max_w[key] < 0:
                lo, hi = self._b_ptr[key], self._b_ptr[key + 1]
                self._max_w[key] = self._b_w[lo:hi].max() if hi > lo else 0.0
            top_w = float(self._max_w[key])
        delta = self._d_post.get(key)
        if delta is not None and len(delta[1]):
            top_w = max(top_w, max(delta[1]))
        return top_w

    def weights_at(self, key: int, docs: np.ndarray) -> np.ndarray:
        """``key``'s weight in each of ``docs`` (sorted doc numbers), 0 where it has none."""
        out = np.zeros(len(docs), dtype=np.float32)
        for p_docs, p_w in (self.base_postings(key), self.delta_postings(key)):
            if not len(p_docs) or not len(docs):
                continue
            at = np.searchsorted(p_docs, docs)
            at[at == len(p_docs)] = 0
            hit = p_docs[at] == docs
            out[hit] = p_w[at[hit]]
        return out

    @property
    def removals(self) -> int:
        """Documents removed since the last compaction (their postings are still listed)."""
        return len(self._removed)

    def count(self, key: int) -> int:
        """Live document frequency of ``key``."""
        return int(self.df.view[key]) if 0 <= key < len(self.df) else 0

    def forward(self, doc: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, weights) of one document."""
        delta = self._d_fwd.get(doc)
        if delta is not None:
            return (
                np.frombuffer(delta[0], dtype=np.int32).copy(),
                np.frombuffer(delta[1], dtype=np.float32).copy(),
            )
        if doc + 1 < len(self._f_ptr):
            lo, hi = int(self._f_ptr[doc]), int(self._f_ptr[doc + 1])
            if self._source is not None:  # a few bytes: not worth mapping pages for
                return self._source.slice(self._f_keys, lo, hi), self._source.slice(
                    self._f_w, lo, hi
                )
            return self._f_keys[lo:hi], self._f_w[lo:hi]
        return _EMPTY_I, _EMPTY_F

    def forward_many(self, docs: Iterable[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Concatenated forward lists of many docs: (doc of each entry, keys, weights)."""
        owners, keys, weights = [], [], []
        for doc in docs:
            k, w = self.forward(int(doc))
            if len(k):
                owners.append(np.full(len(k), doc, dtype=np.int32))
                keys.append(k)
                weights.append(w)
        if not keys:
            return _EMPTY_I, _EMPTY_I, _EMPTY_F
        return np.concatenate(owners), np.concatenate(keys), np.concatenate(weights)

    def forward_rows(self, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The forward lists of ``docs``, concatenated: (index into ``docs`` of each entry, its
        key, its weight). Vectorised over the base segment; only docs added since the last
        compaction are read one by one."""
        docs = np.asarray(docs, dtype=np.int64)
        base_docs = len(self._f_ptr) - 1
        in_base = docs < base_docs  # docs added since the compaction are numbered after it
        if self._source is not None and len(docs) <= _PREAD_DOCS:
            in_base[:] = False  # a few memories of a mapped snapshot: read, not mapped
        at = np.flatnonzero(in_base)
        lo = self._f_ptr[docs[at]]
        lens = self._f_ptr[docs[at] + 1] - lo
        idx = _ranges(lo, lens)
        rows = [np.repeat(at, lens)]
        keys = [self._f_keys[idx]]
        weights = [self._f_w[idx]]
        for i in np.flatnonzero(~in_base).tolist():
            k, w = self.forward(int(docs[i]))
            rows.append(np.full(len(k), i, dtype=np.int64))
            keys.append(k)
            weights.append(w)
        return np.concatenate(rows), np.concatenate(keys), np.concatenate(weights)

    @property
    def entries(self) -> int:
        return int(self._b_ptr[-1]) + self._d_count

    # ------------------------------------------------------------------ compaction and snapshot

    def compact(self, n_docs: int, n_keys: int, alive: np.ndarray) -> None:
        """Fold the delta into the base and drop postings of removed documents."""
        if (
            not self._d_post
            and not self._removed
            and not self._stale
            and len(self._b_ptr) - 1 >= n_keys
            and len(self._f_ptr) - 1 >= n_docs  # a wordless new memory adds a row, no posting
        ):
            return
        # forward: one CSR over all doc numbers
        f_counts = np.zeros(n_docs, dtype=np.int64)
        base_docs = len(self._f_ptr) - 1
        f_counts[:base_docs] = np.diff(self._f_ptr)
        for doc, (keys, _w) in self._d_fwd.items():
            f_counts[doc] = len(keys)
        dead = ~alive[:n_docs]
        f_counts[dead] = 0
        f_ptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(f_counts, out=f_ptr[1:])
        f_keys = np.empty(int(f_ptr[-1]), dtype=np.int32)
        f_w = np.empty(int(f_ptr[-1]), dtype=np.float32)
        live_base = np.flatnonzero(alive[:base_docs])
        if len(live_base):
            # copy each live base doc's slice (vectorised through a repeat of its offsets)
            src_lo = self._f_ptr[live_base]
            lens = np.diff(self._f_ptr)[live_base]
            idx = _ranges(src_lo, lens)
            dst = _ranges(f_ptr[live_base], lens)
            f_keys[dst] = self._f_keys[idx]
            f_w[dst] = self._f_w[idx]
        for doc, (keys, weights) in self._d_fwd.items():
            if alive[doc]:
                lo = f_ptr[doc]
                f_keys[lo : lo + len(keys)] = np.frombuffer(keys, dtype=np.int32)
                f_w[lo : lo + len(keys)] = np.frombuffer(weights, dtype=np.float32)
        # postings: invert the forward CSR (a stable sort by key keeps doc order ascending)
        owners = np.repeat(np.arange(n_docs, dtype=np.int32), np.diff(f_ptr))
        order = np.argsort(f_keys, kind="stable")
        b_docs = owners[order]
        b_w = f_w[order]
        counts = (
            np.bincount(f_keys, minlength=n_keys)[:n_keys]
            if len(f_keys)
            else np.zeros(n_keys, dtype=np.int64)
        )
        b_ptr = np.zeros(n_keys + 1, dtype=np.int64)
        np.cumsum(counts, out=b_ptr[1:])
        self._b_ptr, self._b_docs, self._b_w = b_ptr, b_docs.astype(np.int32), b_w
        self._f_ptr, self._f_keys, self._f_w = f_ptr, f_keys, f_w
        self._source = None
        self._d_post.clear()
        self._d_fwd.clear()
        self._d_count = 0
        self._removed.clear()
        self._stale = False
        self.segment = next(_SEGMENTS)
        self._max_w = None
        df = np.zeros(max(n_keys, len(self.df)), dtype=np.int32)
        df[: len(counts)] = counts
        self.df = Growable(np.int32, df)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The base segment as named arrays (call ``compact`` first)."""
        return {
            f"{prefix}.b_ptr": self._b_ptr,
            f"{prefix}.b_docs": self._b_docs,
            f"{prefix}.b_w": self._b_w,
            f"{prefix}.f_ptr": self._f_ptr,
            f"{prefix}.f_keys": self._f_keys,
            f"{prefix}.f_w": self._f_w,
        }

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], prefix: str, n_keys: int
    ) -> InvertedIndex:
        """Adopt a compacted snapshot's arrays as the base segment (no per-key objects made)."""
        inv = cls()
        inv._b_ptr = np.asarray(arrays[f"{prefix}.b_ptr"], dtype=np.int64)
        inv._b_docs = np.asarray(arrays[f"{prefix}.b_docs"], dtype=np.int32)
        inv._b_w = np.asarray(arrays[f"{prefix}.b_w"], dtype=np.float32)
        inv._f_ptr = np.asarray(arrays[f"{prefix}.f_ptr"], dtype=np.int64)
        inv._f_keys = np.asarray(arrays[f"{prefix}.f_keys"], dtype=np.int32)
        inv._f_w = np.asarray(arrays[f"{prefix}.f_w"], dtype=np.float32)
        if inv._f_keys.nbytes >= _PREAD_ABOVE:  # a smaller one ends up resident anyway
            inv._source = getattr(arrays, "source", None)
        if len(inv._b_ptr) - 1 != n_keys or inv._b_ptr[-1] != len(inv._b_docs):
            raise ValueError("postings do not match the vocabulary")
        if inv._f_ptr[-1] != len(inv._f_keys) or len(inv._f_keys) != len(inv._b_docs):
            raise ValueError("forward lists do not match the postings")
        inv.df = Growable(np.int32, np.diff(inv._b_ptr).astype(np.int32))
        return inv


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + offsets
