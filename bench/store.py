"""Store benchmark: durable add latency against the bare-disk floor, import, open and list.

    python bench/store.py                    # 10k and 100k, as in the issue
    python bench/store.py --sizes 2000       # a quick look

Every figure is reported beside the baseline measured in the same run:
- add p50/p99 through ``Memories.add`` vs a bare write of the same bytes with the same two
  fsyncs (temp file, write, fsync, rename, fsync dir), interleaved sample by sample so disk
  weather hits both alike; the ratio add/bare is the figure of merit (target ≤ 1.3);
- ``memo-shell mem import`` of N records as a whole process (target: 100k ≤ 60 s);
- open → first durable add, in-process (target ≤ 0.3 s at 100k), and whole-process;
- ``memo-shell mem list --limit 20`` as a whole process (target ≤ 0.5 s at 100k), beside the
  cost of starting Python itself;
- ``memo-shell mem forget ID`` as a whole process, which loads the index and rewrites it without
  the forgotten memory before it exits, beside ``mem add`` (which does neither); and the rewrite
  alone in a process that has the index loaded (what the TUI does in the background).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memo_shell import records  # noqa: E402
from memo_shell.paths import index_dir  # noqa: E402

WORDS = [
    "alpha",
    "bravo",
    "coffee",
    "garden",
    "hiking",
    "Paris",
    "Melanie",
    "Caroline",
    "dinner",
    "pottery",
    "guitar",
    "painting",
    "birthday",
    "school",
    "camping",
    "beach",
    "museum",
    "concert",
    "recipe",
    "marathon",
    "adoption",
    "puppy",
    "violin",
    "workshop",
    "library",
    "festival",
    "sunset",
    "novel",
    "bakery",
    "tennis",
    "sister",
    "brother",
    "mother",
    "friend",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bare_durable_write(directory: Path, name: str, data: bytes) -> None:
    """The floor: exactly the syscalls a durable atomic write needs, nothing else."""
    temp = directory / f".{name}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, directory / name)
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def bench_add(root: Path, samples: int) -> dict[str, float]:
    import memo_shell

    rng = random.Random(1)
    add_times, bare_times = [], []
    with memo_shell.open(root / "latency") as memories:
        memories.wait_ready()
        memories.add(user="warm up", assistant="the shard directory exists now")
        shard = memories.store.path_for(memories.ids()[-1]).parent
        for i in range(samples):
            user, assistant = sentence(rng, 12), sentence(rng, 30)
            data = records.encode(records.make_memory(user=user, assistant=assistant))
            started = time.perf_counter()
            bare_durable_write(shard, f"bare-{i}", data)
            bare_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            memories.add(user=user, assistant=assistant, session="bench")
            add_times.append(time.perf_counter() - started)
    for path in shard.glob("bare-*"):
        path.unlink()
    return {
        "add_p50_ms": statistics.median(add_times) * 1e3,
        "add_p99_ms": percentile(add_times, 0.99) * 1e3,
        "bare_p50_ms": statistics.median(bare_times) * 1e3,
        "bare_p99_ms": percentile(bare_times, 0.99) * 1e3,
        "ratio_p50": statistics.median(add_times) / statistics.median(bare_times),
    }


def make_jsonl(path: Path, count: int) -> None:
    rng = random.Random(count)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(count):
            at = start + timedelta(seconds=i * 365 * 86400 // count)
            out.write(
                json.dumps(
                    {
                        "user": sentence(rng, rng.randint(5, 20)),
                        "assistant": sentence(rng, rng.randint(5, 40)),
                        "session": f"s{i // 20}",
                        "at": at.isoformat(),
                    }
                )
                + "\n"
            )


def run(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


OPEN_PROBE = """
import sys, time
t0 = time.perf_counter()
import memo_shell
m = memo_shell.open(sys.argv[1])
t1 = time.perf_counter()
m.add(user="probe", assistant="durable add right after open")
t2 = time.perf_counter()
m.close()
print(t1 - t0, t2 - t0)
"""


SCRUB_PROBE = """
import sys, time
import memo_shell
m = memo_shell.open(sys.argv[1])
m.wait_ready()
m.forget(sys.argv[2])
t0 = time.perf_counter()
m.close()  # rewrites snapshot and change log without the forgotten memory
print(time.perf_counter() - t0)
"""


def bench_forget(directory: Path, env: dict[str, str], cli: list[str]) -> dict[str, float]:
    """Whole-process forget vs whole-process add, alternated; then the in-process rewrite."""
    from memo_shell.store import Store

    ids = Store(directory).scan().ids
    victims = random.Random(1).sample(ids, 10)
    forgets, adds, scrubs = [], [], []
    for victim in victims[:5]:
        forgets.append(run([*cli, "mem", "forget", victim, "--yes"], env))
        adds.append(run([*cli, "mem", "add", "--user", "a new note about the garden"], env))
    for victim in victims[5:]:
        out = subprocess.run(
            [sys.executable, "-c", SCRUB_PROBE, str(directory), victim],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        scrubs.append(float(out.stdout.split()[-1]))
    return {
        "forget_whole_process_s": statistics.median(forgets),
        "add_whole_process_s": statistics.median(adds),
        "scrub_in_process_s": statistics.median(scrubs),
        "snapshot_mb": (index_dir(directory) / "snapshot").stat().st_size / 2**20,
    }


def bench_size(root: Path, count: int) -> dict[str, float]:
    env = {**os.environ, "MEMO_SHELL_DATA_DIR": str(root / f"store-{count}")}
    cli = [sys.executable, "-m", "memo_shell"]
    source = root / f"import-{count}.jsonl"
    make_jsonl(source, count)
    import_s = run([*cli, "mem", "import", str(source)], env)
    # Build the index once so "open" measures a warm, realistic store.
    run([*cli, "recall", "warm up the index"], env)
    opens, whole = [], []
    for _ in range(5):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", OPEN_PROBE, env["MEMO_SHELL_DATA_DIR"]],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        whole.append(time.perf_counter() - started)
        opens.append(float(out.stdout.split()[1]))
    lists = [run([*cli, "mem", "list", "--limit", "20"], env) for _ in range(5)]
    python_start = [run([sys.executable, "-c", "pass"], env) for _ in range(5)]
    forget = bench_forget(Path(env["MEMO_SHELL_DATA_DIR"]), env, cli)
    return {
        **forget,
        "records": count,
        "import_s": import_s,
        "import_per_s": count / import_s,
        "open_to_add_s": statistics.median(opens),
        "open_to_add_whole_process_s": statistics.median(whole),
        "list20_whole_process_s": statistics.median(lists),
        "python_startup_s": statistics.median(python_start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--samples", type=int, default=400, help="add latency samples")
    parser.add_argument("--dir", type=Path, help="where to build stores (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        latency = bench_add(root, args.samples)
        sizes = [bench_size(root, int(n)) for n in args.sizes.split(",")]
    if args.json:
        print(json.dumps({"add": latency, "sizes": sizes}, indent=2))
        return
    print("durable add (Memories.add, index loaded) vs bare write+fsync+rename+fsync(dir):")
    print(f"  add  p50 {latency['add_p50_ms']:.2f} ms  p99 {latency['add_p99_ms']:.2f} ms")
    print(f"  bare p50 {latency['bare_p50_ms']:.2f} ms  p99 {latency['bare_p99_ms']:.2f} ms")
    print(f"  ratio add/bare p50 = {latency['ratio_p50']:.2f}  (target ≤ 1.30)")
    for s in sizes:
        print(f"{s['records']:>7} records:")
        print(f"  import (whole process)      {s['import_s']:7.1f} s  ({s['import_per_s']:,.0f}/s)")
        print(f"  open → durable add          {s['open_to_add_s']:7.3f} s  in-process")
        print(
            f"  open → durable add          {s['open_to_add_whole_process_s']:7.3f} s  "
            f"whole process (python start alone {s['python_startup_s']:.3f} s)"
        )
        print(f"  mem list --limit 20         {s['list20_whole_process_s']:7.3f} s  whole process")
        print(
            f"  mem forget ID               {s['forget_whole_process_s']:7.3f} s  whole process, "
            f"index rewritten (mem add: {s['add_whole_process_s']:.3f} s, "
            f"×{s['forget_whole_process_s'] / s['add_whole_process_s']:.1f})"
        )
        print(
            f"  index rewrite after forget  {s['scrub_in_process_s']:7.3f} s  in a process with "
            f"the index loaded (snapshot {s['snapshot_mb']:.1f} MB)"
        )


if __name__ == "__main__":
    main()
