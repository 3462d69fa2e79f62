"""OpenAI-compatible local servers (LM Studio, llama.cpp's llama-server, vLLM, LocalAI) via httpx.

Replies use the three endpoints every one of them implements: ``/chat/completions`` with
server-sent events, ``/models`` and ``/embeddings``. Their error bodies differ (OpenAI's
``{"error": {"message"}}``, vLLM's ``{"message"}``, FastAPI's ``{"detail"}``, plain strings);
:func:`error_text` reads all.

The context window is learned where a server tells it (llama-server's ``/props``, vLLM's
``max_model_len``, LM Studio's ``/api/v0/models``) and from a context-overflow error otherwise
(llama_cpp.server), and prompts are planned for the smaller of it and ``context_size``. The
memory block travels in the user's turn (:mod:`memo_shell.backends.placement`), since some
chat templates drop the system message.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncGenerator, Sequence
from pathlib import PurePath
from typing import Any

import httpx

from memo_shell.backends.base import (
    GenerationOptions,
    Health,
    ModelInfo,
    estimate_tokens,
)
from memo_shell.backends.http import (
    TIMEOUT,
    error_text,
    openai_base_url,
    transport_error,
)
from memo_shell.backends.placement import memories_in_user_turn, render_messages
from memo_shell.errors import BackendError
from memo_shell.prompt import Chat

SERVICE = "the OpenAI-compatible server"
_CONTEXT_WORDS = ("context", "too long", "maximum length", "max_model_len")
#: "maximum context length is 2048 tokens" (OpenAI, llama_cpp.server), "context window of
#: 2048", "n_ctx: 2048" / "n_ctx = 2048" (llama-server), "max_model_len=2048" (vLLM).
_WINDOW = re.compile(
    r"(?:context length is|context window of|n_ctx\W{0,3}|max_model_len\W{0,3})\s*(\d+)", re.I
)
#: Seconds each context-window probe may take (start-up must not wait on it).
LEARN_TIMEOUT_S = 1.0


def short_model_name(model_id: str) -> str:
    """The name to show and store for a server's model id: a GGUF path becomes its file name.

    llama_cpp.server and llama-server name a model by the path they loaded; Hugging Face ids
    ("Qwen/Qwen2.5-7B-Instruct") are kept whole.
    """
    if model_id.lower().endswith(".gguf") or model_id.startswith(("/", "~", "./")):
        name = PurePath(model_id.replace("\\", "/")).name
        return name[: -len(".gguf")] if name.lower().endswith(".gguf") else name or model_id
    return model_id


class OpenAIBackend:
    """Chat and embeddings from a server exposing the OpenAI HTTP API on this machine."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str = "",
        *,
        api_key: str | None = None,
        context_size: int = 4096,
    ) -> None:
        self.url = openai_base_url(base_url)
        self.model_id = model
        self.context_size = context_size
        #: The server's own window, once learned (None: it has not said).
        self.server_context: int | None = None
        #: Why the latest reply ended: "stop", "length" (cut at max_tokens), ...
        self.last_finish: str | None = None
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.url, timeout=TIMEOUT, headers=headers)

    @property
    def model(self) -> str:
        """The model's short name (shown, stored); requests use ``model_id``."""
        return short_model_name(self.model_id)

    @model.setter
    def model(self, model_id: str) -> None:
        self.model_id = model_id

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.url!r}, model={self.model_id!r})"

    # ------------------------------------------------------------------ errors

    def _status_error(self, status: int, body: bytes, model: str) -> BackendError:
        detail = error_text(body)
        lowered = detail.lower()
        missing = "not found" in lowered or "does not exist" in lowered
        if missing and (model.lower() in lowered if model else "model" in lowered):
            return BackendError(
                f"{SERVICE} at {self.url} has no model {model!r}; load it in the server"
                " or pick one listed by `memo-shell doctor`"
            )
        if status in (400, 413) and any(word in lowered for word in _CONTEXT_WORDS):
            window = self._learn_from(detail)
            if window is not None:
                return BackendError(
                    f"the prompt does not fit the model's context of {window} tokens on"
                    f" {SERVICE} ({detail}); memo-shell now plans prompts for {window} tokens,"
                    f" so ask again (set context_size = {window} in the config to keep it)"
                )
            return BackendError(
                f"the prompt does not fit the model's context on {SERVICE} ({detail});"
                " shorten the question or lower context_size to match the server"
            )
        if status in (401, 403):
            return BackendError(
                f"{SERVICE} at {self.url} refused the API key ({detail}); set openai_api_key"
            )
        if status == 404:
            return BackendError(
                f"{self.url} has no OpenAI-compatible API here ({detail}); check openai_base_url"
            )
        return BackendError(f"{SERVICE} at {self.url} answered {status}: {detail}")

    async def _request(self, method: str, path: str, model: str, **kwargs: Any) -> Any:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, SERVICE, self.url, mid_reply=False) from None
        if response.status_code >= 400:
            raise self._status_error(response.status_code, response.content, model)
        try:
            return response.json()
        except ValueError:
            raise BackendError(
                f"the server at {self.url} does not speak the OpenAI API (its reply is not JSON)"
            ) from None

    # ------------------------------------------------------------------ protocol

    def _learn_from(self, detail: str) -> int | None:
        """The window an overflow error names, now used for planning (None if it names none)."""
        match = _WINDOW.search(detail)
        if match is None:
            return None
        self._use_window(int(match.group(1)))
        return int(match.group(1))

    def _use_window(self, window: int) -> None:
        if window > 0:
            self.server_context = window
            self.context_size = min(self.context_size, window)

    def render_prompt(self, chat: Chat) -> str:
        """The messages exactly as the server receives them (memories in the user's turn)."""
        return render_messages(memories_in_user_turn(chat))

    def _body(self, model: str, chat: Chat, options: GenerationOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [dict(m) for m in memories_in_user_turn(chat)],
            "stream": True,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "max_tokens": options.max_tokens,
            "seed": options.seed,
        }
        return {key: value for key, value in body.items() if value is not None}

    async def stream(self, chat: Chat, options: GenerationOptions) -> AsyncGenerator[str, None]:
        """Yield reply pieces from the SSE stream; a stream that stops before ``[DONE]`` (or a
        ``finish_reason``) means the server died mid-reply and is reported as such, and one that
        ends before any event most likely overflowed the server's context (see
        :meth:`_empty_reply`)."""
        model = self.model_id or await self.default_model()
        self.last_finish = None
        events = 0
        replied = False  # any text yet (a first event may carry only the role)
        finished = False
        try:
            async with self._client.stream(
                "POST", "/chat/completions", json=self._body(model, chat, options)
            ) as response:
                if response.status_code >= 400:
                    raise self._status_error(response.status_code, await response.aread(), model)
                async for line in response.aiter_lines():
                    data = _sse_data(line)
                    if data is None:
                        continue
                    if data == "[DONE]":
                        finished = True
                        break
                    events += 1
                    text, done = self._chunk(data)
                    finished = finished or done
                    if text:
                        replied = True
                        yield text
        except httpx.TransportError as exc:
            raise transport_error(exc, SERVICE, self.url, mid_reply=replied) from None
        if not finished and not events:
            raise await self._empty_reply(model, chat, options)
        if not finished:
            raise BackendError(
                f"the connection to {SERVICE} at {self.url} ended before the reply was complete"
            )

    async def _empty_reply(
        self, model: str, chat: Chat, options: GenerationOptions
    ) -> BackendError:
        """Why a stream answered 200 and then nothing. llama_cpp.server does this when the
        prompt overflows its context (the error happens after the headers went out); asked the
        same without streaming, it says so with its window, which is then learned."""
        body = self._body(model, chat, options) | {"stream": False, "max_tokens": 1}
        response = None
        for _attempt in range(2):  # the pooled connection may be the broken stream's: retry
            try:
                response = await self._client.post("/chat/completions", json=body)
                break
            except httpx.TransportError:
                continue
        if response is not None and response.status_code >= 400:
            return self._status_error(response.status_code, response.content, model)
        return BackendError(
            f"{SERVICE} at {self.url} ended the reply without sending anything; the model's"
            " context may be too small for this prompt: set context_size in the config to the"
            " server's context (e.g. llama.cpp's --n_ctx) or shorten the question"
        )

    def _chunk(self, data: str) -> tuple[str, bool]:
        """The text in one SSE chunk and whether it carried a finish_reason."""
        try:
            chunk = json.loads(data)
        except ValueError:
            raise BackendError(
                f"the server at {self.url} sent a malformed event in its reply stream"
            ) from None
        if not isinstance(chunk, dict):
            return "", False
        if "error" in chunk:
            raise BackendError(
                f"{SERVICE} failed in the middle of the reply: {error_text(json.dumps(chunk))}"
            )
        choices = chunk.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        delta = choice.get("delta") or {}
        text = delta.get("content") if isinstance(delta, dict) else None
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.last_finish = reason
        return (text if isinstance(text, str) else ""), bool(reason)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text. Servers that return one vector per token (llama_cpp.server
        with a model whose pooling is "none") are mean-pooled and normalised, as the
        in-process embedder does."""
        data = await self._request(
            "POST",
            "/embeddings",
            self.model_id,
            json={"model": self.model_id, "input": list(texts)},
        )
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            vectors = [_one_vector(row["embedding"]) for row in rows]
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            vectors = []
        if len(vectors) != len(texts):
            raise BackendError(f"{SERVICE} at {self.url} sent embeddings in an unexpected shape")
        return vectors

    async def models(self) -> list[ModelInfo]:
        data = await self._request("GET", "/models", self.model_id)
        found = []
        for row in data.get("data", []) if isinstance(data, dict) else []:
            if not isinstance(row, dict) or not row.get("id"):
                continue
            details = [str(row["owned_by"])] if row.get("owned_by") else []
            if row.get("max_model_len"):  # vLLM tells the real window
                details.append(f"context {row['max_model_len']}")
            found.append(ModelInfo(name=str(row["id"]), details=" ".join(details)))
        return found

    async def learn_context(self) -> int | None:
        """Ask the server for its context window (the first of its ways that answers) and plan
        prompts for it when it is smaller than ``context_size``. Never raises."""
        root = self.url.removesuffix("/v1")
        for probe in (self._window_from_props, self._window_from_models, self._window_lm_studio):
            try:
                window = await asyncio.wait_for(probe(root), LEARN_TIMEOUT_S)
            except (httpx.HTTPError, TimeoutError, ValueError, TypeError, KeyError):
                continue
            if window:
                self._use_window(window)
                return window
        return None

    async def _window_from_props(self, root: str) -> int | None:
        """llama-server: ``GET /props`` has ``default_generation_settings.n_ctx``."""
        data = (await self._client.get(f"{root}/props")).raise_for_status().json()
        settings = data.get("default_generation_settings") or {}
        return int(settings.get("n_ctx") or data.get("n_ctx") or 0) or None

    async def _window_from_models(self, root: str) -> int | None:
        """vLLM: ``max_model_len`` beside each model in ``/v1/models``."""
        data = (await self._client.get("/models")).raise_for_status().json()
        for row in data.get("data", []):
            if row.get("id") == self.model_id or not self.model_id:
                return int(row.get("max_model_len") or 0) or None
        return None

    async def _window_lm_studio(self, root: str) -> int | None:
        """LM Studio: ``/api/v0/models`` has ``loaded_context_length`` per model."""
        data = (await self._client.get(f"{root}/api/v0/models")).raise_for_status().json()
        for row in data.get("data", []):
            if row.get("id") == self.model_id or not self.model_id:
                return int(row.get("loaded_context_length") or 0) or None
        return None

    async def default_model(self) -> str:
        """The server's first listed model; servers that host one model list just that one."""
        listed = await self.models()
        if not listed:
            raise BackendError(f"{SERVICE} at {self.url} lists no models; load one in the server")
        self.model_id = listed[0].name
        return self.model_id

    async def health(self) -> Health:
        try:
            listed = await self.models()
        except BackendError as exc:
            return Health(False, str(exc))
        where = f"OpenAI-compatible server at {self.url}, {len(listed)} model(s)"
        if not listed:
            return Health(False, f"{where}; load a model in the server")
        if self.model_id and all(m.name != self.model_id for m in listed):
            return Health(False, f"{where}, but not {self.model}")
        return Health(True, where + (f"; {self.model} is available" if self.model_id else ""))

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        await self._client.aclose()


def _sse_data(line: str) -> str | None:
    """The payload of an SSE ``data:`` line; comments, ids and blank separators give None."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()


def _one_vector(embedding: Any) -> list[float]:
    """A text's vector: as sent, or the normalised mean of per-token vectors."""
    if embedding and isinstance(embedding[0], list):
        width = len(embedding[0])
        mean = [sum(float(token[i]) for token in embedding) / len(embedding) for i in range(width)]
        norm = math.sqrt(sum(x * x for x in mean))
        return [x / norm for x in mean]
    return [float(x) for x in embedding]
