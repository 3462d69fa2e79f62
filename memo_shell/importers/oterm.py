"""oterm's own chat store, read in place: its SQLite ``store.db``, opened read-only.

The schema (oterm's ``store.py`` and its upgrade scripts): ``chat(id, name, model, system, …)``
and ``message(id, chat_id, author, text, images?)``; ``author`` is ``user``/``assistant`` (before
oterm 0.12 ``me``/``ollama``). The file is opened with SQLite's ``mode=ro`` URI, so nothing is
ever written to it, even while oterm itself has it open.

oterm keeps no times at all. An imported memory needs one that is the same on every import (the
time is part of its id, and the id is what makes a second import a no-op), so these memories are
dated at the Unix epoch plus the message's row number in milliseconds, which keeps their order,
and say ``time: unknown`` in ``meta``.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from memo_shell.errors import MemoShellError
from memo_shell.importers.base import Conversation, Message, Problem

SOURCE = "oterm"
_ROLES = {"user": "user", "me": "user", "assistant": "assistant", "ollama": "assistant"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def connect(path: Path) -> sqlite3.Connection:
    """Open the store read-only in place (a URI, so a path with ``?`` or ``#`` stays a path)."""
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise MemoShellError(f"cannot read {path} as an oterm store: {exc}") from exc
    if not {"chat", "message"} <= tables:
        db.close()
        raise MemoShellError(f"{path} is not an oterm store (no chat and message tables)")
    return db


def count(path: Path) -> int:
    """How many messages the store holds (the progress total)."""
    db = connect(path)
    try:
        return int(db.execute("SELECT count(*) FROM message").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        db.close()


def conversations(
    path: Path, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[Conversation, list[Message], list[Problem]] | Problem]:
    """Each chat with its messages in order (rows are streamed, one chat held at a time)."""
    db = connect(path)
    try:
        chats = db.execute("SELECT id, name, model FROM chat ORDER BY id").fetchall()
        for chat_id, name, model in chats:
            conversation = Conversation(
                source=SOURCE,
                id=str(chat_id),
                title=name if isinstance(name, str) else "",
                at=None,
            )
            messages: list[Message] = []
            problems: list[Problem] = []
            rows = db.execute(
                "SELECT id, author, text FROM message WHERE chat_id = ? ORDER BY id", (chat_id,)
            )
            for message_id, author, text in rows:
                if progress is not None:
                    progress(1)
                role = _ROLES.get(author) if isinstance(author, str) else None
                if role is None or not isinstance(text, str) or not isinstance(message_id, int):
                    problems.append(
                        Problem("unknown author or no text", conversation.id, str(message_id))
                    )
                    continue
                if not text:
                    continue
                messages.append(
                    Message(
                        role=role,
                        text=text,
                        id=str(message_id),
                        at=_EPOCH + timedelta(milliseconds=min(max(0, message_id), 10**12)),
                        model=model if isinstance(model, str) and role == "assistant" else "",
                        meta={"time": "unknown"},
                    )
                )
            yield conversation, messages, problems
    except sqlite3.Error as exc:
        yield Problem(f"the oterm store could not be read to the end ({exc}); stopped")
    finally:
        db.close()
