"""Where recalled memories travel in a chat request: in the user's turn, which every template keeps.

A prompt plan's usual layout puts the memory block in the system message. Several chat
templates drop the ``system`` role altogether (llama.cpp's ``gemma`` chat format, some model
templates): a real llama_cpp.server evaluated 20 prompt tokens where memo-shell sent about
2,350, and every recalled memory was lost without a word. Servers render templates we cannot
see, so the HTTP backends put the block at the front of the final user message; the plain
instruction stays in the system message, where losing it costs little.
"""

from __future__ import annotations

from collections.abc import Sequence

from memo_shell.prompt import Chat, Message, PromptPlan


def memories_in_user_turn(chat: Chat) -> list[Message]:
    """The messages of ``chat`` with a plan's memory block in the last user message.

    Plain messages (a client's, memory off) are returned as they are. Empty system messages
    are left out: some servers reject them.
    """
    if not isinstance(chat, PromptPlan):
        return [
            {"role": m["role"], "content": m["content"]}
            for m in chat
            if m["role"] != "system" or m["content"]
        ]
    messages: list[Message] = [{"role": "system", "content": chat.system}] if chat.system else []
    messages += [{"role": m["role"], "content": m["content"]} for m in chat.turns]
    question = f"{chat.memory_text}\n\n{chat.question}" if chat.memories else chat.question
    messages.append({"role": "user", "content": question})
    return messages


def render_messages(messages: Sequence[Message]) -> str:
    """Messages as labelled text, for ``--show-prompt``'s "what the model received"."""
    return "\n".join(f"── {m['role']} ──\n{m['content']}" for m in messages)
