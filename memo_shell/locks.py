"""Cross-process file locks that say so when they make someone wait.

Two memo-shell processes on one data directory (the TUI and a ``memo-shell mem …`` in another
terminal, or a sync tool's hook) take turns through ``fcntl.flock`` locks. Those are held for
milliseconds, and the kernel drops them when a holder dies (even by SIGKILL), so a stale lock
cannot wedge the store. A holder can still be slow (a snapshot of a huge index, a stopped
process, a hung network file system); then a command that silently hangs looks broken, so after
``NOTICE_AFTER`` seconds the waiter is told who it is waiting for, once, and keeps waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

#: Wait this long in silence before telling the user (most waits end in milliseconds).
NOTICE_AFTER = 1.0

log = logging.getLogger("memo_shell")

# Locks this process holds, by file identity: a thread waiting behind another thread of the same
# process (a background index save and a foreground append) must not blame "another process".
_held_here: dict[tuple[int, int], int] = {}
_held_guard = threading.Lock()

# Lock file descriptors open in this process. A flock belongs to the open file *description*,
# which fork() shares with the child: a lock another thread held at fork time would stay held
# by the child's copy of its descriptor, which no thread of the child will ever close, and
# every process (the parent included) would then wait for it forever. The child closes them
# (that never releases the parent's lock: its own descriptor still holds it).
_open_fds: dict[int, list[int]] = {}  # id(entry) -> entry, a one-item list holding the fd
# Held while a lock file is opened and registered, or unregistered and closed, and by fork()
# itself: a fork in between would give the child a descriptor it does not know to close.
_fd_guard = threading.Lock()


def _before_fork() -> None:
    _fd_guard.acquire()


def _after_fork_in_parent() -> None:
    _fd_guard.release()


def _after_fork_in_child() -> None:
    global _held_guard, _fd_guard
    _fd_guard = threading.Lock()
    _held_guard = threading.Lock()
    _held_here.clear()
    for entry in list(_open_fds.values()):
        with contextlib.suppress(OSError):
            os.close(entry[0])
        entry[0] = -1  # the hold() that opened it (if it runs on in this child) must not close
    _open_fds.clear()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


def _default_notice(message: str) -> None:
    # Without any logging configuration, Python prints warnings to stderr as-is: right for the
    # CLI. An app with its own screen (the TUI) configures the "memo_shell" logger instead.
    log.warning(message)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder_pid(fd: int) -> int | None:
    """The pid holding the flock on ``fd``'s file, where the OS says (Linux ``/proc/locks``)."""
    try:
        st = os.fstat(fd)
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        parts = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF" ("->" marks a blocked waiter)
        if "->" in parts or len(parts) < 6 or parts[1] != "FLOCK":
            continue
        if parts[5].lower() == wanted and parts[4].isdigit() and int(parts[4]) != os.getpid():
            return int(parts[4])
    return None


@contextlib.contextmanager
def hold(
    path: Path,
    doing: str,
    *,
    notice: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600); ``doing`` completes the sentence
    "waiting for another memo-shell process to finish …" shown after NOTICE_AFTER seconds.

    Raises OSError if the lock file cannot be opened (a read-only directory): the caller decides
    whether that matters.
    """
    with _fd_guard:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        entry = [fd]
        _open_fds[id(entry)] = entry
    try:
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if not _try_lock(fd):
            with _held_guard:
                ours = _held_here.get(key, 0) > 0
            _wait(fd, doing, None if ours else notice or _default_notice)
        with _held_guard:
            _held_here[key] = _held_here.get(key, 0) + 1
        try:
            yield
        finally:
            with _held_guard:
                if key in _held_here:  # (a fork in between started the count afresh)
                    _held_here[key] -= 1
    finally:
        with _fd_guard:
            _open_fds.pop(id(entry), None)
            if entry[0] >= 0:  # else a forked child, where it was closed at the fork
                os.close(fd)  # releases the lock


def _wait(fd: int, doing: str, notice: Callable[[str], None] | None) -> None:
    """Block in ``flock`` (queued fairly by the kernel, unlike polling, which a busy holder
    can starve) on a helper thread, so this one can speak up after NOTICE_AFTER seconds
    (unless ``notice`` is None: the holder is a thread of this process)."""
    done = threading.Event()
    failed: list[OSError] = []

    def block() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            failed.append(exc)
        finally:
            done.set()

    if notice is None:
        block()
    else:
        threading.Thread(target=block, name="memo-lock-wait", daemon=True).start()
    if notice is not None and not done.wait(NOTICE_AFTER):
        pid = holder_pid(fd)
        who = f" (pid {pid})" if pid else ""
        notice(f"waiting for another memo-shell process{who} to finish {doing}…")
        done.wait()
    if failed:
        raise failed[0]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (a lock holder, a temp file's writer)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; it is just not ours to signal
    return True
