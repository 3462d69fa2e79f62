"""Per-memory metadata columns: id, session, time, pin, tags, preview, alive.

Every memory gets a *doc number* (its row) when first indexed; rows are never reused, so postings
and graph edges can refer to memories by a 4-byte integer. Columns are numpy arrays so filters
("session X, since May, pinned") and aggregates (sessions with counts and date ranges) are one
vectorised pass, answered for the TUI without opening a single record file.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from memo_shell.index.postings import Growable
from memo_shell.index.schema import MemoryMeta, SessionInfo
from memo_shell.records import Memory

PREVIEW_CHARS = 120


def preview_of(memory: Memory) -> str:
    """The first ~120 characters of the user's text, on one line."""
    text = " ".join(memory.user.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).astimezone()


class Catalog:
    """Rows of memory metadata, addressed by doc number or by id."""

    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.doc_of: dict[str, int] = {}
        self.created = Growable(np.float64)
        self.session = Growable(np.int32)
        self.pinned = Growable(np.bool_)
        self.alive = Growable(np.bool_)
        self.tags: dict[int, tuple[str, ...]] = {}  # sparse: most memories have none
        self.previews: list[str] = []
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

    def add(self, memory: Memory) -> int:
        """Append a row for a memory not yet in the catalog; returns its doc number."""
        doc = len(self.ids)
        self.ids.append(memory.id)
        self.doc_of[memory.id] = doc
        self.created.append(memory.created_at.timestamp())
        self.session.append(self.session_number(memory.session))
        self.pinned.append(memory.pinned)
        self.alive.append(True)
        self.previews.append(preview_of(memory))
        if memory.tags:
            self.tags[doc] = tuple(memory.tags)
        self._link(doc)
        return doc

    def _key(self, doc: int) -> tuple[float, str]:
        return float(self.created[doc]), self.ids[doc] or ""

    def _link(self, doc: int) -> None:
        """Insert ``doc`` into its session's time-ordered list (O(1) when it is the newest)."""
        self.prev.append(-1)
        self.next.append(-1)
        number = int(self.session[doc])
        after = self.session_tail.get(number, -1)
        key = self._key(doc)
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
        self.ids[doc] = None
        self.previews[doc] = ""
        self.tags.pop(doc, None)
        return doc

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.doc_of)

    @property
    def rows(self) -> int:
        return len(self.ids)

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
            "ids": self.ids,
            "previews": self.previews,
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
        return strings, arrays

    @classmethod
    def from_parts(cls, strings: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> Catalog:
        cat = cls()
        cat.ids = list(strings["ids"])
        cat.previews = list(strings["previews"])
        cat.session_names = list(strings["sessions"])
        cat.session_of = {name: i for i, name in enumerate(cat.session_names)}
        cat.tags = {int(doc): tuple(tags) for doc, tags in strings["tags"].items()}
        cat.created = Growable(np.float64, arrays["cat.created"])
        cat.session = Growable(np.int32, arrays["cat.session"])
        cat.pinned = Growable(np.bool_, arrays["cat.pinned"])
        cat.alive = Growable(np.bool_, arrays["cat.alive"])
        cat.prev = Growable(np.int32, arrays["cat.prev"])
        cat.next = Growable(np.int32, arrays["cat.next"])
        n = len(cat.ids)
        if not (len(cat.previews) == len(cat.created) == len(cat.session) == len(cat.alive) == n):
            raise ValueError("catalog columns have different lengths")
        cat.doc_of = {mid: doc for doc, mid in enumerate(cat.ids) if mid is not None}
        nxt = cat.next.view
        for doc in np.flatnonzero(cat.alive.view & (nxt < 0)).tolist():
            cat.session_tail[int(cat.session[doc])] = doc
        return cat
