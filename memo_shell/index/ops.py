"""What can happen to a memory in the index, as types: the index's state and its operations.

An operation is ``Add``, ``Update`` or ``Remove``; its ``kind`` is the one-character tag the
change log writes (``memo_shell.index.files.ChangeLog``), so the file format is unchanged.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from memo_shell.records import Memory


class State(StrEnum):
    """Where the index is in its life (``Index.state``). A ``str``, so ``state == "ready"``
    holds and it prints, compares and serialises (JSON stats, the TUI) as its value."""

    LOADING = "loading"
    READY = "ready"
    REBUILDING = "rebuilding"


class Kind(StrEnum):
    """An operation's tag in the change log."""

    ADD = "+"
    UPDATE = "~"  # pin, tags or text changed: re-read
    REMOVE = "-"

    @classmethod
    def of_log(cls, tag: str) -> Kind:
        """The kind of a change-log line. Anything but an add or a remove (the log's reader
        lets through a few odd tags) means: look at the file again, as an update does."""
        if tag == cls.REMOVE:
            return cls.REMOVE
        if tag == cls.ADD:
            return cls.ADD
        return cls.UPDATE


# Plain slotted classes rather than dataclasses: they load with ``import memo_shell``, where
# each (frozen, slotted) dataclass would cost about half a millisecond to create.


class _OfMemory:
    """An operation that carries the memory's record."""

    __slots__ = ("memory",)
    __match_args__ = ("memory",)

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    @property
    def memory_id(self) -> str:
        return self.memory.id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.memory.id})"


class Add(_OfMemory):
    """Index a memory just written."""

    __slots__ = ()
    kind: ClassVar[Kind] = Kind.ADD


class Update(_OfMemory):
    """Re-index a memory whose record changed (added instead if the index lacks it)."""

    __slots__ = ()
    kind: ClassVar[Kind] = Kind.UPDATE


class Remove:
    """Drop a memory from the index."""

    __slots__ = ("memory_id",)
    __match_args__ = ("memory_id",)
    kind: ClassVar[Kind] = Kind.REMOVE

    def __init__(self, memory_id: str) -> None:
        self.memory_id = memory_id

    def __repr__(self) -> str:
        return f"Remove({self.memory_id})"


Op = Add | Update | Remove
