"""Shared fixtures: every test gets its own data and config directories, never the user's."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point XDG data/config at throwaway dirs and clear MEMO_SHELL_* so no test sees real state.

    XDG_CACHE_HOME is left alone on purpose: the embedded model is assembled there once and
    reused by every test and run.
    """
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for name in list(os.environ):
        if name.startswith("MEMO_SHELL_"):
            monkeypatch.delenv(name)
    # per-device state (index, quarantine, store lock) lives outside the data dir
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("MEMO_SHELL_STATE_DIR", str(home / "state" / "memo-shell"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(data_dir: Path) -> Iterator[Callable[..., CliResult]]:
    """Run ``memo-shell --data-dir <tmp> ARGS...`` in-process, the way a user would type it."""
    from memo_shell.cli import cli

    def run(*args: str, input: str | bytes | None = None, data: Path | None = None) -> CliResult:
        runner = CliRunner()
        result = runner.invoke(
            cli, ["--data-dir", str(data or data_dir), *args], input=input, catch_exceptions=False
        )
        return CliResult(result.exit_code, result.stdout, result.stderr)

    yield run
