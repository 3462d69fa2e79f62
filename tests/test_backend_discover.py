"""discover(): every model source at once, for doctor and the model picker; backend_for()."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import FakeOllama, FakeOpenAI
from servers.gguf import write_gguf_without_weights

from memo_shell.backends import LlamaCppBackend, OllamaBackend, OpenAIBackend
from memo_shell.backends.discover import backend_for, discover
from memo_shell.config import Settings
from memo_shell.errors import BackendError

pytest_plugins = ["conftest_servers"]


async def test_every_source_with_its_models(
    fake_ollama: FakeOllama, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    gguf = write_gguf_without_weights(tmp_path / "Phi-3-mini.gguf")
    settings = Settings(
        ollama_host=fake_ollama.url, openai_base_url=fake_openai.base_url, gguf_path=tmp_path
    )
    ollama, openai, embedded, local = await discover(settings)
    assert (ollama.backend, ollama.ok) == ("ollama", True)
    assert [m.name for m in ollama.models] == ["llama3.2:latest"]
    assert (openai.where, [m.name for m in openai.models]) == (
        fake_openai.base_url,
        ["qwen2.5-7b-instruct"],
    )
    assert (embedded.where, embedded.ok, embedded.models[0].name) == (
        "embedded",
        True,
        "gemma3-270m",
    )
    assert local.ok and [m.name for m in local.models] == ["Phi-3-mini"]

    assert isinstance(backend_for(settings, ollama, "llama3.2:latest"), OllamaBackend)
    assert isinstance(backend_for(settings, openai, "qwen2.5-7b-instruct"), OpenAIBackend)
    phi = backend_for(settings, local, "Phi-3-mini")
    assert isinstance(phi, LlamaCppBackend) and phi.path == gguf
    with pytest.raises(BackendError, match="no model named 'mistral'"):
        backend_for(settings, local, "mistral")


async def test_sources_that_cannot_answer_say_why(dead_url: str, tmp_path: Path) -> None:
    settings = Settings(ollama_host=dead_url, gguf_path=tmp_path / "missing.gguf")
    ollama, _embedded, local = await discover(settings)
    assert not ollama.ok and "not answering" in ollama.detail and ollama.models == []
    assert not local.ok and "does not exist" in local.detail
