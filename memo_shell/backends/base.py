"""The one protocol every model backend speaks, and the small value types around it.

The shell, the CLI and the TUI only ever see these names, so a new backend is one module that
implements ``Backend``; nothing above it changes. Every failure a user can meet leaves a backend
as :class:`~memo_shell.errors.BackendError` with one sentence that says what to do.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from memo_shell.errors import BackendError

# The chat types live below, in memo_shell.prompt; re-exported for the backends' callers.
from memo_shell.prompt import Chat as Chat
from memo_shell.prompt import Message as Message
from memo_shell.prompt import Role as Role

if TYPE_CHECKING:
    from memo_shell.config import Settings


@dataclass(frozen=True, slots=True)
class GenerationOptions:
    """Sampling settings for one reply.

    ``context_size`` is the window the prompt budget was computed for: Ollama receives it as
    ``num_ctx`` (so the server never silently truncates a prompt we believed fitted), llama.cpp
    loads the model with it, and OpenAI-compatible servers fix it server-side (we only budget).
    ``temperature``/``top_p`` None mean "the model's own defaults" (an Ollama Modelfile's, the
    server's, or the values the embedded base model was tuned with); ``seed`` None means
    non-reproducible sampling.
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 512
    seed: int | None = None
    context_size: int = 4096

    @classmethod
    def from_settings(cls, settings: Settings) -> GenerationOptions:
        return cls(
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            seed=settings.seed,
            context_size=settings.context_size,
        )


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model a backend can serve; ``size_bytes`` is None when the server does not say."""

    name: str
    size_bytes: int | None = None
    details: str = ""


@dataclass(frozen=True, slots=True)
class Health:
    """Whether a backend can answer right now, and a sentence saying why (not)."""

    ok: bool
    detail: str


@runtime_checkable
class Backend(Protocol):
    """A source of model replies.

    Attributes:
        name: "ollama", "llama-cpp" or "openai" (what gets stored in each memory's ``backend``).
        model: the model replies come from (stored in each memory's ``model``).
        context_size: tokens of context the prompt must fit into, answer included.

    ``stream`` yields text pieces as they arrive, for a prompt plan (whose parts the backend
    places: the memory block where its format keeps it) or plain chat messages. Cancelling
    the consuming task, or calling ``aclose()`` on the iterator, stops generation promptly:
    servers see the connection close and the in-process model stops at the next token.
    ``embed`` raises BackendError where the backend cannot embed. ``count_tokens`` is exact
    for llama.cpp once loaded and an estimate (:func:`estimate_tokens`) for servers, which do
    not expose their tokenizer.
    """

    name: str
    model: str
    context_size: int

    def stream(self, chat: Chat, options: GenerationOptions) -> AsyncGenerator[str, None]: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def models(self) -> list[ModelInfo]: ...

    async def health(self) -> Health: ...

    def count_tokens(self, text: str) -> int: ...

    async def aclose(self) -> None: ...


# Words of plain ASCII are about 1 token per 4-6 characters in every common tokenizer; anything
# else (CJK, emoji, accented text) is closer to one token per character. Punctuation is a token.
_TOKENISH = re.compile(r"[A-Za-z]+|[0-9]+|\s+|[^\sA-Za-z0-9]")


def estimate_tokens(text: str) -> int:
    """A fast, slightly pessimistic token count for servers whose tokenizer we cannot call.

    Pessimistic on purpose: overestimating only leaves some context unused, while
    underestimating makes a server truncate the prompt (Ollama does so silently).
    """
    count = 0.0
    for match in _TOKENISH.finditer(text):
        piece = match.group()
        first = piece[0]
        if first.isspace():
            count += 0.0 if len(piece) == 1 else len(piece) / 8
        elif first.isascii() and first.isalpha():
            count += 1 + (len(piece) - 1) // 6
        elif first.isascii() and first.isdigit():
            count += math.ceil(len(piece) / 3)
        else:
            count += 1
    return math.ceil(count * 1.1)


def unsupported_embedding(backend: str, model: str) -> BackendError:
    """The error for a backend/model that cannot embed (so callers degrade to lexical recall)."""
    return BackendError(f"{backend} model {model!r} cannot compute embeddings")
