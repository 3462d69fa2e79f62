"""Many processes adding at once, forked and spawned: every acknowledged id reads back with its
own text, and nothing one process acknowledged is replaced by another.

Every worker dates its memories in the *same millisecond*, the worst case for id minting: forked
workers inherit the parent's generator state, and a plain rename would let one process's file
silently replace another's. The library must also survive a fork while its index is loading.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

import memo_shell
from memo_shell import records

AT = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
WORKERS = 4
EACH = 25

_inherited: memo_shell.Memories | None = None  # the parent's open handle, used by fork workers


def _add_many(args: tuple[str, int]) -> list[tuple[str, str]]:
    data_dir, worker = args
    handle = _inherited if _inherited is not None else memo_shell.open(data_dir, preload=False)
    done = []
    for i in range(EACH):
        text = f"worker {worker} memory {i} pid {os.getpid()}"
        done.append((handle.add(text, at=AT), text))
    if handle is not _inherited:
        handle.close()
    return done


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_concurrent_adds_in_many_processes_lose_nothing(tmp_path: Path, method: str) -> None:
    global _inherited
    data_dir = tmp_path / "data"
    with memo_shell.open(data_dir) as parent:  # preload: its index loads while workers fork
        parent.add("the parent's own", at=AT)
        records.new_id(AT)  # the generator now holds state for AT: children must not reuse it
        _inherited = parent if method == "fork" else None
        try:
            context = multiprocessing.get_context(method)
            with context.Pool(WORKERS) as pool:
                results = pool.map(_add_many, [(str(data_dir), w) for w in range(WORKERS)])
        finally:
            _inherited = None
    acknowledged = [pair for result in results for pair in result]
    assert len(acknowledged) == WORKERS * EACH
    assert len({memory_id for memory_id, _ in acknowledged}) == len(acknowledged)
    with memo_shell.open(data_dir, preload=False) as memories:
        for memory_id, text in acknowledged:
            assert memories.get(memory_id).user == text
        assert memories.count() == len(acknowledged) + 1


FORK_DURING_LOAD = textwrap.dedent(
    """
    import os, sys
    import memo_shell

    memories = memo_shell.open(sys.argv[1])  # the loader thread starts importing numpy now
    pid = os.fork()
    if pid == 0:
        try:
            hits = memories.recall("alpha")
            new = memories.add("added in the child")
            memories.close()
            os._exit(0 if len(hits) == 1 and new else 3)
        except BaseException as exc:
            print(repr(exc), flush=True)
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    memories.close()
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_a_child_forked_while_the_index_loads_can_recall_and_add(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with memo_shell.open(data_dir, preload=False) as memories:
        memories.add("alpha is the memory to find")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _attempt in range(3):  # the race is the point: try it a few times, fresh interpreters
        done = subprocess.run(
            [sys.executable, "-c", FORK_DURING_LOAD, str(data_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "partially initialized" not in done.stderr
    with memo_shell.open(data_dir, preload=False) as memories:
        assert memories.count() == 4


FORK_WHILE_A_LOCK_FILE_OPENS = textwrap.dedent(
    """
    import fcntl, os, sys, threading, time
    from pathlib import Path
    from memo_shell import locks

    path = Path(sys.argv[1])
    opened, forked = threading.Event(), threading.Event()
    real_open = os.open

    def slow_open(*args, **kwargs):
        fd = real_open(*args, **kwargs)
        opened.set()
        forked.wait(0.5)  # a fork lands right after the lock file is opened
        return fd

    locks.os.open = slow_open

    def take_and_release():
        with locks.hold(path, "testing"):
            pass

    worker = threading.Thread(target=take_and_release)
    worker.start()
    opened.wait(5)
    pid = os.fork()
    if pid == 0:
        time.sleep(1.0)  # the parent has taken and released the lock by now
        fd = real_open(str(path), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os._exit(3)  # held forever by the descriptor this child inherited
        os._exit(0)
    forked.set()
    worker.join()
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


def test_a_fork_while_another_thread_opens_a_lock_file_never_wedges_the_lock(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", FORK_WHILE_A_LOCK_FILE_OPENS, str(tmp_path / "lock")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
