"""What can go wrong with one proxied request, as an HTTP status and one sentence.

Each protocol renders a :class:`ProxyError` in its own error shape (OpenAI's
``{"error": {"message", "type", "param", "code"}}``, Ollama's ``{"error": "..."}``), so a
client's own error handling (``openai.NotFoundError``, ``ollama.ResponseError``) just works.
"""

from __future__ import annotations

from memo_shell.errors import BackendError, MemoShellError, StoreError
from memo_shell.prompt import PromptTooLong
from memo_shell.shell import QuestionRejected


class ProxyError(MemoShellError):
    """A request the proxy cannot serve: ``status`` for HTTP, ``code`` for machines."""

    def __init__(self, status: int, message: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param


def bad_request(message: str, param: str | None = None) -> ProxyError:
    return ProxyError(400, message, "invalid_request", param)


def model_missing(model: str, where: str) -> ProxyError:
    return ProxyError(404, f"model {model!r} not found at {where}", "model_not_found", "model")


def from_exception(exc: Exception) -> ProxyError:
    """The ProxyError for a failure of the turn itself (before or during the reply)."""
    if isinstance(exc, ProxyError):
        return exc
    if isinstance(exc, PromptTooLong):
        return ProxyError(400, str(exc), "context_length_exceeded", "messages")
    if isinstance(exc, QuestionRejected):
        return ProxyError(400, str(exc), "invalid_request", "messages")
    if isinstance(exc, BackendError):
        # The upstream is down, failed, or broke mid-reply: the gateway's fault, not the client's.
        return ProxyError(502, str(exc), "upstream_error")
    if isinstance(exc, StoreError):
        return ProxyError(500, f"the reply could not be stored: {exc}", "storage_error")
    if isinstance(exc, MemoShellError):
        return ProxyError(500, str(exc), "internal_error")
    return ProxyError(500, f"memo-shell serve failed: {type(exc).__name__}", "internal_error")
