"""ChatGPT's data export: ``conversations.json`` (alone or inside the export's ``.zip``).

Each conversation is a tree: ``mapping`` holds nodes (``id``, ``message``, ``parent``,
``children``), and ``current_node`` is the leaf of the branch the user last saw. Editing a
question or regenerating an answer leaves the old branch in the tree; only the current branch is
what the user kept, so only it is imported, walked from ``current_node`` up through ``parent``.

On that branch: system messages and anything marked hidden (custom instructions, the model's
scaffolding) are skipped; tool messages and the assistant's calls to tools (``recipient`` other
than ``all``) are not part of the answer and are only counted in ``meta``; non-text parts such as
image pointers are noted in ``meta``; reasoning summaries ("thoughts") are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from memo_shell.importers.base import Conversation, Message, Problem, from_epoch, id_or_position

SOURCE = "chatgpt"
#: Content types whose text is part of what was said to the user.
_TEXT_TYPES = {"text", "multimodal_text", "code"}
#: Deeper than any real conversation; guards the parent walk against a hostile cycle or chain.
MAX_DEPTH = 100_000


def _branch(mapping: dict[str, Any], leaf: str) -> list[dict[str, Any]] | str:
    """The nodes from the root to ``leaf``, or why the branch cannot be walked."""
    path: list[dict[str, Any]] = []
    seen: set[str] = set()
    node_id: Any = leaf
    while node_id is not None:
        if not isinstance(node_id, str) or node_id in seen or len(path) > MAX_DEPTH:
            return "the message tree has a cycle or a bad parent link"
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            return f"node {node_id} is missing from the mapping"
        seen.add(node_id)
        path.append(node)
        node_id = node.get("parent")
    path.reverse()
    return path


def _fallback_leaf(mapping: dict[str, Any]) -> str | None:
    """Without ``current_node`` (old exports): follow the last child from the root down."""
    roots = [k for k, v in mapping.items() if isinstance(v, dict) and v.get("parent") is None]
    if len(roots) != 1:
        return None
    node_id, seen = roots[0], set()
    while node_id not in seen:
        seen.add(node_id)
        node = mapping.get(node_id)
        children = node.get("children") if isinstance(node, dict) else None
        last = children[-1] if isinstance(children, list) and children else None
        if not isinstance(last, str) or last not in mapping:
            return node_id
        node_id = last
    return None


def _text(content: dict[str, Any], meta: dict[str, str]) -> str:
    """The readable text of a message; non-text parts are counted in ``meta`` instead."""
    if content.get("content_type") == "code":
        text = content.get("text")
        return text if isinstance(text, str) else ""
    pieces: list[str] = []
    skipped: dict[str, int] = {}
    parts = content.get("parts")
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, str):
            if part:
                pieces.append(part)
        else:
            name = part.get("content_type") if isinstance(part, dict) else None
            name = name if isinstance(name, str) else type(part).__name__
            skipped[name] = skipped.get(name, 0) + 1
    if skipped:
        meta["non_text_parts"] = ", ".join(f"{k} x{v}" for k, v in sorted(skipped.items()))
    return "\n".join(pieces)


def _hidden(message: dict[str, Any]) -> bool:
    metadata = message.get("metadata")
    return isinstance(metadata, dict) and bool(metadata.get("is_visually_hidden_from_conversation"))


def _messages(
    conversation: Conversation, nodes: list[dict[str, Any]]
) -> Iterator[Message | Problem]:
    tools: list[str] = []
    for node in nodes:
        message = node.get("message")
        if message is None:
            continue  # the root node and other placeholders carry no message
        node_id = str(node.get("id", ""))
        if not isinstance(message, dict):
            yield Problem("message is not an object", conversation.id, node_id)
            continue
        raw_id = message.get("id")
        message_id = raw_id if isinstance(raw_id, str) else node_id
        author = message.get("author")
        role = author.get("role") if isinstance(author, dict) else None
        content = message.get("content")
        if not isinstance(role, str) or not isinstance(content, dict):
            yield Problem("message has no author role or content", conversation.id, message_id)
            continue
        if role == "tool":
            name = author.get("name") if isinstance(author, dict) else None
            tools.append(name if isinstance(name, str) and name else "tool")
            continue
        if role not in ("user", "assistant") or _hidden(message):
            continue  # system prompts, custom instructions, the model's own scaffolding
        if content.get("content_type") not in _TEXT_TYPES:
            continue  # reasoning ("thoughts"), browsing displays, user profile context…
        recipient = message.get("recipient", "all")
        if role == "assistant" and recipient not in ("all", None):
            tools.append(str(recipient))  # a call to a tool, not words for the user
            continue
        meta: dict[str, str] = {}
        text = _text(content, meta)
        if role == "user" and tools:
            tools.clear()
        if role == "assistant" and tools:
            meta["tools"] = ", ".join(dict.fromkeys(tools))
            tools.clear()
        metadata = message.get("metadata")
        model = metadata.get("model_slug") if isinstance(metadata, dict) else None
        if not text and not meta:
            continue  # an empty placeholder (a message the model never finished)
        yield Message(
            role=role,
            text=text,
            id=message_id,
            at=from_epoch(message.get("create_time")),
            model=model if isinstance(model, str) else "",
            meta=meta,
        )


def read(obj: Any, position: int) -> tuple[Conversation, list[Message], list[Problem]] | Problem:
    """One conversation object of the export: its identity, current branch and problems."""
    if not isinstance(obj, dict):
        return Problem(f"conversation #{position + 1} is not an object")
    raw_id = obj.get("conversation_id") or obj.get("id")
    conversation_id = id_or_position(raw_id, position)
    mapping = obj.get("mapping")
    if not isinstance(mapping, dict):
        return Problem("no message mapping (not a ChatGPT conversation)", conversation_id)
    title = obj.get("title")
    conversation = Conversation(
        source=SOURCE,
        id=conversation_id,
        title=title if isinstance(title, str) else "",
        at=from_epoch(obj.get("create_time")),
    )
    if not mapping:
        return conversation, [], []
    leaf = obj.get("current_node")
    if not isinstance(leaf, str) or leaf not in mapping:
        leaf = _fallback_leaf(mapping)
    if leaf is None:
        return Problem("no current_node and no single branch to follow", conversation_id)
    nodes = _branch(mapping, leaf)
    if isinstance(nodes, str):
        return Problem(nodes, conversation_id)
    messages: list[Message] = []
    problems: list[Problem] = []
    for item in _messages(conversation, nodes):
        (problems if isinstance(item, Problem) else messages).append(item)  # type: ignore[arg-type]
    return conversation, messages, problems
