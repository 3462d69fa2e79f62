"""The OpenAI-compatible backend (httpx, SSE) against a loopback server speaking that API."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest
from servers import FakeOpenAI, ScriptedModel

from memo_shell.backends import GenerationOptions, OpenAIBackend
from memo_shell.errors import BackendError

pytest_plugins = ["conftest_servers"]

MODEL = "qwen2.5-7b-instruct"
HELLO = [{"role": "user", "content": "hello"}]


async def collect(backend: OpenAIBackend, messages=HELLO, options=None) -> list[str]:
    return [p async for p in backend.stream(messages, options or GenerationOptions())]


async def test_reply_streams_over_sse_with_our_options(fake_openai: FakeOpenAI) -> None:
    fake_openai.models[MODEL].reply = "Bonjour tout le monde"
    backend = OpenAIBackend(fake_openai.base_url, MODEL)
    options = GenerationOptions(temperature=0.3, top_p=0.8, max_tokens=100, seed=1)
    assert await collect(backend, options=options) == ["Bonjour ", "tout ", "le ", "monde"]
    await backend.aclose()
    sent = fake_openai.posted("/v1/chat/completions")[-1]
    assert sent == {
        "model": MODEL,
        "messages": HELLO,
        "stream": True,
        "temperature": 0.3,
        "top_p": 0.8,
        "max_tokens": 100,
        "seed": 1,
    }


async def test_base_url_without_v1_gets_it(fake_openai: FakeOpenAI) -> None:
    backend = OpenAIBackend(fake_openai.url, MODEL)
    assert backend.url == fake_openai.base_url
    assert await collect(backend)
    await backend.aclose()


async def test_empty_model_uses_the_one_the_server_lists(fake_openai: FakeOpenAI) -> None:
    backend = OpenAIBackend(fake_openai.base_url)
    assert await collect(backend)
    assert backend.model == MODEL
    await backend.aclose()


async def test_missing_model(fake_openai: FakeOpenAI) -> None:
    backend = OpenAIBackend(fake_openai.base_url, "llama-3-70b")
    with pytest.raises(BackendError, match="has no model 'llama-3-70b'"):
        await collect(backend)
    health = await backend.health()
    assert not health.ok and "not llama-3-70b" in health.detail
    await backend.aclose()


async def test_server_down(dead_url: str) -> None:
    backend = OpenAIBackend(dead_url + "/v1", MODEL)
    with pytest.raises(BackendError, match="is not answering at"):
        await collect(backend)
    assert not (await backend.health()).ok
    await backend.aclose()


async def test_server_dying_mid_reply(fake_openai: FakeOpenAI) -> None:
    fake_openai.add(ScriptedModel("flaky", reply="a b c d e", die_after=3))
    backend = OpenAIBackend(fake_openai.base_url, "flaky")
    received: list[str] = []
    with pytest.raises(BackendError, match="broke in the middle of the reply"):
        async for piece in backend.stream(HELLO, GenerationOptions()):
            received.append(piece)
    assert received == ["a ", "b ", "c "]
    await backend.aclose()


async def test_error_event_mid_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.add(ScriptedModel("oom", reply="a b c", error_after=1))
    backend = OpenAIBackend(fake_openai.base_url, "oom")
    with pytest.raises(BackendError, match="failed in the middle of the reply: CUDA error"):
        await collect(backend)
    await backend.aclose()


async def test_context_overflow_reported_as_such(fake_openai: FakeOpenAI) -> None:
    fake_openai.add(ScriptedModel("small", context=100))
    backend = OpenAIBackend(fake_openai.base_url, "small")
    with pytest.raises(BackendError, match="does not fit the model's context"):
        await collect(backend, [{"role": "user", "content": "x" * 1000}])
    await backend.aclose()


async def test_api_key_is_sent_and_a_wrong_one_is_explained() -> None:
    with FakeOpenAI([ScriptedModel(MODEL)], api_key="sekrit") as server:
        good = OpenAIBackend(server.base_url, MODEL, api_key="sekrit")
        assert await collect(good)
        bad = OpenAIBackend(server.base_url, MODEL, api_key="wrong")
        with pytest.raises(BackendError, match=r"refused the API key.*set openai_api_key"):
            await collect(bad)
        await good.aclose()
        await bad.aclose()


async def test_wrong_path_is_not_mistaken_for_a_missing_model(fake_openai: FakeOpenAI) -> None:
    backend = OpenAIBackend(fake_openai.url + "/api", MODEL)
    with pytest.raises(BackendError, match=r"no OpenAI-compatible API here.*check openai_base_url"):
        await backend.models()
    await backend.aclose()


async def test_models_and_embeddings(fake_openai: FakeOpenAI) -> None:
    backend = OpenAIBackend(fake_openai.base_url, MODEL)
    listed = await backend.models()
    assert [m.name for m in listed] == [MODEL]
    assert "context 8192" in listed[0].details
    vectors = await backend.embed(["x", "y"])
    assert len(vectors) == 2 and vectors[0] != vectors[1]
    assert (await backend.health()).ok
    await backend.aclose()


async def test_closing_the_stream_stops_the_server_promptly(fake_openai: FakeOpenAI) -> None:
    fake_openai.add(ScriptedModel("slow", reply="word " * 400, delay_s=0.01))
    backend = OpenAIBackend(fake_openai.base_url, "slow")
    async with aclosing(backend.stream(HELLO, GenerationOptions())) as stream:
        async for _piece in stream:
            break
    assert await asyncio.to_thread(fake_openai.disconnected.wait, 10)
    assert fake_openai.pieces_sent < 400
    await backend.aclose()


async def test_server_dying_before_the_first_token_is_a_sentence(fake_openai: FakeOpenAI) -> None:
    fake_openai.add(ScriptedModel("flaky", reply="a b c", die_after=0))
    backend = OpenAIBackend(fake_openai.base_url, "flaky")
    with pytest.raises(BackendError) as caught:
        await collect(backend)
    message = str(caught.value)
    assert "closed the connection before the reply began" in message
    assert "peer closed" not in message and "chunked" not in message
    await backend.aclose()


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"detail": "Invalid API key"}', "Invalid API key"),
        (b'{"detail": [{"loc": ["body", "messages"], "msg": "Field required"}]}', "Field required"),
        (b'{"detail": {"odd": 1}}', '{"odd": 1}'),
    ],
)
def test_fastapi_detail_is_read(body: bytes, text: str) -> None:
    from memo_shell.backends.http import error_text

    assert error_text(body) == text


@pytest.mark.parametrize(
    ("model_id", "short"),
    [
        ("/home/u/models/gemma-3-270m-Q4_K_M.gguf", "gemma-3-270m-Q4_K_M"),
        ("C:\\models\\phi-3.gguf", "phi-3"),
        ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"),
        ("qwen2.5-7b-instruct", "qwen2.5-7b-instruct"),
        ("", ""),
    ],
)
def test_short_model_names(model_id: str, short: str) -> None:
    from memo_shell.backends.openai import short_model_name

    assert short_model_name(model_id) == short


async def test_context_window_learned_from_vllm_model_list(fake_openai: FakeOpenAI) -> None:
    """The fake lists vLLM's ``max_model_len``; llama-server's /props and LM Studio's
    /api/v0/models are tried first and fail over quietly."""
    fake_openai.add(ScriptedModel(MODEL, context=3000))
    backend = OpenAIBackend(fake_openai.base_url, MODEL, context_size=8192)
    assert await backend.learn_context() == 3000
    assert backend.context_size == 3000
    backend.context_size = 2048  # a window larger than context_size is not taken up
    await backend.learn_context()
    assert backend.context_size == 2048
    await backend.aclose()


@pytest.mark.parametrize(
    ("routes", "window"),
    [
        # llama-server: GET /props
        ({"/props": {"default_generation_settings": {"n_ctx": 3072}}}, 3072),
        # LM Studio: GET /api/v0/models
        (
            {
                "/v1/models": {"data": [{"id": "qwen"}]},
                "/api/v0/models": {"data": [{"id": "qwen", "loaded_context_length": 2560}]},
            },
            2560,
        ),
        # nothing says: the configured size stays
        ({"/v1/models": {"data": [{"id": "qwen"}]}}, None),
    ],
)
async def test_context_window_from_llama_server_and_lm_studio(routes: dict, window: int) -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        body = routes.get(request.url.path)
        return httpx.Response(200, json=body) if body else httpx.Response(404, json={})

    backend = OpenAIBackend("http://127.0.0.1:9/v1", "qwen", context_size=4096)
    await backend._client.aclose()
    backend._client = httpx.AsyncClient(
        base_url=backend.url, transport=httpx.MockTransport(handler)
    )
    assert await backend.learn_context() == window
    assert backend.context_size == (window or 4096)
    await backend.aclose()
