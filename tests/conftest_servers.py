"""Pytest fixtures for the loopback model servers.

A plugin: a test module (or conftest) says ``pytest_plugins = ["conftest_servers"]``.

The fakes give a running server with one ready chat model; tests add or change models
through ``server.add(ScriptedModel(...))`` or by editing ``server.models[name]``. The
``llama_server*`` fixtures are llama.cpp's real OpenAI-compatible server with the embedded GGUF
(``tests/servers/llama_cpp_server.py``): prefer them, and keep the fakes for faults.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import FakeOllama, FakeOpenAI, ScriptedModel, free_port
from servers.llama_cpp_server import LlamaCppServer


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama([ScriptedModel("llama3.2:latest")]) as server:
        yield server


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI([ScriptedModel("qwen2.5-7b-instruct")]) as server:
        yield server


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens: every connection is refused."""
    return f"http://127.0.0.1:{free_port()}"


# ---------------------------------------------------------------- llama.cpp's real server


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaCppServer]:
    """llama_cpp.server with the embedded GGUF, ``--n_ctx 2048``, embeddings on (shared)."""
    with LlamaCppServer(n_ctx=2048) as server:
        yield server


@pytest.fixture(scope="session")
def llama_server_gemma() -> Iterator[LlamaCppServer]:
    """The same with ``--chat_format gemma``, whose template drops the system message."""
    with LlamaCppServer(n_ctx=2048, chat_format="gemma", embedding=False) as server:
        yield server


@pytest.fixture
def llama_server_killable() -> Iterator[LlamaCppServer]:
    """A private llama_cpp.server a test may kill (stopped afterwards in any case)."""
    with LlamaCppServer(n_ctx=2048, embedding=False) as server:
        yield server
