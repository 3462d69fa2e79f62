"""The pipe protocol between the app and its llama.cpp worker: any text crosses it intact (or,
for text that cannot be UTF-8, replaced), and a cut or garbled stream reads as the end."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memo_shell.backends.llama_worker import read_frame, write_frame

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))


def roundtrip(message: dict) -> dict | None:
    pipe = io.BytesIO()
    write_frame(pipe, message)
    pipe.seek(0)
    return read_frame(pipe)


@given(st.dictionaries(st.sampled_from(["piece", "error", "op", "path"]), TEXT, min_size=1))
def test_any_text_crosses_intact(message: dict) -> None:
    assert roundtrip(message) == message


@given(st.lists(st.one_of(TEXT, st.sampled_from(["\ud800", "a\udfffb", "\udc80"]))))
def test_lone_surrogates_never_break_a_frame(pieces: list[str]) -> None:
    text = "".join(pieces)
    got = roundtrip({"messages": [{"role": "user", "content": text}]})
    assert got is not None
    content = got["messages"][0]["content"]
    assert len(content) == len(text) and not any(0xD800 <= ord(c) <= 0xDFFF for c in content)


@given(st.binary(max_size=64))
def test_garbage_or_cut_streams_read_as_the_end_or_a_value_error(data: bytes) -> None:
    try:
        message = read_frame(io.BytesIO(data))
    except ValueError:  # msgpack's errors are ValueErrors: the app treats them as a dead worker
        return
    assert message is None or isinstance(message, dict)


def test_a_frame_cut_short_is_the_end() -> None:
    pipe = io.BytesIO()
    write_frame(pipe, {"piece": "hello"})
    data = pipe.getvalue()
    for cut in range(len(data)):
        assert read_frame(io.BytesIO(data[:cut])) is None


def test_a_frame_that_is_not_a_message_is_refused() -> None:
    body = msgpack.packb([1, 2, 3])
    with pytest.raises(ValueError):
        read_frame(io.BytesIO(struct.pack(">I", len(body)) + body))


def test_a_frame_claiming_to_be_huge_is_refused_before_reading() -> None:
    with pytest.raises(ValueError, match="a frame of"):
        read_frame(io.BytesIO(struct.pack(">I", 2**32 - 1) + b"x"))


def test_the_worker_does_not_spin_idle_threads_unless_told_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from memo_shell.backends.llama_process import _child_env

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert _child_env()["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert _child_env()["OMP_WAIT_POLICY"] == "ACTIVE"
    root = Path(__file__).resolve().parents[1]
    assert _child_env()["PYTHONPATH"].split(os.pathsep)[0] == str(root)  # this very memo_shell


def fake_llama_cpp() -> object:
    from types import SimpleNamespace

    low = SimpleNamespace(llama_model_default_params=lambda: SimpleNamespace(use_extra_bufts=True))
    return SimpleNamespace(llama_cpp=low)


@pytest.mark.parametrize(
    ("amx", "override", "extra"), [(True, None, False), (True, "1", True), (False, None, True)]
)
def test_amx_cpus_load_models_without_the_extra_buffer_types(
    monkeypatch: pytest.MonkeyPatch, amx: bool, override: str | None, extra: bool
) -> None:
    from memo_shell.backends import llama_worker

    monkeypatch.setattr(llama_worker, "cpu_has_amx", lambda: amx)
    if override is None:
        monkeypatch.delenv("MEMO_SHELL_LLAMA_EXTRA_BUFFERS", raising=False)
    else:
        monkeypatch.setenv("MEMO_SHELL_LLAMA_EXTRA_BUFFERS", override)
    module = fake_llama_cpp()
    llama_worker._without_extra_buffers(module)
    assert module.llama_cpp.llama_model_default_params().use_extra_bufts is extra


def test_requesting_amx_state_is_harmless_everywhere() -> None:
    from memo_shell.backends.llama_worker import cpu_has_amx, request_amx_permission

    request_amx_permission()  # fails quietly where the CPU or kernel has no AMX
    assert isinstance(cpu_has_amx(), bool)
