"""Sparse recall beside the dense computation it replaced, same index, same queries, one run.

    .venv/bin/python bench/recall_sparse.py [--size 100000] [--queries 300] [--data DIR]

``memo_shell.recall.search`` scores only the memories a query reaches; ``tests/dense_reference``
is the previous implementation (one numpy pass over every row per signal), kept as the test
oracle. Both rank the same index (bench/recall.py's synthetic corpus, built in memory, or the
data dir a ``bench/recall.py --keep DIR`` run left in ``DIR/data-N``) with the same queries,
interleaved so machine load hits both alike. Prints CPU-time p50/p99 of each and their ratio,
and checks that every ranking is identical (ids, scores, reasons).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests")]

import dense_reference  # noqa: E402
from recall import Corpus, percentile  # noqa: E402

import memo_shell  # noqa: E402
from memo_shell import recall  # noqa: E402
from memo_shell.index.data import IndexData  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--data", type=Path, help="a data dir made by bench/recall.py --keep")
    args = parser.parse_args()
    corpus = Corpus()
    memories = corpus.memories(args.size)
    queries = corpus.queries(memories, args.queries)
    if args.data:
        data = memo_shell.open(args.data).index._ready_data()
    else:
        data = IndexData()
        data.begin_bulk()
        for memory in memories:
            data.add(memory)
        data.end_bulk()
    del memories
    times: dict[str, list[float]] = {"dense (before)": [], "sparse (now)": []}
    differ = 0
    for query in queries:
        hits = []
        for name, search in zip(times, (dense_reference.search, recall.search), strict=True):
            started = time.process_time()
            hits.append([(h.id, h.score, h.why) for h in search(data, query, 10)])
            times[name].append(time.process_time() - started)
        differ += hits[0] != hits[1]
    print(f"== {data.n_docs} memories, {len(queries)} queries (CPU time)")
    for name, values in times.items():
        p50, p99 = statistics.median(values), percentile(values, 99)
        print(f"  {name:<16} p50 {1000 * p50:7.2f} ms   p99 {1000 * p99:7.2f} ms")
    ratio = statistics.median(times["dense (before)"]) / statistics.median(times["sparse (now)"])
    print(f"  speed-up (p50)   {ratio:.2f}x")
    print(f"  rankings that differ: {differ}")


if __name__ == "__main__":
    main()
