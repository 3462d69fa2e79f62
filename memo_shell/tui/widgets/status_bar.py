"""One line under the chat: backend, model, session, memory count, index state, memory on/off.

It is a plain view of reactive values the chat screen sets; it never calls the library itself.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static

from memo_shell.tui import fmt

_MODE_STYLE = {
    "on": ("on", "$success"),
    "off": ("off (ctrl+t)", "bold $warning"),
    "private": ("private: not kept", "bold $error"),
}
_INDEX_STYLE = {"ready": "$success", "loading": "$warning", "rebuilding": "$warning"}


class StatusBar(Static):
    """``● ollama · llama3.2 │ session default │ 1,204 memories │ index loading │ memory on``
    (the index part only while it is not ready)."""

    backend: reactive[str] = reactive("…")
    model: reactive[str] = reactive("")
    backend_ok: reactive[bool | None] = reactive(None)
    session: reactive[str] = reactive("default")
    memories: reactive[int | None] = reactive(None)
    index_state: reactive[str] = reactive("loading")
    memory_mode: reactive[str] = reactive("on")

    def render(self) -> Content:
        dot_style = {None: "$warning", True: "$success", False: "$error"}[self.backend_ok]
        parts: list[tuple[str, str] | str] = [("● ", dot_style), (self.backend, "bold")]
        if self.model:
            parts += [" · ", (self.model, "$text-secondary")]
        sep = ("  │  ", "$text-muted")
        parts += [sep, ("session ", "$text-muted"), (self.session, "bold")]
        parts += [sep, fmt.count(self.memories, "memory", "memories")]
        if self.index_state != "ready":  # said only while it matters (room at 80 columns)
            parts += [
                sep,
                ("index ", "$text-muted"),
                (self.index_state, _INDEX_STYLE.get(self.index_state, "$error")),
            ]
        parts += [
            sep,
            ("memory ", "$text-muted"),
            _MODE_STYLE.get(self.memory_mode, (self.memory_mode, "bold $warning")),
        ]
        return Content.assemble(*parts)
