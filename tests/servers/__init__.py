"""Loopback model servers that speak the real wire protocols, for tests of the real clients.

``FakeOllama`` speaks Ollama's HTTP API (NDJSON streaming ``/api/chat``, ``/api/tags``,
``/api/embed``, ``/api/version``, with Ollama's own error bodies); ``FakeOpenAI`` speaks the
OpenAI API that LM Studio, llama-server, vLLM and LocalAI expose (SSE ``/v1/chat/completions``,
``/v1/models``, ``/v1/embeddings``). Both run in a thread on 127.0.0.1 with an OS-chosen port,
serve scripted models, record every request, and can fail on request: die mid-stream, send an
error mid-stream, or drip pieces slowly so a test can cancel.

    with FakeOllama([ScriptedModel("llama3.2:latest", reply="Hello there")]) as server:
        backend = OllamaBackend(server.url, "llama3.2")

The pytest fixtures ``fake_ollama``, ``fake_openai`` and ``dead_url`` live in
``tests/conftest_servers.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Reply = str | Callable[[list[dict[str, Any]]], str]


@dataclass
class ScriptedModel:
    """A model a fake server hosts, and how it behaves.

    ``reply`` is the answer text, or a function of the request's messages. The answer streams
    as one piece per word (spaces kept). ``die_after`` drops the connection after that many
    pieces (no final chunk, like a crashed server); ``error_after`` sends the server's in-stream
    error instead; ``delay_s`` sleeps before each piece; ``context`` is the window in tokens
    (~4 characters each) beyond which the server answers with its context-overflow error.
    """

    name: str
    reply: Reply = "Hello from the loopback server."
    family: str = "llama"
    size_bytes: int = 2_019_393_189
    dims: int = 8
    context: int = 8192
    die_after: int | None = None
    error_after: int | None = None
    delay_s: float = 0.0
    can_embed: bool = True
    finish: str = "stop"  # Ollama's done_reason ("length": cut at num_predict)

    def answer(self, messages: list[dict[str, Any]]) -> str:
        return self.reply(messages) if callable(self.reply) else self.reply

    def pieces(self, messages: list[dict[str, Any]]) -> list[str]:
        words = self.answer(messages).split(" ")
        return [w if i == len(words) - 1 else w + " " for i, w in enumerate(words) if w or i == 0]

    def vector(self, text: str) -> list[float]:
        """A deterministic embedding: the same text always maps to the same unit vector."""
        digest = hashlib.sha256(text.encode()).digest()
        raw = [b - 127.5 for b in digest[: self.dims]]
        norm = math.sqrt(sum(x * x for x in raw)) or 1.0
        return [x / norm for x in raw]


@dataclass
class Seen:
    """One request the server received."""

    method: str
    path: str
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _dispatch(self, method: str) -> None:
        body = self._body() if method == "POST" else None
        seen = Seen(method, self.path, body, dict(self.headers.items()))
        self.server.owner.requests.append(seen)
        route = self.server.owner.routes().get((method, self.path.split("?", 1)[0]))
        if route is None:
            self.send_json(404, self.server.owner.not_found_body(self.path))
            return
        route(self, body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ------------------------------------------------------------------ writing helpers

    def send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream(self, content_type: str, chunks: Iterable[bytes], model: ScriptedModel) -> None:
        """Write chunked transfer encoding; obey the model's ``die_after``.

        Dying means closing the socket without the terminating zero-length chunk, exactly what
        a client sees when a server process is killed mid-reply.
        """
        owner = self.server.owner
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for data in chunks:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                owner.pieces_sent += 1
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except _Die:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:  # the client went away: what a cancelled reply looks like from here
            self.close_connection = True
            owner.disconnected.set()


class _Die(Exception):
    """Raised inside a stream generator to drop the connection on the spot."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-stream (a cancelled reply) is what several tests do on
        purpose; only anything else is worth a traceback on the test run's stderr."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LoopbackServer:
    """Base of the fake servers: a thread serving HTTP/1.1 on 127.0.0.1 at an OS-chosen port."""

    def __init__(self, models: Iterable[ScriptedModel] = ()) -> None:
        self.models: dict[str, ScriptedModel] = {m.name: m for m in models}
        self.requests: list[Seen] = []
        self.pieces_sent = 0
        self.disconnected = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, model: ScriptedModel) -> ScriptedModel:
        self.models[model.name] = model
        return model

    def posted(self, path: str) -> list[Any]:
        """Bodies of the POST requests made to ``path``, oldest first."""
        return [r.body for r in self.requests if r.method == "POST" and r.path == path]

    def routes(self) -> dict[tuple[str, str], Callable[[_Handler, Any], None]]:
        raise NotImplementedError

    def not_found_body(self, path: str) -> Any:
        return {"error": "404 page not found"}

    def _script(
        self, model: ScriptedModel, messages: list[dict[str, Any]]
    ) -> Iterator[tuple[int, str]]:
        """(index, piece) pairs, applying delay, die_after (raises _Die) and error_after."""
        for index, piece in enumerate(model.pieces(messages)):
            if model.die_after is not None and index >= model.die_after:
                raise _Die
            if model.error_after is not None and index >= model.error_after:
                yield -1, "error"
                return
            if model.delay_s:
                time.sleep(model.delay_s)
            yield index, piece


def _prompt_chars(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content", ""))) for m in messages)


def _full_name(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class FakeOllama(LoopbackServer):
    """Ollama's HTTP API as the official Python client uses it.

    ``missing_wording`` picks the error body for an unknown model: Ollama before 0.4 said
    ``model 'x' not found``; later versions say ``model "x" not found, try pulling it first``.
    """

    version = "0.6.5"

    def __init__(
        self, models: Iterable[ScriptedModel] = (), *, missing_wording: str = "new"
    ) -> None:
        super().__init__(models)
        self.missing_wording = missing_wording

    def routes(self) -> dict[tuple[str, str], Callable[[_Handler, Any], None]]:
        return {
            ("GET", "/api/version"): lambda h, b: h.send_json(200, {"version": self.version}),
            ("GET", "/api/tags"): self._tags,
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/embed"): self._embed,
        }

    def _find(self, name: str) -> ScriptedModel | None:
        for model in self.models.values():
            if _full_name(model.name) == _full_name(name):
                return model
        return None

    def _missing(self, handler: _Handler, name: str) -> None:
        if self.missing_wording == "old":
            message = f"model '{name}' not found"
        else:
            message = f'model "{name}" not found, try pulling it first'
        handler.send_json(404, {"error": message})

    def _tags(self, handler: _Handler, body: Any) -> None:
        handler.send_json(
            200,
            {
                "models": [
                    {
                        "name": _full_name(m.name),
                        "model": _full_name(m.name),
                        "modified_at": "2025-01-01T00:00:00.000000000Z",
                        "size": m.size_bytes,
                        "digest": hashlib.sha256(m.name.encode()).hexdigest(),
                        "details": {
                            "parent_model": "",
                            "format": "gguf",
                            "family": m.family,
                            "families": [m.family],
                            "parameter_size": "3.2B",
                            "quantization_level": "Q4_K_M",
                        },
                    }
                    for m in self.models.values()
                ]
            },
        )

    def _chat(self, handler: _Handler, body: Any) -> None:
        if not isinstance(body, dict) or not body.get("model"):
            handler.send_json(400, {"error": "model is required"})
            return
        model = self._find(body["model"])
        if model is None:
            self._missing(handler, body["model"])
            return
        messages = body.get("messages") or []
        name = _full_name(body["model"])

        def line(payload: dict[str, Any]) -> bytes:
            return json.dumps(payload).encode() + b"\n"

        def frame(content: str, done: bool) -> dict[str, Any]:
            payload: dict[str, Any] = {
                "model": name,
                "created_at": "2025-01-01T00:00:00.000000000Z",
                "message": {"role": "assistant", "content": content},
                "done": done,
            }
            if done:
                payload.update(
                    done_reason=model.finish,
                    total_duration=1_000_000,
                    load_duration=1000,
                    prompt_eval_count=_prompt_chars(messages) // 4,
                    prompt_eval_duration=1000,
                    eval_count=len(model.pieces(messages)),
                    eval_duration=1000,
                )
            return payload

        if body.get("stream") is False:
            handler.send_json(200, frame(model.answer(messages), True))
            return

        def chunks() -> Iterator[bytes]:
            for index, piece in self._script(model, messages):
                if index < 0:
                    yield line({"error": "llama runner process has terminated: signal: killed"})
                    return
                yield line(frame(piece, False))
            yield line(frame("", True))

        handler.stream("application/x-ndjson", chunks(), model)

    def _embed(self, handler: _Handler, body: Any) -> None:
        model = self._find(body.get("model", "")) if isinstance(body, dict) else None
        if model is None:
            self._missing(handler, body.get("model", "") if isinstance(body, dict) else "")
            return
        if not model.can_embed:
            handler.send_json(400, {"error": f'"{model.name}" does not support embeddings'})
            return
        texts = body.get("input", [])
        texts = [texts] if isinstance(texts, str) else texts
        handler.send_json(
            200,
            {
                "model": _full_name(model.name),
                "embeddings": [model.vector(t) for t in texts],
                "total_duration": 1000,
                "load_duration": 100,
                "prompt_eval_count": len(texts),
            },
        )


class FakeOpenAI(LoopbackServer):
    """The OpenAI HTTP API subset local servers implement, under ``/v1``.

    ``api_key`` set means requests without ``Authorization: Bearer <key>`` get a 401.
    """

    def __init__(self, models: Iterable[ScriptedModel] = (), *, api_key: str | None = None) -> None:
        super().__init__(models)
        self.api_key = api_key

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def routes(self) -> dict[tuple[str, str], Callable[[_Handler, Any], None]]:
        routes = {
            ("GET", "/v1/models"): self._models,
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/embeddings"): self._embed,
        }
        if self.api_key is None:
            return routes
        return {key: self._guarded(route) for key, route in routes.items()}

    def _guarded(self, route: Callable[[_Handler, Any], None]) -> Callable[[_Handler, Any], None]:
        def check(handler: _Handler, body: Any) -> None:
            if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
                handler.send_json(
                    401,
                    {
                        "error": {
                            "message": "Invalid API key",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    },
                )
                return
            route(handler, body)

        return check

    def not_found_body(self, path: str) -> Any:
        return {
            "error": {"message": f"File Not Found: {path}", "type": "not_found_error", "code": 404}
        }

    def _model_missing(self, handler: _Handler, name: str) -> None:
        handler.send_json(
            404,
            {
                "error": {
                    "message": f"The model `{name}` does not exist.",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_found",
                }
            },
        )

    def _models(self, handler: _Handler, body: Any) -> None:
        handler.send_json(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": m.name,
                        "object": "model",
                        "created": 1735689600,
                        "owned_by": "llamacpp",
                        "max_model_len": m.context,
                    }
                    for m in self.models.values()
                ],
            },
        )

    def _chat(self, handler: _Handler, body: Any) -> None:
        name = body.get("model", "") if isinstance(body, dict) else ""
        model = self.models.get(name)
        if model is None:
            self._model_missing(handler, name)
            return
        messages = body.get("messages") or []
        if _prompt_chars(messages) // 4 > model.context:
            handler.send_json(
                400,
                {
                    "error": {
                        "code": 400,
                        "type": "exceed_context_size_error",
                        "message": "the request exceeds the available context size,"
                        " try increasing it",
                        "n_prompt_tokens": _prompt_chars(messages) // 4,
                        "n_ctx": model.context,
                    }
                },
            )
            return

        def event(delta: dict[str, Any], finish: str | None) -> bytes:
            payload = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        def chunks() -> Iterator[bytes]:
            yield event({"role": "assistant", "content": None}, None)
            for index, piece in self._script(model, messages):
                if index < 0:
                    error = {
                        "error": {
                            "code": 500,
                            "message": "CUDA error: out of memory",
                            "type": "server_error",
                        }
                    }
                    yield b"data: " + json.dumps(error).encode() + b"\n\n"
                    return
                yield event({"content": piece}, None)
            yield event({}, "stop")
            yield b"data: [DONE]\n\n"

        handler.stream("text/event-stream", chunks(), model)

    def _embed(self, handler: _Handler, body: Any) -> None:
        name = body.get("model", "") if isinstance(body, dict) else ""
        model = self.models.get(name)
        if model is None:
            self._model_missing(handler, name)
            return
        texts = body.get("input", [])
        texts = [texts] if isinstance(texts, str) else texts
        handler.send_json(
            200,
            {
                "object": "list",
                "model": name,
                "data": [
                    {"object": "embedding", "index": i, "embedding": model.vector(t)}
                    for i, t in enumerate(texts)
                ],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            },
        )


def free_port() -> int:
    """A port nothing listens on (bound then released), for "server down" tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


__all__ = ["FakeOllama", "FakeOpenAI", "LoopbackServer", "ScriptedModel", "Seen", "free_port"]
