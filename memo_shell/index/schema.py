"""The small value types the index hands out (to the API, the TUI and the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class IndexHit:
    """One search result: the memory id, its fused score, and human-readable reasons."""

    id: str
    score: float
    why: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as the index knows it, without reading any record file."""

    name: str
    count: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class MemoryMeta:
    """What a list view needs about one memory, from index metadata alone."""

    id: str
    session: str
    created_at: datetime
    pinned: bool
    tags: tuple[str, ...]
    preview: str


@dataclass(frozen=True, slots=True)
class EntityInfo:
    """One node of the knowledge graph: its display name, kind and how many memories mention it."""

    name: str
    kind: str
    count: int
