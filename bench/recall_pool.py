"""The bounded candidate pool beside exhaustive ranking: speed, and how often the top 10 agree.

    .venv/bin/python bench/recall_pool.py --data bench/out/recall/data-100000 [--queries 300]
    .venv/bin/python bench/recall_pool.py --locomo [path/to/locomo.json] [--pools 30 100]

``--data``: a data dir left by ``bench/recall.py --keep DIR`` (its synthetic corpus; the queries
are regenerated from the same seed). Each query is ranked exhaustively (the pool switched off)
and with the pool at each size in ``--pools``, interleaved so machine load hits all alike; prints
CPU-time p50/p99 of each, and their top-10 agreement with the exhaustive ranking: the share of
queries whose top 10 is identical (ids and order), and the mean overlap of the two top-10 sets.

``--locomo``: the same agreement on LoCoMo and its real-chat variants (chat-eu, chat-us) and on
bench/truth.py's scenario, with the pool *forced* on (``exhaustive_below=0``) at sizes far below
the stores' sizes, since these stores are small enough that the default settings never pool.
A negative pool size means the same pool with its reach (``recall.reach``) cut down too, since
on stores this small the default reach alone covers every session.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import memo_shell  # noqa: E402
from memo_shell import recall  # noqa: E402
from memo_shell.recall import RecallOptions, lexical, pool, reach  # noqa: E402

EXHAUSTIVE = RecallOptions(exhaustive_below=2**62)
SESSIONS, NEIGHBOURS_OF = reach.SESSIONS, reach.NEIGHBOURS_OF


class Agreement:
    def __init__(self) -> None:
        self.same = 0
        self.overlap = 0.0
        self.n = 0

    def add(self, reference: list[str], pooled: list[str]) -> None:
        self.n += 1
        self.same += reference == pooled
        if reference:
            self.overlap += len(set(reference) & set(pooled)) / len(reference)
        else:
            self.overlap += 1.0 if not pooled else 0.0

    def __str__(self) -> str:
        n = max(self.n, 1)
        same, overlap = self.same / n, self.overlap / n
        return f"top-10 identical {same:.3f}, overlap@10 {overlap:.3f} ({self.n} q)"


def synthetic(
    data_dir: Path, n_queries: int, pools: list[int], threshold: int | None, long: list[int]
) -> None:
    from recall import Corpus, percentile

    size = int(data_dir.name.rsplit("-", 1)[-1])
    corpus = Corpus()
    queries = corpus.queries(corpus.memories(size), n_queries)
    data = memo_shell.open(data_dir).index._ready_data()
    configs = {"exhaustive": EXHAUSTIVE}
    pooled = RecallOptions() if threshold is None else RecallOptions(exhaustive_below=threshold)
    for n in long or [pooled.long_postings]:
        name = "pool {}" if not long else f"pool {{}}/{n // 1000}k"
        configs |= {name.format(k): replace(pooled, lexical_pool=k, long_postings=n) for k in pools}
    times: dict[str, list[float]] = {name: [] for name in configs}
    agree = {name: Agreement() for name in configs if name != "exhaustive"}
    for options in configs.values():  # warm the caches alike
        recall.search(data, queries[0], 10, options=options)
    sizes = []
    for query in queries:
        sizes.append(pool.size(data, lexical.analyse_query(data, query)))
        ranked = {}
        for name, options in configs.items():
            started = time.process_time()
            hits = recall.search(data, query, 10, options=options)
            times[name].append(time.process_time() - started)
            ranked[name] = [h.id for h in hits]
        for name in agree:
            agree[name].add(ranked["exhaustive"], ranked[name])
    print(f"== {data.n_docs} memories, {len(queries)} queries (CPU time)")
    for name, values in times.items():
        line = f"  {name:<16} p50 {1000 * statistics.median(values):7.2f} ms"
        line += f"  p99 {1000 * percentile(values, 99):7.2f} ms"
        if name in agree:
            line += f"  {agree[name]}"
        print(line, flush=True)
    # where the pool starts to pay: median CPU ms by the query's postings (exhaustive_below)
    edges = [0, 10_000, 30_000, 100_000, 300_000, 1_000_000, 10**12]
    print("  postings        n " + " ".join(f"{name:>14}" for name in configs))
    for lo, hi in itertools.pairwise(edges):
        at = [i for i, n in enumerate(sizes) if lo <= n < hi]
        if at:
            cells = " ".join(
                f"{1000 * statistics.median([times[name][i] for i in at]):14.2f}"
                for name in configs
            )
            print(f"  {lo:>8,}+ {len(at):>7} {cells}")


def _tight(k: int) -> int:
    """Pool sizes below 0 in ``--pools`` mean: that pool, with the reach cut to 2 sessions and
    the neighbours of 10 hits (on stores this small the default reach covers every session)."""
    tight = k < 0
    reach.SESSIONS, reach.NEIGHBOURS_OF = (2, 10) if tight else (SESSIONS, NEIGHBOURS_OF)
    return abs(k)


def _label(k: int) -> str:
    return f"{-k} (tight)" if k < 0 else str(k)


def _compare(
    mem: memo_shell.Memories, questions: list[str], pools: list[int], agree: dict[int, Agreement]
) -> None:
    default = mem.recall_options
    reference = {q: [h.id for h in mem.rank(q, k=10)] for q in questions}
    for k in pools:
        mem.recall_options = replace(default, exhaustive_below=0, lexical_pool=_tight(k))
        for q in questions:
            agree[k].add(reference[q], [h.id for h in mem.rank(q, k=10)])
        _tight(0)
    mem.recall_options = default


def small_stores(path: Path | None, pools: list[int]) -> None:
    import locomo
    import truth
    import variants

    conversations = locomo.load(path or locomo.DEFAULT_DATA)
    sets = {
        "locomo": conversations,
        "chat-eu": variants.transform(conversations, "eu", 7),
        "chat-us": variants.transform(conversations, "us", 7),
    }
    for name, convs in sets.items():
        agree = {k: Agreement() for k in pools}
        with tempfile.TemporaryDirectory(prefix="memo-pool-") as tmp:
            for i, (_sample, turns, questions) in enumerate(convs):
                with locomo._index(turns, Path(tmp), None, f"c{i}") as mem:
                    _compare(mem, [q.text for q in questions], pools, agree)
        for k in pools:
            print(f"  {name:<8} pool {_label(k):<14} {agree[k]}", flush=True)
    sc = truth.build(7, 50)
    agree = {k: Agreement() for k in pools}
    with (
        tempfile.TemporaryDirectory(prefix="memo-pool-") as tmp,
        memo_shell.open(Path(tmp) / "truth") as mem,
    ):
        for user, assistant, session, at, _key in sc.turns:
            mem.add(user, assistant, session=session, at=at)
        mem.wait_ready()
        _compare(mem, [p for f in sc.facts for p in f.probes], pools, agree)
    for k in pools:
        print(f"  {'truth':<8} pool {_label(k):<14} {agree[k]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a data dir made by bench/recall.py --keep")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--locomo", nargs="?", const=True, help="LoCoMo json (default: bench's)")
    parser.add_argument("--pools", type=int, nargs="+", help="pool sizes to compare")
    parser.add_argument("--threshold", type=int, help="exhaustive_below for the pools (0: always)")
    parser.add_argument("--long", type=int, nargs="+", help="long_postings values to compare")
    args = parser.parse_args()
    if args.data:
        synthetic(args.data, args.queries, args.pools or [200, 1000], args.threshold, args.long)
    if args.locomo:
        path = None if args.locomo is True else Path(args.locomo)
        small_stores(path, args.pools or [20, 50, 100])


if __name__ == "__main__":
    main()
