"""One proxied chat request as a memory turn: the same recall, prompt and store as the app.

A client of the proxy sends the whole conversation with every request (both protocols are
stateless), so the conversation comes from the request, not from the store: the client's
earlier messages play the part the TUI's recent turns play, its system message (if any)
replaces memo-shell's, and its latest user message is the question. Everything else is
:meth:`Shell.turn` unchanged: recall for the question, memories quoted as data in the system
message within the model's budget, the reply streamed, the turn stored once complete.

:class:`Relay` pulls the turn as far as its first piece before the HTTP response starts, so a
failure up to that point (model missing, upstream down, prompt too long) is an HTTP error in
the protocol's shape; later failures can only be reported inside the stream.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from memo_shell import records
from memo_shell.backends.base import GenerationOptions, Message
from memo_shell.serve.errors import ProxyError, bad_request
from memo_shell.shell import MAX_QUESTION_BYTES, Done, Piece, Recalled, Shell

if TYPE_CHECKING:
    from memo_shell.api import Hit, Memories
    from memo_shell.backends.base import Backend
    from memo_shell.config import Settings
    from memo_shell.records import Memory


@dataclass(frozen=True, slots=True)
class Sampling:
    """What the client asked of the sampler; None leaves memo-shell's setting in force."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def apply(self, options: GenerationOptions) -> GenerationOptions:
        changes = {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}
        return replace(options, **changes)


@dataclass(frozen=True, slots=True)
class Chat:
    """A client's request reduced to what a turn needs (protocol details already parsed)."""

    model: str
    messages: list[Message]  # as the client sent them: what memory-off passes through
    system: str | None
    history: list[tuple[str, str]]  # earlier (user, assistant) exchanges, oldest first
    question: str
    sampling: Sampling = field(default_factory=Sampling)


def check_size(question: str) -> None:
    """Refuse an over-large question with 413 before any work (the shell's own limit)."""
    size = len(question.encode("utf-8", "surrogatepass"))
    if size > MAX_QUESTION_BYTES:
        raise ProxyError(
            413,
            f"the latest user message is {size / 1e6:.1f} MB; memo-shell takes messages up to"
            f" {MAX_QUESTION_BYTES // 2**20} MiB, more than any local model's context",
            "message_too_large",
            "messages",
        )


def conversation(model: str, messages: Sequence[Message], sampling: Sampling) -> Chat:
    """Split ``messages`` into system text, earlier exchanges and the question.

    System messages (anywhere) are joined; a user message followed by an assistant message is
    one exchange; a user message with no reply, or a reply with no question, is an exchange
    with one side empty. The last message must be the user's: that is what gets answered.
    """
    if not messages or messages[-1]["role"] != "user":
        raise bad_request("the last message must have the role 'user' (the question)", "messages")
    question = messages[-1]["content"]
    if not question.strip():
        raise bad_request("the last user message is empty", "messages")
    check_size(question)
    systems = [m["content"] for m in messages if m["role"] == "system"]
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for message in messages[:-1]:
        if message["role"] == "user":
            if pending is not None:
                history.append((pending, ""))
            pending = message["content"]
        elif message["role"] == "assistant":
            history.append((pending or "", message["content"]))
            pending = None
    if pending is not None:
        history.append((pending, ""))
    return Chat(
        model=model,
        messages=list(messages),
        system="\n\n".join(systems) if systems else None,
        history=[pair for pair in history if pair[0] or pair[1]],
        question=question,
        sampling=sampling,
    )


class ProxyShell(Shell):
    """A :class:`Shell` whose conversation is the client's, for one request.

    Only the inputs change (recent turns, system prompt, sampling); the turn itself is the
    shell's. The client's earlier exchanges are given to the prompt builder as transient
    records (never stored): they are budgeted and sanitised exactly like the app's recent
    turns. Memories that *are* those exchanges (stored by earlier requests of the same
    conversation) are left out of recall, so the model is not shown the same words twice.
    """

    def __init__(
        self,
        memories: Memories,
        backend: Backend,
        settings: Settings,
        chat: Chat,
        *,
        session: str,
        meta: dict[str, str],
    ) -> None:
        super().__init__(memories, backend, settings, session=session)
        self.meta = dict(meta)
        self._chat = chat
        self._history: list[Memory] = [
            records.make_memory(user=user, assistant=assistant, session=session)
            for user, assistant in chat.history
        ]
        self._seen = {(m.user, m.assistant) for m in self._history}

    async def recent_turns(self) -> list[Memory]:
        return list(self._history)

    def system_prompt(self) -> str:
        return self._chat.system if self._chat.system is not None else super().system_prompt()

    def options(self) -> GenerationOptions:
        return self._chat.sampling.apply(super().options())

    async def recall(self, question: str, exclude: set[str]) -> list[Hit]:
        hits = await super().recall(question, exclude)
        return [h for h in hits if (h.memory.user, h.memory.assistant) not in self._seen]


class Relay:
    """The reply to one request as pieces of text, started up to its first piece.

    ``await relay.start()`` raises (a ProxyError or the turn's own error) if the reply cannot
    begin; then ``relay.pieces()`` yields the reply (or ``await relay.text()`` returns it).
    ``memory_id`` is set once the turn is stored (None with memory off), ``recalled`` lists
    the memories put in the prompt.
    Closing the relay (``aclose``), or cancelling the task iterating it, stops the upstream
    at once and stores nothing: exactly what happens when a client disconnects mid-stream.
    """

    def __init__(
        self, backend: Backend, settings: Settings, chat: Chat, shell: ProxyShell | None
    ) -> None:
        self.backend = backend
        self.settings = settings
        self.chat = chat
        self.shell = shell
        self.recalled: list[str] = []
        self.prompt_tokens = 0
        self.memory_id: str | None = None
        self.answer = ""
        self._events = self._run()
        self._first: str | None = None

    async def _run(self) -> AsyncGenerator[str, None]:
        if self.shell is None:  # memory off: the client's messages, verbatim, nothing stored
            count = self.backend.count_tokens
            self.prompt_tokens = sum(count(m["content"]) for m in self.chat.messages)
            options = self.chat.sampling.apply(GenerationOptions.from_settings(self.settings))
            pieces: list[str] = []
            async with aclosing(self.backend.stream(self.chat.messages, options)) as stream:
                async for text in stream:
                    pieces.append(text)
                    yield text
            self.answer = "".join(pieces)
            return
        async with aclosing(self.shell.turn(self.chat.question)) as turn:
            async for event in turn:
                if isinstance(event, Recalled):
                    self.recalled = list(event.plan.included)
                    self.prompt_tokens = event.plan.tokens
                elif isinstance(event, Piece):
                    yield event.text
                elif isinstance(event, Done):
                    self.memory_id = event.memory_id
                    self.answer = event.answer

    async def start(self) -> None:
        """Run the turn up to its first piece (or to its end, for an empty reply)."""
        try:
            self._first = await anext(self._events)
        except StopAsyncIteration:
            self._first = None
        except BaseException:
            await self._events.aclose()
            raise

    async def pieces(self) -> AsyncGenerator[str, None]:
        """The reply's pieces, the first one included (use with ``aclosing``)."""
        async with aclosing(self._events) as events:
            if self._first is not None:
                yield self._first
                async for text in events:
                    yield text

    async def text(self) -> str:
        """The whole reply (for clients that did not ask for a stream)."""
        async with aclosing(self.pieces()) as pieces:
            return "".join([piece async for piece in pieces])

    async def aclose(self) -> None:
        await self._events.aclose()

    def completion_tokens(self) -> int:
        return self.backend.count_tokens(self.answer) if self.answer else 0


async def open_relay(
    memories: Memories,
    backend: Backend,
    settings: Settings,
    chat: Chat,
    *,
    use_memory: bool,
    session: str,
    meta: dict[str, str],
) -> Relay:
    """A started relay for ``chat``: recall + prompt + stream + store, or a plain pass-through."""
    shell = (
        ProxyShell(memories, backend, settings, chat, session=session, meta=meta)
        if use_memory
        else None
    )
    relay = Relay(backend, settings, chat, shell)
    await relay.start()
    return relay
