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
computed in the same run. Ablations switch ranking components off through
``Memories.recall_options``.
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
sys.path.insert(0, str(REPO / "bench"))

import ablate  # noqa: E402

import memo_shell  # noqa: E402
from memo_shell.recall.options import RecallOptions  # noqa: E402

try:
    import bm25s  # noqa: F401  # the baseline (pip install bm25s); optional for the rest

    HAVE_BM25S = True
except ImportError:
    HAVE_BM25S = False

#: beside the checkout (../shared), or beside a worktree of it (../../shared)
DEFAULT_DATA = next(
    (p for p in (REPO.parent / "shared", REPO.parent.parent / "shared")
     if (p / "bench" / "locomo-dev.json").exists()),
    REPO.parent / "shared",
) / "bench" / "locomo-dev.json"
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

    def add(self, q: Question, memories: list[str], k: int) -> None:
        # a memory holding two merged messages (real-chat variants) carries both ids: "a|b"
        ranked = [[d for d in dia.split("|") if d] for dia in memories]
        found = [set().union(*ranked[:n]) if ranked[:n] else set() for n in (1, 5, 10)]
        sessions: list[int] = []
        for dia in [d for ids in ranked[:k] for d in ids]:
            s = session_of(dia)
            if s not in sessions:
                sessions.append(s)
        ev_sessions = {session_of(e) for e in q.evidence}
        row = {
            "R@1": float(bool(q.evidence & found[0])),
            "R@5": float(bool(q.evidence & found[1])),
            "R@10": float(bool(q.evidence & found[2])),
            "all@10": float(q.evidence <= found[2]),
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
#: Leave-one-out ablations of query-time signals: everything on except one.
WITHOUT: dict[str, dict[str, bool]] = {
    "- graph": {"graph": False},
    "- session context": {"session_context": False},
    "- time": {"temporal": False},
    "- provenance": {"w_question": 1.0, "w_claim": 1.0},
}
#: The bounded candidate pool (recall/pool.py) forced on: these stores are far below the size
#: where it switches on by itself, so this row shows its tolerance on real conversations.
SCALE: dict[str, dict[str, object]] = {
    "pool forced (K 50)": {"exhaustive_below": 0, "lexical_pool": 50},
}


def load_embedder(spec: str | None) -> object | None:
    """``module:factory`` -> ``factory()``, an object with ``.id`` and ``.embed(texts)``."""
    if not spec:
        return None
    import importlib

    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)()


def _known_options(flags: dict[str, object]) -> dict[str, object]:
    fields = RecallOptions.__dataclass_fields__
    return {k: v for k, v in flags.items() if k in fields}


def _index(turns: list[Turn], tmp: Path, embedder: object | None, name: str) -> object:
    mem = memo_shell.open(tmp / name, embedder=embedder)
    for turn in turns:
        mem.add(turn.text, session=f"session_{turn.session}", at=turn.at,
                meta={"dia_id": turn.dia_id})
    mem.wait_ready()
    mem.index.wait_embedded()
    return mem


def run(
    conversations: list[tuple[str, list[Turn], list[Question]]],
    k: int,
    ablations: bool,
    embedder: object | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, Scores] = defaultdict(Scores)
    timings: dict[str, float] = defaultdict(float)
    for sample_id, turns, questions in conversations:
        with tempfile.TemporaryDirectory(prefix="memo-locomo-") as tmp:
            started = time.perf_counter()
            with _index(turns, Path(tmp), embedder, "data") as mem:
                timings["add"] += time.perf_counter() - started
                started = time.perf_counter()
                for q in questions:
                    hits = mem.recall(q.text, k=k)
                    results["memo-shell"].add(q, [h.memory.meta["dia_id"] for h in hits], k)
                timings["recall"] += time.perf_counter() - started
                timings["questions"] += len(questions)
                if ablations:
                    dia_of = {m.id: m.meta["dia_id"] for m in mem.iter_memories()}
                    default = mem.recall_options
                    configs = dict(CONFIGS) | WITHOUT | SCALE
                    if embedder is not None:
                        configs["+ vectors"] = {}
                    for name, flags in configs.items():
                        known = _known_options(flags)
                        if len(known) < len(flags):
                            continue
                        mem.recall_options = replace(default, **known)
                        for q in questions:
                            found = mem.rank(q.text, k=k)
                            results[name].add(q, [dia_of[h.id] for h in found], k)
                    mem.recall_options = default
            if ablations:
                for switch in ablate.available():
                    name = f"- {switch}"
                    sub = switch.replace(" ", "-")
                    with ablate.without(switch), _index(turns, Path(tmp), embedder, sub) as mem:
                        for q in questions:
                            hits = mem.recall(q.text, k=k)
                            results[name].add(q, [h.memory.meta["dia_id"] for h in hits], k)
        if HAVE_BM25S:
            for q, ranked in zip(questions, bm25_baseline(turns, questions, k), strict=True):
                results["bm25 (bm25s)"].add(q, ranked, k)
        print(f"  {sample_id}: {len(turns)} turns, {len(questions)} questions", file=sys.stderr)
    per_question = 1000 * timings["recall"] / max(timings["questions"], 1)
    print(f"  add {timings['add']:.1f} s, recall {per_question:.2f} ms/question", file=sys.stderr)
    return {name: scores.summary() for name, scores in results.items()}


def run_truth(k: int, ablations: bool, seed: int, n_facts: int) -> dict[str, dict[str, float]]:
    """The truth-over-echo scenario (bench/truth.py): is the user's statement ranked first?"""
    import truth

    sc = truth.build(seed, n_facts)
    out: dict[str, dict[str, float]] = {}
    probes = [(p, f"fact{i}") for i, f in enumerate(sc.facts) for p in f.probes]

    def measure(mem: object, search: object) -> dict[str, float]:
        ranked = [[key_of.get(h, "") for h in search(p)] for p, _key in probes]  # type: ignore
        return truth.score(ranked, [key for _p, key in probes])

    with tempfile.TemporaryDirectory(prefix="memo-truth-") as tmp:

        def build(name: str) -> object:
            mem = memo_shell.open(Path(tmp) / name)
            for user, assistant, session, at, key in sc.turns:
                mid = mem.add(user, assistant, session=session, at=at)
                key_of[mid] = key
            mem.wait_ready()
            return mem

        key_of: dict[str, str] = {}
        with build("data") as mem:
            out["memo-shell"] = measure(mem, lambda p: [h.memory.id for h in mem.recall(p, k=k)])
            if ablations:
                default = mem.recall_options
                for name, flags in (CONFIGS | WITHOUT | SCALE).items():
                    known = _known_options(flags)
                    if len(known) < len(flags):
                        continue
                    mem.recall_options = replace(default, **known)
                    out[name] = measure(mem, lambda p: [h.id for h in mem.rank(p, k=k)])
                mem.recall_options = default
        if ablations:
            for switch in ablate.available():
                with ablate.without(switch), build(switch.replace(" ", "-")) as mem:
                    out[f"- {switch}"] = measure(
                        mem, lambda p: [h.memory.id for h in mem.recall(p, k=k)]
                    )
    if HAVE_BM25S:
        import bm25s
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        corpus = [f"{u}\n{a}" for u, a, *_ in sc.turns]
        keys = [key for *_, key in sc.turns]
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer,
                                       show_progress=False), show_progress=False)
        ranked = []
        for p, _key in probes:
            tokens = bm25s.tokenize([p], stopwords="en", stemmer=stemmer, show_progress=False)
            docs, _s = retriever.retrieve(tokens, k=k, show_progress=False)
            ranked.append([keys[int(i)] for i in docs[0]])
        out["bm25 (bm25s)"] = truth.score(ranked, [key for _p, key in probes])
    return out


def report(summary: dict[str, dict[str, dict[str, float]]], title: str) -> str:
    metrics = ["R@1", "R@5", "R@10", "all@10", "S@5"]
    lines = [f"== {title}"]
    head = f"{'retriever':<20} {'group':<12} {'n':>4} " + " ".join(f"{m:>7}" for m in metrics)
    lines.append(head)
    lines.append("-" * len(head))
    main = ("bm25 (bm25s)", "memo-shell")
    order = [*main, *(n for n in summary if n not in main)]
    for name in order:
        if name not in summary:
            continue
        groups = summary[name]
        for group in ["all", *CATEGORIES.values()]:
            if group not in groups or (name not in main and group != "all"):
                continue
            row = groups[group]
            lines.append(
                f"{name:<20} {group:<12} {int(row['n']):>4} "
                + " ".join(f"{row[m]:>7.3f}" for m in metrics)
            )
    return "\n".join(lines)


def report_truth(summary: dict[str, dict[str, float]]) -> str:
    lines = ["== truth over echo (bench/truth.py): the user's statement ranked first / top 3"]
    lines.append(
        f"{'retriever':<20} {'n':>4} {'first':>7} {'top3':>7}"
        f" | first by probe: {'same':>6} {'para':>6} {'unseen':>6}"
    )
    main = ("bm25 (bm25s)", "memo-shell")
    for name in [*main, *(n for n in summary if n not in main)]:
        if name in summary:
            row = summary[name]
            lines.append(
                f"{name:<20} {int(row['n']):>4} {row['first']:>7.3f} {row['top3']:>7.3f}"
                f" |                 {row['same']:>6.3f} {row['para']:>6.3f} {row['unseen']:>6.3f}"
            )
    return "\n".join(lines)


def main() -> None:
    import variants

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--conversations", type=int, default=0,
                        help="only the first N conversations (a quick run on a busy machine)")
    parser.add_argument("--datasets", default="locomo,chat-eu,chat-us,truth",
                        help="comma-separated: locomo, chat-eu, chat-us, chat-uk, chat-iso, truth")
    parser.add_argument("--seed", type=int, default=7, help="seed of the variants and the scenario")
    parser.add_argument("--facts", type=int, default=50, help="facts in the truth scenario")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--embedder", help="module:factory returning an embedder (adds vectors)")
    args = parser.parse_args()
    embedder = load_embedder(args.embedder)
    wanted = [d.strip() for d in args.datasets.split(",") if d.strip()]
    conversations = load(args.data) if wanted != ["truth"] else []
    if args.conversations:
        conversations = conversations[: args.conversations]
    locales = {"chat-eu": "eu", "chat-us": "us", "chat-uk": "uk", "chat-iso": "iso-slash"}
    figures: dict[str, object] = {}
    for name in wanted:
        print(f"{name}:", file=sys.stderr)
        if name == "truth":
            result = run_truth(args.k, not args.no_ablations, args.seed, args.facts)
            figures[name] = result
            print(report_truth(result), flush=True)
            continue
        convs = conversations if name == "locomo" else variants.transform(
            conversations, locales[name], args.seed
        )
        summary = run(convs, args.k, not args.no_ablations, embedder)
        figures[name] = summary
        print(report(summary, name), flush=True)
    if embedder is None:
        print("(+ vectors: no embedder given; pass --embedder module:factory to measure it)")
    if not HAVE_BM25S:
        print("(bm25 baseline skipped: pip install bm25s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
