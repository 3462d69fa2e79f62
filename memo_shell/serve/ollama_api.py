"""Ollama's API as the ``ollama`` package, Open WebUI and oterm speak it.

``POST /api/chat`` and ``POST /api/generate`` (newline-delimited JSON when streaming, which is
Ollama's default, or one JSON document with ``"stream": false``), ``GET /api/tags`` and
``GET /api/version``. Errors are ``{"error": "..."}`` with the HTTP status, as Ollama sends
them; after the stream began, an error is one ``{"error": ...}`` line, which the ``ollama``
package raises as ``ResponseError``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from memo_shell.backends.base import Message
from memo_shell.backends.ollama import same_model
from memo_shell.serve.errors import ProxyError, bad_request, from_exception
from memo_shell.serve.http import RelayResponse, memory_wanted, read_json, validate
from memo_shell.serve.turns import Chat, Sampling, check_size, conversation

if TYPE_CHECKING:
    from starlette.requests import Request

    from memo_shell.serve.app import Proxy
    from memo_shell.serve.turns import Relay

#: The Ollama API level this proxy speaks, reported when the upstream is not Ollama itself.
API_VERSION = "0.6.0"


def error_response(error: ProxyError, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": error.message}, status_code=error.status, headers=headers)


class _Options(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)
    temperature: Annotated[float, Field(ge=0)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    num_predict: int | None = None
    seed: int | None = None

    def sampling(self) -> Sampling:
        # Ollama's -1 ("until done") and -2 ("fill the context") leave memo-shell's limit.
        limit = self.num_predict if self.num_predict and self.num_predict > 0 else None
        return Sampling(self.temperature, self.top_p, limit, self.seed)


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: str
    content: str | None = ""
    images: list[Any] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    model: str
    messages: list[_Message] | None = None
    stream: bool = True
    options: _Options | None = None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    model: str
    prompt: str | None = ""
    system: str | None = None
    images: list[Any] | None = None
    stream: bool = True
    options: _Options | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _messages(request: ChatRequest) -> list[Message]:
    out: list[Message] = []
    for index, message in enumerate(request.messages or []):
        if message.role not in ("system", "user", "assistant"):
            raise bad_request(
                f"messages.{index}: role {message.role!r} is not supported; memo-shell serve"
                " relays plain chat (system, user, assistant)"
            )
        if message.images:
            raise bad_request(f"messages.{index}: images are not supported by memo-shell serve")
        out.append({"role": message.role, "content": message.content or ""})  # type: ignore[typeddict-item]
    return out


def _final(relay: Relay, started: float) -> dict[str, Any]:
    elapsed = int((time.perf_counter() - started) * 1e9)
    return {
        "done": True,
        "done_reason": "stop",
        "total_duration": elapsed,
        "load_duration": 0,
        "prompt_eval_count": relay.prompt_tokens,
        "prompt_eval_duration": 0,
        "eval_count": relay.completion_tokens(),
        "eval_duration": elapsed,
    }


def _line(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode() + b"\n"


async def _loaded(proxy: Proxy, model: str, field: str) -> Response:
    """Ollama answers an empty request by loading the model; we check it exists and say done."""
    await proxy.upstream.backend_for(model)
    empty: Any = {"role": "assistant", "content": ""} if field == "message" else ""
    return JSONResponse(
        {"model": model, "created_at": _now(), field: empty, "done": True, "done_reason": "load"}
    )


async def _reply(
    proxy: Proxy, request: Request, chat: Chat, use_memory: bool, stream: bool, field: str
) -> Response:
    started = time.perf_counter()
    relay = await proxy.relay(request, chat, use_memory)
    headers = proxy.headers(relay)
    name = chat.model

    def frame(text: str) -> dict[str, Any]:
        content: Any = {"role": "assistant", "content": text} if field == "message" else text
        return {"model": name, "created_at": _now(), field: content}

    if not stream:
        try:
            answer = await relay.text()
        except Exception as exc:
            return error_response(from_exception(exc))
        return JSONResponse(
            {**frame(answer), **_final(relay, started)},
            headers={**headers, **proxy.stored_headers(relay)},
        )

    async def lines() -> AsyncIterator[bytes]:
        try:
            async with aclosing(relay.pieces()) as pieces:
                async for piece in pieces:
                    yield _line({**frame(piece), "done": False})
        except Exception as exc:  # after the 200: Ollama reports it as an error line
            yield _line({"error": from_exception(exc).message})
            return
        yield _line({**frame(""), **_final(relay, started)})

    return RelayResponse(lines(), relay, media_type="application/x-ndjson", headers=headers)


async def chat(proxy: Proxy, request: Request) -> Response:
    body = validate(ChatRequest, await read_json(request))
    model, use_memory = memory_wanted(request, body.model)
    messages = _messages(body)
    if not messages:
        return await _loaded(proxy, model, "message")
    sampling = body.options.sampling() if body.options else Sampling()
    turn = conversation(model, messages, sampling)
    return await _reply(proxy, request, turn, use_memory, body.stream, "message")


async def generate(proxy: Proxy, request: Request) -> Response:
    body = validate(GenerateRequest, await read_json(request))
    model, use_memory = memory_wanted(request, body.model)
    if body.images:
        raise bad_request("images are not supported by memo-shell serve", "images")
    prompt = body.prompt or ""
    if not prompt.strip():
        return await _loaded(proxy, model, "response")
    check_size(prompt)
    messages: list[Message] = []
    if body.system:
        messages.append({"role": "system", "content": body.system})
    messages.append({"role": "user", "content": prompt})
    sampling = body.options.sampling() if body.options else Sampling()
    turn = conversation(model, messages, sampling)
    return await _reply(proxy, request, turn, use_memory, body.stream, "response")


def _details(info: Any, kind: str) -> dict[str, Any]:
    words = info.details.split() if kind == "ollama" else []
    family = words[0] if words else ""
    return {
        "parent_model": "",
        "format": "gguf" if kind in ("ollama", "llama-cpp") else "",
        "family": family,
        "families": [family] if family else None,
        "parameter_size": words[1] if len(words) > 1 else "",
        "quantization_level": words[2] if len(words) > 2 else "",
    }


async def tags(proxy: Proxy, request: Request) -> Response:
    kind = proxy.upstream.kind
    models = [
        {
            "name": info.name,
            "model": info.name,
            "size": info.size_bytes or 0,
            "details": _details(info, kind),
        }
        for info in await proxy.models()
    ]
    return JSONResponse({"models": models})


class ShowRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    model: str | None = None
    name: str | None = None  # what older clients send


async def show(proxy: Proxy, request: Request) -> Response:
    """Enough of ``/api/show`` for clients that ask before chatting (oterm, Open WebUI): the
    model's details and that it can complete text. Tool calling is not relayed, so it is not
    advertised."""
    body = validate(ShowRequest, await read_json(request))
    wanted = body.model or body.name
    if not wanted:
        raise bad_request("'model' is required", "model")
    name, _ = memory_wanted(request, wanted)
    await proxy.upstream.backend_for(name)
    info = next(m for m in await proxy.models() if same_model(m.name, name))
    return JSONResponse(
        {
            "modelfile": "",
            "parameters": "",
            "template": "",
            "details": _details(info, proxy.upstream.kind),
            "model_info": {},
            "capabilities": ["completion"],
        }
    )


async def version(proxy: Proxy, request: Request) -> Response:
    found = await proxy.upstream_ollama_version()
    return JSONResponse({"version": found or API_VERSION})
