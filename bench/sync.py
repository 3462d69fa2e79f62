"""Sync benchmark: two real Syncthing peers on loopback sharing one memo-shell data dir.

    python bench/sync.py                       # 2000 memories, 10 rounds
    python bench/sync.py --memories 200 --rounds 5

Reports, each beside its baseline from the same run:
- **add → recallable on the other device**: a memory added on A; the time until its file lands
  in B's folder (Syncthing's part), and the time from landing until a memo-shell process that
  stayed open on B recalls it (memo-shell's part; goal ≤ 5 s);
- **bytes synced per forget**: Syncthing's own counters (``/rest/system/connections``, both
  peers' ``outBytesTotal``) around one forget, beside the forgotten record's file size (the goal
  is "about the size of the record"), beside the same window with nothing happening (the
  peers' keep-alive traffic), and beside the same forgets with the index kept inside the synced
  folder as before 0.2 (``MEMO_SHELL_STATE_DIR`` pointed into it): the old layout's cost.

Needs the ``syncthing`` binary (``apt install syncthing``). Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import syncthing_peers as sp  # noqa: E402

import memo_shell  # noqa: E402
from memo_shell import records  # noqa: E402
from memo_shell.store import Store  # noqa: E402

WORDS = [
    "harbour",
    "violin",
    "pepper",
    "lantern",
    "orchid",
    "glacier",
    "walnut",
    "comet",
    "saffron",
    "quartz",
    "garden",
]


def _wait(condition, timeout: float = 60.0, step: float = 0.005) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``condition()`` holds (TimeoutError past ``timeout``)."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise TimeoutError
        time.sleep(step)
    return time.perf_counter() - started


def _traffic(peers: list[sp.Peer]) -> int:
    return sum(p.bytes_sent() for p in peers)


def _seed(data_dir: Path, n: int) -> None:
    rng = random.Random(7)
    batch = [
        records.make_memory(user=" ".join(rng.choices(WORDS, k=12)), assistant="ok " * 20)
        for _ in range(n)
    ]
    with memo_shell.open(data_dir, preload=False) as memories:
        memories.add_many(batch)


def _bytes_per_forget(
    peers: list[sp.Peer], on_a: memo_shell.Memories, store_b: Store, window: float, seed: int
) -> tuple[float, float]:
    """(median bytes both peers sent in a ``window`` around one forget on A, median record
    size) over five forgets; each window starts at the forget and ends ``window`` s later."""
    per_forget, sizes = [], []
    for memory_id in random.Random(seed).sample(on_a.ids(), 5):
        sizes.append(Store(on_a.data_dir).path_for(memory_id).stat().st_size)
        before = _traffic(peers)
        started = time.perf_counter()
        on_a.forget(memory_id)
        _wait(lambda m=memory_id: not store_b.path_for(m).exists())
        time.sleep(max(0.0, window - (time.perf_counter() - started)))
        per_forget.append(_traffic(peers) - before)
    return statistics.median(per_forget), statistics.median(sizes)


def _snapshot_bytes(state: Path) -> int:
    return sum(p.stat().st_size for p in state.rglob("snapshot"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if sp.BINARY is None:
        sys.exit("syncthing is not installed (apt install syncthing)")
    root = Path(tempfile.mkdtemp(prefix="memo-sync-bench-"))
    os.environ.setdefault("MEMO_SHELL_STATE_DIR", str(root / "state"))
    peers = sp.make_peers(root)
    a, b = peers
    _seed(a.data_dir, args.memories)
    try:
        for peer in peers:
            sp.start(peer)
        sp.wait_connected(peers)
        initial = sp.settle(peers, timeout=600)
        print(f"initial sync of {args.memories} memories: {initial:.1f} s")
        with memo_shell.open(a.data_dir) as on_a, memo_shell.open(b.data_dir) as on_b:
            on_b.recall("warm up")
            on_b.recall("warm up")  # B's open process (it watches its folders from now on)
            on_a.wait_ready()
            store_b = Store(b.data_dir)
            landed, recalled, totals = [], [], []
            for i in range(args.rounds):
                word = f"zq{i}benchword"
                started = time.perf_counter()
                memory_id = on_a.add(f"{word} remembered on device A", "noted")
                path = store_b.path_for(memory_id)
                land = _wait(path.exists)
                hit = lambda w=word, m=memory_id: any(h.memory.id == m for h in on_b.recall(w))  # noqa: E731
                after = _wait(hit, step=0.01)
                landed.append(land)
                recalled.append(after)
                totals.append(time.perf_counter() - started)
            print(
                f"add on A -> file lands on B: p50 {statistics.median(landed):.2f} s, "
                f"max {max(landed):.2f} s (Syncthing, fsWatcherDelayS=1)"
            )
            print(
                f"file lands -> recallable in B's open process: p50 "
                f"{statistics.median(recalled):.3f} s, max {max(recalled):.3f} s (goal <= 5 s)"
            )
            print(f"add on A -> recallable on B, total: p50 {statistics.median(totals):.2f} s")

            sp.settle(peers)
            window = 8.0
            idle_start = _traffic(peers)
            time.sleep(window)
            idle = _traffic(peers) - idle_start
            per_forget, size = _bytes_per_forget(peers, on_a, store_b, window, seed=3)
            print(
                f"bytes synced per forget (both directions, {window:.0f} s window): p50 "
                f"{per_forget:,.0f} B; idle window: {idle:,} B; record file: {size:,.0f} B; "
                f"store: {args.memories:,} memories"
            )
        # baseline, same peers and store: the index kept inside the synced folder, as before 0.2
        for device in (a, b):
            os.environ["MEMO_SHELL_STATE_DIR"] = str(device.data_dir / ".memo-state")
            with memo_shell.open(device.data_dir) as memories:
                memories.reindex()
        os.environ["MEMO_SHELL_STATE_DIR"] = str(a.data_dir / ".memo-state")
        on_a = memo_shell.open(a.data_dir)
        os.environ["MEMO_SHELL_STATE_DIR"] = str(b.data_dir / ".memo-state")
        on_b = memo_shell.open(b.data_dir)
        try:
            on_a.wait_ready()
            on_b.wait_ready()
            sp.settle(peers, timeout=600)
            old, size = _bytes_per_forget(peers, on_a, Store(b.data_dir), window, seed=4)
            print(
                f"baseline, index synced too (layout before 0.2): p50 {old:,.0f} B per forget "
                f"(snapshot {_snapshot_bytes(a.data_dir / '.memo-state'):,} B)"
            )
        finally:
            on_a.close()
            on_b.close()
    finally:
        for peer in peers:
            sp.stop(peer)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
