"""The record tree's date folders: ``memories/YYYY/MM/DD/``, one per UTC day of the ids' time.

Which ids belong in a folder, the names of record and temp files in it, and the walk of every
folder in time order, listing only those whose mtime says they changed when the caller knows
the others (``memo_shell.store`` reads and writes the records; this module only knows the
layout).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

from memo_shell import records

RECORD_SUFFIX = ".memo"
TEMP_SUFFIX = ".tmp"

_counter = itertools.count()


def temp_name(memory_id: str) -> str:
    """A fresh name for a record's temp file: ``.<ULID>.<pid>.<counter>.tmp``. The pid lets a
    sweep tell a live writer's temp file from a crashed one's; the counter keeps two writes of
    one id (a rewrite racing an import) apart."""
    return f".{memory_id}.{os.getpid()}.{next(_counter)}{TEMP_SUFFIX}"


def id_prefix_bounds(directory: Path) -> tuple[str, str]:
    """[low, high) of the first ten id characters (the time) of records in a ``YYYY/MM/DD``
    shard; an empty range for a directory that is not a date."""
    days = day_number(directory)
    if days < 0:
        return ("", "")
    start = days * 86_400_000
    return (time_prefix(start), time_prefix(start + 86_400_000))


def day_number(directory: Path) -> int:
    """Days since 1970 of a ``YYYY/MM/DD`` folder (-1 if it is not a date)."""
    try:
        year, month, day = (int(part) for part in directory.parts[-3:])
        return (date(year, month, day) - date(1970, 1, 1)).days
    except ValueError:
        return -1


def time_prefix(milliseconds: int) -> str:
    """The ten base32 characters a ULID of this time starts with (they sort like the time)."""
    return records.id_from_parts(milliseconds, 0)[:10]


def walk_days(
    memories_dir: Path,
    newest_first: bool,
    unchanged: Callable[[Path, int], bool] | None = None,
    skipped: dict[Path, int] | None = None,
) -> Iterator[tuple[Path, list[os.DirEntry[str]]]]:
    """Yield each date folder under ``memories_dir`` with its files sorted by name, in time
    order. A folder for which ``unchanged(folder, mtime ns)`` is true is not listed but put in
    ``skipped``."""

    def sorted_dirs(path: Path) -> list[Path]:
        try:
            with os.scandir(path) as it:
                names = [e.name for e in it if e.is_dir(follow_symlinks=False)]
        except FileNotFoundError:
            return []
        return [path / n for n in sorted(names, reverse=newest_first) if n.isdigit()]

    for year in sorted_dirs(memories_dir):
        for month in sorted_dirs(year):
            for day in sorted_dirs(month):
                if unchanged is not None and skipped is not None:
                    try:
                        mtime = os.stat(day).st_mtime_ns
                    except OSError:
                        continue
                    if unchanged(day, mtime):
                        skipped[day] = mtime
                        continue
                try:
                    with os.scandir(day) as it:
                        entries = [e for e in it if e.is_file(follow_symlinks=False)]
                except FileNotFoundError:
                    continue
                entries.sort(key=lambda e: e.name, reverse=newest_first)
                yield day, entries
