"""Pytest fixtures for the loopback model servers.

A plugin: a test module (or conftest) says ``pytest_plugins = ["conftest_servers"]``.

Each fixture gives a running server with one ready chat model; tests add or change models
through ``server.add(ScriptedModel(...))`` or by editing ``server.models[name]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from servers import FakeOllama, FakeOpenAI, ScriptedModel, free_port


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
