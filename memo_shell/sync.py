"""What a sync tool leaves in the memory folders, put right on every scan.

``Store.scan`` hands its result here (``reconcile``) before anyone sees it:

- a record whose id has a marker in ``forgotten/`` came back (another device edited it while
  this one forgot it): its file is deleted again, forget wins;
- a conflict copy of a record (``memo_shell.conflicts``) is merged into the live record and
  deleted: pinned if either side was, the union of the tags, the text of the newer side (the
  file modified last) with the other side's text kept in ``meta`` when they differ. A copy of a
  forgotten id is just deleted; a copy with no live record becomes the record;
- a sync tool's temp file is left alone (the tool finishes or removes it), never quarantined.

Everything happens under the store's lock, so a pin in another process cannot slip between the
read and the rewrite of a merge.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from memo_shell import records
from memo_shell.conflicts import conflict_original, is_sync_temp
from memo_shell.disk import FileTooLarge, NotARegularFile
from memo_shell.records import Memory, RecordError

if TYPE_CHECKING:
    from memo_shell.store import ScanResult, Store

#: How often a long-running process tidies the forget markers (see Tombstones.tidy).
TIDY_EVERY_SECONDS = 3600.0

#: meta keys holding the text of the side of a conflict that lost (newer edits win the text)
OTHER_USER = "sync-conflict.user"
OTHER_ASSISTANT = "sync-conflict.assistant"


def merge(newer: Memory, older: Memory) -> Memory:
    """One record from two versions of it: nothing either device added is lost."""
    tags = tuple(dict.fromkeys((*newer.tags, *older.tags)))[: records.MAX_TAGS]
    meta = {**older.meta, **newer.meta}
    if (older.user, older.assistant) != (newer.user, newer.assistant):
        n = 1
        user_key, assistant_key = OTHER_USER, OTHER_ASSISTANT
        while meta.get(user_key, older.user) != older.user and n < 50:
            n += 1
            user_key, assistant_key = f"{OTHER_USER}.{n}", f"{OTHER_ASSISTANT}.{n}"
        meta[user_key] = older.user
        meta[assistant_key] = older.assistant
    return newer.with_changes(pinned=newer.pinned or older.pinned, tags=tags, meta=meta)


def conflict_id(name: str) -> str | None:
    """The record id a conflict copy's file name stands for, or None."""
    original = conflict_original(name)
    if original is None or not original.endswith(".memo"):
        return None
    memory_id = original[: -len(".memo")]
    return memory_id if records.is_valid_id(memory_id) else None


def reconcile(store: Store, result: ScanResult) -> ScanResult:
    """Apply forget markers and merge conflict copies found by one scan (see module doc)."""
    forgotten = store.tombstones.ids()
    if forgotten and time.monotonic() >= store.tombstones.next_tidy:
        store.tombstones.next_tidy = time.monotonic() + TIDY_EVERY_SECONDS
        if store.tombstones.tidy():  # markers' conflict copies folded, expired markers gone
            forgotten = store.tombstones.ids()
    if forgotten:
        back = [memory_id for memory_id in result.ids if memory_id in forgotten]
        for memory_id in back:
            drop_forgotten(store, memory_id)
        if back:
            result.ids = [memory_id for memory_id in result.ids if memory_id not in forgotten]
    foreign: list[Path] = []
    added = False
    for path in result.foreign:
        if is_sync_temp(path.name):
            result.in_flight.append(path)
            continue
        copy_of = conflict_id(path.name)
        outcome = fold(store, path, copy_of) if copy_of is not None else None
        if outcome is None:
            foreign.append(path)
        elif outcome == "created" and copy_of is not None:
            result.ids.append(copy_of)
            added = True
    result.foreign = foreign
    if added:
        result.ids = sorted(set(result.ids))
    return result


def drop_forgotten(store: Store, memory_id: str) -> bool:
    """Delete the record file of a forgotten id (it came back through a sync)."""
    path = store.path_for(memory_id)
    with store._changing("deleting a forgotten memory that came back"):
        try:
            store.disk.unlink(path)
            store.disk.fsync_dir(path.parent)
        except OSError:
            return False
    return True


def _read(store: Store, path: Path) -> tuple[Memory, int] | None:
    """A copy's record and modification time (ns), or None if it is not a readable record."""
    try:
        mtime = os.stat(path, follow_symlinks=False).st_mtime_ns
        return records.decode(store.disk.read(path, records.MAX_FILE_BYTES)), mtime
    except (OSError, RecordError, FileTooLarge, NotARegularFile):
        return None


def fold(store: Store, copy: Path, memory_id: str) -> str | None:
    """Merge one conflict copy into its record and delete it.

    Returns "merged", "dropped" (its id was forgotten), "created" (there was no live record),
    or None when the copy is not a readable record of that id (the caller quarantines it).
    """
    with store._changing("merging a sync conflict copy"):
        if store.tombstones.has(memory_id):
            outcome = "dropped"
        else:
            theirs = _read(store, copy)
            if theirs is None or theirs[0].id != memory_id:
                return None
            live_path = store.path_for(memory_id)
            ours = _read(store, live_path) if live_path.exists() else None
            if ours is None or ours[0].id != memory_id:
                if live_path.exists():
                    return None  # the live file is damaged: the scan's reader quarantines it
                store.write(theirs[0])
                outcome = "created"
            else:
                newer, older = (ours, theirs) if ours[1] >= theirs[1] else (theirs, ours)
                merged = merge(newer[0], older[0])
                if merged != ours[0]:
                    store.write(merged, overwrite=True)  # a rewrite of the live record
                outcome = "merged"
        with contextlib.suppress(FileNotFoundError):
            store.disk.unlink(copy)
        with contextlib.suppress(OSError):
            store.disk.fsync_dir(copy.parent)
    return outcome
