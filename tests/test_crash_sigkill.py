"""SIGKILL at random moments never loses an acknowledged memory or leaves a half-written one.

A child process adds memories in a loop through the public API and reports each id only after
``add`` returned; now and then it pins an earlier one (an in-place rewrite). The parent kills it
with SIGKILL at a random moment, then checks the store the way the next run would see it:
every reported id loads intact with the exact text it was given, no file under a final name
fails to decode, and a rewritten record is either its old or its new version, never a mix.

Children are forked from this already-warm interpreter so that hundreds of kills take seconds.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from memo_shell import records
from memo_shell.paths import quarantine_dir
from memo_shell.store import Store

KILLS = int(os.environ.get("MEMO_SHELL_CRASH_KILLS", "220"))


def _child(data_dir: Path, report_fd: int, seed: int) -> None:
    """Add memories forever, reporting 'add <n> <id>' / 'pin <id>' once each call has returned."""
    import memo_shell

    rng = random.Random(seed)
    acknowledged: list[str] = []
    with memo_shell.open(data_dir, preload=False) as memories:
        n = 0
        while True:
            if acknowledged and rng.random() < 0.15:
                target = rng.choice(acknowledged)
                memories.pin(target)
                os.write(report_fd, f"pin {target}\n".encode())
                continue
            memory_id = memories.add(
                user=f"crash test record {seed}-{n}",
                assistant="ok " * rng.randint(0, 200),
                session=f"s{seed}",
                meta={"n": str(n)},
            )
            os.write(report_fd, f"add {n} {memory_id}\n".encode())
            acknowledged.append(memory_id)
            n += 1


def _run_and_kill(data_dir: Path, seed: int, rng: random.Random) -> list[str]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 0
        try:
            os.close(read_fd)
            _child(data_dir, write_fd, seed)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    time.sleep(rng.uniform(0.0, 0.06))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    return b"".join(chunks).decode().splitlines()


@pytest.mark.slow
def test_sigkill_never_loses_or_tears_a_memory(tmp_path: Path) -> None:
    import memo_shell.api  # noqa: F401 - warm the imports the children will use

    rng = random.Random(20261121)
    data_dir = tmp_path / "data"
    expected: dict[str, str] = {}  # id -> exact user text
    pinned: set[str] = set()
    total_acknowledged = 0
    for kill in range(KILLS):
        seed = kill
        for line in _run_and_kill(data_dir, seed, rng):
            parts = line.split()
            if parts[0] == "add":
                expected[parts[2]] = f"crash test record {seed}-{parts[1]}"
                total_acknowledged += 1
            elif parts[0] == "pin":
                pinned.add(parts[1])

        store = Store(data_dir)  # what the next run sees
        for memory_id, user in expected.items():
            memory = store.read(memory_id)
            assert memory.user == user, f"kill {kill}: {memory_id} came back different"
            if memory_id in pinned:
                assert memory.pinned, f"kill {kill}: acknowledged pin of {memory_id} was lost"
        scan = store.scan()
        for memory_id in scan.ids:
            path = store.path_for(memory_id)
            records.decode(path.read_bytes())  # raises if any final-named file is torn
        assert not scan.foreign
        assert not quarantine_dir(data_dir).exists(), "a final-named file failed to decode"
        store.sweep_temps(scan.temps)
        assert not store.scan().temps

    assert total_acknowledged > KILLS, "children should have acknowledged many writes"
