"""Claude's data export: ``conversations.json`` (alone or inside the export's ``.zip``).

Each conversation has ``uuid``, ``name``, ``created_at`` and ``chat_messages``; each message has
``uuid``, ``sender`` (``human`` or ``assistant``), ``created_at``, ``text`` and, in newer exports,
``content`` blocks (``text``, ``thinking``, ``tool_use``, ``tool_result``). Only text blocks are
what was said; tool blocks are counted in ``meta``, thinking is skipped, attachments are named.
Newer exports also link messages by ``parent_message_uuid``: then only the branch ending at the
last message is imported, as on claude.ai, where a retried message hides the earlier attempt.
"""

from __future__ import annotations

from typing import Any

from memo_shell.importers.base import (
    Conversation,
    Message,
    Problem,
    from_iso,
    id_or_position,
    shown,
)

SOURCE = "claude"
_ROLES = {"human": "user", "user": "user", "assistant": "assistant"}


def _text(message: dict[str, Any], meta: dict[str, str]) -> str:
    blocks = message.get("content")
    if isinstance(blocks, list) and blocks:
        pieces, tools = [], []
        for block in blocks:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                pieces.append(block["text"])
            elif kind in ("tool_use", "tool_result"):
                name = block.get("name")
                tools.append(name if isinstance(name, str) and name else str(kind))
        if tools:
            meta["tools"] = ", ".join(dict.fromkeys(tools))
        if pieces:
            return "\n\n".join(p for p in pieces if p)
    text = message.get("text")
    return text if isinstance(text, str) else ""


def _attachments(message: dict[str, Any]) -> str:
    names = []
    for key in ("attachments", "files"):
        items = message.get(key)
        for item in items if isinstance(items, list) else []:
            name = item.get("file_name") if isinstance(item, dict) else None
            if isinstance(name, str) and name:
                names.append(name)
    return ", ".join(dict.fromkeys(names))


def _current_branch(items: list[Any]) -> list[Any]:
    """The chain of parents ending at the last message, when messages carry parent links."""
    by_id = {m["uuid"]: m for m in items if isinstance(m, dict) and isinstance(m.get("uuid"), str)}
    linked = [m for m in by_id.values() if "parent_message_uuid" in m]
    if not linked or not isinstance(items[-1], dict):
        return items
    chain: list[Any] = []
    seen: set[Any] = set()
    node: Any = items[-1]
    while isinstance(node, dict) and id(node) not in seen:
        seen.add(id(node))
        chain.append(node)
        parent = node.get("parent_message_uuid")
        node = by_id.get(parent) if isinstance(parent, str) else None
    chain.reverse()
    return chain


def read(obj: Any, position: int) -> tuple[Conversation, list[Message], list[Problem]] | Problem:
    """One conversation object of the export: its identity, messages and problems."""
    if not isinstance(obj, dict):
        return Problem(f"conversation #{position + 1} is not an object")
    raw_id = obj.get("uuid")
    conversation_id = id_or_position(raw_id, position)
    items = obj.get("chat_messages")
    if not isinstance(items, list):
        return Problem("no chat_messages (not a Claude conversation)", conversation_id)
    name = obj.get("name")
    conversation = Conversation(
        source=SOURCE,
        id=conversation_id,
        title=name if isinstance(name, str) else "",
        at=from_iso(obj.get("created_at")),
    )
    messages: list[Message] = []
    problems: list[Problem] = []
    for index, item in enumerate(_current_branch(items) if items else []):
        if not isinstance(item, dict):
            problems.append(Problem("message is not an object", conversation_id, f"#{index + 1}"))
            continue
        raw_message_id = item.get("uuid")
        message_id = raw_message_id if isinstance(raw_message_id, str) else f"#{index + 1}"
        sender = item.get("sender")
        role = _ROLES.get(sender) if isinstance(sender, str) else None
        if role is None:
            problems.append(Problem(f"unknown sender {shown(sender)}", conversation_id, message_id))
            continue
        meta: dict[str, str] = {}
        text = _text(item, meta)
        attached = _attachments(item)
        if attached:
            meta["attachments"] = attached
        if not text and not meta:
            continue
        messages.append(
            Message(
                role=role, text=text, id=message_id, at=from_iso(item.get("created_at")), meta=meta
            )
        )
    return conversation, messages, problems
