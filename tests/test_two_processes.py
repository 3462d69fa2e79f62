"""Several memo-shell processes on one data directory: nothing lost, nothing resurrected, one
consistent index, and a waiting process is told why it waits.

Issue 6, item 5. Real subprocesses (the library in child interpreters and the ``memo-shell`` CLI),
real files and real ``flock`` locks; the test process itself plays the long-running app (the TUI's
role): it keeps the store open and recalls while the others write.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from memory_workload import differences, fingerprint

import memo_shell
from memo_shell.errors import NotFound
from memo_shell.paths import index_dir, store_lock

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "memo_shell"]

#: A writer process: adds, recalls, pins and forgets through the API (on anyone's memories),
#: and prints what was acknowledged. Pins/forgets of ids another process forgot are expected to
#: fail with NotFound; anything else is a failure of the test.
WRITER = textwrap.dedent(
    """
    import json, random, sys
    import memo_shell
    from memo_shell.errors import NotFound

    data_dir, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(name)
    added, forgotten, pinned = {}, [], []
    with memo_shell.open(data_dir) as memories:
        for n in range(count):
            token = f"{name}{n:04d}x"
            topic = rng.choice(["kayak", "pottery", "sushi", "chess", "violin"])
            memory_id = memories.add(f"{name} talked about {topic} {token}", "noted",
                                     session=name)
            added[memory_id] = token
            roll = rng.random()
            if roll < 0.2:
                memories.recall(f"{topic} {name}", k=5)
            elif roll < 0.35:
                target = rng.choice(memories.ids())
                try:
                    memories.forget(target)
                    forgotten.append(target)
                except NotFound:
                    pass
            elif roll < 0.5:
                target = rng.choice(memories.ids())
                try:
                    memories.pin(target)
                    pinned.append(target)
                except NotFound:
                    pass
    print(json.dumps({"added": added, "forgotten": forgotten, "pinned": pinned}))
    """
)


def _spawn(args: list[str], **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **kw
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def test_writers_an_import_and_a_reader_at_once_lose_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    """Two API writers (adding, pinning and forgetting each other's memories) and a CLI import
    of 2,100 lines (two batches) run at once while this process recalls. Afterwards every
    acknowledged memory is on disk and intact, every acknowledged forget stuck (no pin brought
    one back), and both this long-running reader's index and a rebuilt one list exactly the
    files and answer every query the same."""
    with memo_shell.open(data_dir) as memories:
        seed_id = memories.add("the store exists before the others start kayak", session="s")
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    lines = [
        json.dumps({"user": f"imported note {i} about chess imp{i:05d}x", "session": "imp"})
        for i in range(2100)
    ]
    source = tmp_path / "import.jsonl"
    source.write_text("\n".join(lines) + "\n")

    with memo_shell.open(data_dir) as reader:
        reader.wait_ready()
        procs = [_spawn([sys.executable, str(script), str(data_dir), n, "100"]) for n in "ab"]
        procs.append(
            _spawn([*CLI, "--data-dir", str(data_dir), "mem", "import", str(source), "--json"])
        )
        recalls = 0
        while any(p.poll() is None for p in procs):
            reader.recall(random.choice(["kayak", "chess note", "pottery a", "sushi b"]), k=5)
            recalls += 1
        outputs = [json.loads(_finish(p)) for p in procs]
        assert recalls > 10, "the reader must have been recalling while the others wrote"
        writers, imported = outputs[:2], outputs[2]

        added = {seed_id: "", **{k: v for w in writers for k, v in w["added"].items()}}
        forgotten = {i for w in writers for i in w["forgotten"]}
        assert imported["imported"] == 2100 and imported["rejected"] == []
        expected = (set(added) | set(imported["ids"])) - forgotten
        on_disk = set(reader.ids())
        assert on_disk == expected, (
            f"lost {sorted(expected - on_disk)[:5]}, resurrected {sorted(on_disk - expected)[:5]}"
        )
        for memory_id in sorted(set(added) - forgotten):
            assert reader.get(memory_id).user.endswith(added[memory_id])
        pinned = {i for w in writers for i in w["pinned"]} - forgotten
        assert pinned <= {m.id for m in reader.iter_memories() if m.pinned}

        # the reader's index followed every other process's change through the change log; a
        # forget in another process restarts the log, and the reader then reloads in the
        # background: its index converges shortly after the others stop, and stays converged
        deadline = time.monotonic() + 15
        while set(reader.index.ids()) != on_disk and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(reader.index.ids()) == on_disk
        tokens = [added[i] for i in sorted(set(added) - forgotten - {seed_id})][::15]
        queries = ["kayak", "chess note", "imp00042x", "imp02099x", *tokens]
        live = fingerprint(reader, queries)
        for token in tokens:
            assert live[token][0][0] == next(i for i, t in added.items() if t == token)
    shutil.rmtree(index_dir(data_dir))
    with memo_shell.open(data_dir) as fresh:
        assert set(fresh.index.ids()) == on_disk
        assert differences(live, fingerprint(fresh, queries)) == []


def test_a_pin_racing_a_forget_never_brings_the_memory_back(data_dir: Path) -> None:
    """Another process re-pins a memory in a tight loop while this one forgets it, 25 times.

    A rewrite is a read, then a rename of a new file over the old one: a forget landing in
    between would be undone by the rename, and the forgotten memory would be back. Hammering
    one memory at a time makes that window nearly certain to be hit (without the store's lock
    this test fails within a few rounds); with the lock, the forget always wins for good.
    """
    code = textwrap.dedent(
        """
        import sys, memo_shell
        from memo_shell.errors import NotFound
        with memo_shell.open(sys.argv[1], preload=False) as m:
            print("ready", flush=True)
            for line in sys.stdin:
                memory_id, rewrites = line.strip(), 0
                try:
                    while rewrites < 300:  # bounded: a resurrected memory never runs out
                        m.pin(memory_id, rewrites % 2 == 0)
                        rewrites += 1
                except NotFound:
                    pass
                print(rewrites, flush=True)
        """
    )
    pinner = _spawn([sys.executable, "-c", code, str(data_dir)], stdin=subprocess.PIPE)
    assert pinner.stdin is not None and pinner.stdout is not None
    assert pinner.stdout.readline() == "ready\n"
    rng = random.Random(4)
    raced = 0
    with memo_shell.open(data_dir, preload=False) as memories:
        for n in range(25):
            memory_id = memories.add(f"race target {n}")
            pinner.stdin.write(memory_id + "\n")
            pinner.stdin.flush()
            time.sleep(rng.uniform(0.005, 0.02))  # it is rewriting the file by now
            memories.forget(memory_id)
            raced += int(pinner.stdout.readline()) > 0
            assert not memories.store.exists(memory_id), f"round {n}: the forget was undone"
    _finish(pinner)
    assert raced >= 20, "the pinner was not rewriting when the forgets landed"
    with memo_shell.open(data_dir) as memories:
        assert memories.ids() == [] and memories.index.ids() == []


def test_a_long_running_handle_sees_other_processes_pins_tags_and_forgets(
    data_dir: Path,
) -> None:
    """The app's record cache must not serve a memory as it was before another process
    changed or forgot it."""
    with memo_shell.open(data_dir) as app:
        memory_id = app.add("the boat is moored at pier seven")
        assert not app.get(memory_id).pinned  # now cached
        code = (
            "import sys, memo_shell\n"
            "with memo_shell.open(sys.argv[1], preload=False) as m:\n"
            "    m.pin(sys.argv[2]); m.set_tags(sys.argv[2], ['boats'])\n"
        )
        _finish(_spawn([sys.executable, "-c", code, str(data_dir), memory_id]))
        seen = app.get(memory_id)
        assert seen.pinned and seen.tags == ("boats",)
        _finish(_spawn([*CLI, "--data-dir", str(data_dir), "mem", "forget", memory_id, "--yes"]))
        with pytest.raises(NotFound):
            app.get(memory_id)
        assert memory_id not in [h.memory.id for h in app.recall("boat pier")]


def _hold(lock: Path, how: str) -> subprocess.Popen[str]:
    """Another memo-shell process in the middle of a slow change, holding ``lock``."""
    if how == "store":
        body = "with locks.hold(path, 'x'):"
        imports = "from memo_shell import locks"
    else:
        body = "with locked(path):"
        imports = "from memo_shell.index.files import locked"
    code = (
        f"import sys, time\nfrom pathlib import Path\n{imports}\npath = Path(sys.argv[1])\n"
        f"{body}\n    print('held', flush=True)\n    time.sleep(float(sys.argv[2]))\n"
    )
    # held long enough that the waiter reaches the lock well before NOTICE_AFTER runs out,
    # even when a loaded machine takes seconds to start its interpreter
    proc = _spawn([sys.executable, "-c", code, str(lock), "4.0"])
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def test_a_second_writer_waits_for_the_store_lock_and_says_so(data_dir: Path) -> None:
    with memo_shell.open(data_dir, preload=False) as memories:
        memory_id = memories.add("wait for me")
    holder = _hold(store_lock(data_dir), "store")
    started = time.monotonic()
    pin = subprocess.run(
        [*CLI, "--data-dir", str(data_dir), "mem", "pin", memory_id],
        capture_output=True,
        text=True,
        timeout=60,
    )
    waited = time.monotonic() - started
    _finish(holder)
    assert pin.returncode == 0, pin.stderr
    assert waited > 1.2, "it did not wait for the lock"
    assert f"another memo-shell process (pid {holder.pid})" in pin.stderr, pin.stderr
    with memo_shell.open(data_dir, preload=False) as memories:
        assert memories.get(memory_id).pinned


def test_a_second_writer_waits_for_the_index_lock_and_says_so(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as memories:
        memories.add("make an index")
        memories.wait_ready()
    holder = _hold(index_dir(data_dir) / "lock", "index")
    started = time.monotonic()
    add = subprocess.run(
        [*CLI, "--data-dir", str(data_dir), "mem", "add", "--user", "queued behind the lock"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    waited = time.monotonic() - started
    _finish(holder)
    assert add.returncode == 0, add.stderr
    assert waited < 1.2 or "another memo-shell process" in add.stderr, (waited, add.stderr)


@pytest.mark.parametrize("lock", ["store", "index"])
def test_a_lock_holder_killed_mid_change_never_wedges_the_store(data_dir: Path, lock: str) -> None:
    """SIGKILL while holding a lock: the kernel releases it, and the next command proceeds."""
    with memo_shell.open(data_dir) as memories:
        memory_id = memories.add("still reachable after a crash")
        memories.wait_ready()
    path = store_lock(data_dir) if lock == "store" else index_dir(data_dir) / "lock"
    holder = _hold(path, lock)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    # the command that needs that lock: a pin (store) or a reindex (snapshot under the index's)
    args = ["mem", "pin", memory_id] if lock == "store" else ["reindex"]
    done = subprocess.run(
        [*CLI, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 0, done.stderr
    assert "waiting" not in done.stderr
    with memo_shell.open(data_dir, preload=False) as memories:
        assert memories.get(memory_id).pinned == (lock == "store")


def test_a_thread_waiting_behind_its_own_process_blames_no_one(tmp_path: Path) -> None:
    """A background index save and a foreground append of one process take turns silently: the
    notice is for waits on *another* process."""
    import threading

    from memo_shell import locks

    path = tmp_path / "lock"
    held = threading.Event()

    def hold_a_while() -> None:
        with locks.hold(path, "saving"):
            held.set()
            time.sleep(1.6)

    thread = threading.Thread(target=hold_a_while)
    thread.start()
    held.wait(5)
    said: list[str] = []
    started = time.monotonic()
    with locks.hold(path, "appending", notice=said.append):
        waited = time.monotonic() - started
    thread.join()
    assert waited > 1.2, "it did not wait"
    assert said == []
