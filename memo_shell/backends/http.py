"""What the two HTTP backends share: timeouts, URL normalisation, and turning transport
failures into one sentence a user can act on.

Timeouts are generous on reads because a local server may be loading a multi-gigabyte model or
evaluating a long prompt on a CPU before its first byte; connects are short because a local
server either listens or does not.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx

from memo_shell.errors import BackendError

#: Seconds a reply may go silent (model load, long prompt evaluation) before we give up.
READ_TIMEOUT_S = 300.0
TIMEOUT = httpx.Timeout(connect=3.0, read=READ_TIMEOUT_S, write=30.0, pool=5.0)
#: Probes decide `--backend auto` and must not make start-up feel slow.
PROBE_TIMEOUT_S = 0.3
#: Longest server error text we repeat to the user (some servers send whole HTML pages).
MAX_DETAIL_CHARS = 200

OLLAMA_DEFAULT_PORT = 11434


def ollama_base_url(host: str | None) -> str:
    """Normalise an OLLAMA_HOST-style value ("", ":11434", "box:1234", "https://h") to a URL.

    Mirrors the rules of the official client so that what we print is where it connects.
    """
    host = (host or "").strip()
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    default_port = OLLAMA_DEFAULT_PORT
    if sep:  # an explicit scheme implies its usual port, as in the official client
        default_port = {"http": 80, "https": 443}.get(scheme, OLLAMA_DEFAULT_PORT)
    split = urlsplit(f"{scheme}://{rest}")
    hostname = split.hostname or "127.0.0.1"
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    try:
        port = split.port or default_port
    except ValueError as exc:
        raise BackendError(f"Ollama host {host!r} has an invalid port") from exc
    path = split.path.strip("/")
    return f"{scheme}://{hostname}:{port}" + (f"/{path}" if path else "")


def openai_base_url(url: str) -> str:
    """Normalise an OpenAI-compatible base URL; a bare host gets the conventional ``/v1``."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    split = urlsplit(url)
    if not split.hostname:
        raise BackendError(f"openai_base_url {url!r} is not a URL such as http://127.0.0.1:1234/v1")
    if not split.path:
        url += "/v1"
    return url


def short(text: str) -> str:
    """One line of server-provided text, cut to a readable length."""
    line = " ".join(text.split())
    return line if len(line) <= MAX_DETAIL_CHARS else line[: MAX_DETAIL_CHARS - 1] + "…"


def error_text(body: object) -> str:
    """The human part of an error body: OpenAI, vLLM, Ollama and LM Studio shapes, or raw text.

    Takes the raw body, or what a client already parsed out of it (the ``ollama`` client hands
    over the value of ``"error"``, which may itself be an object).
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except ValueError:
            return short(body) or "no details"
    else:
        data = body
    if isinstance(data, dict):
        if "error" not in data and "detail" in data:  # FastAPI (llama_cpp.server, vLLM)
            return _fastapi_detail(data["detail"])
        err = data.get("error", data)
        if isinstance(err, dict):
            err = err.get("message") or err.get("error") or json.dumps(err)
        if isinstance(err, str):
            return short(err)
    return short(str(data))


def _fastapi_detail(detail: object) -> str:
    """FastAPI's ``detail``: a string, or a list of validation errors each with a ``msg``."""
    if isinstance(detail, str):
        return short(detail)
    if isinstance(detail, list):
        messages = [str(item.get("msg")) for item in detail if isinstance(item, dict)]
        if any(messages):
            return short("; ".join(m for m in messages if m))
    return short(json.dumps(detail))


def transport_error(
    exc: httpx.TransportError, service: str, url: str, *, mid_reply: bool
) -> BackendError:
    """One sentence for a connection that failed to open, timed out, or broke."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return BackendError(f"{service} is not answering at {url}; is it running?")
    if isinstance(exc, httpx.TimeoutException):
        return BackendError(
            f"{service} at {url} sent nothing for {READ_TIMEOUT_S:.0f} s; it may be overloaded"
        )
    if mid_reply:
        return BackendError(
            f"the connection to {service} at {url} broke in the middle of the reply"
            " (did the server stop?)"
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return BackendError(
            f"{service} at {url} closed the connection before the reply began"
            " (did the server stop or crash?); check it is running and ask again"
        )
    return BackendError(
        f"the connection to {service} at {url} failed: {short(str(exc)) or type(exc).__name__}"
    )
