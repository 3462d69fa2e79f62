"""The conversation: one ``TurnView`` per exchange, the reply streamed as Markdown.

Replies stream through ``Markdown.get_stream`` (which batches fragments when the model is faster
than rendering), so a fast model never makes the UI fall behind; fenced code is highlighted by
the Markdown widget itself.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

if TYPE_CHECKING:
    # Markdown pulls in markdown-it and Pygments: imported on first use, not before the first
    # paint (an empty chat has no Markdown to show).
    from textual.widgets import Markdown
    from textual.widgets.markdown import MarkdownStream

#: Longer user messages are shortened on screen (the full text is sent and stored).
SHOWN_CHARS = 4_000


#: A fenced code block: ``` or ~~~ (3 or more), an optional info string, the code, the same fence.
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n(.*?)^ {0,3}\1[`~]*[ \t]*$", re.M | re.S)


def code_blocks(markdown: str) -> list[str]:
    """The fenced code blocks of a reply, in order, without their fences."""
    return [m.group(2) for m in _FENCE.finditer(markdown)]


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """The text as shown: whole if short, else its start and a note of what was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n\n… ({len(text) - limit:,} more characters not shown)"


class TurnView(Vertical):
    """One question and its reply; the reply area fills in as pieces arrive."""

    def __init__(
        self, question: str, answer: str = "", meta: str = "", memory_id: str | None = None
    ) -> None:
        super().__init__(classes="turn")
        self.question = question
        #: The stored record of this turn (None until stored, or when it was not kept).
        self.memory_id = memory_id
        self._answer = answer
        self._meta = meta
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        from textual.widgets import Markdown

        yield Static(shorten(self.question), classes="question", markup=False)
        yield Markdown(self._answer, classes="reply")
        yield Static(self._meta, classes="reply-meta", markup=False)

    @property
    def reply(self) -> Markdown:
        from textual.widgets import Markdown

        return self.query_one(".reply", Markdown)

    @property
    def answer(self) -> str:
        return self.reply.source

    def set_status(self, text: str) -> None:
        """A small dim line under the reply: model and timing, or what went wrong."""
        self.query_one(".reply-meta", Static).update(Content(text))  # may quote a server

    async def write(self, piece: str) -> None:
        if self._stream is None:
            self.remove_class("pending")
            self._stream = self.reply.get_stream(self.reply)
        await self._stream.write(piece)

    async def finish(self) -> None:
        """Flush the stream so ``answer`` holds every piece received."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None


class ChatLog(VerticalScroll):
    """Turns in order, kept scrolled to the newest unless the user scrolls up."""

    can_focus = True

    def on_mount(self) -> None:
        self.anchor()

    async def add_turn(self, question: str, answer: str = "", meta: str = "") -> TurnView:
        turn = TurnView(question, answer, meta)
        if not answer:
            turn.add_class("pending")
        await self.mount(turn)
        self.anchor()
        return turn

    async def show_welcome(self, text: str) -> None:
        from textual.widgets import Markdown

        await self.remove_children()
        await self.mount(Markdown(text, id="welcome"))

    async def hide_welcome(self) -> None:
        for welcome in self.query("#welcome"):
            await welcome.remove()

    @property
    def turns(self) -> list[TurnView]:
        return list(self.query_children(TurnView))

    async def show_hint(self, text: str) -> None:
        """One dim line at the top (e.g. which session the turns below belong to)."""
        await self.remove_children("#log-hint")
        hint = Static(text, id="log-hint", markup=False)
        if self.children:
            await self.mount(hint, before=self.children[0])
        else:
            await self.mount(hint)

    async def clear(self) -> None:
        await self.remove_children()
