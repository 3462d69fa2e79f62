"""Fixtures for the app's pilot and snapshot tests.

Each test gets its own data and config directory, a real ``Memories`` store with a real index,
and (where a model is needed) the loopback Ollama server from ``tests/servers`` driven through the
real ``ollama`` client, with scripted, deterministic replies.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import FakeOllama, ScriptedModel
from tui_helpers import MODEL, REPLY, seed

import memo_shell
from memo_shell.config import Settings


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Dates on screen are local time; pin the zone so assertions and snapshots are stable."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "config.toml"


@pytest.fixture
def ollama() -> Iterator[FakeOllama]:
    with FakeOllama([ScriptedModel(MODEL, reply=REPLY)]) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, config_file: Path, ollama: FakeOllama) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        config_file=config_file,
        backend="ollama",
        ollama_host=ollama.url,
        model=MODEL,
        theme="memo-dark",
    )


@pytest.fixture
def memories(settings: Settings) -> Iterator[memo_shell.Memories]:
    mem = memo_shell.open(settings.data_dir, settings=settings)
    mem.wait_ready(30)
    yield mem
    mem.close()


@pytest.fixture
def seeded(memories: memo_shell.Memories) -> list[str]:
    return seed(memories)
