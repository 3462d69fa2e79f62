"""`memo-shell serve` with the official `openai` and `ollama` packages as clients, and the
loopback Ollama-protocol server as the upstream (faults scripted there)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_helpers import RunningProxy, echo, running_proxy
from servers import FakeOllama, ScriptedModel

from memo_shell.config import Settings
from memo_shell.prompt import OPEN_TAG
from memo_shell.records import Provenance

pytest_plugins = ["conftest_servers"]

MODEL = "llama3.2:latest"


@pytest.fixture
def upstream() -> Iterator[FakeOllama]:
    with FakeOllama([ScriptedModel(MODEL, reply=echo)]) as server:
        yield server


def settings_for(url: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, backend="ollama", ollama_host=url)


@pytest.fixture
def proxy(upstream: FakeOllama, data_dir: Path) -> Iterator[RunningProxy]:
    with running_proxy(settings_for(upstream.url, data_dir)) as running:
        yield running


def oai(proxy: RunningProxy, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=proxy.v1, api_key="unused", max_retries=0, **kwargs)


def last_prompt(upstream: FakeOllama) -> list[dict[str, Any]]:
    return upstream.posted("/api/chat")[-1]["messages"]


# ---------------------------------------------------------------------------- happy paths


def test_openai_client_gets_memory_streaming_and_not(
    proxy: RunningProxy, upstream: FakeOllama
) -> None:
    client = oai(proxy)
    first = client.chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "My cat is called Miso"}]
    )
    assert first.choices[0].message.content == "You asked: My cat is called Miso"
    assert first.usage is not None and first.usage.completion_tokens > 0

    raw = client.chat.completions.with_raw_response.create(
        model="llama3.2",
        messages=[{"role": "user", "content": "What is my cat called?"}],
        stream=True,
    )
    pieces = [c.choices[0].delta.content or "" for c in raw.parse() if c.choices]
    assert "".join(pieces) == "You asked: What is my cat called?"

    stored = proxy.stored()
    assert [m.user for m in stored] == ["My cat is called Miso", "What is my cat called?"]
    assert raw.headers["X-Memo-Shell-Recalled"] == stored[0].id
    # the memory went in exactly as the app puts it: in the system message, quoted as data
    system = last_prompt(upstream)[0]
    assert system["role"] == "system" and OPEN_TAG in system["content"]
    assert "> User: My cat is called Miso" in system["content"]
    second = stored[1]
    assert second.provenance is Provenance.TYPED and second.session == "serve"
    assert second.meta["via"] == "serve" and second.meta["client"].startswith("OpenAI/Python")
    assert second.meta["recalled"] == stored[0].id
    assert second.model == MODEL and second.backend == "ollama"


def test_ollama_client_chat_generate_tags_version(
    proxy: RunningProxy, upstream: FakeOllama
) -> None:
    client = ollama.Client(host=proxy.url)
    assert [m.model for m in client.list().models] == [MODEL]
    assert httpx.get(f"{proxy.url}/api/version").json() == {"version": upstream.version}
    shown = client.show("llama3.2")
    assert shown.details is not None and shown.details.family == "llama"
    assert shown.capabilities == ["completion"]
    with pytest.raises(ollama.ResponseError) as unknown:
        client.show("nope")
    assert unknown.value.status_code == 404

    reply = client.chat(model="llama3.2", messages=[{"role": "user", "content": "I live in Oslo"}])
    assert reply.message.content == "You asked: I live in Oslo" and reply.done
    streamed = client.chat(
        model="llama3.2", messages=[{"role": "user", "content": "Where do I live?"}], stream=True
    )
    parts = list(streamed)
    assert "".join(p.message.content or "" for p in parts) == "You asked: Where do I live?"
    assert parts[-1].done and parts[-1].done_reason == "stop"
    assert "> User: I live in Oslo" in last_prompt(upstream)[0]["content"]

    generated = client.generate(model="llama3.2", prompt="Say hi", system="Be brief.")
    assert generated.response == "You asked: Say hi"
    assert last_prompt(upstream)[0]["content"].startswith("Be brief.")
    streamed_gen = "".join(
        p.response for p in client.generate(model="llama3.2", prompt="Hey", stream=True)
    )
    assert streamed_gen == "You asked: Hey"
    # an empty request is Ollama's "load the model": answered, nothing sent or stored
    assert client.generate(model="llama3.2", prompt="").done_reason == "load"
    assert [m.user for m in proxy.stored()] == [
        "I live in Oslo",
        "Where do I live?",
        "Say hi",
        "Hey",
    ]


def test_the_clients_conversation_is_the_history_and_not_recalled_twice(
    proxy: RunningProxy, upstream: FakeOllama
) -> None:
    client = oai(proxy)
    client.chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "Plan a trip to Kyoto"}]
    )
    conversation = [
        {"role": "system", "content": "You are a travel agent."},
        {"role": "user", "content": "Plan a trip to Kyoto"},
        {"role": "assistant", "content": "You asked: Plan a trip to Kyoto"},
        {"role": "user", "content": "And what about Kyoto in spring?"},
    ]
    client.chat.completions.create(model="llama3.2", messages=conversation)  # type: ignore[arg-type]
    sent = last_prompt(upstream)
    assert sent[0]["content"].startswith("You are a travel agent.")  # the client's system
    assert OPEN_TAG not in sent[0]["content"]  # the earlier turn is history, not a memory
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "Plan a trip to Kyoto"
    assert sent[-1]["content"] == "And what about Kyoto in spring?"


def test_memory_off_by_header_or_model_suffix(proxy: RunningProxy, upstream: FakeOllama) -> None:
    client = oai(proxy)
    client.chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "My PIN is 4321"}]
    )
    question = [{"role": "user", "content": "What is my PIN?"}]
    raw = client.chat.completions.with_raw_response.create(
        model="llama3.2",
        messages=question,  # type: ignore[arg-type]
        extra_headers={"X-Memo-Shell-Memory": "off"},
    )
    assert raw.parse().choices[0].message.content == "You asked: What is my PIN?"
    assert raw.headers["X-Memo-Shell-Memory"] == "off"
    assert last_prompt(upstream) == question  # verbatim: no memory block, nothing added
    ollama.Client(host=proxy.url).chat(model="llama3.2+nomemory", messages=question)
    assert last_prompt(upstream) == question
    assert upstream.posted("/api/chat")[-1]["model"] == MODEL  # the suffix is ours alone
    assert [m.user for m in proxy.stored()] == ["My PIN is 4321"]


def test_session_header_files_the_turn(proxy: RunningProxy) -> None:
    oai(proxy).chat.completions.create(
        model="llama3.2",
        messages=[{"role": "user", "content": "hello"}],
        extra_headers={"X-Memo-Shell-Session": "open-webui"},
    )
    assert [m.session for m in proxy.stored()] == ["open-webui"]


# ---------------------------------------------------------------------------- upstream faults


def test_missing_model_is_the_protocols_not_found(proxy: RunningProxy) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        oai(proxy).chat.completions.create(
            model="gpt-9", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.code == "model_not_found" and "gpt-9" in str(caught.value)
    with pytest.raises(ollama.ResponseError) as missing:
        ollama.Client(host=proxy.url).chat(
            model="gpt-9", messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.status_code == 404 and "gpt-9" in missing.value.error
    assert proxy.stored() == []


def test_upstream_down_is_a_protocol_error_and_the_proxy_lives_on(
    dead_url: str, data_dir: Path
) -> None:
    with running_proxy(settings_for(dead_url, data_dir)) as proxy:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as caught:
                oai(proxy).chat.completions.create(
                    model="llama3.2", messages=[{"role": "user", "content": "hi"}]
                )
            assert caught.value.status_code == 502
            assert "is not answering" in str(caught.value)
            with pytest.raises(ollama.ResponseError) as down:
                list(
                    ollama.Client(host=proxy.url).chat(
                        model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True
                    )
                )
            assert down.value.status_code == 502
        assert httpx.get(f"{proxy.url}/api/version").status_code == 200
        assert proxy.stored() == []


def test_upstream_dying_mid_reply_is_an_error_in_the_stream_and_nothing_is_stored(
    proxy: RunningProxy, upstream: FakeOllama
) -> None:
    upstream.models[MODEL].die_after = 2
    with pytest.raises(openai.APIError, match="broke in the middle of the reply"):
        stream = oai(proxy).chat.completions.create(
            model="llama3.2",
            messages=[{"role": "user", "content": "tell me a long story"}],
            stream=True,
        )
        for _ in stream:
            pass
    with pytest.raises(ollama.ResponseError, match="middle of the reply"):
        for _ in ollama.Client(host=proxy.url).chat(
            model="llama3.2", messages=[{"role": "user", "content": "again please"}], stream=True
        ):
            pass
    assert proxy.stored() == []
    upstream.models[MODEL].die_after = None
    oai(proxy).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "ok"}]
    )
    assert [m.user for m in proxy.stored()] == ["ok"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_client_disconnecting_mid_stream_stores_nothing_and_stops_the_upstream(
    proxy: RunningProxy, upstream: FakeOllama, path: str
) -> None:
    words = " ".join(f"word{i}" for i in range(200))
    upstream.models[MODEL].reply = words
    upstream.models[MODEL].delay_s = 0.05
    body = {"model": "llama3.2", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    with httpx.Client(timeout=10) as http, http.stream("POST", proxy.url + path, json=body) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        next(lines), next(lines), next(lines)  # a few pieces arrived; then the client hangs up
    assert upstream.disconnected.wait(5), "the upstream kept generating for nobody"
    sent = upstream.pieces_sent
    time.sleep(0.3)
    assert upstream.pieces_sent - sent <= 1
    assert proxy.stored() == []
    upstream.models[MODEL].delay_s = 0
    upstream.models[MODEL].reply = echo
    oai(proxy).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "x"}]
    )
    assert len(proxy.stored()) == 1


def test_concurrent_clients_lose_and_mix_no_turns(
    proxy: RunningProxy, upstream: FakeOllama
) -> None:
    upstream.models[MODEL].delay_s = 0.01
    count = 8

    async def ask(client: openai.AsyncOpenAI, number: int) -> str:
        history = [
            {"role": "user", "content": f"hello from client {number}"},
            {"role": "assistant", "content": f"hi client {number}"},
        ]
        stream = await client.chat.completions.create(
            model="llama3.2",
            messages=[*history, {"role": "user", "content": f"question {number} please"}],  # type: ignore[list-item]
            stream=number % 2 == 0,
        )
        if number % 2:
            return stream.choices[0].message.content or ""  # type: ignore[union-attr]
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])  # type: ignore[union-attr]

    async def main() -> list[str]:
        async with openai.AsyncOpenAI(base_url=proxy.v1, api_key="x", max_retries=0) as client:
            return await asyncio.gather(*(ask(client, n) for n in range(count)))

    answers = asyncio.run(main())
    assert answers == [f"You asked: question {n} please" for n in range(count)]
    stored = proxy.stored()
    assert sorted(m.user for m in stored) == sorted(f"question {n} please" for n in range(count))
    for memory in stored:
        assert memory.assistant == f"You asked: {memory.user}"
    # each request's own history reached the upstream, never another client's
    for request in upstream.posted("/api/chat"):
        number = request["messages"][-1]["content"].split()[1]
        assert request["messages"][-3]["content"] == f"hello from client {number}"


# ---------------------------------------------------------------------------- bad input


def test_a_ten_megabyte_message_is_refused_with_a_reason(proxy: RunningProxy) -> None:
    huge = "word " * (2 * 1024 * 1024)  # 10 MiB
    with pytest.raises(openai.APIStatusError) as caught:
        oai(proxy).chat.completions.create(
            model="llama3.2", messages=[{"role": "user", "content": huge}]
        )
    assert caught.value.status_code == 413 and "MB" in str(caught.value)
    with pytest.raises(ollama.ResponseError) as refused:
        ollama.Client(host=proxy.url).generate(model="llama3.2", prompt=huge)
    assert refused.value.status_code == 413
    too_big = httpx.post(f"{proxy.url}/api/chat", content=b"x" * (17 * 1024 * 1024))
    assert too_big.status_code == 413 and "MiB" in too_big.json()["error"]
    assert proxy.stored() == []
    oai(proxy).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "ok"}]
    )
    assert len(proxy.stored()) == 1


def _post(proxy: RunningProxy, path: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        proxy.url + path,
        content=content,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )


MALFORMED = [
    (b"", "no body"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "must be a JSON object, not an array"),
    (b"[" * 100_000, "nests too deeply"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "'model' is required"),
    (b'{"model": "llama3.2", "messages": "hi"}', "'messages'"),
    (b'{"model": "llama3.2", "messages": [{"role": "user", "content": 5}]}', "messages.0"),
    (b'{"model": "llama3.2", "messages": [{"role": "assistant", "content": "x"}]}', "last message"),
    (b'{"model": "llama3.2", "messages": [{"role": "tool", "content": "x"}]}', "not supported"),
    (b'{"model": "", "messages": [{"role": "user", "content": "x"}]}', "'model' is required"),
    (
        b'{"model": "llama3.2", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
        "stream",
    ),
    (b'{"model": "llama3.2", "messages": [{"role": "user", "content": "   "}]}', "empty"),
]


@pytest.mark.parametrize(("body", "reason"), MALFORMED)
def test_malformed_chat_requests_get_400_with_a_reason_in_each_shape(
    proxy: RunningProxy, body: bytes, reason: str
) -> None:
    openai_reply = _post(proxy, "/v1/chat/completions", body)
    assert openai_reply.status_code == 400, openai_reply.text
    error = openai_reply.json()["error"]
    assert reason in error["message"] and error["type"] == "invalid_request_error"
    ollama_reply = _post(proxy, "/api/chat", body)
    assert ollama_reply.status_code == 400, ollama_reply.text
    assert reason in ollama_reply.json()["error"]
    assert proxy.stored() == []


ASK = '"messages": [{"role": "user", "content": "x"}]'


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"model": "llama3.2", "temperature": "hot", ' + ASK + "}", "temperature"),
        ('{"model": "llama3.2", "temperature": 7, ' + ASK + "}", "temperature"),
        ('{"model": "llama3.2", "n": 3, ' + ASK + "}", "'n'"),
        ('{"model": "llama3.2", "messages": []}', "messages"),
        (
            '{"model": "llama3.2", "messages": [{"role": "user", "content": [{"type": "image"}]}]}',
            "only text content",
        ),
    ],
)
def test_malformed_openai_only_fields(proxy: RunningProxy, body: str, reason: str) -> None:
    reply = _post(proxy, "/v1/chat/completions", body.encode())
    assert reply.status_code == 400 and reason in reply.json()["error"]["message"]


def test_unknown_paths_methods_and_bad_headers_answer_in_shape(proxy: RunningProxy) -> None:
    assert httpx.get(f"{proxy.url}/v1/nothing").json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(f"{proxy.url}/api/chat").status_code == 405
    assert "error" in httpx.get(f"{proxy.url}/api/chat").json()
    body = b'{"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}'
    reply = _post(proxy, "/api/chat", body, **{"X-Memo-Shell-Memory": "maybe"})
    assert reply.status_code == 400 and "'on' or 'off'" in reply.json()["error"]


# ---------------------------------------------------------------------------- access


def test_foreign_host_or_web_origin_is_refused(proxy: RunningProxy) -> None:
    body = b'{"model": "llama3.2", "messages": [{"role": "user", "content": "x"}]}'
    rebinding = _post(proxy, "/api/chat", body, Host="evil.example")
    assert rebinding.status_code == 403 and "loopback" in rebinding.json()["error"]
    cross_site = _post(proxy, "/v1/chat/completions", body, Origin="https://evil.example")
    assert cross_site.status_code == 403
    local_page = _post(proxy, "/api/chat", body, Origin="http://localhost:3000")
    assert local_page.status_code == 200
    assert [m.user for m in proxy.stored()] == ["x"]


def test_api_key_is_required_when_set(upstream: FakeOllama, data_dir: Path) -> None:
    settings = settings_for(upstream.url, data_dir)
    with running_proxy(settings, api_key="s3cret") as proxy:
        with pytest.raises(openai.AuthenticationError):
            oai(proxy).models.list()
        client = openai.OpenAI(base_url=proxy.v1, api_key="s3cret", max_retries=0)
        assert [m.id for m in client.models.list()] == [MODEL]
        with pytest.raises(ollama.ResponseError) as refused:
            ollama.Client(host=proxy.url).list()
        assert refused.value.status_code == 401
        keyed = ollama.Client(host=proxy.url, headers={"Authorization": "Bearer s3cret"})
        assert [m.model for m in keyed.list().models] == [MODEL]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "loopback only unless you pass --allow-remote"),
        (["--host", "192.168.1.5", "--allow-remote"], "needs an API key"),
        (["--host", "0.0.0.0", "--allow-remote", "--api-key", " "], "--api-key is empty"),
    ],
)
def test_non_loopback_bind_is_refused_without_remote_and_key(
    run_cli: Any, args: list[str], message: str
) -> None:
    result = run_cli("serve", *args)
    assert result.exit_code == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_proxy_serves_requests_one_after_another_from_threads(
    proxy: RunningProxy,
) -> None:
    """Blocking clients in threads (how most scripts and web apps call it) share the proxy."""
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            client = ollama.Client(host=proxy.url)
            for turn in range(3):
                text = f"thread {number} turn {turn}"
                reply = client.chat(model="llama3.2", messages=[{"role": "user", "content": text}])
                assert reply.message.content == f"You asked: {text}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(proxy.stored()) == 12


# ---------------------------------------------------------------------------- property: any body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "x"]) | json_values},
    optional={"content": st.text(max_size=30) | json_values, "images": json_values},
)
request_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.sampled_from(["llama3.2", "llama3.2+nomemory", "nope", ""]) | json_values,
            "messages": st.lists(message, max_size=3) | json_values,
            "prompt": st.text(max_size=30) | json_values,
            "stream": st.booleans() | json_values,
            "temperature": json_values,
            "max_tokens": json_values,
            "options": st.dictionaries(
                st.sampled_from(["temperature", "top_p", "num_predict", "seed"]), json_values
            )
            | json_values,
        },
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=request_bodies,
    path=st.sampled_from(["/v1/chat/completions", "/api/chat", "/api/generate"]),
)
def test_any_request_body_gets_a_reply_or_a_400_never_a_crash(
    proxy: RunningProxy, body: Any, path: str
) -> None:
    reply = httpx.post(proxy.url + path, content=json.dumps(body).encode(), timeout=10)
    assert reply.status_code in (200, 400, 404, 413), reply.text
    if reply.status_code == 200:
        return
    error = reply.json()["error"]
    message_text = error["message"] if path.startswith("/v1") else error
    assert isinstance(message_text, str) and message_text
    assert "Traceback" not in message_text


def test_a_port_in_use_is_one_sentence(run_cli: Any) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--port", str(port))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_backend_that_cannot_work_is_one_sentence_before_listening(run_cli: Any) -> None:
    result = run_cli("--backend", "openai", "serve", "--port", "0")
    assert result.exit_code == 1
    assert "needs openai_base_url" in result.stderr and "Traceback" not in result.stderr


async def test_a_memory_made_over_mcp_is_quoted_by_the_proxy_and_forgetting_reaches_it(
    proxy: RunningProxy, upstream: FakeOllama
) -> None:
    """One memory for every client: MCP writes, the proxy recalls (as tool-written data)."""
    from mcp import Client

    import memo_shell
    from memo_shell.mcp import build_server

    client = openai.AsyncOpenAI(base_url=proxy.v1, api_key="x", max_retries=0)
    question = [{"role": "user", "content": "Which seat do I prefer on planes?"}]
    with memo_shell.open(proxy.data_dir) as mem:
        async with Client(build_server(mem)) as mcp_client:
            made = await mcp_client.call_tool(
                "remember", {"text": "I prefer aisle seats on planes"}
            )
            memory_id = made.structured_content["id"]
            await client.chat.completions.create(model="llama3.2", messages=question)  # type: ignore[arg-type]
            system = last_prompt(upstream)[0]["content"]
            assert "· tool\n> User: I prefer aisle seats on planes" in system
            await mcp_client.call_tool("forget", {"ids": memory_id})
            await client.chat.completions.create(model="llama3.2", messages=question)  # type: ignore[arg-type]
            assert "aisle seats" not in last_prompt(upstream)[0]["content"]
    await client.close()
