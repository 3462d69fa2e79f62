"""Where each device keeps what must never be synced: the index, the store lock, the quarantine.

The data directory holds only what every device should share (the record files and the
``forgotten/`` markers), so a sync tool (Syncthing, rsync, unison, git) can copy it whole. The
index is derived per device and rewritten often (syncing it sent megabytes per forget, and its
conflict copies kept forgotten text); lock files only mean something between processes of one
machine (a synced lock file replaced under a holder lets a second writer in); quarantined files
and their log name absolute paths of this machine. They live in the platform's state directory,
keyed by a hash of the data directory's resolved path::

    <state>/memo-shell/stores/<hash>/index/        snapshot, change log, lock, vectors
    <state>/memo-shell/stores/<hash>/quarantine/   damaged files and log.jsonl
    <state>/memo-shell/stores/<hash>/store.lock    serialises rewrites and deletes
    <state>/memo-shell/stores/<hash>/data-dir      the data directory's path, for humans

``MEMO_SHELL_STATE_DIR`` overrides ``<state>/memo-shell`` (tests point it into a temp dir).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import platformdirs

APP_NAME = "memo-shell"
STATE_ENV = "MEMO_SHELL_STATE_DIR"


def state_root() -> Path:
    """``$MEMO_SHELL_STATE_DIR``, else the platform's user state dir (XDG_STATE_HOME)."""
    override = os.environ.get(STATE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def _key(data_dir: Path) -> str:
    resolved = os.path.realpath(Path(data_dir).expanduser())
    return hashlib.sha256(os.fsencode(resolved)).hexdigest()[:20]


def device_dir(data_dir: Path) -> Path:
    """This device's private directory for one data directory (not created here)."""
    return state_root() / "stores" / _key(data_dir)


def index_dir(data_dir: Path) -> Path:
    """The recall index of ``data_dir`` on this device."""
    return device_dir(data_dir) / "index"


def quarantine_dir(data_dir: Path) -> Path:
    """Files of ``data_dir`` that could not be decoded, moved aside on this device."""
    return device_dir(data_dir) / "quarantine"


def store_lock(data_dir: Path) -> Path:
    """The lock serialising rewrites and deletes of ``data_dir``'s records on this device."""
    return device_dir(data_dir) / "store.lock"


def prepare(data_dir: Path) -> None:
    """Create the device dir (0700) with its ``data-dir`` note, and adopt the old layout.

    Before 0.2 the index and the quarantine lived inside the data directory, where a sync tool
    copied them between devices. The old index is deleted (it is derived: the new one is built
    from the files, and synced conflict copies of it may hold forgotten text); the quarantine is
    moved, since it may hold the only copy of something a user wants back.
    """
    data_dir = Path(data_dir).expanduser()
    device = device_dir(data_dir)
    if not device.is_dir():
        device.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            (device / "data-dir").write_text(os.path.realpath(data_dir) + "\n", encoding="utf-8")
    old_index = data_dir / "index"
    if old_index.is_dir():
        shutil.rmtree(old_index, ignore_errors=True)
    old_quarantine = data_dir / "quarantine"
    if old_quarantine.is_dir():
        _move_quarantine(old_quarantine, quarantine_dir(data_dir))
    with contextlib.suppress(OSError):
        (data_dir / ".lock").unlink()  # the old store lock: now per device


def _move_quarantine(old: Path, new: Path) -> None:
    new.mkdir(mode=0o700, parents=True, exist_ok=True)
    for entry in old.iterdir():
        target = new / entry.name
        if entry.name == "log.jsonl":
            with contextlib.suppress(OSError), open(target, "a", encoding="utf-8") as log:
                log.write(entry.read_text(encoding="utf-8", errors="replace"))
            with contextlib.suppress(OSError):
                entry.unlink()
            continue
        n = 1
        while target.exists():
            target = new / f"{entry.name}.{n}"
            n += 1
        with contextlib.suppress(OSError):
            shutil.move(entry, target)
    with contextlib.suppress(OSError):
        old.rmdir()
