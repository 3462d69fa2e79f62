"""The proxy as an ASGI app (Starlette): routes, access checks, and what lives for its lifetime.

Starlette and uvicorn because the ``mcp`` SDK already brings both: one HTTP stack for the two
servers, with streaming responses, disconnect notice and graceful shutdown done right.

Access: bound to loopback (the default), a request must also be *addressed* to loopback
(``Host``) and, from a browser, come from a loopback page (``Origin``); this stops a web page
from reaching the proxy by DNS rebinding or a blind cross-site POST. With ``--allow-remote``
an API key is mandatory and every request must carry it as ``Authorization: Bearer``.
"""

from __future__ import annotations

import hmac
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from memo_shell.backends.ollama import OllamaBackend
from memo_shell.serve import ollama_api, openai_api
from memo_shell.serve.errors import ProxyError, from_exception
from memo_shell.serve.http import client_of, session_for
from memo_shell.serve.listen import is_loopback
from memo_shell.serve.turns import Relay, open_relay
from memo_shell.serve.upstream import Upstream

if TYPE_CHECKING:
    from memo_shell.api import Memories
    from memo_shell.backends.base import ModelInfo
    from memo_shell.config import Settings
    from memo_shell.serve.turns import Chat

log = logging.getLogger("memo_shell.serve")

DEFAULT_SESSION = "serve"
Handler = Callable[["Proxy", Request], Awaitable[Response]]


@dataclass
class Proxy:
    """Everything a request handler needs; one per running server."""

    settings: Settings
    session: str = DEFAULT_SESSION
    api_key: str | None = None
    allow_remote: bool = False
    upstream: Upstream = field(init=False)
    memories: Memories | None = None

    def __post_init__(self) -> None:
        self.upstream = Upstream(self.settings)

    # ------------------------------------------------------------------ access

    def guard(self, request: Request) -> None:
        """Refuse requests that are not for us (see the module docstring)."""
        if self.api_key is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.strip().encode(), self.api_key.encode()
            ):
                raise ProxyError(
                    401,
                    "a valid API key is required (Authorization: Bearer KEY)",
                    "invalid_api_key",
                )
        if self.allow_remote:
            return
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
        if not is_loopback(host):
            raise ProxyError(
                403,
                f"this proxy answers requests addressed to a loopback host, not {host!r}",
                "forbidden_host",
            )
        origin = request.headers.get("origin")
        if origin and origin != "null" and not is_loopback(urlsplit(origin).hostname or ""):
            raise ProxyError(
                403, f"requests from web pages at {origin!r} are not allowed", "forbidden_origin"
            )

    # ------------------------------------------------------------------ turns

    async def relay(self, request: Request, chat: Chat, use_memory: bool) -> Relay:
        """The started reply to ``chat``; raises ProxyError if it cannot begin."""
        assert self.memories is not None, "the proxy is not started"
        session = session_for(request, self.session)
        meta = {"via": "serve", "client": client_of(request)}
        try:
            backend = await self.upstream.backend_for(chat.model)
            return await open_relay(
                self.memories,
                backend,
                self.settings,
                chat,
                use_memory=use_memory,
                session=session,
                meta=meta,
            )
        except Exception as exc:
            raise from_exception(exc) from exc

    def headers(self, relay: Relay) -> dict[str, str]:
        """What the proxy tells the client about memory, before the reply (ids only)."""
        memory = "on" if relay.shell is not None else "off"
        return {"X-Memo-Shell-Memory": memory, "X-Memo-Shell-Recalled": " ".join(relay.recalled)}

    def stored_headers(self, relay: Relay) -> dict[str, str]:
        return {"X-Memo-Shell-Memory-Id": relay.memory_id} if relay.memory_id else {}

    async def models(self) -> list[ModelInfo]:
        return await self.upstream.models(fresh=True)

    async def upstream_ollama_version(self) -> str | None:
        base = self.upstream.base
        return await base.version() if isinstance(base, OllamaBackend) else None


class _ErrorResponse(Protocol):
    def __call__(self, error: ProxyError, headers: dict[str, str] | None = None) -> Response: ...


def _protocol(path: str) -> _ErrorResponse:
    return openai_api.error_response if path.startswith("/v1") else ollama_api.error_response


def _endpoint(proxy: Proxy, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        error_response = _protocol(request.url.path)
        try:
            proxy.guard(request)
            return await handler(proxy, request)
        except ProxyError as exc:
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return error_response(exc, headers)
        except Exception as exc:  # a bug must still answer in the protocol's shape
            log.exception("memo-shell serve failed on %s", request.url.path)
            return error_response(from_exception(exc))

    return run


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return _protocol(request.url.path)(ProxyError(exc.status_code, message, "invalid_request"))


def create_app(
    proxy: Proxy,
    memories_factory: Callable[[], Memories],
    *,
    announce: Callable[[str], None] | None = None,
) -> Starlette:
    """The ASGI app. ``memories_factory`` opens the store at start-up (closed at shutdown);
    ``announce`` receives one line once the upstream is chosen (the CLI prints it)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        proxy.memories = memories_factory()
        try:
            reason = await proxy.upstream.start()
            if announce is not None:
                announce(reason)
            yield
        finally:
            await proxy.upstream.aclose()
            proxy.memories.close()

    def route(path: str, handler: Handler, method: str) -> Route:
        return Route(path, _endpoint(proxy, handler), methods=[method])

    routes = [
        route("/v1/chat/completions", openai_api.chat_completions, "POST"),
        route("/v1/models", openai_api.list_models, "GET"),
        route("/v1/models/{model:path}", openai_api.get_model, "GET"),
        route("/api/chat", ollama_api.chat, "POST"),
        route("/api/generate", ollama_api.generate, "POST"),
        route("/api/tags", ollama_api.tags, "GET"),
        route("/api/show", ollama_api.show, "POST"),
        route("/api/version", ollama_api.version, "GET"),
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )


def announce_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
