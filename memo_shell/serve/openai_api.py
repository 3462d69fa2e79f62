"""The OpenAI API as the ``openai`` package and OpenAI-compatible clients speak it.

``POST /v1/chat/completions`` (streamed as server-sent events, or one JSON document),
``GET /v1/models`` and ``GET /v1/models/{id}``. Errors use OpenAI's shape,
``{"error": {"message", "type", "param", "code"}}``, so ``openai.NotFoundError`` and friends
are raised as usual on the client side; an error after the stream began is sent as an SSE
event carrying ``error`` (which the ``openai`` package raises as ``APIError``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from memo_shell.backends.base import Message
from memo_shell.serve.errors import ProxyError, bad_request, from_exception, model_missing
from memo_shell.serve.http import RelayResponse, memory_wanted, read_json, validate
from memo_shell.serve.turns import Sampling, conversation

if TYPE_CHECKING:
    from starlette.requests import Request

    from memo_shell.serve.app import Proxy
    from memo_shell.serve.turns import Relay

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
}


def error_response(error: ProxyError, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": _error_body(error)}, status_code=error.status, headers=headers)


def _error_body(error: ProxyError) -> dict[str, Any]:
    return {
        "message": error.message,
        "type": _TYPES.get(error.status, "server_error"),
        "param": error.param,
        "code": error.code,
    }


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: str
    text: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: str
    content: str | list[_Part] | None = None


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, allow_inf_nan=False)
    model: str
    messages: Annotated[list[_Message], Field(min_length=1)]
    stream: bool = False
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    seed: int | None = None
    n: Literal[1] | None = None
    stream_options: _StreamOptions | None = None


def _text(message: _Message, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise bad_request(
                f"messages.{index}: only text content is supported, not {part.type!r}",
                "messages",
            )
        texts.append(part.text)
    return "\n".join(texts)


def messages_of(request: ChatRequest) -> list[Message]:
    out: list[Message] = []
    for index, message in enumerate(request.messages):
        role = "system" if message.role == "developer" else message.role
        if role not in ("system", "user", "assistant"):
            raise bad_request(
                f"messages.{index}: role {message.role!r} is not supported; memo-shell serve"
                " relays plain chat (system, developer, user, assistant)",
                "messages",
            )
        out.append({"role": role, "content": _text(message, index)})  # type: ignore[typeddict-item]
    return out


def _usage(relay: Relay) -> dict[str, int]:
    completion = relay.completion_tokens()
    return {
        "prompt_tokens": relay.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": relay.prompt_tokens + completion,
    }


async def chat_completions(proxy: Proxy, request: Request) -> Response:
    body = validate(ChatRequest, await read_json(request))
    model, use_memory = memory_wanted(request, body.model)
    sampling = Sampling(
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        seed=body.seed,
    )
    chat = conversation(model, messages_of(body), sampling)
    relay = await proxy.relay(request, chat, use_memory)
    headers = proxy.headers(relay)
    reply_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        try:
            answer = await relay.text()
        except Exception as exc:
            return error_response(from_exception(exc))
        return JSONResponse(
            {
                "id": reply_id,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": _usage(relay),
            },
            headers={**headers, **proxy.stored_headers(relay)},
        )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return RelayResponse(
        _events(relay, reply_id, created, body.model, include_usage),
        relay,
        media_type="text/event-stream",
        headers={**headers, "Cache-Control": "no-cache"},
    )


def _sse(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


async def _events(
    relay: Relay, reply_id: str, created: int, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        return _sse(
            {
                "id": reply_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    yield chunk({"role": "assistant", "content": ""}, None)
    try:
        async with aclosing(relay.pieces()) as pieces:
            async for piece in pieces:
                yield chunk({"content": piece}, None)
    except Exception as exc:  # after the 200: the only way left to say it is in the stream
        yield _sse({"error": _error_body(from_exception(exc))})
        return
    yield chunk({}, "stop")
    if include_usage:
        usage = {
            "id": reply_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _usage(relay),
        }
        yield _sse(usage)
    yield b"data: [DONE]\n\n"


def _model_entry(name: str, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}


async def list_models(proxy: Proxy, request: Request) -> Response:
    listed = await proxy.models()
    owner = proxy.upstream.kind
    return JSONResponse({"object": "list", "data": [_model_entry(m.name, owner) for m in listed]})


async def get_model(proxy: Proxy, request: Request) -> Response:
    name = request.path_params["model"]
    for model in await proxy.models():
        if model.name == name:
            return JSONResponse(_model_entry(model.name, proxy.upstream.kind))
    raise model_missing(name, proxy.upstream.where)
