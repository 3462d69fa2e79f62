"""Recall speed and size at 10k to 1M synthetic memories, beside tantivy and SQLite FTS5 bm25.

    .venv/bin/python bench/recall.py [--sizes 10000 100000] [--queries 500] [--keep DIR]

For each size, in a fresh data dir (or ``--keep``): import through ``Memories.add_many``
(durable batches), ``reindex``, close, then in fresh handles: ``open()`` time, time to the first
recall (load + catch-up + one query), recall p50/p99 over mixed queries (no embedder, so no query
embedding time; wall time, and CPU time which is what an idle machine would show), the cost of
``Index.add`` for one memory beyond the durable write, and the peak RSS of a fresh process that
opens and recalls, and of one that reindexes. The FTS5 baseline indexes the same texts (porter
tokenizer) in the same run and answers the same queries with ``ORDER BY bm25``; tantivy (dev
extra) does BM25 top-10 over the same texts and queries (its own tokenizer, terms OR-ed), the
engine-grade baseline the ratio ``p50_vs_tantivy_x`` compares with; bm25s (if installed) gives
its full-index time, which is what adding one memory would cost it.

Synthetic text: a Zipfian vocabulary (real words for the head, generated ones for the tail),
first names, places, dates and numbers, ~20 memories per session, so postings, entity hubs and
sessions have realistic shapes. Deterministic (seeded).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import memo_shell  # noqa: E402
from memo_shell import records  # noqa: E402
from memo_shell.paths import index_dir  # noqa: E402


def _words(text: str) -> list[str]:
    return text.split()


HEAD = _words(
    "dinner lunch coffee garden pottery guitar painting birthday school camping beach museum "
    "concert recipe marathon adoption puppy violin workshop library festival sunset novel bakery "
    "tennis sister brother mother father friend kids work project meeting doctor dentist car "
    "bike train flight hotel trip vacation weekend movie book song album game team office boss "
    "salary rent apartment house kitchen bread cheese wine tea pizza pasta soup salad chicken "
    "running swimming hiking yoga climbing soccer basketball chess piano drums camera photo "
    "phone laptop email password bank budget taxes insurance appointment medicine allergy cold "
    "flu sleep dream plan idea goal habit class course exam degree thesis research paper code "
    "bug server deploy release launch startup client contract invoice market stock garden rose"
)
NAMES = _words(
    "Caroline Melanie Jon Gina John Maria Joanna Nate Tim Priya Ahmed Sofia Liam Emma Noah Olivia "
    "Lucas Mia Ethan Ava Mateo Chloe Hiro Yuki Fatima Omar Elena Ivan Grace Daniel"
)
PLACES = _words(
    "Paris Boston Tokyo Sweden Lisbon Berlin Oregon Chicago Madrid Rome Seattle Denver Dublin "
    "Austin Toronto Sydney Kyoto Cairo Nairobi Lima"
)
FILLER = _words("I we the a to and of was it so really just my our that with for on at in")


class Corpus:
    """Deterministic synthetic memories and queries."""

    def __init__(self, seed: int = 7, vocab: int = 40_000) -> None:
        self.rng = random.Random(seed)
        tail = set()
        while len(tail) < vocab:
            n = self.rng.randint(4, 9)
            tail.add("".join(self.rng.choice("bcdfghjklmnprstvwz" if i % 2 == 0 else "aeiou")
                             for i in range(n)))
        self.words = HEAD + sorted(tail)
        weights = [1.0 / (rank + 10) for rank in range(len(self.words))]
        total = sum(weights)
        self.cum = []
        acc = 0.0
        for w in weights:
            acc += w / total
            self.cum.append(acc)

    def word(self) -> str:
        import bisect

        return self.words[min(bisect.bisect(self.cum, self.rng.random()), len(self.words) - 1)]

    def sentence(self, n: int) -> str:
        parts = []
        for _ in range(n):
            r = self.rng.random()
            if r < 0.35:
                parts.append(self.rng.choice(FILLER))
            elif r < 0.40:
                parts.append(self.rng.choice(NAMES))
            elif r < 0.43:
                parts.append("in " + self.rng.choice(PLACES))
            elif r < 0.45:
                parts.append(str(self.rng.randint(2, 2024)))
            else:
                parts.append(self.word())
        return " ".join(parts).capitalize() + "."

    def memories(self, n: int) -> list[records.Memory]:
        start = datetime(2021, 1, 1, tzinfo=UTC)
        out = []
        for i in range(n):
            at = start + timedelta(minutes=20 * i)
            out.append(records.make_memory(
                user=self.sentence(self.rng.randint(8, 25)),
                assistant=self.sentence(self.rng.randint(10, 40)),
                session=f"s{i // 20}",
                at=at,
            ))
        return out

    def queries(self, memories: list[records.Memory], n: int) -> list[str]:
        out = []
        for i in range(n):
            m = self.rng.choice(memories)
            words = [w for w in m.user.rstrip(".").split() if w.lower() not in FILLER]
            pick = self.rng.sample(words, min(len(words), self.rng.randint(2, 5)))
            kind = i % 4
            if kind == 0:
                out.append("what did I say about " + " ".join(pick) + "?")
            elif kind == 1:
                out.append(" ".join(pick))
            elif kind == 2:
                out.append(f"when did {self.rng.choice(NAMES)} mention {' '.join(pick[:2])}?")
            else:
                month = m.created_at.strftime("%B %Y")
                out.append(f"what happened with {' '.join(pick[:2])} in {month}?")
        return out


def rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def fts5(memories: list[records.Memory], queries: list[str], where: Path) -> dict[str, float]:
    """SQLite FTS5 (porter) over the same texts: build time and bm25 query latency."""
    db_path = where / "fts5.sqlite"
    db_path.unlink(missing_ok=True)
    db = sqlite3.connect(db_path)
    started = time.perf_counter()
    db.execute("CREATE VIRTUAL TABLE m USING fts5(body, tokenize='porter unicode61')")
    db.executemany("INSERT INTO m(rowid, body) VALUES (?, ?)",
                   ((i, m.text) for i, m in enumerate(memories)))
    db.commit()
    build = time.perf_counter() - started
    times = []
    for query in queries:
        terms = [w for w in "".join(c if c.isalnum() else " " for c in query).split()]
        match = " OR ".join(f'"{t}"' for t in terms) or '""'
        t0 = time.perf_counter()
        db.execute("SELECT rowid FROM m WHERE m MATCH ? ORDER BY bm25(m) LIMIT 10",
                   (match,)).fetchall()
        times.append(time.perf_counter() - t0)
    db.close()
    return {
        "build_s": build,
        "p50_ms": 1000 * percentile(times, 50),
        "p99_ms": 1000 * percentile(times, 99),
        "bytes": db_path.stat().st_size,
    }


_CHILD = """
import resource, sys, time
sys.path.insert(0, {repo!r})
import memo_shell
mem = memo_shell.open({data!r})
if {reindex!r}:
    mem.reindex()
else:
    for q in {queries!r}:
        mem.recall(q)
mem.close()
# VmHWM: this process's own peak RSS (ru_maxrss would include the parent's, across exec)
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")]
print(int(hwm[0].split()[1]) / 1024 if hwm else
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def child_rss(data_dir: Path, queries: list[str]) -> dict[str, float]:
    """Peak RSS of a fresh process that opens and recalls, and of one that reindexes.

    Measured in child processes so the benchmark's own copy of the corpus is not counted.
    """
    import subprocess

    out = {}
    for name, reindex in (("rss_open_recall_mb", False), ("rss_reindex_mb", True)):
        code = _CHILD.format(repo=str(REPO), data=str(data_dir), queries=queries, reindex=reindex)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True)
        out[name] = float(result.stdout.strip().splitlines()[-1])
    return out


def tantivy_baseline(memories: list[records.Memory], queries: list[str],
                     where: Path) -> dict[str, float]:
    """tantivy (if installed): build time, BM25 top-10 latency, on-disk size, and what one
    memory costs once built: an add made durable (``commit``), and a forget, which only marks
    the document deleted (its words stay in the segment files until a merge rewrites them).

    Its default tokenizer (no stemming) over the same texts; queries are the same words OR-ed
    (``parse_query`` on a term list, so no query-syntax surprises from punctuation).
    Why memo-shell keeps its own postings beside it: ``add_index_ms_p50`` vs
    ``tantivy_add_commit_ms``, a forget that leaves no trace without rewriting segments, and
    BM25 on its own analyzer with per-side (statement/question/claim) weights and per-session
    aggregation, which tantivy's scorer does not offer; the query-time gap is what
    ``p50_vs_tantivy_x`` shows.
    """
    try:
        import tantivy
    except ImportError:
        return {}
    path = where / "tantivy"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body", stored=False)
    builder.add_text_field("id", stored=False, tokenizer_name="raw")
    schema = builder.build()
    started = time.perf_counter()
    index = tantivy.Index(schema, path=str(path))
    writer = index.writer(heap_size=200_000_000, num_threads=1)
    for m in memories:
        writer.add_document(tantivy.Document(body=m.text))
    writer.commit()
    writer.wait_merging_threads()
    build = time.perf_counter() - started
    index.reload()
    searcher = index.searcher()
    times = []
    for query in queries:
        terms = [w for w in "".join(c if c.isalnum() else " " for c in query).lower().split()]
        t0 = time.perf_counter()
        if terms:
            q = index.parse_query(" ".join(terms), ["body"])
            searcher.search(q, 10).hits  # noqa: B018
        times.append(time.perf_counter() - t0)
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    adds, forgets = [], []
    for i, m in enumerate(memories[:20]):
        t0 = time.perf_counter()
        writer.add_document(tantivy.Document(body=m.text, id=f"extra{i}"))
        writer.commit()
        adds.append(time.perf_counter() - t0)
    for i in range(20):
        t0 = time.perf_counter()
        writer.delete_documents_by_term("id", f"extra{i}")
        writer.commit()
        forgets.append(time.perf_counter() - t0)
    return {
        "build_s": build,
        "p50_ms": 1000 * percentile(times, 50),
        "p99_ms": 1000 * percentile(times, 99),
        "bytes": size,
        "add_commit_ms": 1000 * percentile(adds, 50),
        "delete_commit_ms": 1000 * percentile(forgets, 50),
    }


def bm25s_baseline(memories: list[records.Memory], queries: list[str]) -> dict[str, float]:
    """bm25s (if installed): full index time (what adding one memory would cost) and p50/p99."""
    try:
        import bm25s
        import Stemmer
    except ImportError:
        return {}
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    tokens = bm25s.tokenize([m.text for m in memories], stopwords="en", stemmer=stemmer,
                            show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    build = time.perf_counter() - started
    times = []
    for query in queries:
        t0 = time.perf_counter()
        q = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        if q.vocab:
            retriever.retrieve(q, k=10, show_progress=False)
        times.append(time.perf_counter() - t0)
    return {"build_s": build, "p50_ms": 1000 * percentile(times, 50),
            "p99_ms": 1000 * percentile(times, 99)}


def run(size: int, n_queries: int, root: Path) -> dict[str, float]:
    corpus = Corpus()
    memories = corpus.memories(size)
    queries = corpus.queries(memories, n_queries)
    data_dir = root / f"data-{size}"
    shutil.rmtree(data_dir, ignore_errors=True)
    out: dict[str, float] = {"memories": size}

    started = time.perf_counter()
    with memo_shell.open(data_dir) as mem:
        mem.add_many(memories)
        out["import_s"] = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        out["reindexed"] = mem.reindex()
        out["reindex_s"] = time.perf_counter() - started
        out["reindex_cpu_s"] = time.process_time() - cpu
    del memories
    gc.collect()

    started = time.perf_counter()
    mem = memo_shell.open(data_dir)
    out["open_s"] = time.perf_counter() - started
    mem.recall(queries[0])
    out["first_recall_s"] = time.perf_counter() - started

    index = mem.index
    mem.rank(queries[0])  # warm caches
    times, cpu = [], []
    empty = 0
    for query in queries:
        t0, c0 = time.perf_counter(), time.process_time()
        hits = mem.rank(query, k=10)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        empty += not hits
    out["p50_ms"] = 1000 * statistics.median(times)
    out["p99_ms"] = 1000 * percentile(times, 99)
    # CPU time of the same searches: what the wall figures would be on an idle machine
    out["p50_cpu_ms"] = 1000 * statistics.median(cpu)
    out["p99_cpu_ms"] = 1000 * percentile(cpu, 99)
    out["empty_results"] = empty

    # one more memory: the durable write, then the index's own cost
    extra = [records.make_memory(user=corpus.sentence(20), assistant=corpus.sentence(30),
                                 session="bench", at=datetime.now(UTC)) for _ in range(50)]
    add_times, write_times = [], []
    for memory in extra:
        t0 = time.perf_counter()
        mem.store.write(memory)
        t1 = time.perf_counter()
        index.add(memory)
        add_times.append(time.perf_counter() - t1)
        write_times.append(t1 - t0)
    out["add_index_ms_p50"] = 1000 * statistics.median(add_times)
    out["add_index_ms_max"] = 1000 * max(add_times)
    out["durable_write_ms_p50"] = 1000 * statistics.median(write_times)
    started = time.perf_counter()
    mem.close()
    out["close_s"] = time.perf_counter() - started
    out["index_mb_on_disk"] = sum(
        p.stat().st_size for p in index_dir(data_dir).iterdir()) / 1e6
    out["rss_bench_process_mb"] = rss_mb()

    out.update(child_rss(data_dir, queries[:100]))
    corpus_again = Corpus()
    again = corpus_again.memories(size)
    f = fts5(again, queries, root)
    out.update({f"fts5_{k}": v for k, v in f.items()})
    out.update({f"tantivy_{k}": v for k, v in tantivy_baseline(again, queries, root).items()})
    if "tantivy_p50_ms" in out:
        out["p50_vs_tantivy_x"] = out["p50_ms"] / max(out["tantivy_p50_ms"], 1e-6)
    out.update({f"bm25s_{k}": v for k, v in bm25s_baseline(again, queries).items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="memo-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        for size in args.sizes:
            result = run(size, args.queries, root)
            print(f"== {size} memories")
            for key, value in result.items():
                print(f"  {key:<22} {value:,.3f}" if isinstance(value, float) else
                      f"  {key:<22} {value}")
            sys.stdout.flush()
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
