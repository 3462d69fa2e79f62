"""Batch write benchmark: ``Store.write_batch`` (what import pays per memory on the store side)
beside the bare disk floor, in the same run.

    python bench/write_batch.py                  # 50k records in batches of 2000, 3 rounds
    python bench/write_batch.py --records 10000  # a quick look

- ``store``: ``Store.write_batch`` per batch (encode, temp files, syncfs, create-never-replace
  names, syncfs) into a fresh data dir;
- ``bare``: the same bytes (already encoded) written straight under their final names in the
  same date folders, ``O_CREAT|O_EXCL`` (never replacing) and one ``syncfs`` per batch: no
  temp names, so a crash could leave torn records visible; nothing durable can be cheaper;
- ``encode``: ``records.encode`` alone, the part of ``store`` that is not file system work.

Rounds alternate store and bare so disk weather hits both alike; the figure of merit is the
ratio store/bare (per-record microseconds are printed too, with the median of the rounds), in
wall time and in this process's CPU time (user + system: the work done, which a disk busy with
other writers' syncs does not inflate the way it does the wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from memo_shell import records  # noqa: E402
from memo_shell.disk import Disk  # noqa: E402
from memo_shell.store import Store  # noqa: E402


def make_records(count: int) -> list[records.Memory]:
    """Records spread over ~100 days (as an import of a long history is), ~300 bytes each."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    step = timedelta(days=100) / count
    return [
        records.make_memory(
            user=f"question {i}: what did Caroline say about the pottery class on day {i % 97}?",
            assistant=f"answer {i}: she said it was fun and that she would go again next week",
            session=f"s{i % 50}",
            at=start + i * step,
        )
        for i in range(count)
    ]


def run_store(root: Path, batches: list[list[records.Memory]]) -> tuple[float, float]:
    store = Store(root)
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        store.write_batch(batch)
    return time.perf_counter() - started, time.process_time() - cpu


def run_bare(root: Path, batches: list[list[tuple[str, str, bytes]]]) -> tuple[float, float]:
    disk = Disk()
    memories = root / "memories"
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        for folder, name, data in batch:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            fd = os.open(
                os.path.join(folder, name),
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                0o600,
            )
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        disk.sync_filesystem(memories)
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where to write (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    memories = make_records(args.records)
    batches = [memories[i : i + args.batch] for i in range(0, len(memories), args.batch)]
    started = time.perf_counter()
    encoded = [records.encode(m) for m in memories]
    encode_s = time.perf_counter() - started

    base = Path(tempfile.mkdtemp(prefix="memo-wbatch-", dir=args.dir))
    probe = Store(base / "probe")
    bare_batches = []
    for i in range(0, len(memories), args.batch):
        rows = []
        chunk = zip(memories[i : i + args.batch], encoded[i : i + args.batch], strict=True)
        for memory, data in chunk:
            final = probe.path_for(memory.id)
            folder = str(final.parent).replace(str(base / "probe"), "{root}")
            rows.append((folder, final.name, data))
        bare_batches.append(rows)

    store_s: list[float] = []
    bare_s: list[float] = []
    store_cpu: list[float] = []
    bare_cpu: list[float] = []
    try:
        for r in range(args.rounds):
            root = base / f"store-{r}"
            os.sync()  # flush the previous round's deletions outside the timing
            wall, cpu = run_store(root, batches)
            store_s.append(wall)
            store_cpu.append(cpu)
            shutil.rmtree(root)
            root = base / f"bare-{r}"
            rows = [[(f.format(root=root), n, d) for f, n, d in b] for b in bare_batches]
            os.sync()
            wall, cpu = run_bare(root, rows)
            bare_s.append(wall)
            bare_cpu.append(cpu)
            shutil.rmtree(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    n = args.records
    out = {
        "records": n,
        "store_us": 1e6 * statistics.median(store_s) / n,
        "bare_us": 1e6 * statistics.median(bare_s) / n,
        "store_cpu_us": 1e6 * statistics.median(store_cpu) / n,
        "bare_cpu_us": 1e6 * statistics.median(bare_cpu) / n,
        "encode_us": 1e6 * encode_s / n,
        "ratio": statistics.median(s / b for s, b in zip(store_s, bare_s, strict=True)),
        "cpu_ratio": statistics.median(s / b for s, b in zip(store_cpu, bare_cpu, strict=True)),
    }
    if args.json:
        print(json.dumps(out))
        return
    print(
        f"{n} records, batches of {args.batch}, {args.rounds} rounds (median): "
        f"store {out['store_us']:.1f} µs/record (CPU {out['store_cpu_us']:.1f}), "
        f"bare {out['bare_us']:.1f} µs/record (CPU {out['bare_cpu_us']:.1f}), "
        f"encode alone {out['encode_us']:.1f} µs/record; "
        f"store/bare {out['ratio']:.2f} (CPU {out['cpu_ratio']:.2f})"
    )


if __name__ == "__main__":
    main()
