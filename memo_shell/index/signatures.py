"""What each record file looked like when the index read it, for a million files.

A signature is (mtime ns, size) (see ``filewatch``). They are kept as the saved table, sorted
ids and an (n, 2) array, found by binary search, plus a dict of what changed since: a million
of them cost ~40 MB this way, and load as two arrays. As a dict of tuples they cost ~200 MB
and a second of every open.

``index/files`` holds them (``write_snapshot`` format: arrays ``ids`` and ``sig``), written
beside the snapshot with the ids of the memories it holds, so it names nothing forgotten.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path

import numpy as np

from memo_shell.index.catalog import ID_DTYPE
from memo_shell.index.files import SnapshotError, read_snapshot, write_snapshot

#: (mtime ns, size) of a record file
Signature = tuple[int, int]
FILE_NAME = "files"
_EMPTY_IDS = np.zeros(0, ID_DTYPE)
_EMPTY_TABLE = np.zeros((0, 2), np.int64)


class Signatures(MutableMapping[str, Signature]):
    """id -> signature: a sorted base table and the changes since (see the module doc)."""

    def __init__(self, ids: np.ndarray = _EMPTY_IDS, table: np.ndarray = _EMPTY_TABLE) -> None:
        self._ids = ids
        self._table = table
        self._more: dict[str, Signature] = {}
        self._dropped: set[str] = set()

    @classmethod
    def from_pairs(cls, ids: Sequence[str], sigs: Sequence[Signature]) -> Signatures:
        """From ids and their signatures, in any order (the last of a repeated id wins)."""
        keys = np.array(ids, dtype=ID_DTYPE) if len(ids) else _EMPTY_IDS
        table = np.array(sigs, dtype=np.int64).reshape(-1, 2)
        order = np.argsort(keys, kind="stable")
        keys, table = keys[order], table[order]
        if len(keys) > 1:  # keep the last of each run of equal ids
            last = np.ones(len(keys), dtype=bool)
            last[:-1] = keys[1:] != keys[:-1]
            keys, table = keys[last], table[last]
        return cls(keys, table)

    def _base(self, memory_id: object) -> Signature | None:
        if not len(self._ids) or not isinstance(memory_id, str) or len(memory_id) != 26:
            return None
        if not memory_id.isascii():
            return None
        raw = memory_id.encode("ascii")
        at = int(np.searchsorted(self._ids, raw))
        if at < len(self._ids) and self._ids[at] == raw:
            mtime, size = self._table[at].tolist()
            return (mtime, size)
        return None

    def __getitem__(self, memory_id: str) -> Signature:
        sig = self._more.get(memory_id)
        if sig is None and memory_id not in self._dropped:
            sig = self._base(memory_id)
        if sig is None:
            raise KeyError(memory_id)
        return sig

    def __contains__(self, memory_id: object) -> bool:
        try:
            self[memory_id]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    def __setitem__(self, memory_id: str, sig: Signature) -> None:
        self._more[memory_id] = sig
        self._dropped.discard(memory_id)

    def __delitem__(self, memory_id: str) -> None:
        if memory_id not in self:
            raise KeyError(memory_id)
        self._more.pop(memory_id, None)
        self._dropped.add(memory_id)

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self._ids), 65_536):
            for raw in self._ids[start : start + 65_536].tolist():
                memory_id = raw.decode("ascii", "replace")
                if memory_id not in self._more and memory_id not in self._dropped:
                    yield memory_id
        yield from self._more

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def for_ids(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, table) of the known signatures of ``ids`` (sorted 26-byte ids), for saving."""
        table = np.zeros((len(ids), 2), np.int64)
        known = np.zeros(len(ids), dtype=bool)
        if len(self._ids) and len(ids):
            at = np.minimum(np.searchsorted(self._ids, ids), len(self._ids) - 1)
            hit = self._ids[at] == ids
            table[hit] = self._table[at[hit]]
            known |= hit
        changed = list(self._more.items()) + [(i, None) for i in self._dropped]
        if changed and len(ids):
            keys = np.array([i for i, _sig in changed], dtype=ID_DTYPE)
            at = np.minimum(np.searchsorted(ids, keys), len(ids) - 1)
            found = (ids[at] == keys).tolist()
            for row, ok, (_id, sig) in zip(at.tolist(), found, changed, strict=True):
                if ok and sig is None:
                    known[row] = False
                elif ok and sig is not None:
                    table[row] = sig
                    known[row] = True
        return ids[known], table[known]


def table_for(
    sigs: MutableMapping[str, Signature], ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, table) of the known signatures of ``ids`` (sorted), from the table or, before a
    load installed one, from a plain dict."""
    if not isinstance(sigs, Signatures):
        sigs = Signatures.from_pairs(list(sigs), list(sigs.values()))
    return sigs.for_ids(ids)


def save(directory: Path, ids: np.ndarray, table: np.ndarray) -> int:
    """Write the signatures file atomically (caller holds the index lock); returns bytes."""
    return write_snapshot(directory / FILE_NAME, {}, {"ids": ids, "sig": table})


def load(directory: Path) -> Signatures:
    """The saved signatures, or none if missing or unreadable (files are then compared to what
    they are now, and taken as they are)."""
    try:
        header, arrays = read_snapshot(directory / FILE_NAME)
        if "ids" in header:  # written by 0.x before the table: a list and a blob
            pairs = np.frombuffer(header["sig"], dtype=np.int64).reshape(-1, 2).tolist()
            return Signatures.from_pairs(list(header["ids"]), [(a, b) for a, b in pairs])
        ids, table = arrays["ids"], arrays["sig"]
        if ids.dtype != ID_DTYPE or table.dtype != np.int64 or table.shape != (len(ids), 2):
            raise ValueError("signature table has the wrong shape")
        if len(ids) > 1 and not bool(np.all(ids[:-1] < ids[1:])):
            raise ValueError("signature ids are not sorted")
        return Signatures(ids, table)
    except (FileNotFoundError, SnapshotError, KeyError, TypeError, ValueError):
        return Signatures()
