"""Importers: other chat apps' histories as memo-shell memories.

One small module per format reads its export and yields conversations (identity, messages on the
branch the user kept, problems); ``base`` pairs questions with replies and gives each turn a
stable id; ``run`` stores the turns through ``Memories``, skipping ids already present, so
importing the same export twice adds nothing and a later export adds only the new turns.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from memo_shell.errors import MemoShellError
from memo_shell.importers import chatgpt, claude, openwebui, oterm, stream
from memo_shell.importers.base import Conversation, Message, Problem, pair
from memo_shell.records import Memory

#: The formats ``--from`` accepts besides memo-shell's own JSON Lines, with their names.
FORMATS: dict[str, str] = {
    "chatgpt": "ChatGPT export",
    "claude": "Claude export",
    "openwebui": "Open WebUI chat export",
    "oterm": "oterm chat store",
}
_READERS: dict[str, Callable[[Any, int], Any]] = {
    "chatgpt": chatgpt.read,
    "claude": claude.read,
    "openwebui": openwebui.read,
}

Parsed = tuple[Conversation, list[Message], list[Problem]] | Problem


def total(fmt: str, path: Path) -> int:
    """The amount of work, in the units ``progress`` reports: bytes, or messages for oterm."""
    return oterm.count(path) if fmt == "oterm" else stream.size_of(path)


def _json_conversations(
    fmt: str, path: Path, progress: Callable[[int], None] | None
) -> Iterator[Parsed]:
    read = _READERS[fmt]
    with stream.open_json(path, progress=progress) as raw:
        for item in stream.conversations(raw):
            yield item if isinstance(item, Problem) else read(item[1], item[0])


def turns(
    fmt: str, path: Path, progress: Callable[[int], None] | None = None
) -> Iterator[Memory | Problem]:
    """Every turn of the export as a ready record, or a Problem for what had to be skipped."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown import format {fmt!r}")
    parsed = (
        oterm.conversations(path, progress)
        if fmt == "oterm"
        else _json_conversations(fmt, path, progress)
    )
    for item in parsed:
        if isinstance(item, Problem):
            yield item
            continue
        conversation, messages, problems = item
        yield from problems
        yield from pair(conversation, messages)


def detect(path: Path) -> str | None:
    """Guess the format of a file from its first bytes and first conversation, or None."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return None
    if head.startswith(b"SQLite format 3\x00"):
        try:
            oterm.connect(path).close()
        except MemoShellError:
            return None
        return "oterm"
    if not (zipfile.is_zipfile(path) or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")):
        return None
    try:
        with stream.open_json(path) as raw:
            for item in stream.conversations(raw):
                if isinstance(item, Problem) or not isinstance(item[1], dict):
                    return None
                first = item[1]
                if "mapping" in first:
                    return "chatgpt"
                if "chat_messages" in first:
                    return "claude"
                if "chat" in first or "history" in first:
                    return "openwebui"
                return None
    except MemoShellError:  # an unreadable archive; damaged JSON comes back as a Problem
        return None
    return None
