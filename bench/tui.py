"""The app's start-up and scrolling speed, beside a minimal Textual app measured in the same run.

    .venv/bin/python bench/tui.py [--sizes 0 10000 100000] [--runs 5] [--keep DIR]

* **first paint**: wall time from spawning a fresh Python process to Textual's ``Ready`` event
  (DOM mounted and the first frame written), for a minimal Textual app (a Label and a Footer)
  and for memo-shell with stores of each size. The interpreter's start and every import count.
* **index ready**: from process start until the index reports ``ready`` (loaded after the first
  paint, in a background thread).
* **browser over the largest store** (one process): time to open it with the first rows
  painted; every frame rendered while paging down and back up key by key (a frame is one
  ``Screen._compositor_refresh``: render the changed regions, hand them to the driver); a live
  search (one recall, k=500) and a session filter, each until the rows are replaced.

Each app runs headless at 120x36 (the same compositor work as on a terminal, without the
terminal's own drawing time). Backend: an Ollama URL where nothing listens, so start-up does
its real probe without loading any model. Stores of synthetic memories (bench/recall.py's
corpus) are built once under ``--keep`` (default bench/out/tui) and reused.

Targets (issue 5): first paint ≤ 1.0 s and ≤ 1.5× the minimal app; store size must not slow
first paint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

SIZE = (120, 36)

MINIMAL_CHILD = """
import json, sys, time
from textual.app import App
from textual.widgets import Footer, Label

class Minimal(App):
    def compose(self):
        yield Label("hello")
        yield Footer()

    def on_ready(self):
        self.painted = time.time()
        self.exit()

app = Minimal()
app.run(headless=True, size=(120, 36))
print(json.dumps({"paint": app.painted}))
"""

MEMO_CHILD = """
import json, sys, time
from pathlib import Path
from memo_shell.config import Settings
from memo_shell.tui.app import MemoShellApp

data, config, host = sys.argv[1], sys.argv[2], sys.argv[3]

class Timed(MemoShellApp):
    painted = ready = None

    def on_ready(self):
        self.painted = time.time()
        self.set_interval(0.005, self.check)

    def check(self):
        memories = self.runtime.memories
        if memories is not None and memories.index.state == "ready" and self.ready is None:
            self.ready = time.time()
            self.exit()

settings = Settings(data_dir=Path(data), config_file=Path(config), backend="ollama",
                    ollama_host=host, model="none")
app = Timed(settings, persist_theme=False)
app.run(headless=True, size=(120, 36))
print(json.dumps({"paint": app.painted, "ready": app.ready}))
"""


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def spawn(code: str, *args: str) -> dict[str, float]:
    """Run a child Python; return its event times relative to the spawn."""
    # Bytecode is written and reused (the warm-up spawn writes it), as for an installed
    # package, whose .pyc files pip compiles: without them every run would time compiling
    # memo-shell's sources, which no user's start-up pays.
    skip = ("COLUMNS", "LINES", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )
    if out.returncode != 0:
        raise RuntimeError(f"child failed:\n{out.stderr[-3000:]}")
    times = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: v - started for k, v in times.items() if v is not None}


def build_store(root: Path, size: int) -> Path:
    """A data directory with ``size`` synthetic memories and a saved index (built once)."""
    import memo_shell

    data = root / f"data-{size}"
    with memo_shell.open(data) as mem:
        if mem.count() != size:
            from recall import Corpus

            print(f"  building a store of {size:,} memories in {data} (once)…", flush=True)
            mem.forget_many(mem.ids())
            if size:
                mem.add_many(Corpus().memories(size))
        mem.wait_ready()
    return data


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def scroll_frames(data: Path, steps: int) -> dict[str, float]:
    """Page through the browser over ``data``, timing every frame the screen renders.

    A frame is one ``Screen._compositor_refresh`` (render the changed regions and hand them to
    the driver); a step is one key press (page down, then back up) including the frame that
    follows when the newly visible rows' metadata arrives from the fetch thread.
    """
    from memo_shell.config import Settings
    from memo_shell.tui.app import MemoShellApp
    from memo_shell.tui.widgets.memory_table import MemoryTable

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=data,
            config_file=Path(tmp) / "config.toml",
            backend="ollama",
            ollama_host=dead_url(),
            model="none",
        )
        app = MemoShellApp(settings, persist_theme=False)
        async with app.run_test(size=SIZE) as pilot:
            while app.runtime.memories is None:
                await pilot.pause(0.01)
            await asyncio.to_thread(app.runtime.mem.wait_ready)
            opened = time.perf_counter()
            app.action_open("browser")  # (pilot.press would also wait for slower side workers)
            await pilot.pause(0)
            table = app.screen.query_one(MemoryTable)
            while not table.ids or table.pending:
                await pilot.pause(0.002)
            open_s = time.perf_counter() - opened
            rows = len(table.ids)
            screen = app.screen
            while any(w.is_running for w in app.workers):  # sessions list, disk size: settle
                await pilot.pause(0.01)
            frames: list[float] = []
            render = screen._compositor_refresh

            def timed_render() -> None:
                began = time.perf_counter()
                render()
                frames.append(time.perf_counter() - began)

            screen._compositor_refresh = timed_render  # type: ignore[method-assign]
            per_step: list[float] = []
            for step in range(steps):
                before = len(frames)
                await pilot.press("pagedown" if step < steps // 2 else "pageup")
                while table.pending:
                    await pilot.pause(0.001)
                await pilot.pause()
                per_step.append(sum(frames[before:]))
            paging = list(frames)  # the search and filter below re-layout: not scroll frames
            searched = time.perf_counter()
            screen.filter = replace(screen.filter, query="what did I say about the garden")
            await screen.reload()  # what a search does after its 0.25 s typing pause
            search_s = time.perf_counter() - searched
            hits = len(table.ids)
            screen.filter = replace(screen.filter, query="")
            filtered = time.perf_counter()
            screen.query_one("#session-filter").value = "s42"
            await pilot.pause()
            while any(w.is_running for w in screen.workers) or table.pending:
                await pilot.pause(0.001)
            filter_s = time.perf_counter() - filtered
            shown = len(table.ids)
    ordered = sorted(paging)
    return {
        "rows": rows,
        "open_browser_ms": round(open_s * 1000, 1),
        "session_filter_ms": round(filter_s * 1000, 1),
        "rows_after_filter": shown,
        "search_ms": round(search_s * 1000, 1),
        "search_hits": hits,
        "frames": len(paging),
        "frame_median_ms": round(statistics.median(ordered) * 1000, 2),
        "frame_p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 2),
        "frame_max_ms": round(ordered[-1] * 1000, 2),
        "render_per_key_median_ms": round(statistics.median(per_step) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 10_000, 100_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--keep", type=Path, default=REPO / "bench" / "out" / "tui")
    args = parser.parse_args()
    args.keep.mkdir(parents=True, exist_ok=True)
    stores = {size: build_store(args.keep, size) for size in args.sizes}
    config = args.keep / "config.toml"
    config.write_text("")
    host = dead_url()

    spawn(MINIMAL_CHILD)  # warm the file cache for both, so neither pays for it alone
    spawn(MEMO_CHILD, str(stores[args.sizes[0]]), str(config), host)
    results: dict[str, object] = {"python": sys.version.split()[0], "runs": args.runs}
    # Interleaved (minimal, then each size, per round) so that load from anything else on the
    # machine falls on all of them alike.
    minimal: list[float] = []
    paints: dict[int, list[float]] = {size: [] for size in args.sizes}
    readies: dict[int, list[float]] = {size: [] for size in args.sizes}
    for _ in range(args.runs):
        minimal.append(spawn(MINIMAL_CHILD)["paint"])
        for size in args.sizes:
            times = spawn(MEMO_CHILD, str(stores[size]), str(config), host)
            paints[size].append(times["paint"])
            readies[size].append(times["ready"])
    results["minimal_textual_first_paint"] = summary(minimal)
    base = statistics.median(minimal)
    for size in args.sizes:
        paint = statistics.median(paints[size])
        results[f"memo_shell_{size}"] = {
            "first_paint": summary(paints[size]),
            "index_ready": summary(readies[size]),
            "paint_vs_minimal": round(paint / base, 2),
            "paint_target_met": paint <= 1.0 and paint <= 1.5 * base,
        }
        print(
            f"  {size:>7,} memories: first paint {paint * 1000:.0f} ms "
            f"({paint / base:.2f}× the minimal app's {base * 1000:.0f} ms), "
            f"index ready {statistics.median(readies[size]) * 1000:.0f} ms",
            flush=True,
        )
    if max(args.sizes):  # an empty browser has no rows to page through
        largest = stores[max(args.sizes)]
        results["browser_scroll"] = asyncio.run(scroll_frames(largest, args.steps))
    print(json.dumps(results, indent=2))
    (args.keep / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
