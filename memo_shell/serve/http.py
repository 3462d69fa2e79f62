"""HTTP plumbing both protocols share: bounded JSON bodies, request validation, the per-request
memory switch and session, and a streaming response that notices a client hanging up.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from memo_shell.records import MAX_SHORT_FIELD
from memo_shell.serve.errors import ProxyError, bad_request

if TYPE_CHECKING:
    from memo_shell.serve.turns import Relay

#: Largest request body read, in bytes: a long conversation fits; a runaway upload does not.
MAX_BODY_BYTES = 16 * 1024 * 1024
MEMORY_HEADER = "x-memo-shell-memory"
SESSION_HEADER = "x-memo-shell-session"
#: A model name ending in this turns memory off for that request (for clients that cannot
#: set headers): ``llama3.2+nomemory``.
NO_MEMORY_SUFFIX = "+nomemory"
_OFF = {"off", "0", "false", "no"}
_ON = {"on", "1", "true", "yes"}

Model = TypeVar("Model", bound=BaseModel)


async def read_json(request: Request) -> Any:
    """The request body parsed as JSON, read with a cap (413 beyond MAX_BODY_BYTES)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise _too_large(size)
            chunks.append(chunk)
    except ClientDisconnect:
        raise bad_request(
            "the client closed the connection before sending the whole body"
        ) from None
    raw = b"".join(chunks)
    if not raw.strip():
        raise bad_request("the request has no body; send a JSON object")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("the body is not UTF-8 text") from None
    except RecursionError:
        raise bad_request("the body nests too deeply to be a request") from None
    except ValueError as exc:
        raise bad_request(f"the body is not valid JSON ({exc})") from None


def _too_large(size: int) -> ProxyError:
    return ProxyError(
        413,
        f"the request body is over {MAX_BODY_BYTES // 2**20} MiB ({size / 1e6:.1f} MB at least);"
        " send a shorter conversation",
        "request_too_large",
    )


def validate(model: type[Model], body: Any) -> Model:
    """``body`` as a ``model`` instance, or 400 naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise bad_request(f"the body must be a JSON object, not {_kind(body)}")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        if first.get("type") == "missing":
            raise bad_request(f"'{where}' is required", where) from None
        message = str(first.get("msg", "is invalid"))
        raise bad_request(f"'{where}': {message}", where) from None


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
        type(value), "a number"
    )


def memory_wanted(request: Request, model: str) -> tuple[str, bool]:
    """The upstream model name and whether memory is on (header, then the model suffix)."""
    use = True
    if model.endswith(NO_MEMORY_SUFFIX):
        model, use = model[: -len(NO_MEMORY_SUFFIX)], False
    value = request.headers.get(MEMORY_HEADER)
    if value is not None:
        value = value.strip().lower()
        if value in _OFF:
            use = False
        elif value not in _ON:
            raise bad_request(
                f"the X-Memo-Shell-Memory header must be 'on' or 'off', not {value!r}"
            )
    if not model:
        raise bad_request("'model' is required", "model")
    return model, use


def session_for(request: Request, default: str) -> str:
    session = request.headers.get(SESSION_HEADER, default).strip()
    if not session or len(session) > MAX_SHORT_FIELD:
        raise bad_request(
            f"the X-Memo-Shell-Session header must be 1 to {MAX_SHORT_FIELD} characters"
        )
    return session


def client_of(request: Request) -> str:
    """Who is asking, as the client says (its User-Agent), for the stored turn's meta."""
    agent = " ".join(request.headers.get("user-agent", "").split())
    return agent[:200] or "unknown client"


class RelayResponse(StreamingResponse):
    """A streamed reply that stops the moment the client goes away.

    Starlette only notices a disconnect on the next write under ASGI 2.4 servers; a model that
    is thinking writes nothing for a while, and meanwhile it would keep generating for nobody.
    Here a watcher cancels the stream as soon as the server reports the disconnect, and the
    body iterator is always closed, which stops the upstream and stores nothing.
    """

    def __init__(self, content: AsyncIterator[bytes], relay: Relay, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._content = content
        self._relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch(scope_to_cancel: anyio.CancelScope) -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    scope_to_cancel.cancel()
                    return

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch, group.cancel_scope)
                with contextlib.suppress(OSError):  # a refused write: the client is gone
                    await self.stream_response(send)
                group.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._content, "aclose", None)
                if aclose is not None:
                    await aclose()
                await self._relay.aclose()  # stops the upstream now, not at garbage collection
