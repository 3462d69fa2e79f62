"""All derived structures of the index, in memory: catalog, lexical postings, entity graph.

This module knows how to turn one ``Memory`` into rows, postings and graph edges, how to undo that,
and how to save/load the lot as one snapshot. It has no threads and no files of its own: the
``Index`` class wraps it with locking, persistence and catch-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memo_shell.index import vacuum as _vacuum
from memo_shell.index.analysis import Analysis, analyse
from memo_shell.index.catalog import Catalog
from memo_shell.index.entities import EntityTable
from memo_shell.index.postings import Growable, InvertedIndex
from memo_shell.index.vectors import VectorSet
from memo_shell.index.vocab import Vocab
from memo_shell.records import Memory


class IndexData:
    """The in-memory index: every structure keyed by doc number (a catalog row).

    Adding memories in any order, forgetting some, and rebuilding from the survivors give the
    same index up to doc numbering: analysis and extraction are pure functions of one memory,
    and every corpus-wide figure (df, lengths, entity evidence) is a count over live memories.
    """

    def __init__(self) -> None:
        self.catalog = Catalog()
        self.terms = Vocab()
        self.lexical = InvertedIndex()
        self.doclen = Growable(np.float32)
        self.total_len = 0.0
        self.entities = EntityTable()
        self.graph = InvertedIndex()
        #: per doc: the entity number of its speaker ("Name: ..." transcripts), -1 if none
        self.speaker = Growable(np.int32)
        #: optional embedding vectors (one embedder's space), saved in their own file
        self.vectors: VectorSet | None = None
        #: per session: total length of its live memories (session-level BM25)
        self.session_len = Growable(np.float64)
        #: bulk build (``reindex``): only forward lists are kept per add, and ``end_bulk``
        #: derives postings and counts in one vectorised pass (about a third faster)
        self.bulk = False

    def begin_bulk(self) -> None:
        """Start a build nobody searches until ``end_bulk`` (a fresh load or reindex)."""
        self.bulk = True

    def end_bulk(self) -> None:
        self.bulk = False
        self.compact()
        codes = self.graph.to_arrays("g")
        self.entities.recount(
            np.asarray(codes["g.f_keys"], dtype=np.int64),
            np.asarray(codes["g.f_w"], dtype=np.float64),
        )

    # ------------------------------------------------------------------ writing

    def add(self, memory: Memory) -> int | None:
        """Index one memory; returns its doc number, or None if it was already indexed."""
        if memory.id in self.catalog.doc_of:
            self.update(memory)
            return None
        return self.apply(analyse(memory))

    def apply(self, analysis: Analysis) -> int:
        """Index a memory not indexed yet, from its analysis; returns its doc number.

        Interns its words and entities and appends its rows: the part of indexing that needs
        the corpus-wide tables (the rest is ``analysis.analyse``, a pure function).
        """
        a = analysis
        doc = self.catalog.add_row(a.memory_id, a.created, a.session, a.pinned, a.tags, a.preview)
        numbers = self.terms.add_many(a.terms)
        # a memory without words (or below, without names) goes in as a bulk add would: that
        # marks the postings for a full compaction, which gives it its (empty) forward list; a
        # live add of nothing left the next snapshot a row short, refused at load as corrupt
        self.lexical.add(
            doc,
            dict(zip(numbers, map(float, a.counts), strict=True)),
            forward_only=self.bulk or not a.terms,
        )
        length = a.length
        self.doclen.append(length)
        self.total_len += length
        number = int(self.catalog.session[doc])
        self.session_len.ensure(number + 1)
        self.session_len[number] += length
        entities = self.entities.intern_many(a.entities, a.names)
        mentions = dict(zip(entities, a.codes, strict=True))
        self.speaker.append(entities[a.speaker] if a.speaker >= 0 else -1)
        self.graph.add(doc, mentions, forward_only=self.bulk or not mentions)
        if self.bulk:
            return doc
        self.entities.count_mentions(mentions, 1)
        return doc

    def apply_many(self, analyses: Sequence[Analysis]) -> list[int]:
        """``apply`` of many memories at once (an import's batch, a build's chunk): the same
        index as applying them one by one, with the tables' work done once per batch."""
        if not analyses:
            return []
        catalog = self.catalog
        docs = [
            catalog.add_row(a.memory_id, a.created, a.session, a.pinned, a.tags, a.preview)
            for a in analyses
        ]
        terms = self.terms.add_many([t for a in analyses for t in a.terms])
        counts = np.fromiter(
            (c for a in analyses for c in a.counts), dtype=np.float64, count=len(terms)
        )
        self.lexical.add_batch(
            docs, [len(a.terms) for a in analyses], np.array(terms, dtype=np.int32), counts,
            forward_only=self.bulk,
        )  # fmt: skip
        lengths = [a.length for a in analyses]
        self.doclen.extend(lengths)
        sessions = catalog.session.view[docs[0] : docs[-1] + 1]
        self.session_len.ensure(int(sessions.max()) + 1)
        session_len = self.session_len
        for number, length in zip(sessions.tolist(), lengths, strict=True):
            self.total_len += length  # in order: a float sum, as one by one
            session_len[number] += length
        entities = self.entities.intern_many(
            [k for a in analyses for k in a.entities], [n for a in analyses for n in a.names]
        )
        codes = [c for a in analyses for c in a.codes]
        speakers = []
        at = 0
        for a in analyses:
            speakers.append(entities[at + a.speaker] if a.speaker >= 0 else -1)
            at += len(a.entities)
        self.speaker.extend(speakers)
        self.graph.add_batch(
            docs, [len(a.entities) for a in analyses], np.array(entities, dtype=np.int32),
            np.array(codes, dtype=np.float64), forward_only=self.bulk,
        )  # fmt: skip
        if not self.bulk and entities:
            self.entities.count(
                np.array(entities, dtype=np.int64), np.array(codes, dtype=np.float64), 1
            )
        return docs

    def update(self, memory: Memory) -> int | None:
        """Pin or tags changed. Tags are searchable, so new tags re-index the memory."""
        doc = self.catalog.doc_of.get(memory.id)
        if doc is None:
            return None
        if tuple(memory.tags) == self.catalog.tags.get(doc, ()):
            return self.catalog.update(memory)
        vector = None
        if self.vectors is not None and doc < len(self.vectors.has) and self.vectors.has[doc]:
            vector = self.vectors.row(doc)
        self.remove(memory.id)
        new = self.add(memory)
        if vector is not None and new is not None and self.vectors is not None:
            self.vectors.put([new], [vector])
        return new

    def remove(self, memory_id: str) -> int | None:
        doc = self.catalog.remove(memory_id)
        if doc is None:
            return None
        self.lexical.remove(doc)
        numbers, codes = self.graph.forward(doc)
        self.entities.count(numbers.astype(np.int64), codes.astype(np.float64), -1)
        self.graph.remove(doc)
        if self.vectors is not None:
            self.vectors.drop(doc)
        self.total_len -= float(self.doclen[doc])
        self.session_len[int(self.catalog.session[doc])] -= float(self.doclen[doc])
        self.doclen[doc] = 0.0
        return doc

    # ------------------------------------------------------------------ reading

    @property
    def n_docs(self) -> int:
        return len(self.catalog)

    def session_lengths(self) -> np.ndarray:
        """Total term count of each session's live memories, indexed by session number."""
        self.session_len.ensure(len(self.catalog.session_names))
        return self.session_len.view

    @property
    def avgdl(self) -> float:
        return self.total_len / self.n_docs if self.n_docs else 1.0

    # ------------------------------------------------------------------ snapshot

    def compact(self) -> None:
        rows = self.catalog.rows
        alive = self.catalog.alive.view
        self.lexical.compact(rows, len(self.terms), alive)
        self.graph.compact(rows, len(self.entities), alive)

    def vacuum(self) -> bool:
        """Drop what only forgotten memories used: rows, words, entity and session names.

        Done before every snapshot, so a forgotten memory leaves nothing behind on disk (see
        ``memo_shell.index.vacuum``). Renumbers docs: callers hold the index lock and keep ids,
        never doc numbers, across calls. Returns whether anything was dropped.
        """
        self.compact()
        # the test on the live columns: building the parts (catalog strings and all) only to
        # find nothing to drop cost a second full pass at every save
        outline = {
            "terms": {"keys": self.terms.keys},
            "entities": {"keys": self.entities.keys},
            "catalog": {"sessions": self.catalog.session_names},
        }
        columns = {
            "cat.alive": self.catalog.alive.view,
            "cat.session": self.catalog.session.view,
            "lex.b_ptr": self.lexical.to_arrays("lex")["lex.b_ptr"],
            "graph.b_ptr": self.graph.to_arrays("graph")["graph.b_ptr"],
        }
        if not _vacuum.needed(outline, columns):
            return False
        header, arrays = self.to_parts()
        (header, arrays), kept = _vacuum.vacuum(header, arrays)
        fresh = IndexData.from_parts(header, arrays)
        if self.vectors is not None:
            fresh.vectors = self.vectors.subset(kept)
        self.__dict__.update(fresh.__dict__)
        return True

    def to_parts(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(header, arrays) for the snapshot; compacts first so only base segments are saved."""
        self.compact()
        strings, arrays = self.catalog.to_parts()
        header: dict[str, Any] = {
            "catalog": strings,
            "terms": self.terms.to_parts(),
            "entities": self.entities.to_parts(),
            "total_len": self.total_len,
        }
        arrays = dict(arrays)
        arrays["doclen"] = self.doclen.view.copy()
        arrays["speaker"] = self.speaker.view.copy()
        arrays["session_len"] = self.session_lengths().copy()
        arrays.update(self.lexical.to_arrays("lex"))
        arrays.update(self.graph.to_arrays("graph"))
        return header, arrays

    @classmethod
    def from_parts(cls, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> IndexData:
        for name, dtype in _DTYPES.items():  # as to_parts writes them, or rebuilt
            array = arrays[name]
            if array.dtype != dtype or array.ndim != 1:
                raise ValueError(f"index snapshot array {name} is {array.dtype}, not {dtype}")
        data = cls()
        data.catalog = Catalog.from_parts(header["catalog"], arrays)
        data.terms = Vocab.from_parts(header["terms"])
        data.lexical = InvertedIndex.from_arrays(arrays, "lex", len(data.terms))
        n_entities = len(header["entities"]["keys"])
        data.graph = InvertedIndex.from_arrays(arrays, "graph", n_entities)
        data.entities = EntityTable.from_parts(
            header["entities"],
            np.asarray(arrays["graph.f_keys"], dtype=np.int64),
            np.asarray(arrays["graph.f_w"], dtype=np.float64),
        )
        data.doclen = Growable(np.float32, arrays["doclen"])
        data.speaker = Growable(np.int32, arrays["speaker"])
        data.session_len = Growable(np.float64, arrays["session_len"])
        data.total_len = float(header["total_len"])
        _check_consistent(data, arrays, n_entities)
        return data


#: Every array of the snapshot and its type. Checked before use: a value converted from
#: another type (a string parsed as a number) could overflow, or silently mean something else.
_DTYPES = {
    **{
        f"cat.{name}": np.dtype(dtype)
        for name, dtype in {
            "created": "f8", "session": "i4", "pinned": "?", "alive": "?", "prev": "i4",
            "next": "i4", "ids": "S26", "id_order": "i4", "id_sorted": "S26",
            "preview_ptr": "i8", "preview_text": "u1",
        }.items()
    },
    "doclen": np.dtype("f4"),
    "speaker": np.dtype("i4"),
    "session_len": np.dtype("f8"),
    **{
        f"{prefix}.{name}": np.dtype(dtype)
        for prefix in ("lex", "graph")
        for name, dtype in {
            "b_ptr": "i8", "b_docs": "i4", "b_w": "f4", "f_ptr": "i8", "f_keys": "i4",
            "f_w": "f4",
        }.items()
    },
}  # fmt: skip


def _check_consistent(data: IndexData, arrays: dict[str, np.ndarray], n_entities: int) -> None:
    """Every number that indexes another array must be in range, or a search would raise
    IndexError on every query. A snapshot whose checksum is valid can still be inconsistent
    (written by a buggy or different build, or edited by hand): raising ValueError here makes
    the loader rebuild it from the files, once, instead of failing every recall."""
    rows = data.catalog.rows
    n_terms = len(data.terms)
    # found while the snapshot was verified: a mapped array is not paged in again to check it
    bounds: dict[str, tuple[int, int]] = getattr(arrays, "bounds", {})

    def within(name: str, values: np.ndarray, low: int, high: int) -> None:
        if not len(values):
            return
        least, most = bounds.get(name) or (int(values.min()), int(values.max()))
        if least < low or most >= high:
            raise ValueError(f"index snapshot array {name} points outside [{low}, {high})")

    def ptr(name: str, values: np.ndarray, length: int, end: int) -> None:
        if len(values) != length or (length and (values[0] != 0 or values[-1] != end)):
            raise ValueError(f"index snapshot array {name} has the wrong shape")
        if np.any(np.diff(values) < 0):
            raise ValueError(f"index snapshot array {name} is not ascending")

    for name in ("cat.created", "cat.session", "cat.pinned", "cat.alive", "cat.prev", "cat.next"):
        if len(arrays[name]) != rows:
            raise ValueError(f"index snapshot array {name} does not match the catalog")
    if len(data.doclen) != rows or len(data.speaker) != rows:
        raise ValueError("document lengths do not match the catalog")
    within("cat.prev", arrays["cat.prev"], -1, rows)
    within("cat.next", arrays["cat.next"], -1, rows)
    within("cat.session", arrays["cat.session"], 0, len(data.catalog.session_names))
    within("cat.id_order", arrays["cat.id_order"], 0, rows)
    within("speaker", arrays["speaker"], -1, n_entities)
    if any(not 0 <= doc < rows for doc in data.catalog.tags):
        raise ValueError("index snapshot tags name documents outside the catalog")
    for prefix, n_keys in (("lex", n_terms), ("graph", n_entities)):
        docs, keys = arrays[f"{prefix}.b_docs"], arrays[f"{prefix}.f_keys"]
        ptr(f"{prefix}.b_ptr", arrays[f"{prefix}.b_ptr"], n_keys + 1, len(docs))
        ptr(f"{prefix}.f_ptr", arrays[f"{prefix}.f_ptr"], rows + 1, len(keys))
        within(f"{prefix}.b_docs", docs, 0, rows)
        within(f"{prefix}.f_keys", keys, 0, n_keys)
