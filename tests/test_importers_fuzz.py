"""Hostile exports: whatever the structure, importers report problems and never raise."""

from __future__ import annotations

import copy
import json
import tempfile
from datetime import UTC
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memo_shell import importers
from memo_shell.errors import MemoShellError
from memo_shell.importers import chatgpt, claude, openwebui
from memo_shell.importers.base import Conversation, Message, Problem, pair
from memo_shell.records import Memory, clean_text, encode

FIXTURES = Path(__file__).parent / "fixtures" / "importers"
SAMPLES = {
    "chatgpt": (chatgpt.read, json.loads((FIXTURES / "chatgpt_conversations.json").read_text())),
    "claude": (claude.read, json.loads((FIXTURES / "claude_conversations.json").read_text())),
    "openwebui": (openwebui.read, json.loads((FIXTURES / "openwebui_export.json").read_text())),
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def mutate(data: st.DataObject, value: Any) -> Any:
    """Replace one randomly chosen sub-value of a real conversation with arbitrary JSON."""
    if not isinstance(value, dict | list) or not value or data.draw(st.integers(0, 4)) == 0:
        return data.draw(json_values)
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = data.draw(st.sampled_from(keys))
    value[key] = mutate(data, value[key])
    return value


def drain(fmt: str, obj: Any) -> None:
    read, _ = SAMPLES[fmt]
    result = read(obj, 0)
    if isinstance(result, Problem):
        assert isinstance(result.describe(), str)
        return
    conversation, messages, problems = result
    assert all(isinstance(p, Problem) for p in problems)
    for item in pair(conversation, messages):
        assert isinstance(item, Memory | Problem)
        if isinstance(item, Memory):
            encode(item)  # every turn produced is a storable record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), fmt=st.sampled_from(sorted(SAMPLES)))
def test_mutated_conversations_never_raise(data: st.DataObject, fmt: str) -> None:
    _, sample = SAMPLES[fmt]
    conversation = copy.deepcopy(data.draw(st.sampled_from(sample)))
    drain(fmt, mutate(data, conversation))


@settings(max_examples=200, deadline=None)
@given(obj=json_values, fmt=st.sampled_from(sorted(SAMPLES)))
def test_arbitrary_values_never_raise(obj: Any, fmt: str) -> None:
    drain(fmt, obj)


@settings(max_examples=100, deadline=None)
@given(
    messages=st.lists(
        st.builds(
            Message,
            role=st.sampled_from(["user", "assistant", "tool"]),
            text=st.text(max_size=30),
            id=st.text(max_size=10),
            at=st.none() | st.datetimes(timezones=st.just(UTC)),
        ),
        max_size=8,
    )
)
def test_pairing_any_sequence_loses_no_text(messages: list[Message]) -> None:
    conversation = Conversation("test", "c1", "t")
    out = list(pair(conversation, messages))
    stored = "".join(m.text for m in out if isinstance(m, Memory))
    for message in messages:
        if message.role != "tool" and message.at is not None:
            assert clean_text(message.text) in stored


def test_a_deeply_nested_conversation_is_skipped_cheaply(tmp_path: Path) -> None:
    # ijson's own items() keeps a path per level: this 600 KB file cost it 2.3 GB at 20k deep
    good = (FIXTURES / "chatgpt_conversations.json").read_bytes().strip()[1:-1]
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" + b'{"mapping": ' * 50_000 + b"1" + b"}" * 50_000 + b"," + good + b"]")
    items = list(importers.turns("chatgpt", path))
    assert "nests deeper" in items[0].reason  # type: ignore[union-attr]
    assert sum(isinstance(i, Memory) for i in items) == 5  # everything after it still imports


@settings(max_examples=150, deadline=None)
@given(
    raw=st.binary(max_size=300)
    | st.builds(lambda v: json.dumps(v).encode(), json_values)
    | st.builds(lambda v: json.dumps(v).encode()[:-3], st.lists(json_values, max_size=3)),
    fmt=st.sampled_from(["chatgpt", "claude", "openwebui", "oterm"]),
)
def test_arbitrary_files_give_problems_or_one_sentence(raw: bytes, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export"
        path.write_bytes(raw)
        try:
            for item in importers.turns(fmt, path):
                assert isinstance(item, Memory | Problem)
        except MemoShellError as exc:
            assert str(exc)
        importers.detect(path)
