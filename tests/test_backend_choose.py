"""``--backend auto|ollama|llama-cpp|openai`` and ``--model``: what is picked, and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import FakeOllama, FakeOpenAI, ScriptedModel
from servers.gguf import write_gguf_without_weights

from memo_shell.backends import (
    LlamaCppBackend,
    OllamaBackend,
    OpenAIBackend,
    choose_backend,
    embedded,
)
from memo_shell.config import Settings
from memo_shell.errors import BackendError

pytest_plugins = ["conftest_servers"]


@pytest.fixture(autouse=True)
def _no_real_ollama(dead_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own Ollama must not decide these tests."""
    monkeypatch.setenv("OLLAMA_HOST", dead_url)


async def test_auto_prefers_ollama_when_it_answers(fake_ollama: FakeOllama) -> None:
    choice = await choose_backend(Settings(ollama_host=fake_ollama.url))
    assert isinstance(choice.backend, OllamaBackend)
    assert choice.backend.model == "llama3.2:latest"
    assert (
        choice.reason == f"auto: Ollama 0.6.5 answered at {fake_ollama.url}; using llama3.2:latest"
    )
    await choice.backend.aclose()


async def test_auto_uses_a_configured_openai_server_when_ollama_is_down(
    fake_openai: FakeOpenAI, dead_url: str
) -> None:
    choice = await choose_backend(Settings(openai_base_url=fake_openai.base_url))
    assert isinstance(choice.backend, OpenAIBackend)
    assert choice.backend.model == "qwen2.5-7b-instruct"
    assert f"Ollama did not answer at {dead_url} within 0.3 s" in choice.reason
    assert choice.reason.endswith(f"using qwen2.5-7b-instruct at {fake_openai.base_url}")
    await choice.backend.aclose()


async def test_auto_falls_back_to_the_embedded_model(dead_url: str) -> None:
    choice = await choose_backend(Settings(openai_base_url=dead_url))
    assert isinstance(choice.backend, LlamaCppBackend)
    assert choice.backend.model == embedded.MODEL_NAME
    assert choice.reason.startswith("auto: Ollama did not answer")
    assert "no OpenAI-compatible server answered" in choice.reason
    assert choice.reason.endswith("using the embedded Gemma 3 270M (llama.cpp in-process)")


async def test_auto_skips_an_ollama_without_the_named_model(fake_openai: FakeOpenAI) -> None:
    with FakeOllama([ScriptedModel("llama3.2")]) as ollama:
        settings = Settings(
            ollama_host=ollama.url,
            openai_base_url=fake_openai.base_url,
            model="qwen2.5-7b-instruct",
        )
        choice = await choose_backend(settings)
    assert isinstance(choice.backend, OpenAIBackend)
    assert "run `ollama pull qwen2.5-7b-instruct`" in choice.reason
    await choice.backend.aclose()


async def test_a_named_model_nobody_has_is_an_error_not_a_silent_fallback(
    fake_ollama: FakeOllama,
) -> None:
    settings = Settings(ollama_host=fake_ollama.url, model="llama3.1:70b")
    with pytest.raises(BackendError, match=r"no backend has the model 'llama3.1:70b'.*ollama pull"):
        await choose_backend(settings)


async def test_model_naming_a_gguf_file_goes_straight_to_llama_cpp(tmp_path: Path) -> None:
    gguf = write_gguf_without_weights(tmp_path / "Phi-3-mini.gguf")
    choice = await choose_backend(Settings(model=str(gguf)))
    assert isinstance(choice.backend, LlamaCppBackend)
    assert choice.backend.path == gguf and choice.backend.model == "Phi-3-mini"


async def test_explicit_llama_cpp_with_a_models_directory(tmp_path: Path) -> None:
    write_gguf_without_weights(tmp_path / "a.gguf")
    wanted = write_gguf_without_weights(tmp_path / "b.gguf")
    choice = await choose_backend(Settings(backend="llama-cpp", gguf_path=tmp_path, model="b"))
    assert isinstance(choice.backend, LlamaCppBackend) and choice.backend.path == wanted
    assert choice.reason == f"--backend llama-cpp: using {wanted} with llama.cpp in-process"


async def test_explicit_llama_cpp_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="does not exist"):
        await choose_backend(Settings(backend="llama-cpp", gguf_path=tmp_path / "missing.gguf"))
    with pytest.raises(BackendError, match=r"llama\.cpp has no model 'llama3'"):
        await choose_backend(Settings(backend="llama-cpp", model="llama3"))


async def test_explicit_openai_needs_a_url() -> None:
    with pytest.raises(BackendError, match="needs openai_base_url"):
        await choose_backend(Settings(backend="openai"))


async def test_explicit_ollama_down_still_gives_a_backend_and_says_why(dead_url: str) -> None:
    choice = await choose_backend(Settings(backend="ollama", ollama_host=dead_url))
    assert isinstance(choice.backend, OllamaBackend)
    assert (
        choice.reason == f"--backend ollama: Ollama is not answering at {dead_url}; is it running?"
    )
    await choice.backend.aclose()
