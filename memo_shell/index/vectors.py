"""Optional embedding vectors, one set per embedder id, so switching models never mixes spaces.

Vectors are an *addition* to lexical and graph recall, used only when the user configured a real
embedding model. They live in their own file per embedder (``index/vectors-<slug>``), keyed by
memory id rather than doc number, so a vector file can never be attached to the wrong memory even
if it is older or newer than the main snapshot. Rows are L2-normalised at insertion, so cosine
similarity is one matrix-vector product (about 7 ms for 100k x 384 float32 on a laptop core).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from memo_shell.index.postings import Growable


def file_name(embedder_id: str) -> str:
    """A safe, unique file name for an embedder id ("ollama:nomic-embed-text" -> ...)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", embedder_id)[:60].strip("-.") or "embedder"
    digest = hashlib.sha1(embedder_id.encode()).hexdigest()[:8]
    return f"vectors-{slug}-{digest}"


class VectorSet:
    """Unit vectors by doc row for one embedder; rows without a vector are all zero."""

    def __init__(self, embedder_id: str, dim: int = 0) -> None:
        self.embedder_id = embedder_id
        self.dim = dim
        self._data = np.zeros((64, max(dim, 1)), dtype=np.float32)
        self.has = Growable(np.bool_)

    def _grow(self, rows: int) -> None:
        if rows > len(self._data):
            new = np.zeros((max(rows, 2 * len(self._data)), self._data.shape[1]), np.float32)
            new[: len(self._data)] = self._data
            self._data = new
        self.has.ensure(rows)

    def put(self, docs: Sequence[int], vectors: Sequence[Sequence[float]]) -> None:
        """Store vectors for some rows (the first call fixes the dimension)."""
        if not docs:
            return
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or len(matrix) != len(docs):
            raise ValueError("the embedder returned a wrong number or shape of vectors")
        if self.dim == 0:
            self.dim = matrix.shape[1]
            self._data = np.zeros((len(self._data), self.dim), dtype=np.float32)
        if matrix.shape[1] != self.dim:
            raise ValueError(f"embedder returned {matrix.shape[1]} dimensions, expected {self.dim}")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.maximum(norms, 1e-12)
        self._grow(max(docs) + 1)
        index = np.asarray(docs, dtype=np.int64)
        self._data[index] = matrix
        self.has.view[index] = True

    def row(self, doc: int) -> list[float]:
        """The stored (unit) vector of one row."""
        return self._data[doc].tolist()

    def drop(self, doc: int) -> None:
        if doc < len(self.has):
            self.has[doc] = False
            self._data[doc] = 0.0

    def subset(self, rows: np.ndarray) -> VectorSet:
        """The vectors of these rows only, renumbered 0..len(rows)-1 (the index's vacuum)."""
        out = VectorSet(self.embedder_id, self.dim)
        self._grow(int(rows.max()) + 1 if len(rows) else 0)
        out._grow(len(rows))
        if len(rows):
            out._data[: len(rows)] = self._data[rows]
            out.has.view[:] = self.has.view[rows]
        return out

    def similarity(self, query: Sequence[float], rows: int) -> np.ndarray:
        """Cosine similarity of every row to ``query`` (0 for rows without a vector)."""
        out = np.zeros(rows, dtype=np.float32)
        q = np.asarray(query, dtype=np.float32)
        if self.dim == 0 or q.shape != (self.dim,):
            return out
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        n = min(rows, len(self.has))
        out[:n] = self._data[:n] @ q
        return out

    def missing(self, alive: np.ndarray) -> np.ndarray:
        """Live rows that have no vector yet."""
        self._grow(len(alive))
        return np.flatnonzero(alive & ~self.has.view[: len(alive)])

    # ------------------------------------------------------------------ persistence

    def to_parts(self, ids: Sequence[str | None]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        rows = np.flatnonzero(self.has.view[: len(ids)])
        header = {
            "embedder": self.embedder_id,
            "dim": self.dim,
            "ids": [ids[r] for r in rows.tolist()],
        }
        return header, {"vectors": self._data[rows].copy()}

    @classmethod
    def from_parts(
        cls, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray], doc_of: Mapping[str, int]
    ) -> VectorSet:
        vs = cls(str(header["embedder"]), int(header["dim"]))
        matrix = np.asarray(arrays["vectors"], dtype=np.float32).reshape(-1, max(vs.dim, 1))
        docs, keep = [], []
        for i, memory_id in enumerate(header["ids"]):
            doc = doc_of.get(memory_id)
            if doc is not None:
                docs.append(doc)
                keep.append(i)
        if docs:
            vs._grow(max(docs) + 1)
            vs._data[np.asarray(docs)] = matrix[np.asarray(keep)]
            vs.has.view[np.asarray(docs)] = True
        return vs
