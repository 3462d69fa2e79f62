"""Running `memo-shell serve` in the test process: the real app on a real socket (uvicorn in a
thread), so the official `openai` and `ollama` packages can talk to it over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

import memo_shell
from memo_shell.api import Memories
from memo_shell.config import Settings
from memo_shell.records import Memory
from memo_shell.serve import Proxy, create_app
from memo_shell.serve.listen import bind, url_of


@dataclass
class RunningProxy:
    url: str
    proxy: Proxy
    data_dir: Path
    server: uvicorn.Server

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def stored(self) -> list[Memory]:
        """Every memory on disk, oldest first (read from the files, as another process would)."""
        with memo_shell.open(self.data_dir, preload=False) as mem:
            return list(mem.iter_memories(newest_first=False))


def echo(messages: list[dict[str, Any]]) -> str:
    """A scripted model that answers with the question: replies are easy to pair with turns."""
    return f"You asked: {messages[-1]['content'][:200]}"


@contextmanager
def running_proxy(settings: Settings, **proxy_options: Any) -> Iterator[RunningProxy]:
    proxy = Proxy(settings, **proxy_options)
    app = create_app(proxy, lambda: Memories(settings=settings, preload=True))
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("memo-shell serve did not start")
        time.sleep(0.01)
    try:
        yield RunningProxy(url_of(sock), proxy, settings.data_dir, server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
