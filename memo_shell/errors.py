"""Errors meant for the user: each carries one clear, actionable sentence.

The CLI and the TUI print ``str(error)`` and nothing else, so every message here must say what
happened and what to do about it, without a traceback.
"""

from __future__ import annotations

import errno


class MemoShellError(Exception):
    """Base of every error that is reported to the user as a message.

    ``partial_results``: results a command had produced before it failed (an import's counts), shown
    beside the error, and put in the ``--json`` error document.
    """

    partial_results: dict[str, object] | None = None


class NotFound(MemoShellError):
    """No memory has that id (or it was forgotten)."""


class StoreError(MemoShellError):
    """The data directory cannot be used, or a write was not made durable (so not acknowledged)."""


class BackendError(MemoShellError):
    """A model backend is down, missing a model, or failed mid-reply."""


def error_kind(exc: BaseException) -> str:
    """A stable, machine-readable name for an error: ``NotFound`` -> ``not_found``,
    ``StoreError`` -> ``store``; what ``--json`` error documents carry as ``kind``."""
    if isinstance(exc, OSError):
        return "os"
    name = type(exc).__name__
    if name in ("MemoShellError", "ClickException", "Exception"):
        return "error"
    if name.endswith("Error") and name != "Error":
        name = name[: -len("Error")]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return snake or "error"


def describe_os_error(exc: OSError, action: str) -> str:
    """Turn an OSError into a sentence a user can act on (disk full, read-only, permissions...)."""
    where = f" ({exc.filename})" if exc.filename else ""
    hints = {
        errno.ENOSPC: "the disk is full; free some space and try again",
        errno.EDQUOT: "the disk quota is exhausted; free some space and try again",
        errno.EROFS: "the file system is read-only; choose another --data-dir",
        errno.EACCES: "permission denied; check the directory's owner and mode, or use --data-dir",
        errno.EPERM: "operation not permitted; check the directory's owner and mode",
        errno.EIO: "the disk reported an I/O error; check the device before trusting it again",
    }
    hint = hints.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{action} failed{where}: {hint}"
