"""Soak: thousands of turns' worth of adds, recalls, pins, forgets and reindexes through the
public API in child processes that are SIGKILLed at random, then the store's promises checked.

    python bench/soak.py                        # 10,000 operations, 2 processes at a time
    python bench/soak.py --turns 2000 --seed 7  # a quicker run
    python bench/soak.py --procs 1              # one process at a time (no concurrency)

Two more hazards run alongside (issue 10): children import a shared JSON Lines file in small
batches (``mem import``'s own path) and are killed mid-import like everyone else, so the file is
re-imported again and again, partly or wholly; and now and then a child runs ``mem forget
--all`` while the others keep adding (their cached directories vanish under them).

Each child opens the store with ``memo_shell.open`` (so its index loads the snapshot, replays the
change log and catches up with the files, all of which a SIGKILL can interrupt), then works in a
loop and reports every operation on a pipe *after* the call returned: that is its
acknowledgement. Children are forked from this process (already warm: hundreds of kills cost
seconds, not minutes), several at once on the same data directory, and killed with SIGKILL after
a random delay; about one in six is instead allowed to finish and close cleanly (which may save
a snapshot). Pins only ever set ``pinned=True`` so their expected final state is known whatever
the interleaving; forgets may target memories other children added, and race their pins.

At the end, in this process, with a fresh ``open`` (the restart after the last crash):

* every acknowledged add is on disk and intact (same text), unless its forget was acknowledged
  (or was in flight when its process died: then either state is allowed);
* no memory whose forget was acknowledged exists (no pin brought one back, no index did);
* every acknowledged pin of a surviving memory is on disk;
* every import line acknowledged (imported or "already present") is on disk, once: no line's
  memory is ever stored twice, however often the import was interrupted and re-run;
* ``forget --all`` removed everything acknowledged before it began (events are ordered by the
  system-wide monotonic clock, stamped by each child), and every add acknowledged after one
  ended survived it;
* no damaged, foreign or leftover temp file is left in the memory folders;
* the index lists exactly the record files, every sampled memory is recalled first for its
  unique word, and recall after ``reindex`` equals recall before it.

It prints operations, kills survived, records verified and records lost (must be 0), and exits
1 if any invariant is broken. ``run()`` is also used, scaled down, by ``tests/test_soak.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import select
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TOPICS = ["kayak", "pottery", "sushi", "chess", "violin", "garden", "Lisbon", "Caroline", "tea"]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _token(child: str, n: int) -> str:
    """A word only this memory contains (letters only, so the analyzer keeps it whole)."""
    return "q" + "".join("abcdefghij"[int(c)] for c in f"{child}{n:06d}") + "z"


# ---------------------------------------------------------------------------------------------
# the child


IMPORT_LINES = 120
IMPORT_BATCH = 15  # small batches: a kill lands mid-import often


def write_import_file(path: Path) -> list[str]:
    """The JSONL file every child imports; returns its lines' (deterministic) ids."""
    import json

    from memo_shell import jsonl

    lines = [
        {
            "user": f"imported line {i} about {TOPICS[i % len(TOPICS)]} {_token('99999', i)}",
            "at": f"2021-0{1 + i % 9}-1{i % 10}T0{i % 10}:00:00Z",
            "session": "imported",
        }
        for i in range(IMPORT_LINES)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with open(path, "rb") as stream:
        return [m.id for _n, m, _size in jsonl.iter_import(stream)]  # type: ignore[union-attr]


def _import(memories, source: Path, say) -> None:  # type: ignore[no-untyped-def]
    """Import ``source`` as ``mem import`` does, acknowledging each durable batch as it lands."""
    from memo_shell import api, jsonl

    api.BATCH_SIZE = IMPORT_BATCH
    added: list[str] = []
    present: list[str] = []
    reported = [0, 0]

    def progress(_n: int) -> None:
        now = time.monotonic_ns()
        for memory_id in added[reported[0] :]:
            say(f"I {memory_id} {now}")
        for memory_id in present[reported[1] :]:
            say(f"IP {memory_id} {now}")
        reported[:] = [len(added), len(present)]

    say("I?")
    with open(source, "rb") as stream:
        records = (item for _n, item, _size in jsonl.iter_import(stream))
        memories.add_many(records, progress=progress, added=added, present=present)
    say("I!")


def _child(
    data_dir: Path,
    report_fd: int,
    name: str,
    seed: int,
    budget: int,
    import_file: Path | None = None,
    import_ids: frozenset[str] = frozenset(),
) -> None:
    """Work until killed (or until ``budget`` operations, then close cleanly and exit).

    Lines written (each only after the call returned, each one atomic ``write`` < PIPE_BUF):
    ``A id digest token`` add, ``F? id`` forget begins, ``F id`` forget done, ``FN id`` it was
    already gone, ``P id`` pinned, ``PN id`` pin target gone, ``R`` recall, ``X n`` reindex,
    ``O`` (re)opened, ``C`` closed cleanly; ``I id t`` / ``IP id t`` an import line stored /
    found already present, ``W? t`` / ``W t`` forget --all begins / ends (``t``: monotonic ns).
    """
    import memo_shell
    from memo_shell.errors import NotFound

    rng = random.Random(seed)

    def say(line: str) -> None:
        os.write(report_fd, (line + "\n").encode())

    done = 0
    n = 0
    while True:
        with memo_shell.open(data_dir, preload=rng.random() < 0.8) as memories:
            say("O")
            # some of everyone's, to pin and forget (never the import's: a re-import brings
            # those back by design, unpinned)
            known = [i for i in memories.ids()[-300:] if i not in import_ids]
            mine: list[tuple[str, str]] = []
            for _ in range(rng.randint(50, 400)):
                roll = rng.random()
                if import_file is not None and roll < 0.02:
                    _import(memories, import_file, say)
                elif import_file is not None and roll < 0.0215:
                    say(f"W? {time.monotonic_ns()}")
                    memories.wipe()  # closes this handle: reopen below
                    say(f"W {time.monotonic_ns()}")
                    done += 1
                    break
                elif roll < 0.55 or not known:
                    token = _token(name, n)
                    text = f"{name} note {n} about {rng.choice(TOPICS)} {token}"
                    memory_id = memories.add(
                        text, "ok " * rng.randint(0, 30), session=f"s{rng.randint(0, 9)}"
                    )
                    say(f"A {memory_id} {_digest(text)} {token} {time.monotonic_ns()}")
                    known.append(memory_id)
                    mine.append((memory_id, token))
                    n += 1
                elif roll < 0.80:
                    query = rng.choice(mine)[1] if mine else rng.choice(TOPICS)
                    memories.recall(query, k=5)
                    say("R")
                elif roll < 0.90:
                    target = known.pop(rng.randrange(len(known)))
                    say(f"F? {target}")
                    try:
                        memories.forget(target)
                        say(f"F {target}")
                    except NotFound:
                        say(f"FN {target}")
                elif roll < 0.998:
                    target = rng.choice(known)
                    try:
                        memories.pin(target)
                        say(f"P {target}")
                    except NotFound:
                        say(f"PN {target}")
                else:
                    say(f"X {memories.reindex()}")
                done += 1
                if done >= budget:
                    break
        say("C")
        if done >= budget:
            return


# ---------------------------------------------------------------------------------------------
# the parent


@dataclass
class Ledger:
    """What the children acknowledged, merged from their reports."""

    added: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (digest, token)
    acked_at: dict[str, int] = field(default_factory=dict)  # id -> latest ack (monotonic ns)
    imported: set[str] = field(default_factory=set)  # import lines acknowledged
    wipes: list[tuple[int, int | None]] = field(default_factory=list)  # (begin, end or None)
    importing: set[int] = field(default_factory=set)  # children (pids) mid-import
    wiping: set[int] = field(default_factory=set)  # children (pids) mid forget --all
    forgotten: set[str] = field(default_factory=set)
    forgetting: set[str] = field(default_factory=set)  # begun, not acknowledged (maybe killed)
    pinned: set[str] = field(default_factory=set)
    ops: Counter[str] = field(default_factory=Counter)

    def take(self, line: str, who: int = 0) -> None:
        kind, *args = line.split()
        if kind == "I?":
            self.importing.add(who)
        elif kind == "I!":
            self.importing.discard(who)
            self.ops["import"] += 1
        elif kind == "A":
            self.added[args[0]] = (args[1], args[2])
            self.acked_at[args[0]] = int(args[3])
            self.ops["add"] += 1
        elif kind in ("I", "IP"):
            self.imported.add(args[0])
            self.acked_at[args[0]] = max(self.acked_at.get(args[0], 0), int(args[1]))
            self.ops["import line" if kind == "I" else "import line already present"] += 1
        elif kind == "W?":
            self.wipes.append((int(args[0]), None))
            self.wiping.add(who)
        elif kind == "W":
            self.wiping.discard(who)
            begin = max(b for b, e in self.wipes if e is None)
            self.wipes[self.wipes.index((begin, None))] = (begin, int(args[0]))
            self.ops["forget --all"] += 1
        elif kind == "F?":
            self.forgetting.add(args[0])
        elif kind in ("F", "FN"):
            self.forgetting.discard(args[0])
            if kind == "F":
                self.forgotten.add(args[0])
                self.ops["forget"] += 1
            else:
                self.ops["forget (already gone)"] += 1
        elif kind == "P":
            self.pinned.add(args[0])
            self.ops["pin"] += 1
        elif kind == "PN":
            self.ops["pin (already gone)"] += 1
        elif kind == "R":
            self.ops["recall"] += 1
        elif kind == "X":
            self.ops["reindex"] += 1
        elif kind == "O":
            self.ops["open"] += 1
        elif kind == "C":
            self.ops["clean close"] += 1

    def wiped(self, memory_id: str) -> tuple[bool, bool]:
        """(must be gone, may be gone) by a ``forget --all``, from when it was acknowledged."""
        at = self.acked_at.get(memory_id, 0)
        must = any(e is not None and b > at for b, e in self.wipes)
        may = any(e is None or e > at for b, e in self.wipes)  # began after, or overlapped
        return must, may

    @property
    def acknowledged(self) -> int:
        # an import counts once (its lines are listed apart, and would swamp the rest)
        skip = ("open", "clean close", "import line", "import line already present")
        return sum(v for k, v in self.ops.items() if k not in skip)


@dataclass
class Report:
    """The run's figures; ``ok`` only if every invariant held."""

    ledger: Ledger
    kills: int = 0
    kills_mid_import: int = 0
    kills_mid_wipe: int = 0
    clean_exits: int = 0
    verified: int = 0
    wiped: int = 0  # acknowledged before a forget --all (finished or killed midway), and gone
    lost: list[str] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)
    index_mismatch: list[str] = field(default_factory=list)
    recall_misses: list[str] = field(default_factory=list)
    reindex_differs: list[str] = field(default_factory=list)
    debris: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)  # an import line stored twice
    survived_wipe: list[str] = field(default_factory=list)  # acked before forget --all began
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.damaged
            or self.resurrected
            or self.unpinned
            or self.index_mismatch
            or self.recall_misses
            or self.reindex_differs
            or self.debris
            or self.duplicated
            or self.survived_wipe
        )

    def lines(self) -> list[str]:
        ops = self.ledger.ops
        return [
            f"operations acknowledged: {self.ledger.acknowledged:,} "
            f"({', '.join(f'{k} {v:,}' for k, v in sorted(ops.items()))})",
            f"kills survived: {self.kills} SIGKILLs ({self.kills_mid_import} mid-import, "
            f"{self.kills_mid_wipe} mid forget --all; {self.clean_exits} clean exits)",
            f"records verified: {self.verified:,} intact "
            f"({len(self.ledger.forgotten):,} forgotten stayed forgotten, {self.wiped:,} "
            "removed by a forget --all stayed gone)",
            f"records lost: {len(self.lost)}  import lines stored twice: "
            f"{len(self.duplicated)}  survived a forget --all: {len(self.survived_wipe)}",
            f"damaged: {len(self.damaged)}  resurrected: {len(self.resurrected)}  "
            f"pins lost: {len(self.unpinned)}  debris: {len(self.debris)}",
            f"index vs files: {len(self.index_mismatch)} mismatches; recall misses: "
            f"{len(self.recall_misses)}; reindex changed {len(self.reindex_differs)} answers",
            f"time: {self.seconds:.1f} s",
        ]


def _fork_child(
    data_dir: Path,
    name: str,
    seed: int,
    budget: int,
    import_file: Path | None = None,
    import_ids: frozenset[str] = frozenset(),
) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into the caller
        code = 0
        try:
            os.close(read_fd)
            _child(data_dir, write_fd, name, seed, budget, import_file, import_ids)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    return pid, read_fd


def run(
    data_dir: Path,
    *,
    turns: int = 10_000,
    procs: int = 2,
    seed: int = 1,
    kill_after: tuple[float, float] = (0.05, 0.8),
    clean_share: float = 0.15,
    samples: int = 300,
    log: bool = True,
    hazards: bool = True,
) -> Report:
    """Run the soak in ``data_dir`` until ``turns`` operations were acknowledged; verify.

    ``hazards``: also interrupted imports and concurrent ``forget --all`` (see above).
    """
    # warm the children's imports before forking
    import memo_shell.api
    import memo_shell.cli.mem  # noqa: F401

    rng = random.Random(seed)
    ledger = Ledger()
    report = Report(ledger)
    started = time.monotonic()
    running: dict[int, tuple[int, float, bytearray]] = {}  # pid -> (fd, kill at, buffer)
    generation = 0
    last_print = 0.0
    import_file: Path | None = None
    import_ids: frozenset[str] = frozenset()
    if hazards:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        import_file = data_dir.parent / "soak-import.jsonl"
        import_ids = frozenset(write_import_file(import_file))

    def start_one() -> None:
        nonlocal generation
        generation += 1
        clean = rng.random() < clean_share
        budget = rng.randint(20, 200) if clean else 10**9
        pid, fd = _fork_child(
            data_dir, f"{generation:05d}", rng.randrange(2**32), budget, import_file, import_ids
        )
        kill_at = time.monotonic() + (60.0 if clean else rng.uniform(*kill_after))
        running[pid] = (fd, kill_at, bytearray())

    def drain(fd: int, buffer: bytearray, final: bool, who: int) -> None:
        while True:
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buffer.extend(chunk)
        *whole, rest = bytes(buffer).split(b"\n")
        for line in whole:
            if line:
                ledger.take(line.decode(), who)
        buffer[:] = rest if not final else b""

    while ledger.acknowledged < turns or running:
        while ledger.acknowledged < turns and len(running) < procs:
            start_one()
        fds = [fd for fd, _, _ in running.values()]
        select.select(fds, [], [], 0.01)
        now = time.monotonic()
        for pid, (fd, kill_at, buffer) in list(running.items()):
            drain(fd, buffer, final=False, who=pid)
            exited, status = os.waitpid(pid, os.WNOHANG)
            if not exited and now >= kill_at:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                report.kills += 1
            elif exited:
                if os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0:
                    raise RuntimeError(f"child {pid} failed (see its traceback above)")
                report.clean_exits += 1
            else:
                continue
            drain(fd, buffer, final=True, who=pid)
            report.kills_mid_import += pid in ledger.importing and not exited
            report.kills_mid_wipe += pid in ledger.wiping and not exited
            ledger.importing.discard(pid)
            ledger.wiping.discard(pid)
            os.close(fd)
            del running[pid]
        if log and now - last_print > 5:
            last_print = now
            print(f"  … {ledger.acknowledged:,} operations, {report.kills} kills", file=sys.stderr)
    _verify(data_dir, report, rng, samples)
    report.seconds = time.monotonic() - started
    return report


def _verify(data_dir: Path, report: Report, rng: random.Random, samples: int) -> None:
    import memo_shell
    from memo_shell.errors import NotFound
    from memo_shell.records import CorruptRecord

    ledger = report.ledger
    with memo_shell.open(data_dir) as memories:  # the restart after the last crash
        memories.wait_ready()
        store = memories.store
        on_disk = set(memories.ids())
        for memory_id in sorted(ledger.imported):
            must_go, may_go = ledger.wiped(memory_id)
            if memory_id in on_disk:
                report.verified += 1
            elif not may_go:
                report.lost.append(memory_id)
        texts = Counter(
            m.user for m in memories.iter_memories(session="imported") if m.id in on_disk
        )
        report.duplicated = sorted(text for text, count in texts.items() if count > 1)
        for memory_id, (digest, _token) in ledger.added.items():
            if memory_id in ledger.forgotten:
                continue
            must_go, may_go = ledger.wiped(memory_id)
            if must_go:
                if memory_id in on_disk:
                    report.survived_wipe.append(memory_id)
                else:
                    report.wiped += 1
                continue
            try:
                memory = store.read(memory_id)
            except NotFound:
                if memory_id in ledger.forgetting:
                    continue
                if may_go:  # a forget --all that was killed midway may have removed it
                    report.wiped += 1
                else:
                    report.lost.append(memory_id)
                continue
            except CorruptRecord:
                report.damaged.append(memory_id)
                continue
            if _digest(memory.user) != digest:
                report.damaged.append(memory_id)
                continue
            report.verified += 1
            if memory_id in ledger.pinned and not memory.pinned:
                report.unpinned.append(memory_id)
        report.resurrected = sorted((ledger.forgotten - ledger.imported) & on_disk)
        scan = store.scan()
        report.debris = [str(p) for p in (*scan.foreign, *scan.in_flight)]
        report.debris += [str(q.original) for q in store.quarantined]
        # our temp files may only be those of the killed children: swept on this open
        report.debris += [str(p) for p in scan.temps]

        indexed = set(memories.index.ids())
        report.index_mismatch = sorted(indexed ^ on_disk)
        alive = sorted(i for i in on_disk if i in ledger.added)
        picked = rng.sample(alive, min(samples, len(alive)))
        for memory_id in picked:
            hits = memories.recall(ledger.added[memory_id][1], k=3)
            if not hits or hits[0].memory.id != memory_id:
                report.recall_misses.append(memory_id)
        queries = [*TOPICS, *(ledger.added[i][1] for i in picked[:20])]

        def answers() -> dict[str, list[tuple[str, float]]]:
            return {
                q: [(h.memory.id, round(h.score, 9)) for h in memories.recall(q)] for q in queries
            }

        before = answers()
        memories.reindex()
        after = answers()
        report.reindex_differs = [q for q in queries if before[q] != after[q]]
        for q in report.reindex_differs:  # say how, for whoever reads a failed run
            print(f"  recall {q!r} before reindex: {before[q]}", file=sys.stderr)
            print(f"  recall {q!r} after reindex:  {after[q]}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=10_000, help="operations to acknowledge")
    parser.add_argument("--procs", type=int, default=2, help="children running at once")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-min", type=float, default=0.05, help="seconds, at least")
    parser.add_argument("--kill-max", type=float, default=0.8, help="seconds, at most")
    parser.add_argument("--data", type=Path, help="data dir (default: a temp dir, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the data dir")
    args = parser.parse_args(argv)
    data_dir = args.data or Path(tempfile.mkdtemp(prefix="memo-soak-")) / "data"
    print(
        f"soak: {args.turns:,} operations, {args.procs} processes at a time, seed {args.seed},"
        f" SIGKILL after {args.kill_min}-{args.kill_max} s, in {data_dir}"
    )
    try:
        report = run(
            data_dir,
            turns=args.turns,
            procs=args.procs,
            seed=args.seed,
            kill_after=(args.kill_min, args.kill_max),
        )
    finally:
        if not args.keep and args.data is None:
            shutil.rmtree(data_dir.parent, ignore_errors=True)
    for line in report.lines():
        print(line)
    if not report.ok:
        for name in (
            "lost",
            "damaged",
            "resurrected",
            "unpinned",
            "index_mismatch",
            "recall_misses",
            "reindex_differs",
            "debris",
            "duplicated",
            "survived_wipe",
        ):
            values = getattr(report, name)
            if values:
                print(f"  {name}: {values[:10]}")
        print("FAILED: an invariant was broken")
        return 1
    print("OK: every invariant held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
