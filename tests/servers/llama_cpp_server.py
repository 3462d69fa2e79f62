"""llama.cpp's own OpenAI-compatible server (``python -m llama_cpp.server``), the real thing.

Started on 127.0.0.1 with a free port and the embedded Gemma 3 270M GGUF, in its own process
group (so stopping it stops everything it started), its output in a log file that a failing
start quotes. Pytest fixtures in ``tests/conftest_servers.py``:

* ``llama_server`` (session): ``--n_ctx 2048``, embeddings on, the GGUF's own chat format;
* ``llama_server_gemma`` (session): the same with ``--chat_format gemma`` (a template that
  drops ``role=system``, as several model templates do);
* ``llama_server_killable`` (per test): a private server a test may kill.

    with LlamaCppServer(n_ctx=2048) as server:
        backend = OpenAIBackend(server.url)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import httpx

from servers import free_port

#: A cold start imports FastAPI and loads the model; a busy 2-core machine needs a while.
START_TIMEOUT_S = 120.0


def gguf_path() -> Path:
    """The embedded model's GGUF (assembled once into memo-shell's cache, then reused)."""
    from memo_shell.backends import embedded

    return embedded.model_path()


class LlamaCppServer:
    """One ``llama_cpp.server`` process; ``url`` is its OpenAI base URL (``.../v1``)."""

    def __init__(
        self,
        *,
        n_ctx: int = 2048,
        chat_format: str | None = None,
        embedding: bool = True,
        api_key: str | None = None,
        model: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/v1"
        self.model_path = model or gguf_path()
        self.n_ctx = n_ctx
        self.api_key = api_key
        self.args = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            "2",
            "--embedding",
            str(embedding),
            "--verbose",
            "False",
        ]
        if chat_format:
            self.args += ["--chat_format", chat_format]
        if api_key:
            self.args += ["--api_key", api_key]
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log")  # noqa: SIM115

    @property
    def model_id(self) -> str:
        """The id the server lists: the path it loaded (no alias given)."""
        return str(self.model_path)

    def start(self) -> Self:
        self.process = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited at start:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/models", headers=headers, timeout=1).status_code == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT_S} s")

    def log(self) -> str:
        return Path(self._log.name).read_text(errors="replace")[-4000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the server's whole process group (what a crash or the OOM killer does)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
