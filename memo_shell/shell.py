"""One conversation turn, end to end, with no UI: recall, build the prompt, stream, store.

The TUI and ``memo-shell ask`` both drive :meth:`Shell.turn`, an async generator of events:

    async for event in shell.turn("What is my dog called?"):
        match event:
            case Recalled(hits, plan): ...   # once, before the model is asked
            case Piece(text): ...            # many times, as the reply streams
            case Done(memory_id, answer, ...): ...  # once, after the turn is stored

What happens to the question when a turn does not complete (the "never lost" rule):

* **Cancelled** (Esc: the consuming task is cancelled, or the generator is closed): generation
  stops at once and *nothing is stored*; the caller still holds the question and puts it back
  for the user (the TUI returns it to the input box). Once the reply is complete, storing it is
  not interrupted: a cancellation that lands during the final write may leave it stored.
* **Backend failure** (server down, model missing, died mid-reply, context overflow): the
  pieces that arrived have been yielded; :class:`TurnFailed` (a BackendError) is raised with
  the ``question`` and the ``partial`` reply, and *nothing is stored*: a half answer would
  pollute every later recall. The caller shows the question back for retry.
* **Store failure**: ``StoreError`` from the store, likewise with nothing acknowledged.
* **Refused up front** (before anything is yielded, nothing sent or stored):
  :class:`QuestionRejected` for an empty or over-large question, and
  :class:`~memo_shell.prompt.PromptTooLong` (a BackendError) when the question alone does not
  fit the model's context.

The Memories API is synchronous file I/O, so every call to it runs in a worker thread: the
event loop (the UI) never blocks on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING

from memo_shell.backends.base import Backend, GenerationOptions
from memo_shell.errors import BackendError, MemoShellError
from memo_shell.prompt import PromptPlan, build_prompt
from memo_shell.records import InvalidRecord, Provenance

if TYPE_CHECKING:
    from memo_shell.api import Hit, Memories
    from memo_shell.config import Settings
    from memo_shell.records import Memory

DEFAULT_SYSTEM = (
    "You are a helpful assistant running privately on the user's own computer."
    " Answer clearly and concisely."
)
#: Earlier turns of the session considered for the prompt (the budget may admit fewer).
RECENT_TURNS = 6
#: Longest question accepted, in UTF-8 bytes: beyond any local model's context already, and
#: well inside a record's size limit, so an accepted question can always be stored.
MAX_QUESTION_BYTES = 1024 * 1024


class QuestionRejected(MemoShellError):
    """The question cannot be sent at all (empty, or larger than MAX_QUESTION_BYTES)."""


class TurnFailed(BackendError):
    """The backend failed during a turn; nothing was stored. Carries what to show back."""

    def __init__(self, message: str, *, question: str, partial: str = "") -> None:
        super().__init__(message)
        self.question = question
        self.partial = partial


@dataclass(frozen=True, slots=True)
class Recalled:
    """What recall found and the prompt built from it (``plan.included`` went to the model)."""

    hits: list[Hit]
    plan: PromptPlan


@dataclass(frozen=True, slots=True)
class Piece:
    """A piece of the reply, as the backend streamed it."""

    text: str


@dataclass(frozen=True, slots=True)
class Done:
    """The turn is stored. Times are seconds from the start of the turn (recall included)."""

    memory_id: str
    answer: str
    model: str
    backend: str
    first_piece_s: float
    total_s: float
    #: The reply stopped at ``max_tokens`` (the stored memory's meta says so too).
    cut_off: bool = False


#: The meta key that marks a memory whose reply was cut off at max_tokens.
CUT_OFF_META = "cut_off"

TurnEvent = Recalled | Piece | Done


def check_question(question: str) -> str:
    """The question as it will be sent, or QuestionRejected with the reason."""
    if not question.strip():
        raise QuestionRejected("the question is empty")
    size = len(question.encode("utf-8", "surrogatepass"))
    if size > MAX_QUESTION_BYTES:
        raise QuestionRejected(
            f"the question is {size / 1e6:.1f} MB; memo-shell takes questions up to"
            f" {MAX_QUESTION_BYTES // 2**20} MiB, more than any local model's context"
        )
    return question


def session_name(now: datetime | None = None) -> str:
    """A new session's name: its start time, so sessions sort and read naturally."""
    return (now or datetime.now()).strftime("%Y-%m-%d-%H%M%S")


class Shell:
    """A conversation over one memory store and one backend (switchable at run time).

    Attributes: ``session`` (the name new turns are stored under; setting it switches the
    conversation), ``use_memory`` (recall on/off for the next turns), ``backend``, ``system``
    (the system prompt), ``last_plan`` (the prompt of the latest turn, for "show prompt") and
    ``meta`` (extra metadata stored with every turn, e.g. which client a proxied turn came from).
    """

    def __init__(
        self,
        memories: Memories,
        backend: Backend,
        settings: Settings,
        *,
        session: str = "default",
        system: str = DEFAULT_SYSTEM,
    ) -> None:
        self.memories = memories
        self.backend = backend
        self.settings = settings
        self.use_memory = settings.use_memory
        self.system = system
        self.last_plan: PromptPlan | None = None
        self.meta: dict[str, str] = {}
        self._session = session
        self._recent: list[Memory] | None = None  # this session's newest turns, oldest first

    # ------------------------------------------------------------------ state

    @property
    def session(self) -> str:
        return self._session

    @session.setter
    def session(self, name: str) -> None:
        if name != self._session:
            self._session = name
            self._recent = None  # read again from the store on the next turn

    def new_session(self) -> str:
        """Start a fresh conversation (named after the current time) and return its name."""
        self._session = session_name()
        self._recent = []
        return self._session

    def set_backend(self, backend: Backend) -> None:
        """Switch model or server; the next turn uses it (the conversation carries over)."""
        self.backend = backend

    def options(self) -> GenerationOptions:
        return GenerationOptions.from_settings(self.settings)

    # ------------------------------------------------------------------ the turn

    def _load_recent(self, session: str) -> list[Memory]:
        # Only what was typed in this chat becomes a real chat message; an imported or tool
        # memory filed under the session comes back through recall, quoted as data.
        recent = self.memories.recent(RECENT_TURNS, session=session)
        return [m for m in reversed(recent) if m.provenance is Provenance.TYPED]

    def reload_recent(self) -> None:
        """Read the session's recent turns from the store again on the next turn (after one of
        them was forgotten or replaced: the model must not be sent it any more)."""
        self._recent = None

    async def recent_turns(self) -> list[Memory]:
        """This session's newest turns, oldest first (read once per session, then kept)."""
        if self._recent is None:
            session = self._session
            recent = await asyncio.to_thread(self._load_recent, session)
            if session == self._session:
                self._recent = recent
            return recent
        return list(self._recent)

    async def recall(self, question: str, exclude: set[str]) -> list[Hit]:
        k = self.settings.recall_k
        if not self.use_memory or k <= 0:
            return []
        return await asyncio.to_thread(
            self.memories.recall, question, k, session=self._session, exclude=exclude
        )

    def system_prompt(self) -> str:
        today = datetime.now().strftime("%A %d %B %Y")
        return f"{self.system} Today is {today}."

    async def plan(self, question: str) -> tuple[list[Hit], PromptPlan]:
        """Recall and build the prompt for ``question`` without asking the model."""
        check_question(question)
        recent = await self.recent_turns()
        hits = await self.recall(question, {m.id for m in recent})
        backend = self.backend
        reserve = min(self.settings.max_tokens, backend.context_size // 2)
        plan = build_prompt(
            question,
            hits,
            recent,
            system=self.system_prompt(),
            budget_tokens=backend.context_size - reserve,
            count_tokens=backend.count_tokens,
        )
        return hits, plan

    async def turn(
        self, question: str, *, remember: bool = True
    ) -> AsyncGenerator[TurnEvent, None]:
        """Run one turn; see the module docstring for cancellation and failure.

        ``remember=False`` ("don't remember this turn"): the turn is answered as usual but not
        stored anywhere (no file, no index entry); ``Done.memory_id`` is then empty.
        """
        started = perf_counter()
        session = self._session
        backend = self.backend
        hits, plan = await self.plan(question)
        self.last_plan = plan
        yield Recalled(hits, plan)

        pieces: list[str] = []
        first_piece_s = 0.0
        try:
            async with aclosing(backend.stream(plan, self.options())) as stream:
                async for text in stream:
                    if not pieces:
                        first_piece_s = perf_counter() - started
                    pieces.append(text)
                    yield Piece(text)
        except BackendError as exc:
            raise TurnFailed(str(exc), question=question, partial="".join(pieces)) from exc

        answer = "".join(pieces)
        # A reply that ran into max_tokens is incomplete: say so in the record, for good.
        cut_off = getattr(backend, "last_finish", None) == "length"
        if not remember:
            yield Done(
                memory_id="",
                answer=answer,
                model=backend.model,
                backend=backend.name,
                first_piece_s=first_piece_s or perf_counter() - started,
                total_s=perf_counter() - started,
                cut_off=cut_off,
            )
            return
        meta = dict(self.meta)
        if plan.included:
            meta["recalled"] = " ".join(plan.included)
        if cut_off:
            meta[CUT_OFF_META] = f"max_tokens={self.settings.max_tokens}"
        try:
            memory_id = await asyncio.to_thread(
                self.memories.add,
                question,
                answer,
                session=session,
                model=backend.model,
                backend=backend.name,
                meta=meta or None,
            )
        except InvalidRecord as exc:  # e.g. a reply beyond the record size limit
            raise QuestionRejected(f"the turn cannot be stored: {exc}") from exc
        if session == self._session and self._recent is not None:
            self._recent = [*self._recent, self.memories.get(memory_id)][-RECENT_TURNS:]
        if not pieces:
            first_piece_s = perf_counter() - started
        yield Done(
            memory_id=memory_id,
            answer=answer,
            model=backend.model,
            backend=backend.name,
            first_piece_s=first_piece_s,
            total_s=perf_counter() - started,
            cut_off=cut_off,
        )
