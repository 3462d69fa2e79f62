"""The library API: ``memo_shell.open()`` and the ``Memories`` handle it returns.

This is the one front door used by the CLI, the TUI and scripts alike, so the invariants live
here: a memory is acknowledged (its id returned) only once its file is durable; the index is
told afterwards and can always be rebuilt from the files; forgetting removes the file first.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo_shell import batches, paths, readcache, records
from memo_shell.config import Settings, default_data_dir
from memo_shell.disk import Disk
from memo_shell.errors import NotFound, StoreError
from memo_shell.forgetting import Forgetting
from memo_shell.index import EntityInfo, Index, MemoryMeta, SessionInfo
from memo_shell.readcache import ReadCache
from memo_shell.records import CorruptRecord, Memory, Provenance, UnsupportedVersion
from memo_shell.selection import Selection
from memo_shell.store import AlreadyExists, Quarantined, Store

__all__ = ["Hit", "Memories", "Selection", "open"]

if TYPE_CHECKING:
    from memo_shell.index.data import IndexData
    from memo_shell.index.schema import IndexHit
    from memo_shell.recall.options import RecallOptions

#: Import writes this many records per durable batch (two syncs each).
BATCH_SIZE = 2000
_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class Hit:
    """One recalled memory, its fused score, and the reasons it was recalled."""

    memory: Memory
    score: float
    why: list[str]


#: Every open handle, so a forked child can replace locks a parent thread may have held.
_open_handles: weakref.WeakSet[Memories] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handle in list(_open_handles):
        handle._cache.reset_after_fork()
        handle._start_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Memories(Forgetting):
    """A handle on one data directory. Use as a context manager, or call ``close()``.

    ``embedder`` (anything with ``id`` and ``embed(texts)``) adds vectors to recall; with
    ``own_embedder`` this handle closes it too. ``settings`` only names the data directory.
    Safe to use in a child forked (``multiprocessing`` with fork) after it was opened: ids
    never repeat across the fork, and the index restarts any load the parent had in flight.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        settings: Settings | None = None,
        disk: Disk | None = None,
        embedder: Any | None = None,
        own_embedder: bool = False,
        preload: bool = True,
    ) -> None:
        root = Path(data_dir).expanduser() if data_dir is not None else None
        if root is None:
            root = settings.data_dir if settings is not None else default_data_dir()
        self.settings = settings
        self.store = Store(root, disk)
        # The library never builds backends: the surfaces wire the configured embedder
        # (memo_shell.wiring.open_memories) and hand this handle its closing.
        self._owned_embedder = embedder if own_embedder else None
        self._recall_options: RecallOptions | None = None
        # per device, outside the synced data dir (see memo_shell.paths)
        self.index = Index(self.store, paths.index_dir(root), embedder=embedder)
        self._cache = ReadCache(_CACHE_SIZE)
        self._index_started = False
        self._closed = False
        self._start_lock = threading.Lock()
        _open_handles.add(self)
        if preload:
            self._ensure_index()

    def _ensure_index(self) -> Index:
        """Start loading the index (once). Short-lived CLI commands never pay for it."""
        if not self._index_started:
            with self._start_lock:
                if not self._index_started:
                    self.index.start()
                    self._index_started = True
        return self.index

    # ------------------------------------------------------------------ context manager

    def __enter__(self) -> Memories:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Persist the index if it changed and stop its background work (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.index.close()
        if self._owned_embedder is not None:
            self._owned_embedder.close()

    @property
    def data_dir(self) -> Path:
        return self.store.root

    def _evict(self, memory_id: str) -> None:
        self._cache.evict(memory_id)

    # ------------------------------------------------------------------ writing

    def add(
        self,
        user: str,
        assistant: str = "",
        session: str = "default",
        at: datetime | None = None,
        meta: dict[str, str] | None = None,
        *,
        model: str = "",
        backend: str = "",
        provenance: Provenance | str = Provenance.TYPED,
        tags: Sequence[str] = (),
        pinned: bool = False,
    ) -> str:
        """Store one interaction; returns its id only after the file is durable on disk."""
        memory = records.make_memory(
            user=user,
            assistant=assistant,
            session=session,
            at=at,
            meta=meta,
            model=model,
            backend=backend,
            provenance=provenance,
            tags=tuple(tags),
            pinned=pinned,
        )
        for _attempt in range(8):
            try:
                self.store.write(memory)
                break
            except AlreadyExists:
                # Another process (a clock set back, a copied generator) minted this id: never
                # replace its memory; take a fresh random id of the same millisecond (not the
                # next in sequence, which that process may have taken too). Eight misses in a
                # row cannot be chance.
                millis = records.id_milliseconds(memory.id)
                fresh = records.id_from_parts(millis, int.from_bytes(os.urandom(10), "big"))
                memory = memory.with_changes(id=fresh)
        else:
            raise AlreadyExists(f"could not find a free id for a memory at {memory.created_at}")
        self.index.add(memory)
        return memory.id

    def add_many(
        self,
        memories: Iterable[Memory],
        *,
        progress: Callable[[int], None] | None = None,
        present: list[str] | None = None,
        added: list[str] | None = None,
    ) -> list[str]:
        """Store prepared records in durable batches; returns the ids written.

        Each batch is acknowledged (and indexed) as a whole, so an interrupted import keeps every
        batch that completed and nothing of the one written ahead. A record whose id is already
        in the store is never replaced: its id goes to ``present`` instead. ``added`` (if
        given) grows batch by batch, so a caller interrupted mid-import still knows what was
        stored.
        """
        # the store writes each batch while the index takes the one before (memo_shell.batches)
        return batches.add_in_batches(
            self.store,
            self.index.add_many,
            memories,
            size=BATCH_SIZE,
            ids=[] if added is None else added,
            progress=progress,
            present=present,
        )

    def _rewrite(self, memory: Memory) -> Memory:
        """Replace a record's file; NotFound if another process forgot it meanwhile."""
        self._evict(memory.id)
        if self.store.tombstones.has(memory.id):
            raise NotFound(
                f"memory {memory.id} was forgotten (here or on another device); "
                "it cannot be pinned or tagged"
            )
        self.store.replace(memory)
        self.index.update(memory)
        return memory

    def pin(self, memory_id: str, pinned: bool = True) -> Memory:
        """Pinned memories are always eligible for recall and never pruned by filters."""
        memory = self.get(memory_id)
        if memory.pinned == pinned:
            return memory
        return self._rewrite(memory.with_changes(pinned=pinned))

    def unpin(self, memory_id: str) -> Memory:
        return self.pin(memory_id, False)

    def set_tags(self, memory_id: str, tags: Sequence[str]) -> Memory:
        memory = self.get(memory_id)
        cleaned = tuple(dict.fromkeys(t.strip() for t in tags if t.strip()))
        if cleaned == memory.tags:
            return memory
        return self._rewrite(memory.with_changes(tags=cleaned))

    def edit(
        self, memory_id: str, *, user: str | None = None, assistant: str | None = None
    ) -> Memory:
        """Correct what a memory says (either side); recall follows at once.

        The record keeps its id, time, session and provenance; ``meta`` records the edit
        (``edited``: which sides, ``edited_at``: when). The previous text is *not* kept: an edit
        is how a user corrects a wrong claim or removes something said in error, and a copy of
        the old words would keep exactly what they meant to remove (undo lives in the UI, which
        still holds the old record). The index entry is rebuilt (words, entities and vectors).
        """
        memory = self.get(memory_id)
        changes: dict[str, str] = {}
        if user is not None and records.clean_text(user) != memory.user:
            if not user.strip():
                raise records.InvalidRecord("a memory needs the user's side; forget it instead")
            changes["user"] = records.clean_text(user)
        if assistant is not None and records.clean_text(assistant) != memory.assistant:
            changes["assistant"] = records.clean_text(assistant)
        if not changes:
            return memory
        sides = {*memory.meta.get("edited", "").split(","), *changes} - {""}
        meta = dict(memory.meta) | {
            "edited": ",".join(sorted(sides)),
            "edited_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        edited = memory.with_changes(**changes, meta=meta)
        self._evict(memory.id)
        self.store.replace(edited)
        index = self._ensure_index()
        index.remove(memory.id)
        index.add(edited)
        return edited

    def rename_session(self, old: str, new: str) -> int:
        """Move every memory of session ``old`` to ``new``; returns how many moved.

        Each file is rewritten durably; the index entry is rebuilt (remove + add) because a
        session is part of how recall groups memories, not a mere label like pins and tags.
        """
        index = self._ensure_index()
        index.wait_ready()
        moved = 0
        for memory_id in self.select(Selection(session=old)):
            try:
                memory = self.get(memory_id).with_changes(session=new)
            except (NotFound, CorruptRecord, UnsupportedVersion):
                continue
            self._evict(memory_id)
            self.store.replace(memory)
            index.remove(memory_id)
            index.add(memory)
            moved += 1
        return moved

    def sessions(self) -> list[SessionInfo]:
        """Every session with its count and date range, most recently active first."""
        return self._ensure_index().sessions()

    # ------------------------------------------------------------------ reading

    def get(self, memory_id: str) -> Memory:
        """Read one memory (from a small LRU cache when recently seen).

        A cached copy is used only while its file is unchanged (one ``stat``): another process
        may have pinned, re-tagged or forgotten the memory since, or a sync tool replaced it.
        The stat comes before the read, so a change racing the read is seen next time.
        """
        memory_id = memory_id.strip().upper()
        if not records.is_valid_id(memory_id):
            return self.store.read(memory_id)  # raises NotFound with the reason
        signature = readcache.signature(self.store.path_for(memory_id))
        if signature is None:
            self._evict(memory_id)
            if self.store.tombstones.has(memory_id):
                raise NotFound(f"memory {memory_id} was forgotten (here or on another device)")
            raise NotFound(f"no memory with id {memory_id}")
        cached = self._cache.get(memory_id, signature)
        if cached is not None:
            return cached
        memory = self.store.read(memory_id)
        self._cache.put(memory, signature)
        return memory

    def exists(self, memory_id: str) -> bool:
        """Whether a memory's file is there (one ``stat``): stale views drop it, imports skip it."""
        memory_id = memory_id.strip().upper()
        return records.is_valid_id(memory_id) and self.store.path_for(memory_id).exists()

    def _get_or_none(self, memory_id: str) -> Memory | None:
        """The memory, or None if it is gone, damaged (quarantined) or unreadable (say, mode
        000: noted in ``store.unreadable``), so one bad file never stops a listing."""
        try:
            return self.get(memory_id)
        except (NotFound, CorruptRecord, UnsupportedVersion, StoreError):
            return None

    @property
    def recall_options(self) -> RecallOptions:
        """Ranking settings (the benches' ablations switch them). Built on first use: the
        recall package imports numpy, and opening a store must not wait for that."""
        if self._recall_options is None:
            from memo_shell.recall.options import RecallOptions

            self._recall_options = RecallOptions()
        return self._recall_options

    @recall_options.setter
    def recall_options(self, value: RecallOptions) -> None:
        self._recall_options = value

    def rank(
        self,
        query: str,
        k: int = 10,
        *,
        session: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[IndexHit]:
        """Ids, scores and reasons of the ``k`` best memories for ``query``, without reading
        their files (what :meth:`recall` builds on; the recall bench times it)."""
        from memo_shell import recall  # numpy and the ranking load with the first question

        if k <= 0:
            return []
        options = self.recall_options

        def ranking(data: IndexData, query_vector: list[float] | None) -> list[IndexHit]:
            return recall.search(
                data,
                query,
                k,
                session=session,
                exclude=exclude,
                options=options,
                vectors=data.vectors,
                query_vector=query_vector,
            )

        return self._ensure_index().search(ranking, query, vectors=options.vectors)

    def recall(
        self,
        query: str,
        k: int = 10,
        *,
        session: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Hit]:
        """The ``k`` memories most relevant to ``query``, best first, each with its reasons.

        ``exclude``: ids already in front of the model (the session's recent turns), so recall
        spends its ``k`` on memories the model would not otherwise see.
        """
        if k <= 0:
            return []
        hits: list[Hit] = []
        for found in self.rank(query, k, session=session, exclude=exclude):
            try:
                memory = self.get(found.id)
            except (NotFound, CorruptRecord, UnsupportedVersion):
                self.index.remove(found.id)  # forgotten or damaged behind our back: drop it
                continue
            except StoreError:
                continue  # unreadable for now (permissions, I/O): skipped, noted, kept
            hits.append(Hit(memory, found.score, list(found.why)))
        return hits

    def iter_memories(
        self,
        *,
        newest_first: bool = True,
        session: str | None = None,
        where: Selection | None = None,
    ) -> Iterator[Memory]:
        """Every readable memory in time order (only those ``where`` admits, only ``session``'s
        if given) read from the files; damaged files are quarantined and skipped."""
        where = where or Selection()
        if session is not None:
            where = replace(where, session=session)
        for memory_id in self.store.iter_ids(newest_first=newest_first):
            memory = self._get_or_none(memory_id)
            if memory is not None and where.admits(memory):
                yield memory

    def select(self, where: Selection | None = None, *, newest_first: bool = True) -> list[str]:
        """Ids of the memories ``where`` admits, in time order, from the index's metadata (no
        file is read: the browser lists 100k memories this way). Waits for the index."""
        where = where or Selection()
        return self._ensure_index().ids(
            session=where.session,
            since=where.since,
            until=where.until,
            pinned=where.pinned,
            newest_first=newest_first,
        )

    def meta(self, memory_id: str) -> MemoryMeta | None:
        """What the index holds about a memory (session, time, pin, tags, preview): no file read."""
        return self._ensure_index().meta(memory_id)

    def entities(self, limit: int | None = None) -> list[EntityInfo]:
        """Entities found in memories, by how many memories mention them, most first."""
        return self._ensure_index().entities(limit)

    def neighbours(self, entity: str, limit: int = 20) -> list[tuple[str, float]]:
        """Entities that co-occur with ``entity``, with the number of memories they share."""
        return self._ensure_index().neighbours(entity, limit)

    def mentions(self, entity: str) -> list[str]:
        """Ids of the memories that mention ``entity``, newest first."""
        return self._ensure_index().mentions(entity)

    def recent(self, limit: int = 20, *, session: str | None = None) -> list[Memory]:
        """The ``limit`` newest readable memories, newest first (only ``session``'s if given).

        A session is looked up in the index (one session may be a sliver of a large store);
        without one the newest files are read directly, so no index load is needed.
        """
        if limit <= 0:
            return []
        if session is None:
            return list(islice(self.iter_memories(newest_first=True), limit))
        found = []
        for memory_id in self.select(Selection(session=session)):
            memory = self._get_or_none(memory_id)
            if memory is not None:
                found.append(memory)
                if len(found) == limit:
                    break
        return found

    def ids(self, *, newest_first: bool = False) -> list[str]:
        forgotten = self.store.tombstones.ids()  # files a sync brought back, not yet deleted
        return [i for i in self.store.iter_ids(newest_first=newest_first) if i not in forgotten]

    def count(self) -> int:
        forgotten = self.store.tombstones.ids()
        return sum(1 for i in self.store.iter_ids() if i not in forgotten)

    # ------------------------------------------------------------------ maintenance

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the index has loaded and caught up with the files."""
        return self._ensure_index().wait_ready(timeout)

    @property
    def index_state(self) -> str:
        """``loading``, ``ready`` or ``rebuilding``."""
        return self.index.state

    def index_stats(self) -> dict[str, Any]:
        """The index's counts at once (None while it loads): no wait, no file read."""
        return self.index.stats()

    @property
    def notices(self) -> list[str]:
        """What went wrong in the index so far (it degrades rather than fails), oldest first."""
        return list(self.index.notices)

    def on_notice(self, listener: Callable[[str], object]) -> None:
        """Call ``listener`` with each new notice, from whichever thread noticed it."""
        self.index.notice_listeners.append(listener)

    def drop_stale(self, memory_id: str) -> None:
        """Drop the index entry of a memory whose file is gone (or was quarantined as damaged).
        The file is the truth: an entry whose file is there stays."""
        if not self.exists(memory_id):
            self.index.remove(memory_id)

    def is_empty(self) -> bool:
        """Whether no record file is there (one directory listing, no index needed)."""
        return next(self.store.iter_ids(), None) is None

    def disk_usage(self) -> int:
        """Bytes of record files (a walk of the store: slow on a big one)."""
        return self.store.disk_usage()

    def permission_problem(self) -> str | None:
        """A sentence if other users can read the data directory, else None."""
        return self.store.permission_problem()

    @property
    def quarantined(self) -> list[Quarantined]:
        """Damaged files this handle moved out of the memory folders, as it met them."""
        return list(self.store.quarantined)

    @property
    def unreadable(self) -> dict[Path, str]:
        """Record files this handle could not read (say, mode 000), with why; left in place."""
        return dict(self.store.unreadable)

    def check_store(self, *, fix: bool = False) -> dict[str, Any]:
        """What a sync tool left behind (conflict copies, stale temp files, forgotten memories
        that came back or sit in quarantine) and index-vs-file mismatches; ``fix`` repairs them.
        Call it before anything else on this handle: loading the index tidies some of them."""
        from memo_shell import storecheck

        return storecheck.check(self, fix=fix)

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild every derived structure from the record files; returns records indexed."""
        return self.index.rebuild(progress)

    def stats(self) -> dict[str, Any]:
        """Counts and sizes for ``mem stats`` and the UI footer (waits for the index)."""
        index = self._ensure_index()
        index.wait_ready()
        index_stats = index.stats()
        ids = self.ids()
        return {
            "data_dir": str(self.data_dir),
            "memories": len(ids),
            "sessions": index_stats.get("sessions", 0),
            "pinned": index_stats.get("pinned", 0),
            "oldest": records.id_datetime(ids[0]).isoformat() if ids else None,
            "newest": records.id_datetime(ids[-1]).isoformat() if ids else None,
            "disk_bytes": self.store.disk_usage(),
            "quarantined": len(self.store.quarantined),
            "index": index_stats,
        }


def open(  # mirrors builtins.open on purpose: `memo_shell.open(path)`
    data_dir: Path | str | None = None,
    *,
    settings: Settings | None = None,
    embedder: Any | None = None,
    preload: bool = True,
) -> Memories:
    """Open (creating if needed) the memory store in ``data_dir``; returns at once.

    The index loads in the background; ``add`` works immediately and ``recall`` waits for the
    index only if it has not finished loading.
    """
    return Memories(data_dir, settings=settings, embedder=embedder, preload=preload)
