"""One session as a document to share: Markdown (question, answer, times, model) or JSON.

Beside ``mem export``'s lossless JSON Lines, this is for people: a chat to paste into an issue,
a note or a message. The CLI (``memo-shell chat export``) and the TUI both use it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from memo_shell.api import Memories
from memo_shell.disk import atomic_write
from memo_shell.errors import NotFound
from memo_shell.jsonl import memory_to_json
from memo_shell.records import Memory

FORMATS = ("md", "json")


def session_turns(memories: Memories, session: str) -> list[Memory]:
    """The session's memories, oldest first; NotFound if it has none."""
    turns = list(memories.iter_memories(newest_first=False, session=session))
    if not turns:
        raise NotFound(f"no memories in session {session!r}")
    return turns


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _body(text: str) -> str:
    """Unix line ends, no blank lines at either end (they would break the section layout)."""
    return text.replace("\r\n", "\n").strip("\n")


def to_markdown(session: str, turns: Iterable[Memory]) -> str:
    """The chat as Markdown: one section per turn with its time and model."""
    turns = list(turns)
    lines = [f"# {session}", ""]
    if turns:
        span = f"{_when(turns[0].created_at)} – {_when(turns[-1].created_at)}"
        lines += [f"*{len(turns)} turn{'s' if len(turns) != 1 else ''}, {span}.*", ""]
    for memory in turns:
        lines += ["---", "", f"### You · {_when(memory.created_at)}", ""]
        lines += [_body(memory.user) or "*(no question)*", ""]
        if memory.assistant:
            who = memory.model or "Assistant"
            if memory.backend:
                who += f" ({memory.backend})"
            lines += [f"### {who}", "", _body(memory.assistant), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def to_json(session: str, turns: Iterable[Memory]) -> str:
    return json.dumps(
        {"session": session, "turns": [memory_to_json(m) for m in turns]},
        ensure_ascii=False,
        indent=2,
    )


def render(session: str, turns: Iterable[Memory], fmt: str = "md") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    return to_markdown(session, turns) if fmt == "md" else to_json(session, turns) + "\n"


def write_private(path: Path, text: str) -> None:
    """Chats are private: the file is 0600 and appears whole under its name, or not at all."""
    atomic_write(path, text.encode("utf-8"), 0o600)


def default_filename(session: str, fmt: str = "md") -> str:
    """A file name from the session name, safe on every file system."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in session)
    safe = re.sub(r"-{2,}", "-", safe).strip("-.")
    return f"{safe[:80] or 'chat'}.{fmt}"
