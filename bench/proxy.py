"""What `memo-shell serve` adds before the first token, against the same upstream called directly.

    .venv/bin/python bench/proxy.py [--memories 10000] [--runs 12] [--rounds 60] [--keep DIR]

Everything real: the ``memo-shell serve`` process, a store of ``--memories`` synthetic
memories (bench/recall.py's corpus; the proxy works on a copy), and the official ``openai``
package as the client, streaming. Time to first token (TTFT) is from the call to the first
content piece. Two measurements:

1. **The proxy's own cost** (``--rounds``): the upstream is a loopback OpenAI-compatible
   server that answers at once (tests/servers), so what remains is the proxy: the extra HTTP
   hop, parsing, recall over the store, building the prompt, relaying. Direct, proxy with
   memory off and proxy with memory on alternate, request after request.
2. **The embedded model** (``--runs``): the real ``python -m llama_cpp.server`` on Gemma 3
   270M, called directly with the bare question (the model's own TTFT), directly with the
   exact messages the proxy builds (the price of the memories' longer prompt), and through
   the proxy with memory on and off. On a shared machine these differences drown in the
   model's own variance, which is why (1) measures the proxy against an instant upstream.

Target: p50 added by the proxy with memory on (1) ≤ 10% of the embedded model's p50 TTFT (2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import openai

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

sys.path.insert(0, str(REPO / "tests"))

from recall import Corpus, percentile  # noqa: E402
from servers import FakeOpenAI, ScriptedModel  # noqa: E402
from turn import prepare_store  # noqa: E402

import memo_shell  # noqa: E402
from memo_shell.backends import OpenAIBackend, embedded  # noqa: E402
from memo_shell.backends.llamacpp import default_threads  # noqa: E402
from memo_shell.config import Settings  # noqa: E402
from memo_shell.serve.turns import ProxyShell, Sampling, conversation  # noqa: E402

MODEL = "gemma3-270m"
CONTEXT = 4096
MAX_TOKENS = 4
#: Seconds between rounds: the proxy indexes the turn it just stored (off the reply path).
SETTLE_S = 2.0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def wait_for(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[:3]} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout:.0f} s")


def ttft(client: openai.OpenAI, messages: list[dict[str, str]], **extra: object) -> float:
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model=MODEL,
        messages=messages,  # type: ignore[arg-type]
        stream=True,
        max_tokens=MAX_TOKENS,
        seed=1,
        **extra,  # type: ignore[arg-type]
    )
    first = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    return (first or time.perf_counter()) - started


class Planner:
    """The proxy's own work before it calls the upstream (recall + prompt), timed in-process
    with the proxy's code on the same store and settings, over a warm index like a running
    proxy's."""

    def __init__(self, settings: Settings, backend: OpenAIBackend) -> None:
        self.settings = settings
        self.backend = backend
        self.memories = memo_shell.open(settings.data_dir, settings=settings)
        self.memories.wait_ready()

    async def plan(self, question: str) -> tuple[float, list[dict[str, str]]]:
        chat = conversation(MODEL, [{"role": "user", "content": question}], Sampling())
        started = time.perf_counter()
        shell = ProxyShell(
            self.memories, self.backend, self.settings, chat, session="serve", meta={}
        )
        _hits, plan = await shell.plan(question)
        return time.perf_counter() - started, [dict(m) for m in plan.messages]

    def close(self) -> None:
        self.memories.close()


def one_round(
    direct: openai.OpenAI,
    through: openai.OpenAI,
    bare: list[dict[str, str]],
    recalled: list[dict[str, str]],
    *,
    direct_first: bool,
) -> dict[str, float]:
    """One question four ways. Each bare request follows a long one with a different prompt,
    so llama.cpp's prefix cache helps none of them; which pair goes first alternates, so drift
    in the machine's load falls on both sides; after a turn is stored the proxy is left to
    finish indexing it, as it does while a user reads the answer."""
    row: dict[str, float] = {}
    off = {"extra_headers": {"X-Memo-Shell-Memory": "off"}}

    def direct_pair() -> None:
        row["direct_recalled"] = ttft(direct, recalled)
        row["direct_bare"] = ttft(direct, bare)

    def proxy_pair() -> None:
        row["proxy_on"] = ttft(through, bare)
        time.sleep(SETTLE_S)
        row["proxy_off"] = ttft(through, bare, **off)

    for run in (direct_pair, proxy_pair) if direct_first else (proxy_pair, direct_pair):
        run()
    time.sleep(SETTLE_S)
    return row


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def serve_proxy(data_dir: Path, upstream: str, logs: Path) -> tuple[subprocess.Popen, str]:
    """`memo-shell serve` in its own process in front of ``upstream``; returns it and its URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MEMO_SHELL_OPENAI_BASE_URL": upstream,
        "MEMO_SHELL_CONTEXT_SIZE": str(CONTEXT),
    }
    proc = start(
        [
            *(sys.executable, "-m", "memo_shell", "--data-dir", str(data_dir)),
            *("--backend", "openai", "--model", MODEL, "serve", "--port", str(port)),
        ],
        logs / f"proxy-{port}.log",
        env,
    )
    url = f"http://127.0.0.1:{port}/v1"
    wait_for(f"{url}/models", proc, logs / f"proxy-{port}.log")
    return proc, url


def proxy_cost(data_dir: Path, questions: list[str], rounds: int, logs: Path) -> dict:
    """Part 1: TTFT direct vs through the proxy, against an upstream that answers at once."""
    with FakeOpenAI([ScriptedModel(MODEL, reply="Sure, here it is.")]) as upstream:
        proc, url = serve_proxy(data_dir, upstream.base_url, logs)
        try:
            direct = openai.OpenAI(base_url=upstream.base_url, api_key="x", max_retries=0)
            through = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
            off = {"extra_headers": {"X-Memo-Shell-Memory": "off"}}
            ways = {
                "direct": lambda q: ttft(direct, q),
                "proxy_off": lambda q: ttft(through, q, **off),
                "proxy_on": lambda q: ttft(through, q),
            }
            for way in ways.values():  # warm-up: index load, connection pools
                way([{"role": "user", "content": questions[0]}])
            times: dict[str, list[float]] = {name: [] for name in ways}
            for number in range(rounds):
                question = [
                    {"role": "user", "content": questions[1 + number % (len(questions) - 1)]}
                ]
                order = list(ways.items())
                order = order[number % 3 :] + order[: number % 3]  # rotate: no side always first
                for name, way in order:
                    times[name].append(way(question))
        finally:
            stop(proc)
    p50 = {name: statistics.median(values) for name, values in times.items()}
    return {
        "rounds": rounds,
        "direct_p50_ms": ms(p50["direct"]),
        "proxy_off_p50_ms": ms(p50["proxy_off"]),
        "proxy_on_p50_ms": ms(p50["proxy_on"]),
        "added_memory_off_p50_ms": ms(p50["proxy_off"] - p50["direct"]),
        "added_memory_on_p50_ms": ms(p50["proxy_on"] - p50["direct"]),
        "added_memory_on_p95_ms": ms(
            percentile(times["proxy_on"], 95) - percentile(times["direct"], 95)
        ),
    }


def model_times(data_dir: Path, questions: list[str], logs: Path) -> dict:
    """Part 2: the embedded model behind llama_cpp.server, directly and through the proxy."""
    port = free_port()
    upstream = f"http://127.0.0.1:{port}/v1"
    llama = start(
        [
            *(sys.executable, "-m", "llama_cpp.server", "--model", str(embedded.model_path())),
            *("--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(port)),
            *("--n_ctx", str(CONTEXT), "--n_threads", str(default_threads())),
        ],
        logs / "llama.log",
    )
    proc = None
    try:
        wait_for(f"{upstream}/models", llama, logs / "llama.log")
        proc, url = serve_proxy(data_dir, upstream, logs)
        direct = openai.OpenAI(base_url=upstream, api_key="x", max_retries=0)
        through = openai.OpenAI(base_url=url, api_key="x", max_retries=0)
        settings = Settings(data_dir=data_dir, backend="openai", context_size=CONTEXT)
        backend = OpenAIBackend(upstream, MODEL, context_size=CONTEXT)
        warm = [{"role": "user", "content": questions[0]}]
        ttft(direct, warm), ttft(through, warm)
        planner = Planner(settings, backend)
        rows = []
        for number, question in enumerate(questions[1:], 1):
            bare = [{"role": "user", "content": question}]
            plan_s, recalled = asyncio.run(planner.plan(question))
            row = one_round(direct, through, bare, recalled, direct_first=number % 2 == 1)
            row["plan"] = plan_s
            rows.append(row)
            print(f"  {number:3}: " + "  ".join(f"{k} {ms(v):8.1f}" for k, v in row.items()))
        planner.close()
        asyncio.run(backend.aclose())
    finally:
        if proc is not None:
            stop(proc)
        stop(llama)

    def p50(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    return {
        "runs": len(rows),
        "model_ttft_bare_p50_ms": ms(p50("direct_bare")),
        "model_ttft_recalled_prompt_p50_ms": ms(p50("direct_recalled")),
        "proxy_off_ttft_p50_ms": ms(p50("proxy_off")),
        "proxy_on_ttft_p50_ms": ms(p50("proxy_on")),
        "recall_and_prompt_p50_ms": ms(p50("plan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=12, help="rounds with the real model")
    parser.add_argument("--rounds", type=int, default=60, help="rounds with the instant upstream")
    parser.add_argument("--keep", type=Path, default=REPO / "bench" / "out" / "proxy")
    args = parser.parse_args()

    kept, queries = prepare_store(args.keep, args.memories, Corpus())
    questions = queries[: max(args.runs, 20) + 1]
    logs = Path(tempfile.mkdtemp(prefix="memo-bench-proxy-"))
    # The proxy stores every turn: it works on a copy, so the kept store stays reusable.
    data_dir = logs / "data"
    try:
        shutil.copytree(kept, data_dir)
        print("proxy's own cost (instant upstream):", flush=True)
        cost = proxy_cost(data_dir, questions, args.rounds, logs)
        for key, value in cost.items():
            print(f"  {key:34} {value}")
        print("embedded model behind llama_cpp.server:", flush=True)
        model = model_times(data_dir, questions[: args.runs + 1], logs)
        for key, value in model.items():
            print(f"  {key:34} {value}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    added = cost["added_memory_on_p50_ms"]
    ratio = round(added / model["model_ttft_bare_p50_ms"], 3)
    result = {
        "memories": args.memories,
        "proxy": cost,
        "model": model,
        "added_over_model_ttft": ratio,
        "target_met": ratio <= 0.10,
    }
    print(f"  added (memory on) / model TTFT       {ratio}  (target ≤ 0.10)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
