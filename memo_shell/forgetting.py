"""Forgetting, for ``Memories`` (memo_shell.api): one memory, many, for undo, or everything.

A part of the front door kept in its own module: forgetting has its own invariant. The file
goes first (durably), after a marker in ``forgotten/`` that makes a copy a sync tool brings back
from another device be deleted there and here (forget wins); then every derived trace (the
read cache, the index, which scrubs its files soon after).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from memo_shell import paths
from memo_shell.errors import NotFound
from memo_shell.index import files as index_files
from memo_shell.records import Memory
from memo_shell.store import AlreadyExists

if TYPE_CHECKING:
    from pathlib import Path

    from memo_shell.index import Index
    from memo_shell.store import Store


class Forgetting:
    """``forget``, ``forget_many``, ``forget_for_undo``, ``restore`` and ``wipe`` of
    ``Memories``."""

    store: Store
    index: Index

    if TYPE_CHECKING:  # provided by Memories

        @property
        def data_dir(self) -> Path: ...
        def _evict(self, memory_id: str) -> None: ...
        def _get_or_none(self, memory_id: str) -> Memory | None: ...
        def ids(self, *, newest_first: bool = False) -> list[str]: ...
        def close(self) -> None: ...

    def forget(self, memory_id: str) -> None:
        """Delete the file (durably) first, then every derived trace of it.

        A marker in ``forgotten/`` is written before the file goes, so a copy of the memory that
        a sync tool brings back from another device is deleted there and here (forget wins).
        """
        marked = self.store.exists(memory_id)
        if marked:
            self.store.tombstones.add([memory_id])
        self._forget_marked(memory_id, marked)

    def _forget_marked(self, memory_id: str, marked: bool) -> None:
        try:
            self.store.delete(memory_id)
        except NotFound:
            if not marked:
                raise
            # a scan that saw the marker deleted the file first: forgotten all the same
        self._evict(memory_id)
        self.index.remove(memory_id)

    def forget_many(self, memory_ids: Iterable[str]) -> list[str]:
        """Forget each id; returns those actually forgotten (unknown ids are skipped).

        The markers are written first, all with one directory fsync (``forget --all`` of a big
        store would otherwise pay one per memory on top of the deletes)."""
        return [memory_id for memory_id, _ in self._forget_batch(memory_ids, keep=False)]

    def forget_for_undo(self, memory_ids: Iterable[str]) -> list[Memory]:
        """``forget_many`` that returns the readable records as they were, for ``restore``."""
        return [m for _, m in self._forget_batch(memory_ids, keep=True) if m is not None]

    def _forget_batch(
        self, memory_ids: Iterable[str], *, keep: bool
    ) -> list[tuple[str, Memory | None]]:
        wanted = list(memory_ids)
        marked = {i for i in wanted if self.store.exists(i)}
        # read before the markers: a marked record reads as forgotten (a damaged one is
        # quarantined by the read, so there is nothing to undo)
        kept = {i: self._get_or_none(i) for i in marked} if keep else {}
        self.store.tombstones.add(sorted(marked))
        done: list[tuple[str, Memory | None]] = []
        for memory_id in wanted:
            try:
                self._forget_marked(memory_id, memory_id in marked)
            except NotFound:
                continue
            done.append((memory_id, kept.get(memory_id)))
        return done

    def restore(self, memory: Memory) -> None:
        """Put a forgotten memory back exactly (same id, same content): the browser's undo."""
        self.store.tombstones.discard(memory.id)  # on purpose: the marker would delete it again
        try:
            self.store.write(memory)
        except AlreadyExists:
            return  # put back already (by another window or process): nothing to replace
        self.index.add(memory)

    def wipe(self) -> int:
        """Forget every memory, close this handle, then drop the index and the quarantine:
        nothing of them stays on disk (``forget --all``); returns how many were forgotten.

        The memory folders go too: besides the records, they can hold copies a sync tool has in
        flight, a record moved into the wrong date folder, or any other file a user asked to
        wipe.
        """
        count = len(self.forget_many(self.ids()))
        self.close()
        index_files.wipe(paths.index_dir(self.data_dir))
        self.store.wipe()
        return count
