"""Ollama, through the official ``ollama`` client (``AsyncClient``).

We send ``num_ctx`` with every request: Ollama otherwise uses its own default window and
silently drops the start of a prompt that does not fit, which would drop recalled memories
without anyone noticing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

import httpx
import ollama

from memo_shell.backends.base import (
    GenerationOptions,
    Health,
    ModelInfo,
    estimate_tokens,
)
from memo_shell.backends.http import (
    PROBE_TIMEOUT_S,
    TIMEOUT,
    error_text,
    ollama_base_url,
    transport_error,
)
from memo_shell.errors import BackendError
from memo_shell.prompt import Chat, as_messages

SERVICE = "Ollama"
#: Suggested when Ollama has no chat model at all.
SUGGESTED_MODEL = "llama3.2"
#: Families of embedding-only models: they cannot chat, so `auto` never picks them.
_EMBEDDING_FAMILIES = ("bert", "nomic-bert", "jina-bert", "xlm-roberta")


def is_chat_model(info: ModelInfo) -> bool:
    family = info.details.split(" ", 1)[0].lower()
    return family not in _EMBEDDING_FAMILIES and "embed" not in info.name.lower()


def same_model(listed: str, wanted: str) -> bool:
    """Ollama resolves "llama3.2" to "llama3.2:latest"; compare the way it does."""

    def full(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return full(listed) == full(wanted)


class OllamaBackend:
    """Chat and embeddings from an Ollama server: ``host``, else OLLAMA_HOST, else 127.0.0.1:11434.

    An empty ``model`` is resolved on first use to the newest chat model Ollama has.
    """

    name = "ollama"

    def __init__(
        self,
        host: str | None = None,
        model: str = "",
        *,
        context_size: int = 4096,
        embed_model: str | None = None,
    ) -> None:
        self.url = ollama_base_url(host or os.environ.get("OLLAMA_HOST"))
        self.model = model
        self.context_size = context_size
        self.embed_model = embed_model
        #: Why the latest reply ended: "stop", "length" (cut at max_tokens), ...
        self.last_finish: str | None = None
        self._client = ollama.AsyncClient(host=self.url, timeout=TIMEOUT)

    def __repr__(self) -> str:
        return f"OllamaBackend({self.url!r}, model={self.model!r})"

    # ------------------------------------------------------------------ errors

    def _error(self, exc: Exception, model: str, *, mid_reply: bool = False) -> BackendError:
        if isinstance(exc, ollama.ResponseError):
            detail = error_text(exc.error)
            lowered = detail.lower()
            named = model.split(":", 1)[0].lower() in lowered or "model" in lowered
            if exc.status_code == 404 and "not found" in lowered and named:
                return BackendError(
                    f"Ollama at {self.url} has no model {model!r}; run `ollama pull {model}`"
                )
            if exc.status_code == -1:  # an {"error": ...} line inside the stream
                return BackendError(f"Ollama failed in the middle of the reply: {detail}")
            if exc.status_code == 404:  # "404 page not found": another server on that port
                return BackendError(
                    f"the server at {self.url} does not speak the Ollama API ({detail})"
                )
            return BackendError(f"Ollama refused the request ({exc.status_code}): {detail}")
        if isinstance(exc, ConnectionError):  # the client's own wording for a refused connect
            return BackendError(f"{SERVICE} is not answering at {self.url}; is it running?")
        if isinstance(exc, httpx.TransportError):
            return transport_error(exc, SERVICE, self.url, mid_reply=mid_reply)
        # ValueError: a line that is not JSON, or JSON of the wrong shape
        return BackendError(f"the server at {self.url} does not speak the Ollama protocol")

    # ------------------------------------------------------------------ protocol

    def _options(self, options: GenerationOptions) -> dict[str, Any]:
        values: dict[str, Any] = {
            "temperature": options.temperature,
            "top_p": options.top_p,
            "num_predict": options.max_tokens,
            "num_ctx": options.context_size,
            "seed": options.seed,
        }
        return {key: value for key, value in values.items() if value is not None}

    async def stream(self, chat: Chat, options: GenerationOptions) -> AsyncGenerator[str, None]:
        """Yield reply pieces; a reply that ends without Ollama's final ``done`` is an error."""
        model = self.model or await self.default_model()
        self.last_finish = None
        started = False
        try:
            parts = await self._client.chat(
                model=model,
                messages=[dict(m) for m in as_messages(chat)],
                stream=True,
                options=self._options(options),
            )
            # an async generator at run time, typed by the client as a plain AsyncIterator
            async with aclosing(parts) as stream:  # type: ignore[type-var]
                async for part in stream:
                    started = True
                    text = part.message.content if part.message else None
                    if text:
                        yield text
                    if part.done:
                        self.last_finish = getattr(part, "done_reason", None) or "stop"
                        return
        except (ollama.ResponseError, ConnectionError, httpx.TransportError, ValueError) as exc:
            raise self._error(exc, model, mid_reply=started) from None
        raise BackendError(
            f"the connection to Ollama at {self.url} ended before the reply was complete"
        )

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        model = self.embed_model or self.model or await self.default_model()
        try:
            response = await self._client.embed(model=model, input=list(texts))
        except (ollama.ResponseError, ConnectionError, httpx.TransportError, ValueError) as exc:
            raise self._error(exc, model) from None
        return [list(vector) for vector in response.embeddings]

    async def models(self) -> list[ModelInfo]:
        try:
            listing = await self._client.list()
        except (ollama.ResponseError, ConnectionError, httpx.TransportError, ValueError) as exc:
            raise self._error(exc, self.model) from None
        found = []
        for entry in listing.models:
            details = entry.details
            words = [
                details.family if details else None,
                details.parameter_size if details else None,
                details.quantization_level if details else None,
            ]
            found.append(
                ModelInfo(
                    name=entry.model or "",
                    size_bytes=entry.size,
                    details=" ".join(w for w in words if w),
                )
            )
        return found

    async def default_model(self) -> str:
        """The newest chat model Ollama has (it lists newest first); sets ``self.model``."""
        chat = [m for m in await self.models() if is_chat_model(m)]
        if not chat:
            raise BackendError(
                f"Ollama at {self.url} has no chat model; run `ollama pull {SUGGESTED_MODEL}`"
            )
        self.model = chat[0].name
        return self.model

    async def version(self, timeout: float = PROBE_TIMEOUT_S) -> str | None:
        """Ollama's version if it answers within ``timeout`` seconds, else None (a cheap probe)."""
        try:
            async with httpx.AsyncClient(base_url=self.url, timeout=timeout) as client:
                response = await client.get("/api/version")
                response.raise_for_status()
                return str(response.json().get("version", "unknown"))
        except (httpx.HTTPError, ValueError, AttributeError):
            return None

    async def health(self) -> Health:
        version = await self.version(timeout=2.0)
        if version is None:
            return Health(False, f"Ollama is not answering at {self.url}")
        try:
            listed = await self.models()
        except BackendError as exc:
            return Health(False, str(exc))
        where = f"Ollama {version} at {self.url}, {len(listed)} model(s)"
        if not self.model:
            if listed:
                return Health(True, where)
            return Health(False, f"{where}; run `ollama pull {SUGGESTED_MODEL}`")
        if any(same_model(m.name, self.model) for m in listed):
            return Health(True, f"{where}; {self.model} is available")
        return Health(False, f"{where}, but not {self.model}; run `ollama pull {self.model}`")

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        await self._client.close()
