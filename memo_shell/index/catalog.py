"""Per-memory metadata columns: id, session, time, pin, tags, preview, alive.

Every memory gets a *doc number* (its row) when first indexed; rows are never reused, so postings
and graph edges can refer to memories by a 4-byte integer. Columns are numpy arrays so filters
("session X, since May, pinned") and aggregates (sessions with counts and date ranges) are one
vectorised pass, answered for the TUI without opening a single record file.

Ids and previews are columns too, not a Python string per memory: ids are 26 ASCII bytes each
in one array, found by binary search over them in id order; previews are one UTF-8 blob with
offsets. At a million memories the strings and the id -> row dict cost ~300 MB of Python
objects and a second to unpack; the columns are ~160 MB on disk, mapped from the snapshot, of
which only the rows a query shows are ever read. Rows added since the snapshot are kept as
strings beside them until the next one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, overload

import numpy as np

from memo_shell.index.postings import Growable
from memo_shell.index.schema import MemoryMeta, SessionInfo
from memo_shell.records import Memory

if TYPE_CHECKING:
    from memo_shell.index.files import MappedFile

PREVIEW_CHARS = 120


def preview_of(memory: Memory) -> str:
    """The first ~120 characters of the user's text, on one line."""
    text = " ".join(memory.user.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).astimezone()


ID_DTYPE = np.dtype("S26")  # a ULID: 26 ASCII characters

T = TypeVar("T")


class _Column(Sequence[T]):
    """Rows by doc number: ``_n`` base rows read from a snapshot's arrays (mapped) by
    ``_base_row``, the values of rows added since kept as they are, and base rows cleared since
    (a forgotten memory's), which read as ``empty``."""

    def __init__(self, n_base: int, empty: T) -> None:
        self._n = n_base
        self._empty = empty
        self._more: list[T] = []
        self._cleared: set[int] = set()

    def _base_row(self, doc: int) -> T:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._n + len(self._more)

    @overload
    def __getitem__(self, doc: int) -> T: ...
    @overload
    def __getitem__(self, doc: slice) -> list[T]: ...
    def __getitem__(self, doc: int | slice) -> T | list[T]:
        if isinstance(doc, slice):
            return [self[d] for d in range(*doc.indices(len(self)))]
        doc = int(doc)
        if doc < 0:
            doc += len(self)
        if doc >= self._n:
            return self._more[doc - self._n]
        if doc < 0:
            raise IndexError(doc)
        if doc in self._cleared:
            return self._empty
        return self._base_row(doc)

    def append(self, value: T) -> None:
        self._more.append(value)

    def clear_row(self, doc: int) -> None:
        if doc >= self._n:
            self._more[doc - self._n] = self._empty
        else:
            self._cleared.add(doc)


class IdColumn(_Column[str | None]):
    """Memory ids by doc number (None for a forgotten row): a base array of fixed-width bytes
    (a snapshot's, mapped), the ids of rows added since as strings, and base rows cleared since."""

    def __init__(self, base: np.ndarray | None = None) -> None:
        self.base = np.zeros(0, ID_DTYPE) if base is None else base
        super().__init__(len(self.base), None)

    def _base_row(self, doc: int) -> str | None:
        raw = self.base[doc]
        return raw.decode("ascii", "replace") if raw else None

    def __iter__(self) -> Iterator[str | None]:
        cleared = self._cleared
        width = ID_DTYPE.itemsize
        for start in range(0, self._n, 65_536):  # a piece at a time: no list of every row
            # one decode per piece, then slices: a numpy scalar per row costs 4x more
            text = self.base[start : start + 65_536].tobytes().decode("ascii", "replace")
            for at in range(0, len(text), width):
                memory_id = text[at : at + width]
                if memory_id[0] == "\0" or (cleared and start + at // width in cleared):
                    yield None
                else:
                    yield memory_id.rstrip("\0") if "\0" in memory_id else memory_id
        yield from self._more

    def base_row_is(self, doc: int, raw: bytes) -> bool:
        """Whether base row ``doc`` still holds the id ``raw`` (not forgotten since)."""
        return doc not in self._cleared and self.base[doc] == raw

    def to_array(self) -> np.ndarray:
        """Every row as 26 bytes, empty for a forgotten row (what the snapshot stores)."""
        out = np.empty(len(self), dtype=ID_DTYPE)
        out[: self._n] = self.base
        if self._cleared:
            out[np.fromiter(self._cleared, np.int64, len(self._cleared))] = b""
        out[self._n :] = [(i or "").encode("ascii", "replace") for i in self._more]
        return out


_BASE32 = np.zeros(256, np.int64)
_BASE32[np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", np.uint8)] = np.arange(32)
_PLACES = 32 ** np.arange(9, -1, -1, dtype=np.int64)


def id_days(ids: np.ndarray) -> np.ndarray:
    """The UTC day (since 1970) of each id's time, as ``Store.path_for`` files it."""
    out = np.empty(len(ids), np.int64)
    for start in range(0, len(ids), 65_536):  # in pieces: 80 bytes a row while decoding
        piece = np.ascontiguousarray(ids[start : start + 65_536])
        chars = np.frombuffer(piece.tobytes(), np.uint8).reshape(-1, 26)
        out[start : start + len(piece)] = (_BASE32[chars[:, :10]] @ _PLACES) // 86_400_000
    return out


def _within(values: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Which of ``values`` occur in ``sorted_values``."""
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def id_lookup(ids: np.ndarray) -> dict[str, np.ndarray]:
    """Arrays to find a row by id: empty when the column is in id order already (a reindex
    adds files in id order, and new memories come last), else the sorted ids and their rows."""
    if len(ids) < 2 or bool(np.all(ids[:-1] <= ids[1:])):
        return {"cat.id_order": np.zeros(0, np.int32), "cat.id_sorted": np.zeros(0, ID_DTYPE)}
    order = np.argsort(ids, kind="stable").astype(np.int32)
    return {"cat.id_order": order, "cat.id_sorted": ids[order]}


class DocOf(Mapping[str, int]):
    """id -> doc number of live memories, without a dict entry per memory: a binary search in
    the base column (or its sorted copy), and a dict for rows added since the snapshot."""

    def __init__(
        self,
        ids: IdColumn,
        order: np.ndarray | None = None,
        sorted_ids: np.ndarray | None = None,
        live: int = 0,
    ) -> None:
        self._ids = ids
        has_order = order is not None and sorted_ids is not None and len(order) > 0
        self._order = order if has_order else None
        self._sorted: np.ndarray = sorted_ids if has_order and sorted_ids is not None else ids.base
        self._more: dict[str, int] = {}
        self._len = live

    def _base_doc(self, memory_id: object) -> int | None:
        if not len(self._sorted):  # nothing loaded from a snapshot: no numpy call per add
            return None
        if not isinstance(memory_id, str) or len(memory_id) != 26 or not memory_id.isascii():
            return None
        raw = memory_id.encode("ascii")
        at = int(np.searchsorted(self._sorted, raw))
        if at >= len(self._sorted) or self._sorted[at] != raw:
            return None
        doc = int(self._order[at]) if self._order is not None else at
        return doc if self._ids.base_row_is(doc, raw) else None

    @overload  # type: ignore[override]
    def get(self, memory_id: object) -> int | None: ...
    @overload
    def get(self, memory_id: object, default: int) -> int: ...
    def get(self, memory_id: object, default: int | None = None) -> int | None:
        doc = self._more.get(memory_id)  # type: ignore[call-overload]
        if doc is None:
            doc = self._base_doc(memory_id)
        return default if doc is None else doc

    def __getitem__(self, memory_id: str) -> int:
        doc = self.get(memory_id)
        if doc is None:
            raise KeyError(memory_id)
        return int(doc)

    def __contains__(self, memory_id: object) -> bool:
        return self.get(memory_id) is not None

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        for memory_id in self._ids:
            if memory_id is not None:
                yield memory_id

    def items(self) -> Iterator[tuple[str, int]]:  # type: ignore[override]
        """(id, doc) of every live memory, in doc order, without a search per id."""
        for doc, memory_id in enumerate(self._ids):
            if memory_id is not None:
                yield memory_id, doc

    def put(self, memory_id: str, doc: int) -> None:
        self._more[memory_id] = doc
        self._len += 1

    def pop(self, memory_id: str, default: Any = None) -> Any:
        """Remove and return a live memory's doc (the caller clears its id row)."""
        doc = self.get(memory_id)
        if doc is None:
            return default
        self._more.pop(memory_id, None)
        self._len -= 1
        return doc


class TextColumn(_Column[str]):
    """A short text per row: one UTF-8 blob with offsets (a snapshot's, mapped), texts of rows
    added since as strings, and base rows cleared since."""

    def __init__(
        self,
        ptr: np.ndarray | None = None,
        blob: np.ndarray | None = None,
        source: MappedFile | None = None,
    ) -> None:
        self.ptr = np.zeros(1, np.int64) if ptr is None else ptr
        self.blob = np.zeros(0, np.uint8) if blob is None else blob
        self.source = source  # the mapped snapshot the blob is in: one text is read, not mapped
        super().__init__(len(self.ptr) - 1, "")

    def _base_row(self, doc: int) -> str:
        lo, hi = int(self.ptr[doc]), int(self.ptr[doc + 1])
        text = self.blob[lo:hi] if self.source is None else self.source.slice(self.blob, lo, hi)
        return text.tobytes().decode("utf-8", "replace")

    def to_arrays(self, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, blob) of every row, empty where ``keep`` is False or the row was cleared."""
        keep = keep.copy()
        if self._cleared:
            keep[np.fromiter(self._cleared, np.int64, len(self._cleared))] = False
        ptr, blob = gather_texts(self.ptr, self.blob, keep[: self._n])
        more = [t.encode("utf-8") if keep[self._n + i] else b"" for i, t in enumerate(self._more)]
        lengths = np.fromiter(map(len, more), np.int64, len(more))
        out_ptr = np.empty(len(self) + 1, np.int64)
        out_ptr[: len(ptr)] = ptr
        np.cumsum(lengths, out=out_ptr[len(ptr) :])
        out_ptr[len(ptr) :] += ptr[-1]
        tail = np.frombuffer(b"".join(more), np.uint8)
        return out_ptr, np.concatenate([blob, tail]) if len(tail) else blob


def gather_texts(
    ptr: np.ndarray, blob: np.ndarray, keep: np.ndarray, *, drop: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and blob with only the texts of rows where ``keep`` is True: the other rows are
    emptied, or with ``drop`` removed. One slice per run of kept rows, so no per-byte index."""
    lengths = np.diff(ptr)
    if bool(np.all(keep)):
        return ptr, blob
    rows = np.flatnonzero(keep)
    kept = lengths.copy()
    kept[~keep] = 0
    if drop:
        kept = lengths[rows]
    out_ptr = np.zeros(len(kept) + 1, np.int64)
    np.cumsum(kept, out=out_ptr[1:])
    if not len(rows):
        return out_ptr, np.zeros(0, np.uint8)
    # runs of consecutive kept rows are one contiguous range of the blob each
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = rows[np.r_[0, breaks]]
    ends = rows[np.r_[breaks - 1, len(rows) - 1]] + 1
    parts = [blob[int(ptr[a]) : int(ptr[b])] for a, b in zip(starts, ends, strict=True)]
    return out_ptr, np.concatenate(parts) if parts else np.zeros(0, np.uint8)


class Catalog:
    """Rows of memory metadata, addressed by doc number or by id."""

    def __init__(self) -> None:
        self.ids = IdColumn()
        self.doc_of = DocOf(self.ids)
        self.created = Growable(np.float64)
        self.session = Growable(np.int32)
        self.pinned = Growable(np.bool_)
        self.alive = Growable(np.bool_)
        self.tags: dict[int, tuple[str, ...]] = {}  # sparse: most memories have none
        self.previews = TextColumn()
        self.session_names: list[str] = []
        self.session_of: dict[str, int] = {}
        # memory -[next]-> memory within a session: a doubly linked list in (time, id) order
        self.prev = Growable(np.int32)
        self.next = Growable(np.int32)
        self.session_tail: dict[int, int] = {}

    # ------------------------------------------------------------------ writing

    def session_number(self, name: str) -> int:
        number = self.session_of.get(name)
        if number is None:
            number = self.session_of[name] = len(self.session_names)
            self.session_names.append(name)
        return number

    def add_row(
        self,
        memory_id: str,
        created: float,
        session: str,
        pinned: bool,
        tags: tuple[str, ...],
        preview: str,
    ) -> int:
        """``add`` from the fields a row keeps (``memo_shell.index.analysis`` computes them)."""
        doc = len(self.ids)
        self.ids.append(memory_id)
        self.doc_of.put(memory_id, doc)
        number = self.session_number(session)
        self.created.append(created)
        self.session.append(number)
        self.pinned.append(pinned)
        self.alive.append(True)
        self.previews.append(preview)
        if tags:
            self.tags[doc] = tags
        self._link(doc, number, (created, memory_id))
        return doc

    def _key(self, doc: int) -> tuple[float, str]:
        return float(self.created[doc]), self.ids[doc] or ""

    def _link(self, doc: int, number: int, key: tuple[float, str]) -> None:
        """Insert ``doc`` (session ``number``, sort ``key``) into its session's time-ordered
        list (O(1) when it is the newest)."""
        self.prev.append(-1)
        self.next.append(-1)
        after = self.session_tail.get(number, -1)
        while after >= 0 and self._key(after) > key:
            after = int(self.prev[after])
        if after >= 0:
            following = int(self.next[after])
            self.next[after] = doc
        else:  # new head: find the current head by walking from the tail
            following = self.session_tail.get(number, -1)
            while following >= 0 and self.prev[following] >= 0:
                following = int(self.prev[following])
        self.prev[doc] = after
        self.next[doc] = following
        if following >= 0:
            self.prev[following] = doc
        else:
            self.session_tail[number] = doc

    def _unlink(self, doc: int) -> None:
        before, after = int(self.prev[doc]), int(self.next[doc])
        if before >= 0:
            self.next[before] = after
        if after >= 0:
            self.prev[after] = before
        else:
            number = int(self.session[doc])
            if before >= 0:
                self.session_tail[number] = before
            else:
                self.session_tail.pop(number, None)
        self.prev[doc] = -1
        self.next[doc] = -1

    def update(self, memory: Memory) -> int | None:
        """Refresh the mutable fields (pin, tags) of a known memory."""
        doc = self.doc_of.get(memory.id)
        if doc is None:
            return None
        self.pinned[doc] = memory.pinned
        if memory.tags:
            self.tags[doc] = tuple(memory.tags)
        else:
            self.tags.pop(doc, None)
        return doc

    def remove(self, memory_id: str) -> int | None:
        doc = self.doc_of.pop(memory_id, None)
        if doc is None:
            return None
        self._unlink(doc)
        self.alive[doc] = False
        self.pinned[doc] = False
        self.ids.clear_row(doc)
        self.previews.clear_row(doc)
        self.tags.pop(doc, None)
        return doc

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.doc_of)

    @property
    def rows(self) -> int:
        return len(self.ids)

    def live_ids(self) -> np.ndarray:
        """Ids of live memories as 26-byte strings, sorted."""
        rows = self.ids.to_array()
        live = rows[self.alive.view[: len(rows)] & (rows != b"")]
        live.sort(kind="stable")  # the column is in id order already, as a rule: a quick pass
        return live

    def diff_ids(
        self, on_disk: Sequence[str], unlisted_days: Collection[int] = ()
    ) -> tuple[list[str], list[str]]:
        """(ids in ``on_disk`` not indexed, in its order; indexed ids not in it, sorted),
        leaving out indexed ids of ``unlisted_days`` (days since 1970 whose folder was not
        listed: taken as they are).

        Sorted byte columns and binary searches: two Python sets of every id at a million
        memories cost ~250 MB and a second at each open (the walk that follows every load).
        """
        disk = np.array(on_disk, dtype=ID_DTYPE) if len(on_disk) else np.zeros(0, ID_DTYPE)
        live = self.live_ids()
        if len(unlisted_days) and len(live):
            days = np.fromiter(unlisted_days, np.int64, len(unlisted_days))
            live = live[~np.isin(id_days(live), days)]
        disk_sorted = np.sort(disk, kind="stable")
        missing = np.flatnonzero(~_within(disk, live))
        gone = live[~_within(live, disk_sorted)]
        return [on_disk[i] for i in missing.tolist()], [i.decode() for i in gone.tolist()]

    def pinned_docs(self) -> np.ndarray:
        """Doc numbers of pinned memories (always candidates for recall)."""
        return np.flatnonzero(self.pinned.view)

    def live_docs(self) -> np.ndarray:
        return np.flatnonzero(self.alive.view)

    def sessions(self) -> list[SessionInfo]:
        """Every session with its size and date range, newest activity first."""
        alive = self.alive.view
        if not alive.any():
            return []
        sess = self.session.view[alive]
        created = self.created.view[alive]
        n = len(self.session_names)
        counts = np.bincount(sess, minlength=n)
        first = np.full(n, np.inf)
        last = np.full(n, -np.inf)
        np.minimum.at(first, sess, created)
        np.maximum.at(last, sess, created)
        out = [
            SessionInfo(
                self.session_names[s], int(counts[s]), _to_datetime(first[s]), _to_datetime(last[s])
            )
            for s in np.flatnonzero(counts)
        ]
        out.sort(key=lambda info: info.last_at, reverse=True)
        return out

    def select(
        self,
        *,
        session: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        pinned: bool | None = None,
        newest_first: bool = True,
    ) -> list[str]:
        """Ids matching every given filter, in time order; ``[since, until)`` is half-open."""
        mask = self.alive.view.copy()
        if session is not None:
            number = self.session_of.get(session)
            if number is None:
                return []
            mask &= self.session.view == number
        created = self.created.view
        if since is not None:
            mask &= created >= since.timestamp()
        if until is not None:
            mask &= created < until.timestamp()
        if pinned is not None:
            mask &= self.pinned.view == pinned
        docs = np.flatnonzero(mask)
        # time order, ties by id (ids are time-ordered ULIDs, so this is conversation order)
        order = sorted(docs.tolist(), key=lambda d: (created[d], self.ids[d]))
        if newest_first:
            order.reverse()
        return [self.ids[d] for d in order]  # type: ignore[misc]

    def meta(self, memory_id: str) -> MemoryMeta | None:
        doc = self.doc_of.get(memory_id)
        if doc is None:
            return None
        return MemoryMeta(
            id=memory_id,
            session=self.session_names[int(self.session[doc])],
            created_at=_to_datetime(float(self.created[doc])),
            pinned=bool(self.pinned[doc]),
            tags=self.tags.get(doc, ()),
            preview=self.previews[doc],
        )

    # ------------------------------------------------------------------ snapshot

    def to_parts(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(msgpack-able strings, numpy columns) for the snapshot."""
        strings = {
            "sessions": self.session_names,
            "tags": {str(doc): list(tags) for doc, tags in self.tags.items()},
        }
        arrays = {
            "cat.created": self.created.view,
            "cat.session": self.session.view,
            "cat.pinned": self.pinned.view,
            "cat.alive": self.alive.view,
            "cat.prev": self.prev.view,
            "cat.next": self.next.view,
        }
        arrays = {name: array.copy() for name, array in arrays.items()}
        ids = self.ids.to_array()
        arrays["cat.ids"] = ids
        arrays.update(id_lookup(ids))
        arrays["cat.preview_ptr"], arrays["cat.preview_text"] = self.previews.to_arrays(
            self.alive.view
        )
        return strings, arrays

    @classmethod
    def from_parts(cls, strings: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Catalog:
        cat = cls()
        cat.session_names = list(strings["sessions"])
        cat.session_of = {name: i for i, name in enumerate(cat.session_names)}
        cat.tags = {int(doc): tuple(tags) for doc, tags in strings["tags"].items()}
        cat.created = Growable(np.float64, arrays["cat.created"])
        cat.session = Growable(np.int32, arrays["cat.session"])
        cat.pinned = Growable(np.bool_, arrays["cat.pinned"])
        cat.alive = Growable(np.bool_, arrays["cat.alive"])
        cat.prev = Growable(np.int32, arrays["cat.prev"])
        cat.next = Growable(np.int32, arrays["cat.next"])
        ids = np.asarray(arrays["cat.ids"])
        if ids.dtype != ID_DTYPE:
            raise ValueError("catalog ids are not 26-byte strings")
        cat.ids = IdColumn(ids)
        order = np.asarray(arrays["cat.id_order"], dtype=np.int32)
        sorted_ids = np.asarray(arrays["cat.id_sorted"])
        if len(order) not in (0, len(ids)) or len(sorted_ids) != len(order):
            raise ValueError("catalog id order does not match the ids")
        if len(order) and sorted_ids.dtype != ID_DTYPE:
            raise ValueError("catalog ids are not 26-byte strings")
        n = len(ids)
        cat.doc_of = DocOf(cat.ids, order, sorted_ids, int(np.count_nonzero(cat.alive.view)))
        ptr = np.asarray(arrays["cat.preview_ptr"], dtype=np.int64)
        text = np.asarray(arrays["cat.preview_text"], dtype=np.uint8)
        if len(ptr) != n + 1 or ptr[0] != 0 or ptr[-1] != len(text) or np.any(np.diff(ptr) < 0):
            raise ValueError("catalog previews do not match the catalog")
        cat.previews = TextColumn(ptr, text, getattr(arrays, "source", None))
        if not (len(cat.created) == len(cat.session) == len(cat.alive) == n):
            raise ValueError("catalog columns have different lengths")
        nxt = cat.next.view
        for doc in np.flatnonzero(cat.alive.view & (nxt < 0)).tolist():
            cat.session_tail[int(cat.session[doc])] = doc
        return cat
