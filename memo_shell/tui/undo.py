"""Forgetting with undo, wherever the forget happens (chat, details, browser, graph).

The forgotten records are kept in memory as they were, so ``u`` in the browser or the graph can
write them back exactly, same ids and content. There is one stack for the whole app (on the
``Runtime``), so a memory forgotten from the chat's panel can be undone in F3, as the chat's
dialog says; the newest ``UNDO_DEPTH`` batches are kept until the app quits. This module owns
the part that must behave the same everywhere: a batch is on the stack only once its files are
gone, and a restore that fails leaves it there to try again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memo_shell.records import Memory
    from memo_shell.tui.runtime import Runtime


@dataclass
class Forgotten:
    """One forget action: what the user chose (e.g. an entity's name) and the records removed."""

    label: str
    memories: list[Memory] = field(default_factory=list)


async def forget_keeping(
    runtime: Runtime, stack: list[Forgotten], ids: Iterable[str], label: str = ""
) -> Forgotten:
    """Forget ``ids`` off the event loop and push the records onto ``stack`` for undo.

    Raises MemoShellError (nothing is pushed) when the store refuses.
    """
    from memo_shell.tui.runtime import UNDO_DEPTH

    batch = Forgotten(label, await runtime.io(runtime.forget_for_undo, list(ids)))
    stack.append(batch)
    del stack[:-UNDO_DEPTH]  # in place: the stack is shared
    return batch


async def undo_last(runtime: Runtime, stack: list[Forgotten]) -> Forgotten | None:
    """Restore the newest batch; None when there is nothing to undo.

    On MemoShellError the batch goes back on the stack before the error propagates.
    """
    if not stack:
        return None
    batch = stack.pop()
    try:
        await runtime.io(runtime.restore, batch.memories)
    except BaseException:
        stack.append(batch)
        raise
    return batch
