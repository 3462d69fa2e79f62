"""OpenAI-compatible local servers (LM Studio, llama.cpp's llama-server, vLLM, LocalAI) via httpx.

Only the three endpoints every one of them implements are used: ``/chat/completions`` with
server-sent events, ``/models`` and ``/embeddings``. Their error bodies differ (OpenAI's
``{"error": {"message"}}``, vLLM's ``{"message"}``, plain strings); :func:`error_text` reads all.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx

from memo_shell.backends.base import (
    GenerationOptions,
    Health,
    Message,
    ModelInfo,
    estimate_tokens,
)
from memo_shell.backends.http import (
    TIMEOUT,
    error_text,
    openai_base_url,
    transport_error,
)
from memo_shell.errors import BackendError

SERVICE = "the OpenAI-compatible server"
_CONTEXT_WORDS = ("context", "too long", "maximum length", "max_model_len")


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
        self.model = model
        self.context_size = context_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(base_url=self.url, timeout=TIMEOUT, headers=headers)

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.url!r}, model={self.model!r})"

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

    def _body(
        self, model: str, messages: Sequence[Message], options: GenerationOptions
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [dict(m) for m in messages],
            "stream": True,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "max_tokens": options.max_tokens,
            "seed": options.seed,
        }
        return {key: value for key, value in body.items() if value is not None}

    async def stream(
        self, messages: Sequence[Message], options: GenerationOptions
    ) -> AsyncIterator[str]:
        """Yield reply pieces from the SSE stream; a stream that stops before ``[DONE]`` (or a
        ``finish_reason``) means the server died mid-reply and is reported as such."""
        model = self.model or await self.default_model()
        started = False
        finished = False
        try:
            async with self._client.stream(
                "POST", "/chat/completions", json=self._body(model, messages, options)
            ) as response:
                if response.status_code >= 400:
                    raise self._status_error(response.status_code, await response.aread(), model)
                async for line in response.aiter_lines():
                    started = True
                    data = _sse_data(line)
                    if data is None:
                        continue
                    if data == "[DONE]":
                        finished = True
                        break
                    text, done = self._chunk(data)
                    finished = finished or done
                    if text:
                        yield text
        except httpx.TransportError as exc:
            raise transport_error(exc, SERVICE, self.url, mid_reply=started) from None
        if not finished:
            raise BackendError(
                f"the connection to {SERVICE} at {self.url} ended before the reply was complete"
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
        return (text if isinstance(text, str) else ""), bool(choice.get("finish_reason"))

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        data = await self._request(
            "POST", "/embeddings", self.model, json={"model": self.model, "input": list(texts)}
        )
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            return [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError):
            raise BackendError(
                f"{SERVICE} at {self.url} sent embeddings in an unexpected shape"
            ) from None

    async def models(self) -> list[ModelInfo]:
        data = await self._request("GET", "/models", self.model)
        found = []
        for row in data.get("data", []) if isinstance(data, dict) else []:
            if not isinstance(row, dict) or not row.get("id"):
                continue
            details = [str(row["owned_by"])] if row.get("owned_by") else []
            if row.get("max_model_len"):  # vLLM tells the real window
                details.append(f"context {row['max_model_len']}")
            found.append(ModelInfo(name=str(row["id"]), details=" ".join(details)))
        return found

    async def default_model(self) -> str:
        """The server's first listed model; servers that host one model list just that one."""
        listed = await self.models()
        if not listed:
            raise BackendError(f"{SERVICE} at {self.url} lists no models; load one in the server")
        self.model = listed[0].name
        return self.model

    async def health(self) -> Health:
        try:
            listed = await self.models()
        except BackendError as exc:
            return Health(False, str(exc))
        where = f"OpenAI-compatible server at {self.url}, {len(listed)} model(s)"
        if not listed:
            return Health(False, f"{where}; load a model in the server")
        if self.model and all(m.name != self.model for m in listed):
            return Health(False, f"{where}, but not {self.model}")
        return Health(True, where + (f"; {self.model} is available" if self.model else ""))

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        await self._client.aclose()


def _sse_data(line: str) -> str | None:
    """The payload of an SSE ``data:`` line; comments, ids and blank separators give None."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()
