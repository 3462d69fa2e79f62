"""What `memo-shell serve` adds before the first token, against the same upstream called directly.

    .venv/bin/python bench/proxy.py [--memories 10000] [--runs 20] [--keep DIR]

The upstream is the real OpenAI-compatible llama.cpp server (``python -m llama_cpp.server``)
on the embedded Gemma 3 270M; the proxy is the real ``memo-shell serve`` process in front of
it, over a store of ``--memories`` synthetic memories (bench/recall.py's corpus). The client is
the official ``openai`` package, streaming; time to first token (TTFT) is from the call to the
first content piece. Each round asks one question four ways (the direct pair and the proxy
pair alternate in order; each bare request follows a long, different prompt, so llama.cpp's
prefix cache favours none of them):

* **direct, recalled prompt**: the upstream alone, given the exact messages the proxy builds
  for this question (computed with the proxy's own code on the same store and settings);
* **direct, bare**: the upstream alone with just the question: the model's own first-token time;
* **proxy, memory on**: through the proxy (recall, prompt, relay, and the turn stored after);
* **proxy, memory off** (``X-Memo-Shell-Memory: off``): the HTTP hop and relaying alone.

The proxy's own cost before the first token is *transport* (proxy off − direct bare, paired
per round: the extra HTTP hop, parsing and relaying) plus *recall and prompt* (the proxy's
``ProxyShell.plan`` timed in-process on the same store: what it does before calling the
upstream). Target: p50 of their sum ≤ 10% of the model's p50 first-token time (direct,
bare). The memories also lengthen the prompt, which costs model time (recalled prompt − bare):
that is the price of memory itself, reported beside it, as is the end-to-end difference
proxy on − direct recalled (same prompt to the model; noisy, as it subtracts two long times).
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

from recall import Corpus  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=REPO / "bench" / "out" / "proxy")
    args = parser.parse_args()

    corpus = Corpus()
    kept, queries = prepare_store(args.keep, args.memories, corpus)
    questions = queries[: args.runs + 1]
    logs = Path(tempfile.mkdtemp(prefix="memo-bench-proxy-"))
    # The proxy stores every turn: it works on a copy, so the kept store stays reusable.
    data_dir = logs / "data"
    shutil.copytree(kept, data_dir)
    llama_port, proxy_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{llama_port}/v1"
    llama = start(
        [
            *(sys.executable, "-m", "llama_cpp.server", "--model", str(embedded.model_path())),
            *("--model_alias", MODEL, "--host", "127.0.0.1", "--port", str(llama_port)),
            *("--n_ctx", str(CONTEXT), "--n_threads", str(default_threads())),
        ],
        logs / "llama.log",
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "MEMO_SHELL_OPENAI_BASE_URL": upstream,
        "MEMO_SHELL_CONTEXT_SIZE": str(CONTEXT),
    }
    proxy = None
    try:
        wait_for(f"{upstream}/models", llama, logs / "llama.log")
        proxy = start(
            [
                *(sys.executable, "-m", "memo_shell", "--data-dir", str(data_dir)),
                *("--backend", "openai", "--model", MODEL, "serve", "--port", str(proxy_port)),
            ],
            logs / "proxy.log",
            env,
        )
        wait_for(f"http://127.0.0.1:{proxy_port}/v1/models", proxy, logs / "proxy.log")
        direct = openai.OpenAI(base_url=upstream, api_key="x", max_retries=0)
        through = openai.OpenAI(
            base_url=f"http://127.0.0.1:{proxy_port}/v1", api_key="x", max_retries=0
        )
        settings = Settings(data_dir=data_dir, backend="openai", context_size=CONTEXT)
        backend = OpenAIBackend(upstream, MODEL, context_size=CONTEXT)
        off = {"extra_headers": {"X-Memo-Shell-Memory": "off"}}

        # warm-up: model load, index load in the proxy, connection pools
        ttft(direct, [{"role": "user", "content": questions[0]}])
        ttft(through, [{"role": "user", "content": questions[0]}])
        ttft(through, [{"role": "user", "content": questions[0]}], **off)

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
        if proxy is not None:
            stop(proxy)
        stop(llama)
        shutil.rmtree(data_dir, ignore_errors=True)

    def p50(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    transport = statistics.median(r["proxy_off"] - r["direct_bare"] for r in rows)
    plan = p50("plan")
    added = transport + plan
    end_to_end = statistics.median(r["proxy_on"] - r["direct_recalled"] for r in rows)
    model = p50("direct_bare")
    result = {
        "memories": args.memories,
        "runs": len(rows),
        "model_ttft_bare_p50_ms": ms(model),
        "model_ttft_recalled_prompt_p50_ms": ms(p50("direct_recalled")),
        "proxy_off_ttft_p50_ms": ms(p50("proxy_off")),
        "proxy_on_ttft_p50_ms": ms(p50("proxy_on")),
        "transport_p50_ms": ms(transport),
        "recall_and_prompt_p50_ms": ms(plan),
        "added_by_proxy_p50_ms": ms(added),
        "added_over_model_ttft": round(added / model, 3),
        "target_met": added <= 0.10 * model,
        "proxy_on_minus_direct_recalled_p50_ms": ms(end_to_end),
    }
    for key, value in result.items():
        print(f"  {key:34} {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
