"""The entity table: names of the graph's nodes, and live evidence about each one.

Order independence is the point of this module. A memory's mentions are stored in the graph's
incidence index with a *code* as their weight (the mention's kind, plus 0.5 when the mention was
only guessed to be a name); every count here (kind votes, confirmed mentions) is derived from
the live mentions and undone when a memory is forgotten. So what the graph believes about
"Caroline" depends only on the memories that exist now, never on the order they were added in,
and ``reindex`` rebuilds exactly the same beliefs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from memo_shell.extract import Entity

#: Kinds, in priority order for ties of votes (a speaker is a person whatever else we guessed).
KINDS = ("person", "organisation", "place", "title", "tag", "name", "date", "when")
_CODE = {kind: i + 1 for i, kind in enumerate(KINDS)}
#: Kinds that link memories in the graph. Dates and relative times ("tonight") are left out:
#: two memories from the same Friday are related by time (the time signal), not by topic.
LINKABLE = frozenset({"person", "organisation", "place", "title", "tag", "name"})
_LINKABLE_CODES = np.array([k in LINKABLE for k in KINDS], dtype=bool)
_PERSON = 0


def code(entity: Entity) -> float:
    """The weight a mention is stored with in the graph index."""
    return _CODE[entity.kind] + (0.5 if entity.guessed else 0.0)


def decode(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(kind index, guessed) of stored mention codes."""
    whole = np.floor(codes).astype(np.int64)
    return whole - 1, (codes - whole) > 0.25


class EntityTable:
    """Entity keys <-> numbers, display names, and live per-entity evidence counts."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.number: dict[str, int] = {}
        self.names: list[str] = []
        self._votes = np.zeros((64, len(KINDS)), dtype=np.int32)  # live mentions per kind
        self._confirmed = np.zeros(64, dtype=np.int32)  # live mentions not merely guessed

    def __len__(self) -> int:
        return len(self.keys)

    def get(self, key: str) -> int | None:
        return self.number.get(key)

    def _grow(self, n: int) -> None:
        if n > len(self._confirmed):
            size = max(n, 2 * len(self._confirmed))
            votes = np.zeros((size, len(KINDS)), dtype=np.int32)
            votes[: len(self._votes)] = self._votes
            confirmed = np.zeros(size, dtype=np.int32)
            confirmed[: len(self._confirmed)] = self._confirmed
            self._votes, self._confirmed = votes, confirmed

    def intern(self, entity: Entity) -> int:
        """The entity's number (new keys are appended); keeps the smallest display form seen,
        so the name shown does not depend on which memory came first."""
        number = self.number.get(entity.key)
        if number is None:
            number = self.number[entity.key] = len(self.keys)
            self.keys.append(entity.key)
            self.names.append(entity.name)
            self._grow(number + 1)
        elif entity.name < self.names[number]:
            self.names[number] = entity.name
        return number

    def intern_many(self, keys: Sequence[str], names: Sequence[str]) -> list[int]:
        """``intern`` of many entities given as keys and display forms (one memory's)."""
        number = self.number
        out: list[int] = []
        for key, name in zip(keys, names, strict=True):
            n = number.get(key)
            if n is None:
                n = number[key] = len(self.keys)
                self.keys.append(key)
                self.names.append(name)
                self._grow(n + 1)
            elif name < self.names[n]:
                self.names[n] = name
            out.append(n)
        return out

    def count(self, numbers: np.ndarray, codes: np.ndarray, sign: int) -> None:
        """Add (sign=1) or withdraw (sign=-1) the evidence of some mentions."""
        if not len(numbers):
            return
        self._grow(int(numbers.max()) + 1)
        kinds, guessed = decode(codes)
        if len(numbers) < 256:
            np.add.at(self._votes, (numbers, kinds), sign)
            np.add.at(self._confirmed, numbers[~guessed], sign)
            return
        # a whole index's mentions (load, reindex): counting sorts beat add.at's per-item loop
        n, k = self._votes.shape
        votes = np.bincount(numbers * k + kinds, minlength=n * k).reshape(n, k)
        self._votes += (sign * votes).astype(np.int32)
        self._confirmed += (sign * np.bincount(numbers[~guessed], minlength=n)).astype(np.int32)

    def count_mentions(self, mentions: dict[int, float], sign: int) -> None:
        """``count`` for one memory's few mentions ({entity number: code}): a Python loop is
        several times cheaper than numpy's set-up for a handful of items."""
        if not mentions:
            return
        self._grow(max(mentions) + 1)
        votes, confirmed = self._votes, self._confirmed
        for number, mention in mentions.items():
            whole = int(mention)  # codes are positive: int() is floor(), as in decode()
            votes[number, whole - 1] += sign
            if mention - whole <= 0.25:
                confirmed[number] += sign

    def recount(self, numbers: np.ndarray, codes: np.ndarray) -> None:
        """Forget all evidence and count these (live) mentions afresh."""
        self._votes[:] = 0
        self._confirmed[:] = 0
        self.count(numbers, codes, 1)

    # ------------------------------------------------------------------ evidence

    def kind_index(self, numbers: np.ndarray) -> np.ndarray:
        """Most-voted kind of each entity (ties go to the earlier kind in ``KINDS``)."""
        self._grow(int(numbers.max()) + 1 if len(numbers) else 0)
        return np.argmax(self._votes[numbers], axis=1)

    def kind(self, number: int) -> str:
        return KINDS[int(self.kind_index(np.array([number]))[0])]

    def linkable_kind(self, numbers: np.ndarray) -> np.ndarray:
        return _LINKABLE_CODES[self.kind_index(numbers)]

    def confirmed(self, numbers: np.ndarray) -> np.ndarray:
        self._grow(int(numbers.max()) + 1 if len(numbers) else 0)
        return self._confirmed[numbers] > 0

    def is_person(self, numbers: Sequence[int]) -> list[bool]:
        return [bool(self._votes[n, _PERSON] > 0) for n in numbers]

    # ------------------------------------------------------------------ snapshot

    def to_parts(self) -> dict[str, Any]:
        return {"keys": self.keys, "names": self.names}

    @classmethod
    def from_parts(
        cls, parts: dict[str, Any], numbers: np.ndarray, codes: np.ndarray
    ) -> EntityTable:
        """Rebuild from the snapshot's keys and names plus the live mentions (numbers, codes)."""
        table = cls()
        table.keys = list(parts["keys"])
        table.names = list(parts["names"])
        if len(table.keys) != len(table.names):
            raise ValueError("entity table columns have different lengths")
        table.number = {key: i for i, key in enumerate(table.keys)}
        table._grow(len(table.keys))
        table.recount(numbers, codes)
        return table
