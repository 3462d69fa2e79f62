"""What a sync tool may have left in a data dir, and whether the index agrees with the files.

Backs ``memo-shell doctor`` (through ``Memories.check_store``). Looks before anything tidies:
opening the index would merge conflict copies and delete forgotten memories that came back,
so the raw state is listed first, then (with ``fix``) put right, then the index is compared
with the record files, memory by memory (ids, pins, tags).
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo_shell import paths
from memo_shell.conflicts import conflict_original, is_sync_temp
from memo_shell.errors import MemoShellError
from memo_shell.records import RecordError
from memo_shell.store import STALE_TEMP_SECONDS

if TYPE_CHECKING:
    from memo_shell.api import Memories


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.is_symlink())


def _quarantined_id(name: str) -> str:
    """The id a quarantined file's name starts with (``<id>.memo``, ``<id>.memo.2``, copies)."""
    return name[:26]


def raw_state(memories: Memories) -> dict[str, list[str]]:
    """Conflict copies, sync temp files (stale ones), forgotten memories whose files are back,
    and quarantined copies of forgotten ids, as paths."""
    store = memories.store
    forgotten = store.tombstones.ids()
    now = time.time()
    conflicts, temps, back = [], [], []
    for path in _files(store.memories_dir) + _files(store.tombstones.directory):
        name = path.name
        if conflict_original(name) is not None:
            conflicts.append(str(path))
        elif is_sync_temp(name):
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > STALE_TEMP_SECONDS:
                    temps.append(str(path))
        elif name.endswith(".memo") and name[:-5] in forgotten:
            back.append(str(path))
    quarantined = [
        str(p)
        for p in _files(store.quarantine_dir)
        if p.name != "log.jsonl" and _quarantined_id(p.name) in forgotten
    ]
    return {
        "conflict_copies": conflicts,
        "stale_sync_temps": temps,
        "forgotten_but_back": back,
        "forgotten_in_quarantine": quarantined,
    }


def index_mismatches(memories: Memories) -> dict[str, list[str]]:
    """Ids the index lacks, ids it has without a file, and ids whose pin or tags differ."""
    index = memories.index
    index.wait_ready()
    on_disk = set(memories.ids())
    indexed = set(index.ids())
    stale = []
    for memory_id in sorted(on_disk & indexed):
        meta = index.meta(memory_id)
        try:
            memory = memories.get(memory_id)
        except (MemoShellError, RecordError):
            continue
        if meta is None or (meta.pinned, tuple(meta.tags)) != (memory.pinned, memory.tags):
            stale.append(memory_id)
    return {
        "index_missing": sorted(on_disk - indexed),
        "index_extra": sorted(indexed - on_disk),
        "index_stale": stale,
    }


def check(memories: Memories, *, fix: bool = False) -> dict[str, Any]:
    """The report (see the module doc); with ``fix``, repaired, and ``fixed`` says what."""
    found = raw_state(memories)
    fixed: dict[str, int] = {}
    if fix:
        scan = memories.store.scan()  # merges conflict copies, deletes forgotten files
        fixed["merged_or_dropped"] = len(found["conflict_copies"]) + len(
            found["forgotten_but_back"]
        )
        memories.store.quarantine_foreign(scan.foreign)  # copies that were not readable records
        fixed["markers_tidied"] = memories.store.tombstones.tidy()
        for key in ("stale_sync_temps", "forgotten_in_quarantine"):
            count = 0
            for name in found[key]:
                with contextlib.suppress(OSError):
                    os.unlink(name)
                    count += 1
            fixed[key] = count
    mismatches = index_mismatches(memories)
    if fix and any(mismatches.values()):
        memories.reindex()
        fixed["reindexed"] = 1
        mismatches = index_mismatches(memories)
    report: dict[str, Any] = {"device_dir": str(paths.device_dir(memories.data_dir))}
    report.update(found)
    report.update(mismatches)
    report["ok"] = not any(found.values()) and not any(mismatches.values())
    if fix:
        report["fixed"] = fixed
    return report
