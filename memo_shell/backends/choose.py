"""Choosing the backend: ``--backend auto|ollama|llama-cpp|openai`` and ``--model NAME``.

``auto`` must work on a fresh machine with no model server at all, and must not make start-up
feel slow where one runs: it probes Ollama (and a configured OpenAI-compatible server) at the
same time with sub-second timeouts, and otherwise falls back to llama.cpp in-process with the
configured GGUF or the embedded Gemma 3 270M. The ``reason`` always says what was tried, so a
user who expected Ollama sees why they got something else.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from memo_shell.backends import embedded
from memo_shell.backends.base import Backend
from memo_shell.backends.http import PROBE_TIMEOUT_S
from memo_shell.backends.llamacpp import LlamaCppBackend, check_gguf, resolve_gguf
from memo_shell.backends.ollama import OllamaBackend, same_model
from memo_shell.backends.openai import OpenAIBackend, short_model_name
from memo_shell.errors import BackendError

if TYPE_CHECKING:
    from memo_shell.config import Settings

#: A configured OpenAI-compatible server was asked for by name, so it gets a little longer.
OPENAI_PROBE_TIMEOUT_S = 1.0
#: Names that mean "the embedded model" on the command line.
EMBEDDED_ALIASES = frozenset({embedded.MODEL_NAME, "embedded", "gemma3:270m", "gemma-3-270m"})


@dataclass(frozen=True, slots=True)
class Choice:
    """The backend to use and one line saying why (shown at start-up and by ``doctor``)."""

    backend: Backend
    reason: str


def _is_gguf_path(model: str | None) -> bool:
    if not model:
        return False
    return model.lower().endswith(".gguf") or Path(model).expanduser().is_file()


def local_backend(settings: Settings) -> LlamaCppBackend:
    """llama.cpp with ``--model FILE.gguf``, a model of ``gguf_path``, or the embedded model.

    Blocking (may assemble the embedded model once): call it off the event loop.
    """
    model = settings.model
    if model and _is_gguf_path(model):
        path = check_gguf(Path(model))
        return LlamaCppBackend(path, context_size=settings.context_size)
    if settings.gguf_path is not None and (model or "").lower() not in EMBEDDED_ALIASES:
        path = resolve_gguf(settings.gguf_path, model)
        return LlamaCppBackend(path, context_size=settings.context_size)
    if model and model.lower() not in EMBEDDED_ALIASES:
        raise BackendError(
            f"llama.cpp has no model {model!r}: pass a .gguf file with --model, or set gguf_path"
            " to a directory of models"
        )
    return LlamaCppBackend(
        embedded.model_path(), model_name=embedded.MODEL_NAME, context_size=settings.context_size
    )


def _describe_local(backend: LlamaCppBackend) -> str:
    if backend.model == embedded.MODEL_NAME:
        return f"using the embedded {embedded.DISPLAY_NAME} (llama.cpp in-process)"
    return f"using {backend.path} with llama.cpp in-process"


async def _pick_model(backend: OllamaBackend | OpenAIBackend, wanted: str | None) -> str:
    """Check ``wanted`` is served (or pick the default); raises BackendError saying what's wrong."""
    if not wanted:
        return await backend.default_model()
    listed = await backend.models()
    if isinstance(backend, OllamaBackend):
        if any(same_model(m.name, wanted) for m in listed):
            return wanted
        raise BackendError(
            f"Ollama at {backend.url} has no model {wanted!r}; run `ollama pull {wanted}`"
        )
    for m in listed:  # the server's id, or its short name (a GGUF path's file name)
        if wanted in (m.name, short_model_name(m.name)):
            return m.name
    raise BackendError(f"the OpenAI-compatible server at {backend.url} has no model {wanted!r}")


async def _probe_openai(backend: OpenAIBackend | None) -> bool:
    if backend is None:
        return False
    try:
        await asyncio.wait_for(backend.models(), OPENAI_PROBE_TIMEOUT_S)
    except (BackendError, TimeoutError):
        return False
    return True


def _openai(settings: Settings) -> OpenAIBackend:
    if not settings.openai_base_url:
        raise BackendError(
            "the openai backend needs openai_base_url in the config file"
            " (e.g. http://127.0.0.1:1234/v1 for LM Studio, :8080/v1 for llama-server)"
        )
    return OpenAIBackend(
        settings.openai_base_url,
        settings.model or "",
        api_key=settings.openai_api_key,
        context_size=settings.context_size,
    )


def _ollama(settings: Settings) -> OllamaBackend:
    return OllamaBackend(
        settings.ollama_host, settings.model or "", context_size=settings.context_size
    )


async def _auto(settings: Settings) -> Choice:
    wanted = settings.model
    if _is_gguf_path(wanted) or (wanted or "").lower() in EMBEDDED_ALIASES:
        local = await asyncio.to_thread(local_backend, settings)
        return Choice(local, f"auto: --model names a local model; {_describe_local(local)}")

    ollama = _ollama(settings)
    openai = _openai(settings) if settings.openai_base_url else None
    version, openai_up = await asyncio.gather(ollama.version(), _probe_openai(openai))
    tried: list[str] = []
    if version is not None:
        try:
            ollama.model = await _pick_model(ollama, wanted)
        except BackendError as exc:
            tried.append(str(exc))
        else:
            if openai is not None:
                await openai.aclose()
            return Choice(
                ollama, f"auto: Ollama {version} answered at {ollama.url}; using {ollama.model}"
            )
    else:
        tried.append(f"Ollama did not answer at {ollama.url} within {PROBE_TIMEOUT_S:g} s")
    await ollama.aclose()

    if openai is not None:
        if openai_up:
            try:
                openai.model = await _pick_model(openai, wanted)
            except BackendError as exc:
                tried.append(str(exc))
            else:
                await openai.learn_context()
                return Choice(
                    openai, f"auto: {'; '.join(tried)}; using {openai.model} at {openai.url}"
                )
        else:
            tried.append(f"no OpenAI-compatible server answered at {openai.url}")
        await openai.aclose()

    if wanted and settings.gguf_path is None:
        raise BackendError(f"no backend has the model {wanted!r}: {'; '.join(tried)}")
    local = await asyncio.to_thread(local_backend, settings)
    return Choice(local, f"auto: {'; '.join(tried)}; {_describe_local(local)}")


async def choose_backend(settings: Settings) -> Choice:
    """The backend ``settings`` ask for; ``auto`` probes and falls back (see module doc).

    Explicit choices are not probed beyond resolving a default model name, so the UI can start
    while a server is still coming up; its first reply then reports any problem. Raises
    BackendError only for choices that cannot work at all (no ``openai_base_url``, a GGUF path
    that is not a model file, a named model no backend has).
    """
    kind = settings.backend
    if kind == "auto":
        return await _auto(settings)
    if kind == "llama-cpp":
        local = await asyncio.to_thread(local_backend, settings)
        return Choice(local, f"--backend llama-cpp: {_describe_local(local)}")
    server: OllamaBackend | OpenAIBackend = (
        _ollama(settings) if kind == "ollama" else _openai(settings)
    )
    if not server.model:
        try:
            await asyncio.wait_for(server.default_model(), 2.0)
        except (BackendError, TimeoutError) as exc:
            detail = str(exc) or "it did not answer in time"
            return Choice(server, f"--backend {kind}: {detail}")
    if isinstance(server, OpenAIBackend):
        await server.learn_context()
    return Choice(server, f"--backend {kind}: using {server.model} at {server.url}")
