"""The JSONL import format: every bad line rejected with a reason, good ones kept."""

from __future__ import annotations

import io

import pytest

from memo_shell import jsonl
from memo_shell.records import Provenance


def parse_all(text: bytes) -> list[tuple[int, object]]:
    return [(n, item) for n, item, _size in jsonl.iter_import(io.BytesIO(text))]


def test_valid_lines_become_imported_records() -> None:
    data = (
        b'{"user": "hi", "assistant": "hello", "session": "s", "at": "2023-05-08T13:56:00Z",'
        b' "meta": {"dia_id": "D1:1"}}\n\n{"user": "second"}\n'
    )
    items = parse_all(data)
    assert [n for n, _ in items] == [1, 3]
    first = items[0][1]
    assert first.user == "hi" and first.session == "s" and first.meta == {"dia_id": "D1:1"}
    assert first.provenance is Provenance.IMPORTED
    assert first.created_at.isoformat() == "2023-05-08T13:56:00+00:00"
    assert items[1][1].session == "imported"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"assistant": "x"}', 'missing "user"'),
        (b'{"user": 5}', '"user" must be a str'),
        (b'{"user": "x", "meta": {"k": 1}}', '"meta" values must be strings'),
        (b'{"user": "x", "at": "yesterday"}', "not an ISO 8601"),
        (b'{"user": "x", "asistant": "typo"}', "unknown field 'asistant'"),
        (b'{"user": "x", "id": "../../etc"}', "not a memory id"),
        (b'{"user": "\xff"}', "not UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_bad_lines_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    ((number, item),) = parse_all(line + b"\n")
    assert number == 1
    assert isinstance(item, jsonl.Rejected) and reason in item.reason


def test_a_huge_line_is_skipped_in_constant_memory_and_the_next_line_survives() -> None:
    huge = b'{"user": "' + b"x" * (10 * 1024 * 1024) + b'"}\n'
    items = parse_all(b'{"user": "before"}\n' + huge + b'{"user": "after"}\n')
    assert [n for n, _ in items] == [1, 2, 3]
    assert isinstance(items[1][1], jsonl.Rejected) and "10.5 MB" in items[1][1].reason
    assert items[2][1].user == "after"


def test_export_shape_round_trips_through_import() -> None:
    ((_, original),) = parse_all(
        b'{"user": "u", "assistant": "a", "tags": ["t"], "pinned": true}\n'
    )
    exported = jsonl.memory_to_json(original)
    import json

    ((_, again),) = parse_all(json.dumps(exported).encode() + b"\n")
    assert again == original
