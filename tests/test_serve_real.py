"""`memo-shell serve` as users run it: the real command in its own process, and in front of a
real model server (`python -m llama_cpp.server` with the embedded Gemma 3 270M)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import ollama
import openai
import pytest
from serve_helpers import echo, running_proxy
from servers import FakeOllama, ScriptedModel
from servers.llama_cpp_server import LlamaCppServer

import memo_shell
from memo_shell.config import Settings

pytest_plugins = ["conftest_servers"]

REPO = Path(__file__).resolve().parents[1]


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    """Stop a child's whole process group; SIGKILL if it does not go within 10 s."""
    try:
        os.killpg(proc.pid, sig)
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
    except ProcessLookupError:
        return proc.wait()


def test_the_serve_command_answers_and_shuts_down_cleanly(data_dir: Path) -> None:
    with FakeOllama([ScriptedModel("llama3.2:latest", reply=echo)]) as upstream:
        env = {**os.environ, "PYTHONPATH": str(REPO), "MEMO_SHELL_OLLAMA_HOST": upstream.url}
        command = ["--data-dir", str(data_dir), "--backend", "ollama", "serve", "--port", "0"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "memo_shell", *command],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert proc.stderr is not None
            seen = []
            for line in proc.stderr:
                seen.append(line)
                if "listening on" in line:
                    break
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", "".join(seen))
            assert match, seen
            url = match.group(1)
            reply = ollama.Client(host=url).chat(
                model="llama3.2", messages=[{"role": "user", "content": "I play the cello"}]
            )
            assert reply.message.content == "You asked: I play the cello"
        finally:
            status = _stop(proc, signal.SIGINT)
        stdout, stderr = proc.communicate()
        assert status == 0, stderr
        assert "Traceback" not in stderr and stdout == ""
    with memo_shell.open(data_dir, preload=False) as mem:
        assert [m.user for m in mem.iter_memories()] == ["I play the cello"]


@pytest.mark.slow
@pytest.mark.model
def test_openai_and_ollama_clients_through_the_proxy_to_llama_cpp_server(
    llama_server: LlamaCppServer, data_dir: Path
) -> None:
    settings = Settings(
        data_dir=data_dir,
        backend="openai",
        openai_base_url=llama_server.url,
        context_size=2048,
        max_tokens=12,
        seed=1,
    )
    with running_proxy(settings) as proxy:
        client = openai.OpenAI(base_url=proxy.v1, api_key="unused", max_retries=0)
        [model] = [m.id for m in client.models.list()]  # the upstream's list, as it is
        first = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "My boat is called Osprey."}]
        )
        assert first.choices[0].message.content
        stream = client.chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "What is my boat called?"}],
            stream=True,
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert streamed
        reply = ollama.Client(host=proxy.url).chat(
            model=model, messages=[{"role": "user", "content": "Name a colour."}]
        )
        assert reply.message.content
        stored = proxy.stored()
        assert [m.user for m in stored] == [
            "My boat is called Osprey.",
            "What is my boat called?",
            "Name a colour.",
        ]
        assert stored[1].assistant == streamed and stored[1].backend == "openai"
        assert stored[1].meta["recalled"] == stored[0].id  # the boat was recalled into the prompt


@pytest.mark.slow
@pytest.mark.model
def test_the_embedded_model_in_process_behind_the_proxy(data_dir: Path) -> None:
    """`--backend llama-cpp` (what `auto` falls back to): the proxy runs the GGUF itself."""
    from memo_shell.backends import embedded

    settings = Settings(
        data_dir=data_dir, backend="llama-cpp", context_size=2048, max_tokens=8, seed=1
    )
    with running_proxy(settings) as proxy:
        client = ollama.Client(host=proxy.url)
        assert [m.model for m in client.list().models] == [embedded.MODEL_NAME]
        reply = client.chat(
            model=embedded.MODEL_NAME, messages=[{"role": "user", "content": "My dog is Rex."}]
        )
        assert reply.message.content
        stream = openai.OpenAI(base_url=proxy.v1, api_key="x", max_retries=0).chat.completions
        pieces = stream.create(
            model=embedded.MODEL_NAME,
            messages=[{"role": "user", "content": "What is my dog called?"}],
            stream=True,
        )
        answer = "".join(c.choices[0].delta.content or "" for c in pieces if c.choices)
        assert answer
        stored = proxy.stored()
        assert [m.backend for m in stored] == ["llama-cpp", "llama-cpp"]
        assert stored[1].assistant == answer
