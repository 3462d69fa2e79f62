"""Open WebUI's chat export (JSON): one chat, or an array of them ("Export All Chats").

Each entry is ``{"id", "title", "chat": {...}, "created_at", "updated_at", ...}``; the ``chat``
holds ``history`` (``messages`` keyed by id, each with ``parentId``, ``childrenIds``, ``role``,
``content``, ``timestamp``, ``model``; and ``currentId``, the leaf the user last saw) and a flat
``messages`` list. Regenerated replies and edits are siblings in ``history``, so the branch that
ends at ``currentId`` is what is imported; the flat list is the fallback for old exports.
"""

from __future__ import annotations

import re
from typing import Any

from memo_shell.importers.base import (
    Conversation,
    Message,
    Problem,
    from_epoch,
    id_or_position,
    shown,
)

SOURCE = "openwebui"
MAX_DEPTH = 100_000
#: Newer Open WebUI versions keep a reply's reasoning and tool calls inside its content as
#: ``<details type="reasoning">…</details>`` blocks; they are not what was said to the user.
_DETAILS = re.compile(
    r'<details\s+type="(reasoning|tool_calls|code_interpreter)"[^>]*>.*?</details>\s*', re.DOTALL
)


def _strip_details(text: str, meta: dict[str, str]) -> str:
    # Search only up to the last closing tag: an opening tag with no close after it would
    # otherwise make every attempt scan to the end (quadratic on hostile text).
    end = text.rfind("</details>") + len("</details>")
    if end < len("</details>"):
        return text
    head, tail = text[:end], text[end:]
    kinds = [m.group(1) for m in _DETAILS.finditer(head)]
    if not kinds:
        return text
    if "tool_calls" in kinds:
        meta["tools"] = "tool_calls"
    return (_DETAILS.sub("", head) + tail).strip()


def _branch(history: dict[str, Any]) -> list[Any] | None:
    """Messages from the root to ``currentId``, or None if the history cannot be walked."""
    nodes = history.get("messages")
    current = history.get("currentId")
    if not isinstance(nodes, dict) or not isinstance(current, str) or current not in nodes:
        return None
    chain: list[Any] = []
    seen: set[str] = set()
    node_id: Any = current
    while isinstance(node_id, str) and node_id in nodes:
        if node_id in seen or len(chain) > MAX_DEPTH:
            return None
        seen.add(node_id)
        chain.append(nodes[node_id])
        node = nodes[node_id]
        node_id = node.get("parentId") if isinstance(node, dict) else None
    chain.reverse()
    return chain


def _text(content: Any, meta: dict[str, str]) -> str:
    if isinstance(content, str):
        return content
    pieces: list[str] = []
    skipped = 0
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and part.get("type") == "text":
            text = part.get("text")
            if isinstance(text, str):
                pieces.append(text)
                continue
        skipped += 1
    if skipped:
        meta["non_text_parts"] = str(skipped)
    return "\n".join(pieces)


def read(obj: Any, position: int) -> tuple[Conversation, list[Message], list[Problem]] | Problem:
    """One exported chat: its identity, the current branch's messages and problems."""
    if not isinstance(obj, dict):
        return Problem(f"chat #{position + 1} is not an object")
    inner = obj.get("chat")
    chat: dict[str, Any] = inner if isinstance(inner, dict) else obj
    raw_id = obj.get("id") or chat.get("id")
    chat_id = id_or_position(raw_id, position)
    history = chat.get("history")
    items = _branch(history) if isinstance(history, dict) else None
    if items is None:
        items = chat.get("messages")
    if not isinstance(items, list):
        return Problem("no history or messages (not an Open WebUI chat)", chat_id)
    title = obj.get("title") or chat.get("title")
    conversation = Conversation(
        source=SOURCE,
        id=chat_id,
        title=title if isinstance(title, str) else "",
        at=from_epoch(obj.get("created_at")) or from_epoch(chat.get("timestamp")),
    )
    messages: list[Message] = []
    problems: list[Problem] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(Problem("message is not an object", chat_id, f"#{index + 1}"))
            continue
        raw_id = item.get("id")
        message_id = raw_id if isinstance(raw_id, str) else f"#{index + 1}"
        role = item.get("role")
        if role not in ("user", "assistant"):
            if role != "system":
                problems.append(Problem(f"unknown role {shown(role)}", chat_id, message_id))
            continue
        meta: dict[str, str] = {}
        text = _text(item.get("content"), meta)
        if role == "assistant" and "<details" in text:
            text = _strip_details(text, meta)
        files = item.get("files")
        names = [
            f["name"]
            for f in (files if isinstance(files, list) else [])
            if isinstance(f, dict) and isinstance(f.get("name"), str)
        ]
        if names:
            meta["attachments"] = ", ".join(names)
        if not text and not meta:
            continue
        model = item.get("model")
        messages.append(
            Message(
                role=role,
                text=text,
                id=message_id,
                at=from_epoch(item.get("timestamp")),
                model=model if isinstance(model, str) else "",
                meta=meta,
            )
        )
    return conversation, messages, problems
