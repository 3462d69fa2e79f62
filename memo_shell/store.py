"""The durable store: one record file per memory, written atomically, kept as the source of truth.

Layout under the data directory::

    memories/YYYY/MM/DD/<ULID>.memo     one record (UTC date of the id's time part)
    forgotten/<ULID>                    an empty marker per forgotten id (memo_shell.tombstones)

Files that failed to decode go to a per-device quarantine (``memo_shell.paths``), with a log.

The date shards keep every directory small, make "the newest N" a walk of the last few
directories, and let backup and sync tools see one new file per interaction. A record's path is a
pure function of its id, so ``read(id)`` needs no index.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from memo_shell import locks, paths, records, shards, sync
from memo_shell import quarantine as _quarantine
from memo_shell.disk import Disk, FileTooLarge, NotARegularFile, StrPath
from memo_shell.errors import NotFound, StoreError, describe_os_error
from memo_shell.records import CorruptRecord, Memory
from memo_shell.store_batch import BatchWrites
from memo_shell.tombstones import Tombstones

RECORD_SUFFIX = shards.RECORD_SUFFIX
TEMP_SUFFIX = shards.TEMP_SUFFIX
#: Lock file name before 0.2 (in the data dir); now ``Store.lock_path``, per device.
LOCK_NAME = ".lock"
#: A temp file whose writer is gone (or that is older than this) is debris from a crash.
STALE_TEMP_SECONDS = 3600.0
#: Our temp files, exactly: ``.<ULID>.<pid>.<counter>.tmp`` (see ``shards.temp_name``).
_OUR_TEMP = re.compile(r"\.[0-9A-HJKMNP-TV-Z]{26}\.(\d+)\.\d+\.tmp")
#: Another tool's copy of a record in flight: a hidden or marked file that embeds a record's
#: name, e.g. Syncthing's ``.syncthing.<id>.memo.tmp`` / ``~syncthing~<id>.memo.tmp`` and
#: rsync's ``.<id>.memo.XXXXXX``. Moving or deleting one breaks that tool's transfer (its final
#: rename fails), so it is left alone until it is older than STALE_TEMP_SECONDS.
_IN_FLIGHT = re.compile(r"[.~].*[0-9A-HJKMNP-TV-Z]{26}\.memo.+")


class AlreadyExists(StoreError):
    """A new record's id names a file that is already there: nothing was written or replaced."""


@dataclass
class ScanResult:
    """One walk of the memories tree: what is a record, what is debris, what is foreign."""

    ids: list[str] = field(default_factory=list)
    temps: list[Path] = field(default_factory=list)
    foreign: list[Path] = field(default_factory=list)
    #: other tools' files still being written (see _IN_FLIGHT): neither ours nor foreign yet
    in_flight: list[Path] = field(default_factory=list)
    #: the date folder of each record id found in place (lets the index stat folders, not files)
    shards: dict[Path, list[str]] = field(default_factory=dict)
    #: date folders not listed because the caller knew them unchanged: (folder, its mtime ns)
    skipped: dict[Path, int] = field(default_factory=dict)
    #: the same, as days since 1970 (the day a record id's time falls on, UTC)
    skipped_days: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Quarantined:
    """A file moved out of the way because it could not be decoded."""

    original: Path
    moved_to: Path
    reason: str


def _stale(entry: os.DirEntry[str], now: float) -> bool:
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS
    except OSError:
        return False


class Store(BatchWrites):
    """Atomic, durable record files. Thread-safe for distinct ids; process-safe by design.

    Two processes never create the same file (ids are unique), and every visible file is
    complete (written under a temp name, fsynced, then renamed), so adds take no lock. Rewrites
    (pin, tags) and deletes do take one (``<data dir>/.lock``): a rewrite is a read, then a
    rename over the file, and without the lock a forget by another process landing in between
    would be undone by the rename, bringing a forgotten memory back.
    """

    def __init__(self, root: Path, disk: Disk | None = None) -> None:
        self.root = Path(root).expanduser()
        self.disk = disk or Disk()
        self.memories_dir = self.root / "memories"
        # per device, outside the synced data (see memo_shell.paths)
        self.quarantine_dir = paths.quarantine_dir(self.root)
        self.lock_path = paths.store_lock(self.root)
        self.tombstones = Tombstones(self.root)
        self._known_dirs: set[Path] = set()
        self._shards: dict[int, Path] = {}
        self.quarantined: list[Quarantined] = []
        #: record files that exist but could not be read (permissions, I/O): path -> why.
        #: Listing skips them and the CLI names each, rather than failing as a whole.
        self.unreadable: dict[Path, str] = {}
        self._quarantine_ids: _quarantine.IdCache = {}  # what quarantined files decode as
        self._ensure_dir(self.memories_dir)
        with contextlib.suppress(OSError):
            paths.prepare(self.root)

    # ----------------------------------------------------------------- paths and directories

    def path_for(self, memory_id: str) -> Path:
        """Where the record with this id lives (or would live). Rejects anything not an id."""
        day = records.id_milliseconds(memory_id) // 86_400_000
        shard = self._shards.get(day)
        if shard is None:
            when = records.id_datetime(memory_id)
            shard = self.memories_dir / f"{when.year:04d}/{when.month:02d}/{when.day:02d}"
            self._shards[day] = shard
        return shard / f"{memory_id}{RECORD_SUFFIX}"

    def _ensure_dir(self, path: Path, *, sync: bool = True) -> None:
        """Create ``path`` and missing parents (0700) and make every level's entry durable.

        The parents are fsynced even when the directories already exist, once per process:
        a crash between another run's ``mkdir`` and its parent fsync (or a batch that failed
        before its ``syncfs``) leaves a directory that exists but could vanish on power loss,
        and nothing on disk tells the two apart. A clean directory fsync costs ~0.1 ms.
        ``sync=False`` is for batches, whose closing ``syncfs`` makes the entries durable.
        """
        if path in self._known_dirs:
            return
        inside = [path, *path.parents]
        inside = inside[: inside.index(self.root)] if self.root in inside else [path]
        for level in inside:
            # A date folder that is a symlink would put acknowledged memories outside the data
            # dir, where the listing (which never follows links) would never find them again.
            below = level.is_relative_to(self.memories_dir) and level != self.memories_dir
            if below and level.is_symlink():
                raise StoreError(
                    f"{level} is a symbolic link; memo-shell keeps every memory inside "
                    "its data directory and will not write through it (replace the link "
                    "with a real folder)"
                )
        directory = self.root
        for attempt in range(3):
            try:
                if not self.root.is_dir():  # first run: create the data dir, durably
                    for directory in reversed([self.root, *self.root.parents]):
                        if not directory.is_dir():
                            with contextlib.suppress(FileExistsError):
                                self.disk.mkdir(directory)
                    self.disk.fsync_dir(self.root.parent)
                for directory in reversed(inside):
                    if not directory.is_dir():
                        with contextlib.suppress(FileExistsError):  # another process was first
                            self.disk.mkdir(directory)
                if sync:
                    for directory in inside:
                        self.disk.fsync_dir(directory.parent)
                break
            except FileNotFoundError as exc:
                # a level vanished as we made the next (`forget --all` in another process
                # removes the tree): make them again, a few times
                if attempt == 2:
                    raise StoreError(describe_os_error(exc, f"creating {directory}")) from exc
            except OSError as exc:
                raise StoreError(describe_os_error(exc, f"creating {directory}")) from exc
        self._known_dirs.add(path)

    def permission_problem(self) -> str | None:
        """A warning if other users can read the data directory, else None."""
        try:
            mode = self.root.stat().st_mode
        except OSError:
            return None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            return (
                f"{self.root} is readable by other users (mode {stat.filemode(mode)}); "
                f"run: chmod 700 {self.root}"
            )
        return None

    # ----------------------------------------------------------------- writing

    def _temp_path(self, final: Path) -> Path:
        return final.with_name(shards.temp_name(final.stem))

    def _write_temp(self, final: Path, data: bytes, *, sync: bool) -> Path:
        self._ensure_dir(final.parent, sync=sync)
        temp = self._temp_path(final)
        try:
            fd = self.disk.open_new(temp)
        except FileNotFoundError:
            # Another process removed the folder since we made it (`mem forget --all` wipes
            # the tree): the cache of folders known to exist is stale, so heal it and retry.
            self._known_dirs.clear()
            self._ensure_dir(final.parent, sync=sync)
            fd = self.disk.open_new(temp)
        try:
            try:
                self.disk.write_all(fd, data)
                if sync:
                    self.disk.fsync(fd)
            finally:
                self.disk.close(fd)
        except BaseException:
            self._discard(temp)
            raise
        return temp

    def _discard(self, path: StrPath) -> None:
        with contextlib.suppress(OSError):
            self.disk.unlink(path)

    def write(self, memory: Memory, *, overwrite: bool = False) -> None:
        """Write one record durably; returns only once it would survive power loss.

        temp file in the same directory -> write all -> fsync -> link (a new record) or rename
        (``overwrite``: a rewrite of a known memory) -> fsync directory. A new record never
        replaces a file: if its id is taken, AlreadyExists is raised and nothing changes. On
        any failure the final name is left as it was before the call and the error says why.
        """
        data = records.encode(memory)
        final = self.path_for(memory.id)
        try:
            self._write_once(memory.id, data, final, overwrite)
        except FileNotFoundError as exc:
            if overwrite:
                raise StoreError(describe_os_error(exc, "saving the memory")) from exc
            # Its folder vanished mid-write (another process's `forget --all` removed the
            # tree): nothing was acknowledged and nothing is left, so make it again, once.
            self._known_dirs.clear()
            try:
                self._write_once(memory.id, data, final, overwrite)
            except OSError as again:
                raise StoreError(describe_os_error(again, "saving the memory")) from again
        except OSError as exc:
            raise StoreError(describe_os_error(exc, "saving the memory")) from exc

    def _write_once(self, memory_id: str, data: bytes, final: Path, overwrite: bool) -> None:
        """One attempt of ``write``; raises OSError (or AlreadyExists) as it happens."""
        existed = overwrite and final.exists()
        temp = self._write_temp(final, data, sync=True)
        try:
            if overwrite:
                self.disk.rename(temp, final)
            else:
                self.disk.link(temp, final)
        except BaseException as exc:
            self._discard(temp)
            if isinstance(exc, FileExistsError):
                raise AlreadyExists(f"a memory with id {memory_id} already exists") from exc
            raise
        if not overwrite:
            self._discard(temp)  # the record lives on under its final name
        try:
            self.disk.fsync_dir(final.parent)
        except BaseException:
            # The rename may or may not be durable; it was not acknowledged, so a new record
            # must not linger and resurface later. A replaced one stays as renamed.
            if not existed:
                self._discard(final)
            raise

    @contextlib.contextmanager
    def _changing(self, doing: str) -> Iterator[None]:
        """Hold the store's lock for a rewrite or a delete (waits, saying so after a second,
        while another process does one). A store we cannot create the lock in is read-only,
        and the operation itself then fails with the clear error it would have anyway."""
        with contextlib.ExitStack() as stack:
            with contextlib.suppress(OSError):
                stack.enter_context(locks.hold(self.lock_path, doing))
            yield

    def wipe(self) -> None:
        """Remove everything under ``memories/`` and ``quarantine/`` (``forget --all``).

        Under the store's lock, so a pin or tag rewrite in another process lands wholly before
        (and is wiped) or after (and finds its memory gone): never into a vanishing folder.
        """
        with self._changing("forgetting everything"):
            for directory in (self.quarantine_dir, self.memories_dir):
                shutil.rmtree(directory, ignore_errors=True)
            self._known_dirs.clear()

    def replace(self, memory: Memory) -> None:
        """Rewrite an existing record (pin, tags), durably; NotFound if it is gone.

        Checked under the lock, so a memory another process forgot meanwhile stays forgotten.
        """
        with self._changing("changing a memory"):
            if not self.path_for(memory.id).exists():
                raise NotFound(f"no memory with id {memory.id}")
            self.write(memory, overwrite=True)

    def delete(self, memory_id: str) -> None:
        """Remove a record: unlink, then fsync the directory so it cannot come back."""
        path = self.path_for(memory_id)
        with self._changing("changing a memory"):
            try:
                self.disk.unlink(path)
            except FileNotFoundError as exc:
                if self.purge_quarantined(memory_id):
                    return  # only a quarantined copy was left: that is what was forgotten
                raise NotFound(f"no memory with id {memory_id}") from exc
            except OSError as exc:
                raise StoreError(describe_os_error(exc, f"forgetting {memory_id}")) from exc
            try:
                self.disk.fsync_dir(path.parent)
            except OSError as exc:
                raise StoreError(describe_os_error(exc, f"forgetting {memory_id}")) from exc
            self.purge_quarantined(memory_id)

    def purge_quarantined(self, memory_id: str) -> int:
        """Delete every quarantined copy of a memory (see ``quarantine.purge``)."""
        return _quarantine.purge(self.disk, self.quarantine_dir, memory_id, self._quarantine_ids)

    # ----------------------------------------------------------------- reading

    def exists(self, memory_id: str) -> bool:
        return (
            records.is_valid_id(memory_id)
            and self.path_for(memory_id).exists()
            and not self.tombstones.has(memory_id)
        )

    def read(self, memory_id: str) -> Memory:
        """Read and verify one record. A corrupt file is quarantined and CorruptRecord raised."""
        if not records.is_valid_id(memory_id):
            raise NotFound(f"{memory_id!r} is not a memory id (ids look like 01JD3M8Q...)")
        if self.tombstones.has(memory_id):  # forget wins over an edit synced from elsewhere
            if self.path_for(memory_id).exists():
                sync.drop_forgotten(self, memory_id)
            raise NotFound(f"memory {memory_id} was forgotten (here or on another device)")
        path = self.path_for(memory_id)
        try:
            data = self.disk.read(path, records.MAX_FILE_BYTES)
        except FileNotFoundError as exc:
            raise NotFound(f"no memory with id {memory_id}") from exc
        except (FileTooLarge, NotARegularFile) as exc:
            self.quarantine(path, str(exc))
            raise CorruptRecord(str(exc)) from exc
        except OSError as exc:
            message = describe_os_error(exc, f"reading {memory_id}")
            self.unreadable[path] = message
            raise StoreError(message) from exc
        try:
            memory = records.decode(data)
            if memory.id != memory_id:
                raise CorruptRecord(f"file holds record {memory.id}, not {memory_id}")
        except CorruptRecord as exc:
            self.quarantine(path, str(exc))
            raise
        return memory

    def quarantine(self, path: Path, reason: str) -> Quarantined | None:
        """Move a bad file into ``quarantine/`` and log why; everything else keeps loading."""
        try:
            self._ensure_dir(self.quarantine_dir)
        except StoreError:
            return None  # read-only store: report but leave the file where it is
        try:
            target = _quarantine.move_aside(self.disk, path, self.quarantine_dir)
            self.disk.fsync_dir(self.quarantine_dir)
            self.disk.fsync_dir(path.parent)
        except FileNotFoundError:
            return None  # someone else moved or deleted it first
        except OSError:
            return None  # read-only store: report but leave the file where it is
        _quarantine.make_private(target)
        entry = Quarantined(path, target, reason)
        self.quarantined.append(entry)
        _quarantine.log(self.quarantine_dir, path, target, reason)
        return entry

    # ----------------------------------------------------------------- listing

    def _walk(self, newest_first: bool) -> Iterator[tuple[Path, os.DirEntry[str]]]:
        """Yield (directory, entry) for every file in the shards, in id (time) order."""
        for day, entries in shards.walk_days(self.memories_dir, newest_first):
            for entry in entries:
                yield day, entry

    def iter_ids(self, *, newest_first: bool = False) -> Iterator[str]:
        """Ids of every record file, in time order, from directory listings alone (no reads)."""
        bounds: tuple[str, str] = ("", "")
        current: Path | None = None
        for directory, entry in self._walk(newest_first):
            name = entry.name
            if not name.endswith(RECORD_SUFFIX):
                continue
            memory_id = name[: -len(RECORD_SUFFIX)]
            if directory is not current:
                current, bounds = directory, shards.id_prefix_bounds(directory)
            if bounds[0] <= memory_id[:10] < bounds[1] and records.is_valid_id(memory_id):
                yield memory_id

    def _rehome(self, path: Path, memory_id: str) -> bool:
        """Move a record found in the wrong date folder to where its id says it belongs."""
        target = self.path_for(memory_id)
        if target.exists():
            return False  # a second copy: the caller quarantines it (kept, and reported)
        try:
            self._ensure_dir(target.parent)
            self.disk.rename(path, target)
            self.disk.fsync_dir(target.parent)
            self.disk.fsync_dir(path.parent)
        except (OSError, StoreError):
            return False
        return True

    def scan(self, unchanged: Callable[[Path, int], bool] | None = None) -> ScanResult:
        """Walk everything once, sorting record files from crash debris and foreign files.

        A record in the wrong date folder is moved back into its own (or, if a file with its
        id is there already, listed as foreign, to be quarantined rather than lost).

        ``unchanged(folder, mtime ns)``: date folders the caller already knows as they are
        (the index, from the folder mtimes it saved) are not listed, only stat-ed: any file
        created, renamed or deleted in a folder moves its mtime, so an unchanged folder holds
        the same names. At a million memories that is ~14k stats instead of a million entries.
        Forget markers are still honoured there: a marked id's file is looked for directly.
        """
        result = ScanResult()
        now = time.time()
        rehomed = False
        ids, valid = result.ids, records.is_valid_id
        # per folder, not per file through generators: this walk runs at every open
        for directory, entries in shards.walk_days(
            self.memories_dir, False, unchanged, result.skipped
        ):
            low, high = shards.id_prefix_bounds(directory)
            here: list[str] = []
            for entry in entries:
                name = entry.name
                memory_id = name[: -len(RECORD_SUFFIX)] if name.endswith(RECORD_SUFFIX) else ""
                if valid(memory_id):
                    # A record is only ever read or deleted at ``path_for(id)``; one moved into
                    # another date folder (by hand, by a sync tool) is misplaced, so nothing
                    # lists an id that ``read`` cannot find and ``forget`` cannot delete. Two
                    # string comparisons: an id's first ten characters are its time, sortable.
                    if low <= memory_id[:10] < high:
                        here.append(memory_id)
                    elif self._rehome(directory / name, memory_id):
                        ids.append(memory_id)
                        rehomed = True
                    else:
                        result.foreign.append(directory / name)
                elif _OUR_TEMP.fullmatch(name):
                    result.temps.append(directory / name)
                elif _IN_FLIGHT.fullmatch(name) and not _stale(entry, now):
                    result.in_flight.append(directory / name)
                else:
                    result.foreign.append(directory / name)
            if here:
                ids.extend(here)
                result.shards[directory] = here
        if rehomed:
            result.ids.sort()  # ids are time-ordered: keep the walk's order
        if result.skipped:
            result.skipped_days = {shards.day_number(folder) for folder in result.skipped}
            # a forgotten memory's file in a folder not listed: the reconcile below deletes it
            for memory_id in self.tombstones.ids():
                day = records.id_milliseconds(memory_id) // 86_400_000
                if day in result.skipped_days and self.path_for(memory_id).exists():
                    result.ids.append(memory_id)
        return sync.reconcile(self, result)  # forget markers, sync conflict copies

    def sweep_temps(self, temps: Iterable[Path] | None = None) -> int:
        """Delete temp files left by crashed writers; a live writer's temp file is left alone."""
        if temps is None:
            temps = self.scan().temps
        swept = 0
        now = time.time()
        for path in temps:
            match = _OUR_TEMP.fullmatch(path.name)
            if match is None:
                continue  # not ours: never delete another program's file
            pid = int(match.group(1))
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if pid == os.getpid() and age < STALE_TEMP_SECONDS:
                continue  # one of ours, still being written
            if pid > 0 and pid != os.getpid() and locks.pid_alive(pid) and age < STALE_TEMP_SECONDS:
                continue
            self._discard(path)
            swept += 1
        return swept

    def quarantine_foreign(self, paths: Iterable[Path]) -> list[Quarantined]:
        """Move files that are not records (nor our temp files) out of the shards."""
        moved = []
        for path in paths:
            name = path.name
            if name.endswith(RECORD_SUFFIX) and records.is_valid_id(name[: -len(RECORD_SUFFIX)]):
                reason = "a second copy of a memory, found outside its date folder"
            else:
                reason = "not a memo-shell record file"
            entry = self.quarantine(path, reason)
            if entry is not None:
                moved.append(entry)
        return moved

    def disk_usage(self) -> int:
        """Bytes used by record files (directory listing plus one stat each)."""
        total = 0
        for _directory, entry in self._walk(newest_first=False):
            try:
                total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
        return total
