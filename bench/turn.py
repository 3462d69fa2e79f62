"""One turn's latency: the embedded model's own speed, and what memo-shell adds before it.

    .venv/bin/python bench/turn.py [--sizes 10000 100000] [--turns 20] [--worker-turns 20]

Measured in one run, on the same questions:

* **model**: the embedded Gemma 3 270M through ``LlamaCppBackend.stream``: time to first token
  (from the ``stream()`` call to the first piece, thread hop included) for the bare question
  (system prompt + question: the model's own floor), and for the exact prompt memo-shell built
  (memories and history included: longer to evaluate); tokens/s of the rest of the reply
  (up to 32 tokens).
* **added**: ``Shell.plan()`` — the work memo-shell does before it can call the model: this
  session's recent turns, recall over the whole store (query embedding included when an
  embedder is configured; the default has none), and prompt building within the token budget
  (exact token counts from the model's tokenizer). Also recall alone, for the breakdown.

* **worker**: the cost of running the model in a worker process (since issue 11), beside the
  same model loaded in this process, alternating question by question on the bare prompt:
  time to first token and tokens/s of each, and their ratios (target: within 10%).
* **tui**: the real app, headless, answering the same questions alternately from the worker
  process and from the model in this process (the baseline: how memo-shell ran it before):
  every frame the chat screen renders while a reply streams (one
  ``Screen._compositor_refresh``), and the event loop's lateness measured by a 60 Hz ticker
  running beside it (how late a frame could be drawn).

Stores of 10k and 100k synthetic memories (bench/recall.py's deterministic corpus) are kept in
``--keep`` (default bench/out/turn) and reused by later runs. Target: p50 added ≤ 25% of the
model's p50 time to first token on the bare question (the strict reading).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from recall import Corpus, percentile  # noqa: E402

import memo_shell  # noqa: E402
from memo_shell.backends import GenerationOptions, LlamaCppBackend, embedded  # noqa: E402
from memo_shell.config import Settings  # noqa: E402
from memo_shell.prompt import Chat  # noqa: E402
from memo_shell.shell import DEFAULT_SYSTEM, Shell  # noqa: E402

CONTEXT = 4096
MAX_TOKENS = 32


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def prepare_store(root: Path, size: int, corpus: Corpus) -> tuple[Path, list[str]]:
    """A data dir holding ``size`` synthetic memories (built once, then reused), and queries."""
    data_dir = root / f"data-{size}"
    memories = corpus.memories(size)
    queries = corpus.queries(memories, 400)
    with memo_shell.open(data_dir) as mem:
        if mem.count() != size:
            print(f"  building a store of {size:,} memories in {data_dir} (once)...", flush=True)
            mem.forget_many(mem.ids())
            started = time.perf_counter()
            mem.add_many(memories)
            mem.wait_ready()
            print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)
        else:
            mem.wait_ready()
    return data_dir, queries


async def measure(
    backend: LlamaCppBackend, data_dir: Path, questions: list[str]
) -> dict[str, object]:
    settings = Settings(
        data_dir=data_dir,
        context_size=CONTEXT,
        max_tokens=MAX_TOKENS,
        seed=1,
        temperature=None,
        top_p=None,  # type: ignore[arg-type]  # None: the model's defaults
    )
    options = GenerationOptions.from_settings(settings)
    with memo_shell.open(data_dir, settings=settings) as memories:
        started = time.perf_counter()
        memories.wait_ready()
        load_s = time.perf_counter() - started
        # An ongoing conversation: a session of the store with earlier turns.
        session = memories.index.ids(newest_first=True)[:1]
        session_name = memories.get(session[0]).session if session else "bench"
        shell = Shell(memories, backend, settings, session=session_name)

        started = time.perf_counter()
        await shell.plan(questions[0])  # first turn: index warm-up and this session's turns
        first_plan_s = time.perf_counter() - started

        added, recall_only, ttft, bare, rates, included, sizes = [], [], [], [], [], [], []
        for question in questions[1:]:
            bare.append(await first_token(backend, question, shell.system_prompt(), options))
            t0 = time.perf_counter()
            _hits, plan = await shell.plan(question)
            t1 = time.perf_counter()
            pieces: list[str] = []
            first = None
            async for piece in backend.stream(plan, options):
                if first is None:
                    first = time.perf_counter()
                pieces.append(piece)
            t2 = time.perf_counter()
            added.append(t1 - t0)
            included.append(len(plan.included))
            sizes.append(plan.tokens)
            if first is not None:
                ttft.append(first - t1)
                rest = backend.count_tokens("".join(pieces)) - 1
                if rest > 0 and t2 > first:
                    rates.append(rest / (t2 - first))
        for question in questions[1:]:
            t0 = time.perf_counter()
            memories.recall(question, k=settings.recall_k, session=session_name)
            recall_only.append(time.perf_counter() - t0)

    p50_added, p50_ttft, p50_bare = (statistics.median(v) for v in (added, ttft, bare))
    return {
        "memories": memories_count(data_dir),
        "index_load_s": round(load_s, 2),
        "first_turn_added_ms": ms(first_plan_s),
        "added_p50_ms": ms(p50_added),
        "added_p95_ms": ms(percentile(added, 95)),
        "recall_p50_ms": ms(statistics.median(recall_only)),
        "model_ttft_bare_p50_ms": ms(p50_bare),
        "model_ttft_p50_ms": ms(p50_ttft),
        "model_ttft_p95_ms": ms(percentile(ttft, 95)),
        "model_tokens_per_s_p50": round(statistics.median(rates), 1) if rates else None,
        "memories_in_prompt_mean": round(statistics.mean(included), 1),
        "prompt_tokens_p50": statistics.median(sizes),
        "added_over_bare_ttft": round(p50_added / p50_bare, 3),
        "added_over_ttft": round(p50_added / p50_ttft, 3),
        "target_met": p50_added <= 0.25 * p50_bare,
    }


async def first_token(
    backend: LlamaCppBackend, question: str, system: str, options: GenerationOptions
) -> float:
    """The model's own time to first token for the bare question (no memories, no history)."""
    started = time.perf_counter()
    stream = backend.stream(
        [{"role": "system", "content": system}, {"role": "user", "content": question}], options
    )
    async for _piece in stream:
        break
    elapsed = time.perf_counter() - started
    await stream.aclose()
    return elapsed


class InProcess:
    """The baseline: the model in this process, on a thread, as memo-shell ran it before the
    worker process (pieces cross to the event loop through a queue; Esc stops the thread)."""

    name = "llama-cpp"

    def __init__(self, backend: LlamaCppBackend) -> None:
        import llama_cpp

        from memo_shell.backends.llama_worker import _threads

        self.model = backend.model
        self.context_size = backend.context_size
        self.count_tokens = backend.count_tokens
        self.render_prompt = backend.render_prompt
        self.llm = llama_cpp.Llama(
            model_path=str(backend.path), n_ctx=backend.n_ctx, n_threads=_threads(), verbose=False
        )

    async def stream(self, chat: Chat, options: GenerationOptions) -> AsyncIterator[str]:
        import threading

        from memo_shell.backends import completion_format

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()
        end = object()

        def work() -> None:
            try:
                for chunk in self.llm.create_completion(
                    completion_format.render(chat),
                    max_tokens=options.max_tokens,
                    stop=completion_format.STOP,
                    temperature=completion_format.TEMPERATURE,
                    top_p=completion_format.TOP_P,
                    repeat_penalty=completion_format.REPEAT_PENALTY,
                    seed=options.seed,
                    stream=True,
                ):
                    loop.call_soon_threadsafe(queue.put_nowait, chunk["choices"][0]["text"])
                    if stop.is_set():
                        break
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, end)

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        try:
            while (item := await queue.get()) is not end:
                if item:
                    yield item
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)

    async def aclose(self) -> None:
        pass


async def tui_while_streaming(
    backends: dict[str, object], data_dir: Path, questions: list[str]
) -> dict[str, object]:
    """Frame times and event-loop lateness of the real app while replies stream, with each of
    ``backends`` answering in turn (question by question, so both meet the same load)."""
    import shutil
    import tempfile

    from memo_shell.tui.app import MemoShellApp
    from memo_shell.tui.widgets.composer import Composer

    frames: dict[str, list[float]] = {name: [] for name in backends}
    lateness: dict[str, list[float]] = {name: [] for name in backends}
    current: list[str] = []  # the backend answering now; empty between replies
    with tempfile.TemporaryDirectory() as tmp:
        # a copy: the turns the app stores must not change the kept store
        shutil.copytree(data_dir, Path(tmp) / "data")
        settings = Settings(
            data_dir=Path(tmp) / "data",
            config_file=Path(tmp) / "config.toml",
            context_size=CONTEXT,
            max_tokens=MAX_TOKENS,
            seed=1,
            temperature=None,
            top_p=None,  # type: ignore[arg-type]
        )
        first = next(iter(backends.values()))
        app = MemoShellApp(settings, backend=first, persist_theme=False)
        async with app.run_test(size=(120, 36)) as pilot:
            await app.runtime.wait_shell()
            await asyncio.to_thread(app.runtime.mem.wait_ready)
            screen = app.screen
            render = screen._compositor_refresh

            def timed_render() -> None:
                began = time.perf_counter()
                render()
                if current:
                    frames[current[0]].append(time.perf_counter() - began)

            screen._compositor_refresh = timed_render  # type: ignore[method-assign]

            async def ticker() -> None:
                period = 1 / 60
                while True:
                    began = time.perf_counter()
                    await asyncio.sleep(period)
                    if current:
                        lateness[current[0]].append(time.perf_counter() - began - period)

            tick = asyncio.create_task(ticker())
            names = list(backends)
            for n, question in enumerate(questions):
                for name in names if n % 2 == 0 else names[::-1]:
                    while any(w.is_running for w in app.workers):
                        await pilot.pause(0.01)
                    app.runtime.shell.set_backend(backends[name])  # type: ignore[union-attr]
                    screen.query_one(Composer).load_text(question)
                    current.append(name)
                    await pilot.press("enter")
                    worker = screen.turn_worker  # type: ignore[attr-defined]
                    while worker is not None and worker.is_running:
                        await pilot.pause(0.005)
                    current.clear()
            tick.cancel()
    out: dict[str, object] = {}
    for name in backends:
        f, late = sorted(frames[name]), sorted(lateness[name])
        out |= {
            f"tui_{name}_frames": len(f),
            f"tui_{name}_frame_p50_ms": ms(statistics.median(f)) if f else None,
            f"tui_{name}_frame_p95_ms": ms(percentile(f, 95)) if f else None,
            f"tui_{name}_loop_late_p50_ms": ms(statistics.median(late)) if late else None,
            f"tui_{name}_loop_late_p95_ms": ms(percentile(late, 95)) if late else None,
            f"tui_{name}_loop_late_max_ms": ms(late[-1]) if late else None,
        }
    return out


async def worker_overhead(
    backend: LlamaCppBackend, questions: list[str], system: str
) -> dict[str, object]:
    """First token and tokens/s through the worker process vs llama.cpp in this process."""
    import llama_cpp

    from memo_shell.backends import completion_format
    from memo_shell.backends.llama_worker import _threads

    local = llama_cpp.Llama(
        model_path=str(backend.path), n_ctx=backend.n_ctx, n_threads=_threads(), verbose=False
    )
    options = GenerationOptions(max_tokens=MAX_TOKENS, seed=1)

    def in_process(messages: list) -> tuple[float, float | None]:
        prompt = completion_format.render(messages)
        started = time.perf_counter()
        first, texts = None, []
        for chunk in local.create_completion(
            prompt,
            max_tokens=MAX_TOKENS,
            stop=completion_format.STOP,
            temperature=completion_format.TEMPERATURE,
            top_p=completion_format.TOP_P,
            repeat_penalty=completion_format.REPEAT_PENALTY,
            seed=1,
            stream=True,
        ):
            if first is None and chunk["choices"][0]["text"].strip():
                first = time.perf_counter()
            texts.append(chunk["choices"][0]["text"])
        return rate(started, first, time.perf_counter(), "".join(texts))

    async def in_worker(messages: list) -> tuple[float, float | None]:
        started = time.perf_counter()
        first, texts = None, []
        async for piece in backend.stream(messages, options):
            first = first or time.perf_counter()
            texts.append(piece)
        return rate(started, first, time.perf_counter(), "".join(texts))

    def rate(started: float, first: float | None, ended: float, text: str) -> tuple:
        rest = backend.count_tokens(text) - 1
        speed = rest / (ended - first) if first is not None and rest > 0 else None
        return (first or ended) - started, speed

    worker_ttft, local_ttft, worker_rate, local_rate = [], [], [], []
    for n, question in enumerate(questions):
        messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
        for mode in ("worker", "local") if n % 2 else ("local", "worker"):
            if mode == "worker":
                ttft, speed = await in_worker(messages)
                worker_ttft.append(ttft)
                worker_rate += [speed] if speed else []
            else:
                ttft, speed = in_process(messages)
                local_ttft.append(ttft)
                local_rate += [speed] if speed else []
    local.close()
    w_ttft, l_ttft = statistics.median(worker_ttft), statistics.median(local_ttft)
    w_rate = statistics.median(worker_rate) if worker_rate else None
    l_rate = statistics.median(local_rate) if local_rate else None
    return {
        "worker_ttft_p50_ms": ms(w_ttft),
        "in_process_ttft_p50_ms": ms(l_ttft),
        "worker_over_in_process_ttft": round(w_ttft / l_ttft, 3),
        "worker_tokens_per_s_p50": round(w_rate, 1) if w_rate else None,
        "in_process_tokens_per_s_p50": round(l_rate, 1) if l_rate else None,
        "worker_over_in_process_rate": round(w_rate / l_rate, 3) if w_rate and l_rate else None,
    }


def memories_count(data_dir: Path) -> int:
    with memo_shell.open(data_dir, preload=False) as mem:
        return mem.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument(
        "--worker-turns", type=int, default=20, help="questions for the worker-vs-in-process part"
    )
    parser.add_argument("--keep", type=Path, default=REPO / "bench" / "out" / "turn")
    args = parser.parse_args()

    started = time.perf_counter()
    backend = LlamaCppBackend(
        embedded.model_path(), model_name=embedded.MODEL_NAME, context_size=CONTEXT
    )
    asyncio.run(backend.load())
    print(f"embedded model loaded in {time.perf_counter() - started:.2f} s")

    baseline = InProcess(backend)  # the same model in this process, for the TUI part
    results = []
    if args.worker_turns:
        questions = Corpus().queries(Corpus().memories(200), args.worker_turns)
        system = DEFAULT_SYSTEM
        overhead = asyncio.run(worker_overhead(backend, questions[: args.worker_turns], system))
        print("model in a worker process vs in this process:")
        for key, value in overhead.items():
            print(f"  {key:30} {value}")
        results.append(overhead)
    for size in args.sizes:
        print(f"{size:,} memories:", flush=True)
        data_dir, queries = prepare_store(args.keep, size, Corpus())
        result = asyncio.run(measure(backend, data_dir, queries[: args.turns + 1]))
        tui = {"worker": backend, "in_process": baseline}
        result |= asyncio.run(tui_while_streaming(tui, data_dir, queries[1 : args.turns + 1]))
        results.append(result)
        for key, value in result.items():
            print(f"  {key:26} {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
