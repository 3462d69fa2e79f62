"""The term table: stemmed words <-> dense integers, append-only like the doc numbers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Vocab:
    """Interns strings as dense integers (term numbers index the postings)."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.number: dict[str, int] = {}

    def add(self, key: str) -> int:
        number = self.number.get(key)
        if number is None:
            number = self.number[key] = len(self.keys)
            self.keys.append(key)
        return number

    def add_many(self, keys: Iterable[str]) -> list[int]:
        """Numbers of many keys at once (interning new ones): the hot path of indexing.

        One C-level pass of lookups; only the keys not seen before take the Python path.
        """
        keys = keys if isinstance(keys, list) else list(keys)
        out: list[int | None] = list(map(self.number.get, keys))
        if None in out:
            for i, key in enumerate(keys):
                if out[i] is None:
                    number = self.number.get(key)  # the same new key twice in one call
                    if number is None:
                        number = self.number[key] = len(self.keys)
                        self.keys.append(key)
                    out[i] = number
        return out  # type: ignore[return-value]

    def get(self, key: str) -> int | None:
        return self.number.get(key)

    def __len__(self) -> int:
        return len(self.keys)

    def to_parts(self) -> dict[str, Any]:
        return {"keys": self.keys}

    @classmethod
    def from_parts(cls, parts: dict[str, Any]) -> Vocab:
        vocab = cls()
        vocab.keys = list(parts["keys"])
        vocab.number = {key: i for i, key in enumerate(vocab.keys)}
        return vocab
