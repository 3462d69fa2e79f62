"""Model backends behind one protocol: Ollama, llama.cpp in-process, OpenAI-compatible servers.

    from memo_shell.backends import GenerationOptions, choose_backend

    choice = await choose_backend(settings)       # Choice(backend, reason)
    async for piece in choice.backend.stream(messages, GenerationOptions.from_settings(settings)):
        ...

Every error a user can meet is a :class:`~memo_shell.errors.BackendError` with one sentence.
"""

from memo_shell.backends.base import (
    Backend,
    GenerationOptions,
    Health,
    Message,
    ModelInfo,
    estimate_tokens,
)
from memo_shell.backends.choose import Choice, choose_backend, local_backend
from memo_shell.backends.embedder import BackendEmbedder, make_embedder
from memo_shell.backends.llamacpp import LlamaCppBackend
from memo_shell.backends.ollama import OllamaBackend
from memo_shell.backends.openai import OpenAIBackend

__all__ = [
    "Backend",
    "BackendEmbedder",
    "Choice",
    "GenerationOptions",
    "Health",
    "LlamaCppBackend",
    "Message",
    "ModelInfo",
    "OllamaBackend",
    "OpenAIBackend",
    "choose_backend",
    "estimate_tokens",
    "local_backend",
    "make_embedder",
]
