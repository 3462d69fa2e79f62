"""Vacuum: drop every trace of forgotten memories from an index's snapshot parts.

Forgetting a memory only marks its catalog row dead, because doc numbers are what postings and
graph edges point at and renumbering on every forget would cost a full pass. The row's id,
preview and tags are cleared at once, but the vocabularies are append-only: the words, entity
names and session name that only the forgotten memory used would stay in the term, entity and
session tables, and so in ``index/snapshot``. A user who forgets "my safe code is 4711" must
not find "4711" in the index afterwards, so before a snapshot is written the parts are vacuumed:
dead rows go, and so does every term, entity and session no live memory uses; every number that
refers to them is remapped.

Works on the (header, arrays) pair of ``IndexData.to_parts`` (compacted: dead rows have empty
forward lists) and returns a pair of the same shape, which ``IndexData.from_parts`` validates.
Remapping keeps the relative order of everything kept, so postings stay sorted and recall
results, ties included, are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from memo_shell.index.catalog import gather_texts, id_lookup

Parts = tuple[dict[str, Any], dict[str, np.ndarray]]


def needed(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bool:
    """Whether the parts hold anything no live memory uses (a dead row, term, entity, session)."""
    alive = arrays["cat.alive"]
    if not alive.all():
        return True
    for prefix, n_keys in (
        ("lex", len(header["terms"]["keys"])),
        ("graph", len(header["entities"]["keys"])),
    ):
        if np.count_nonzero(np.diff(arrays[f"{prefix}.b_ptr"])) != n_keys:
            return True
    used = np.unique(arrays["cat.session"])
    return len(used) != len(header["catalog"]["sessions"])


def _renumbering(keep: np.ndarray, size: int) -> np.ndarray:
    """old number -> new number (or -1) for the kept numbers, in their old order."""
    mapping = np.full(size, -1, dtype=np.int64)
    mapping[keep] = np.arange(len(keep), dtype=np.int64)
    return mapping


def _incidence(
    arrays: dict[str, np.ndarray], prefix: str, doc_map: np.ndarray, keep_docs: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One inverted index's arrays without dead docs and unused keys; returns (arrays, key_map).

    Dead docs own no forward entries after compaction, so the entry arrays keep their order and
    only their numbers change.
    """
    b_ptr = arrays[f"{prefix}.b_ptr"]
    f_ptr = arrays[f"{prefix}.f_ptr"]
    counts = np.diff(b_ptr)
    used = np.flatnonzero(counts)
    key_map = _renumbering(used, len(counts))
    new_b_ptr = np.zeros(len(used) + 1, dtype=np.int64)
    np.cumsum(counts[used], out=new_b_ptr[1:])
    new_f_ptr = np.zeros(len(keep_docs) + 1, dtype=np.int64)
    np.cumsum(np.diff(f_ptr)[keep_docs], out=new_f_ptr[1:])
    out = {
        f"{prefix}.b_ptr": new_b_ptr,
        f"{prefix}.b_docs": doc_map[arrays[f"{prefix}.b_docs"]].astype(np.int32),
        f"{prefix}.b_w": arrays[f"{prefix}.b_w"],
        f"{prefix}.f_ptr": new_f_ptr,
        f"{prefix}.f_keys": key_map[arrays[f"{prefix}.f_keys"]].astype(np.int32),
        f"{prefix}.f_w": arrays[f"{prefix}.f_w"],
    }
    return out, key_map


def _links(values: np.ndarray, doc_map: np.ndarray) -> np.ndarray:
    """Remap prev/next pointers (-1 stays -1; live docs only ever point at live docs)."""
    out = np.full(len(values), -1, dtype=np.int32)
    linked = values >= 0
    out[linked] = doc_map[values[linked]]
    return out


def vacuum(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[Parts, np.ndarray]:
    """The parts with only what live memories use, and the kept doc numbers (old numbering)."""
    alive = np.asarray(arrays["cat.alive"], dtype=bool)
    keep = np.flatnonzero(alive)
    doc_map = _renumbering(keep, len(alive))
    catalog = header["catalog"]

    sessions = np.asarray(arrays["cat.session"])[keep]
    used_sessions = np.unique(sessions)
    session_map = _renumbering(used_sessions, len(catalog["sessions"]))

    lexical, term_map = _incidence(arrays, "lex", doc_map, keep)
    graph, entity_map = _incidence(arrays, "graph", doc_map, keep)
    used_terms = np.flatnonzero(term_map >= 0)
    used_entities = np.flatnonzero(entity_map >= 0)

    speaker = np.asarray(arrays["speaker"])[keep]
    spoken = speaker >= 0
    speaker = speaker.astype(np.int32)
    speaker[spoken] = entity_map[speaker[spoken]]

    new_header = dict(header)
    new_header["catalog"] = {
        "sessions": [catalog["sessions"][s] for s in used_sessions.tolist()],
        "tags": {
            str(int(doc_map[int(doc)])): tags
            for doc, tags in catalog["tags"].items()
            if alive[int(doc)]
        },
    }
    new_header["terms"] = {"keys": [header["terms"]["keys"][t] for t in used_terms.tolist()]}
    entities = header["entities"]
    new_header["entities"] = {
        "keys": [entities["keys"][e] for e in used_entities.tolist()],
        "names": [entities["names"][e] for e in used_entities.tolist()],
    }
    ids = np.asarray(arrays["cat.ids"])[keep]
    preview_ptr, preview_text = gather_texts(
        np.asarray(arrays["cat.preview_ptr"]),
        np.asarray(arrays["cat.preview_text"]),
        alive,
        drop=True,
    )
    new_arrays = {
        "cat.ids": ids,
        **id_lookup(ids),
        "cat.preview_ptr": preview_ptr,
        "cat.preview_text": preview_text,
        "cat.created": np.asarray(arrays["cat.created"])[keep],
        "cat.session": session_map[sessions].astype(np.int32),
        "cat.pinned": np.asarray(arrays["cat.pinned"])[keep],
        "cat.alive": np.ones(len(keep), dtype=np.bool_),
        "cat.prev": _links(np.asarray(arrays["cat.prev"])[keep], doc_map),
        "cat.next": _links(np.asarray(arrays["cat.next"])[keep], doc_map),
        "doclen": np.asarray(arrays["doclen"])[keep],
        "speaker": speaker,
        "session_len": np.asarray(arrays["session_len"])[used_sessions],
        **lexical,
        **graph,
    }
    return (new_header, new_arrays), keep
