"""End to end in a real terminal: tmux runs ``memo-shell`` on the embedded llama.cpp model.

A seeded temporary data directory, the real CLI entry point, the real model (Gemma 3 270M,
assembled into the user cache once and reused), keys typed with ``send-keys`` and the screen read
back with ``capture-pane``: the answer and the recalled-memories panel must both appear, and the
turn must be on disk afterwards. Then F7 regenerates the reply (the old record is replaced by
a new one) and F10 copies it: the copy arrives as OSC 52, which tmux turns into a paste buffer.
CI installs tmux (``apt-get install -y tmux``); without it the test is skipped, never silently
passed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tui_helpers import seed

import memo_shell

pytestmark = [
    pytest.mark.slow,
    pytest.mark.model,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

QUESTION = "When is the Lisbon trip with Ada?"


class Tmux:
    """One private tmux server (its own socket) running one command in a fixed-size window."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def run(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30
        )
        return out.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "e2e")

    def wait_for(self, what: Callable[[str], bool], timeout: float, label: str) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if what(text):
                return text
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {label}; the screen was:\n{text}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(f"memo-shell-e2e-{os.getpid()}")
    yield server
    server.run("kill-server")


def record_ids(data: Path) -> set[str]:
    """The ids of the record files on disk (read without opening the store)."""
    return {p.stem for p in (data / "memories").rglob("*") if p.is_file() and len(p.stem) == 26}


def test_question_answer_and_recalled_panel_in_a_real_terminal(tmux: Tmux, tmp_path: Path):
    data = tmp_path / "data"
    with memo_shell.open(data) as memories:
        memories.wait_ready(30)
        seeded = seed(memories)
    config = tmp_path / "config.toml"
    config.write_text("")
    env = {
        "MEMO_SHELL_DATA_DIR": str(data),
        "MEMO_SHELL_CONFIG_FILE": str(config),
        "MEMO_SHELL_BACKEND": "llama-cpp",
        "MEMO_SHELL_MAX_TOKENS": "24",
        "MEMO_SHELL_SEED": "7",
        "TERM": "xterm-256color",
    }
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    # COLUMNS/LINES (set by pytest's terminal) would override the real window size
    python = shlex.quote(sys.executable)
    command = f"env -u COLUMNS -u LINES {exports} {python} -m memo_shell; echo EXITED $?; sleep 60"
    tmux.run("new-session", "-d", "-s", "e2e", "-x", "130", "-y", "40", command)
    # let the app's OSC 52 (copy) make a tmux buffer, as a terminal would fill its clipboard
    tmux.run("set-option", "-g", "set-clipboard", "on")

    tmux.wait_for(
        lambda s: "llama-cpp · gemma3-270m" in s and "index loading" not in s,
        120,
        "the model to load",
    )
    tmux.run("send-keys", "-t", "e2e", "-l", QUESTION)
    tmux.run("send-keys", "-t", "e2e", "Enter")
    screen = tmux.wait_for(lambda s: "first token" in s, 180, "the reply to finish")

    # the recalled panel shows the Lisbon memory with its reasons
    assert "Plan a trip to Lisbon with Ada in May." in screen
    assert "why: matched:" in screen and "lisbon" in screen
    assert "gemma3-270m · llama-cpp · first token" in screen
    # the answer: the lines between the question and the timing line hold some text
    lines = [ln.split("▏")[0].strip(" ▌") for ln in screen.splitlines()]
    start = next(i for i, ln in enumerate(lines) if ln.startswith(QUESTION))
    end = next(i for i, ln in enumerate(lines) if "first token" in ln)
    answer = " ".join(ln for ln in lines[start + 1 : end] if ln)
    assert answer.strip(), screen

    # F7: the same question again; the first reply's record is forgotten, a new one written
    first = record_ids(data) - set(seeded)
    assert len(first) == 1
    tmux.run("send-keys", "-t", "e2e", "F7")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        now = record_ids(data) - set(seeded)
        if now and not now & first:
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"the reply was not regenerated:\n{tmux.screen()}")
    screen = tmux.wait_for(lambda s: "first token" in s, 60, "the new reply to show")
    assert screen.count(QUESTION) == 1  # replaced in place, not asked twice

    # F10: copy the reply; OSC 52 reaches tmux, which keeps it as a buffer
    tmux.run("send-keys", "-t", "e2e", "F10")
    tmux.wait_for(lambda s: "Copied the last reply" in s, 30, "the copy notice")
    copied = tmux.run("show-buffer")
    assert copied.strip()
    with memo_shell.open(data) as memories:
        memories.wait_ready(30)
        assert copied == memories.get(now.pop()).assistant

    tmux.run("send-keys", "-t", "e2e", "C-q")
    tmux.wait_for(lambda s: "EXITED 0" in s, 30, "memo-shell to quit")
    with memo_shell.open(data) as memories:
        memories.wait_ready(30)
        ids = memories.select()
        assert len(ids) == len(seeded) + 1
        stored = memories.get(memories.select()[0])
        assert stored.user == QUESTION and stored.assistant.strip()
        assert stored.backend == "llama-cpp" and stored.model == "gemma3-270m"
