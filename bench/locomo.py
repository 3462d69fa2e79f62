"""LoCoMo retrieval benchmark, run through memo-shell's public API, beside plain BM25.

    .venv/bin/python bench/locomo.py [path/to/locomo.json] [--k 10] [--json out.json]

For each conversation: a fresh data dir, one memory per turn (``user = "Speaker: text"``, plus
``[shares <caption>]`` when the turn shares a photo), ``session = "session_N"``, ``at`` = the
session's date (turn i of a session at +i seconds, so turns keep their order), and
``meta={"dia_id": ...}``. Each question of categories 1-4 is asked with ``recall(question, k)``.

Scores (per question, averaged; overall and per category):

* turn recall@1/5/10: an evidence turn is among the top K memories;
* all-evidence@10: every evidence turn is among the top 10;
* session recall@5: an evidence session is among the first 5 distinct sessions of the top-k
  memories (in rank order), i.e. what a reader of the 10 recalled memories would see.

The plain BM25 baseline is bm25s (English stopwords, Snowball stemming) over the same texts,
computed in the same run. Ablations switch ranking components off through ``Index.options``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import memo_shell  # noqa: E402

try:
    import bm25s  # noqa: F401  # the baseline (pip install bm25s); optional for the rest

    HAVE_BM25S = True
except ImportError:
    HAVE_BM25S = False

DEFAULT_DATA = REPO / ".." / "shared" / "bench" / "locomo-dev.json"
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


@dataclass
class Turn:
    dia_id: str
    session: int
    at: datetime
    text: str


@dataclass
class Question:
    text: str
    category: int
    evidence: set[str]


def normalise_evidence(raw: list[str]) -> set[str]:
    """``"D8:6; D9:17"`` -> two ids; ``"D:11:26"`` -> ``D11:26``; ``"D30:05"`` -> ``D30:5``."""
    out = set()
    for item in raw:
        for part in re.split(r"[;,\s]+", item):
            nums = re.findall(r"\d+", part)
            if len(nums) >= 2:
                out.add(f"D{int(nums[0])}:{int(nums[1])}")
    return out


def parse_when(text: str) -> datetime:
    """LoCoMo dates look like ``1:56 pm on 8 May, 2023``."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y")


def load(path: Path) -> list[tuple[str, list[Turn], list[Question]]]:
    conversations = []
    for conv in json.loads(path.read_text()):
        c = conv["conversation"]
        turns: list[Turn] = []
        n = 1
        while f"session_{n}" in c or f"session_{n}_date_time" in c:
            stamp = c.get(f"session_{n}_date_time")
            when = parse_when(stamp) if stamp else None
            for i, t in enumerate(c.get(f"session_{n}", [])):
                text = f"{t['speaker']}: {t['text']}"
                if t.get("blip_caption"):
                    text += f" [shares {t['blip_caption']}]"
                at = (when or datetime(2000, 1, 1)) + timedelta(seconds=i)
                turns.append(Turn(t["dia_id"], n, at, text))
            n += 1
        questions = [
            Question(q["question"], int(q["category"]), normalise_evidence(q.get("evidence", [])))
            for q in conv["qa"]
            if int(q["category"]) in CATEGORIES
        ]
        conversations.append((conv["sample_id"], turns, [q for q in questions if q.evidence]))
    return conversations


def session_of(dia_id: str) -> int:
    return int(dia_id[1:].split(":")[0])


class Scores:
    """Accumulates per-question metrics, overall and per category."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []

    def add(self, q: Question, ranked: list[str], k: int) -> None:
        sessions: list[int] = []
        for dia in ranked[:k]:
            s = session_of(dia)
            if s not in sessions:
                sessions.append(s)
        ev_sessions = {session_of(e) for e in q.evidence}
        row = {
            "R@1": float(bool(q.evidence & set(ranked[:1]))),
            "R@5": float(bool(q.evidence & set(ranked[:5]))),
            "R@10": float(bool(q.evidence & set(ranked[:10]))),
            "all@10": float(q.evidence <= set(ranked[:10])),
            "S@5": float(bool(ev_sessions & set(sessions[:5]))),
        }
        self.rows.append((q.category, row))

    def summary(self) -> dict[str, dict[str, float]]:
        groups: dict[str, list[dict[str, float]]] = defaultdict(list)
        for cat, row in self.rows:
            groups["all"].append(row)
            groups[CATEGORIES[cat]].append(row)
        return {
            name: {m: sum(r[m] for r in rows) / len(rows) for m in rows[0]} | {"n": len(rows)}
            for name, rows in groups.items()
        }


def bm25_baseline(turns: list[Turn], questions: list[Question], k: int) -> list[list[str]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    corpus = [t.text for t in turns]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    out = []
    for q in questions:
        tokens = bm25s.tokenize([q.text], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.vocab:
            out.append([])
            continue
        docs, _scores = retriever.retrieve(tokens, k=min(k, len(corpus)), show_progress=False)
        out.append([turns[int(i)].dia_id for i in docs[0]])
    return out


OFF = {"graph": False, "session_context": False, "temporal": False, "vectors": False}
#: Cumulative ablations: each line switches one more component on.
CONFIGS: dict[str, dict[str, bool]] = {
    "lexical only": OFF,
    "+ graph": OFF | {"graph": True},
    "+ session context": OFF | {"graph": True, "session_context": True},
    "+ time": OFF | {"graph": True, "session_context": True, "temporal": True},
}


def load_embedder(spec: str | None) -> object | None:
    """``module:factory`` -> ``factory()``, an object with ``.id`` and ``.embed(texts)``."""
    if not spec:
        return None
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)()


def run(
    path: Path, k: int, ablations: bool, embedder: object | None = None
) -> dict[str, dict[str, dict[str, float]]]:
    conversations = load(path)
    results: dict[str, Scores] = defaultdict(Scores)
    timings: dict[str, float] = defaultdict(float)
    for sample_id, turns, questions in conversations:
        with tempfile.TemporaryDirectory(prefix="memo-locomo-") as tmp:
            started = time.perf_counter()
            with memo_shell.open(Path(tmp) / "data", embedder=embedder) as mem:
                dia_of: dict[str, str] = {}
                for turn in turns:
                    mid = mem.add(turn.text, session=f"session_{turn.session}", at=turn.at,
                                  meta={"dia_id": turn.dia_id})
                    dia_of[mid] = turn.dia_id
                mem.wait_ready()
                mem.index.wait_embedded()
                timings["add"] += time.perf_counter() - started
                started = time.perf_counter()
                for q in questions:
                    hits = mem.recall(q.text, k=k)
                    results["memo-shell"].add(q, [h.memory.meta["dia_id"] for h in hits], k)
                timings["recall"] += time.perf_counter() - started
                timings["questions"] += len(questions)
                if ablations:
                    default = mem.index.options
                    configs = dict(CONFIGS)
                    if embedder is not None:
                        configs["+ vectors"] = {}
                    for name, flags in configs.items():
                        mem.index.options = replace(default, **flags)
                        for q in questions:
                            found = mem.index.search(q.text, k=k)
                            results[name].add(q, [dia_of[h.id] for h in found], k)
                    mem.index.options = default
        if HAVE_BM25S:
            for q, ranked in zip(questions, bm25_baseline(turns, questions, k), strict=True):
                results["bm25 (bm25s)"].add(q, ranked, k)
        print(f"  {sample_id}: {len(turns)} turns, {len(questions)} questions", file=sys.stderr)
    per_question = 1000 * timings["recall"] / max(timings["questions"], 1)
    print(f"  add {timings['add']:.1f} s, recall {per_question:.2f} ms/question", file=sys.stderr)
    return {name: scores.summary() for name, scores in results.items()}


def report(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    metrics = ["R@1", "R@5", "R@10", "all@10", "S@5"]
    lines = []
    head = f"{'retriever':<20} {'group':<12} {'n':>4} " + " ".join(f"{m:>7}" for m in metrics)
    lines.append(head)
    lines.append("-" * len(head))
    order = ["bm25 (bm25s)", "memo-shell"] + [n for n in summary if n not in
                                               ("bm25 (bm25s)", "memo-shell")]
    for name in order:
        if name not in summary:
            continue
        groups = summary[name]
        for group in ["all", *CATEGORIES.values()]:
            if group not in groups:
                continue
            if name not in ("bm25 (bm25s)", "memo-shell") and group != "all":
                continue
            row = groups[group]
            lines.append(
                f"{name:<20} {group:<12} {int(row['n']):>4} "
                + " ".join(f"{row[m]:>7.3f}" for m in metrics)
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--embedder", help="module:factory returning an embedder (adds vectors)")
    args = parser.parse_args()
    embedder = load_embedder(args.embedder)
    summary = run(args.data, args.k, not args.no_ablations, embedder)
    print(report(summary))
    if embedder is None:
        print("(+ vectors: no embedder given; pass --embedder module:factory to measure it)")
    if not HAVE_BM25S:
        print("(bm25 baseline skipped: pip install bm25s)")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
