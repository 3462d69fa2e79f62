"""Which memories a listing, an export or a prune is about: one filter for every way of listing.

``Memories.select`` applies it to the index's metadata (no file read), ``Memories.iter_memories``
to the files as it reads them, and the browser to recall hits (``admits``). Light on purpose:
the app's screens import it before the library is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memo_shell.records import Memory


@dataclass(frozen=True, slots=True)
class Selection:
    """A session, a time range ``[since, until)`` and pinned or not; None admits any."""

    session: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    pinned: bool | None = None

    def admits(self, memory: Memory) -> bool:
        return (
            (self.session is None or memory.session == self.session)
            and (self.since is None or memory.created_at >= self.since)
            and (self.until is None or memory.created_at < self.until)
            and (self.pinned is None or memory.pinned == self.pinned)
        )
