"""Where recalled memories travel in a chat request: in the user's turn, which every template keeps.

A prompt plan carries the memory block in its system message. Several chat templates drop the
``system`` role altogether (llama.cpp's ``gemma`` chat format, some model templates): a real
llama_cpp.server evaluated 20 prompt tokens where memo-shell sent about 2,350, and every
recalled memory was lost without a word. Servers render templates we cannot see, so the
HTTP backends move the block to the front of the final user message; the plain instruction
stays in the system message, where losing it costs little.
"""

from __future__ import annotations

from collections.abc import Sequence

from memo_shell.backends.base import Message


def memory_marker() -> str:
    from memo_shell.prompt import MEMORY_PREAMBLE  # late: prompt imports this package

    return MEMORY_PREAMBLE


def memories_in_user_turn(messages: Sequence[Message]) -> list[Message]:
    """``messages`` with the system message's memory block moved into the last user message.

    Messages without a memory block, or without a user message, are returned unchanged.
    """
    out: list[Message] = [{"role": m["role"], "content": m["content"]} for m in messages]
    marker = memory_marker()
    last_user = max((i for i, m in enumerate(out) if m["role"] == "user"), default=None)
    if last_user is None:
        return out
    for message in out:
        if message["role"] != "system" or marker not in message["content"]:
            continue
        head, _, block = message["content"].partition(marker)
        message["content"] = head.rstrip()
        question = out[last_user]["content"]
        out[last_user]["content"] = f"{marker}{block.rstrip()}\n\n{question}"
        break
    return [m for m in out if m["role"] != "system" or m["content"]]


def render_messages(messages: Sequence[Message]) -> str:
    """Messages as labelled text, for ``--show-prompt``'s "what the model received"."""
    return "\n".join(f"── {m['role']} ──\n{m['content']}" for m in messages)
