"""The Ollama backend, through the real ``ollama`` client, against a loopback Ollama server."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest
from servers import FakeOllama, ScriptedModel

from memo_shell.backends import GenerationOptions, OllamaBackend
from memo_shell.errors import BackendError

pytest_plugins = ["conftest_servers"]

HELLO = [{"role": "user", "content": "hello"}]


async def collect(backend: OllamaBackend, messages=HELLO, options=None) -> list[str]:
    return [p async for p in backend.stream(messages, options or GenerationOptions())]


async def test_reply_streams_in_pieces_with_our_options(fake_ollama: FakeOllama) -> None:
    fake_ollama.models["llama3.2:latest"].reply = "Paris is the capital."
    backend = OllamaBackend(fake_ollama.url, "llama3.2")
    options = GenerationOptions(
        temperature=0.1, top_p=0.5, max_tokens=64, seed=7, context_size=2048
    )
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "capital?"}]
    pieces = await collect(backend, messages, options)
    await backend.aclose()
    assert pieces == ["Paris ", "is ", "the ", "capital."]
    sent = fake_ollama.posted("/api/chat")[-1]
    assert sent["messages"] == messages
    assert sent["stream"] is True
    assert sent["options"] == {
        "temperature": 0.1,
        "top_p": 0.5,
        "num_predict": 64,
        "seed": 7,
        "num_ctx": 2048,
    }


async def test_unset_sampling_leaves_the_modelfile_defaults_alone(fake_ollama: FakeOllama) -> None:
    backend = OllamaBackend(fake_ollama.url, "llama3.2")
    await collect(backend)
    await backend.aclose()
    assert fake_ollama.posted("/api/chat")[-1]["options"] == {"num_predict": 512, "num_ctx": 4096}


@pytest.mark.parametrize("wording", ["new", "old"])
async def test_missing_model_suggests_ollama_pull(wording: str) -> None:
    with FakeOllama([ScriptedModel("llama3.2")], missing_wording=wording) as server:
        backend = OllamaBackend(server.url, "mistral-nemo")
        with pytest.raises(
            BackendError, match=r"no model 'mistral-nemo'; run `ollama pull mistral-nemo`"
        ):
            await collect(backend)
        health = await backend.health()
        await backend.aclose()
    assert not health.ok and "ollama pull mistral-nemo" in health.detail


async def test_server_down_is_one_clear_sentence(dead_url: str) -> None:
    backend = OllamaBackend(dead_url, "llama3.2")
    with pytest.raises(BackendError, match=r"Ollama is not answering at http://127\.0\.") as err:
        await collect(backend)
    assert "\n" not in str(err.value)
    assert not (await backend.health()).ok
    assert await backend.version() is None
    await backend.aclose()


async def test_server_dying_mid_reply_keeps_what_arrived(fake_ollama: FakeOllama) -> None:
    fake_ollama.add(ScriptedModel("flaky", reply="one two three four", die_after=2))
    backend = OllamaBackend(fake_ollama.url, "flaky")
    received: list[str] = []
    with pytest.raises(BackendError, match="broke in the middle of the reply"):
        async for piece in backend.stream(HELLO, GenerationOptions()):
            received.append(piece)
    await backend.aclose()
    assert received == ["one ", "two "]


async def test_error_line_inside_the_stream(fake_ollama: FakeOllama) -> None:
    fake_ollama.add(ScriptedModel("oom", reply="one two three", error_after=1))
    backend = OllamaBackend(fake_ollama.url, "oom")
    with pytest.raises(BackendError, match="failed in the middle of the reply: llama runner"):
        await collect(backend)
    await backend.aclose()


async def test_closing_the_stream_stops_the_server_promptly(fake_ollama: FakeOllama) -> None:
    fake_ollama.add(ScriptedModel("slow", reply="word " * 400, delay_s=0.01))
    backend = OllamaBackend(fake_ollama.url, "slow")
    async with aclosing(backend.stream(HELLO, GenerationOptions())) as stream:
        async for _piece in stream:
            break
    assert await asyncio.to_thread(fake_ollama.disconnected.wait, 10)
    assert fake_ollama.pieces_sent < 400
    await backend.aclose()


async def test_models_health_and_default_model_skip_embedding_models() -> None:
    models = [
        ScriptedModel("nomic-embed-text", family="nomic-bert"),
        ScriptedModel("qwen2.5:7b", family="qwen2"),
    ]
    with FakeOllama(models) as server:
        backend = OllamaBackend(server.url)
        listed = await backend.models()
        assert [m.name for m in listed] == ["nomic-embed-text:latest", "qwen2.5:7b"]
        assert listed[1].size_bytes == 2_019_393_189
        assert listed[1].details == "qwen2 3.2B Q4_K_M"
        assert await backend.default_model() == "qwen2.5:7b"
        health = await backend.health()
        assert (
            health.ok
            and "Ollama 0.6.5" in health.detail
            and "qwen2.5:7b is available" in health.detail
        )
        await backend.aclose()


async def test_no_model_at_all_says_what_to_pull() -> None:
    with FakeOllama([]) as server:
        backend = OllamaBackend(server.url)
        with pytest.raises(BackendError, match="has no chat model; run `ollama pull"):
            await collect(backend)
        await backend.aclose()


async def test_embeddings(fake_ollama: FakeOllama) -> None:
    fake_ollama.add(ScriptedModel("nomic-embed-text", family="nomic-bert", dims=4))
    backend = OllamaBackend(fake_ollama.url, "llama3.2", embed_model="nomic-embed-text")
    vectors = await backend.embed(["a", "b", "a"])
    assert len(vectors) == 3 and len(vectors[0]) == 4
    assert vectors[0] == vectors[2] != vectors[1]
    assert fake_ollama.posted("/api/embed")[-1] == {
        "model": "nomic-embed-text",
        "input": ["a", "b", "a"],
    }
    fake_ollama.models["nomic-embed-text"].can_embed = False
    with pytest.raises(BackendError, match="does not support embeddings"):
        await backend.embed(["a"])
    await backend.aclose()


async def test_host_comes_from_ollama_host(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{fake_ollama.port}")
    backend = OllamaBackend(None, "llama3.2")
    assert backend.url == fake_ollama.url
    assert await collect(backend)
    await backend.aclose()


@pytest.mark.parametrize(
    ("host", "url"),
    [
        (None, "http://127.0.0.1:11434"),
        ("", "http://127.0.0.1:11434"),
        (":5000", "http://127.0.0.1:5000"),
        ("box.lan", "http://box.lan:11434"),
        ("http://box.lan", "http://box.lan:80"),
        ("https://box.lan:8443/ollama/", "https://box.lan:8443/ollama"),
        ("[::1]:1234", "http://[::1]:1234"),
    ],
)
def test_host_normalisation_matches_the_official_client(
    host: str | None, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert OllamaBackend(host).url == url


async def test_another_server_on_the_port_is_not_a_missing_model(fake_openai) -> None:
    backend = OllamaBackend(fake_openai.url, "llama3.2")
    with pytest.raises(BackendError, match="does not speak the Ollama API"):
        await collect(backend)
    await backend.aclose()
