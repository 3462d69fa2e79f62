"""The record format: round trips, strict validation, and detection of damaged files."""

from __future__ import annotations

import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pytest

from memo_shell import records
from memo_shell.records import CorruptRecord, InvalidRecord, UnsupportedVersion


def sample(**overrides: object) -> records.Memory:
    values: dict[str, object] = {
        "user": "Where did Caroline go hiking in May?",
        "assistant": "Mount Tam, with Melanie. 🌲",
        "session": "s1",
        "at": datetime(2023, 5, 8, 13, 56, tzinfo=timezone(timedelta(hours=2))),
        "meta": {"dia_id": "D1:3", "empty": ""},
        "tags": ["hiking", "friends"],
        "model": "gemma3:270m",
        "backend": "ollama",
    }
    values.update(overrides)
    return records.make_memory(**values)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field_verbatim() -> None:
    memory = sample()
    decoded = records.decode(records.encode(memory))
    assert decoded == memory
    assert decoded.created_at.utcoffset() == timedelta(hours=2)
    assert decoded.meta == {"dia_id": "D1:3", "empty": ""}


def test_id_is_time_ordered_by_the_memories_own_time() -> None:
    early = sample(at=datetime(2020, 1, 1, tzinfo=UTC))
    late = sample(at=datetime(2024, 1, 1, tzinfo=UTC))
    assert early.id < late.id
    assert records.id_datetime(early.id) == datetime(2020, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "overrides",
    [
        {"meta": {"k": 1}},
        {"tags": ["ok", 3]},
        {"session": "x" * (records.MAX_SHORT_FIELD + 1)},
        {"provenance": "dreamed"},
        {"user": b"bytes"},
    ],
)
def test_invalid_fields_are_refused_before_anything_is_written(overrides: dict) -> None:
    with pytest.raises(InvalidRecord):
        sample(**overrides)


def test_a_memory_over_the_size_limit_is_refused_with_its_size() -> None:
    huge = sample(user="x" * (records.MAX_PAYLOAD_BYTES + 10))
    with pytest.raises(InvalidRecord, match="MB; the limit is 4 MiB"):
        records.encode(huge)


def test_every_truncation_is_detected() -> None:
    data = records.encode(sample())
    for cut in range(len(data)):
        with pytest.raises(CorruptRecord):
            records.decode(data[:cut])


def test_trailing_garbage_and_bit_flips_are_detected() -> None:
    data = records.encode(sample())
    with pytest.raises(CorruptRecord):
        records.decode(data + b"\x00")
    for position in (8 + 4, records.HEADER_SIZE + 5, len(data) - 1):
        flipped = bytearray(data)
        flipped[position] ^= 0x01
        with pytest.raises((CorruptRecord, UnsupportedVersion)):
            records.decode(bytes(flipped))


def test_newer_major_version_is_unsupported_not_corrupt() -> None:
    data = bytearray(records.encode(sample()))
    data[8] = records.FORMAT_MAJOR + 1
    with pytest.raises(UnsupportedVersion, match="upgrade memo-shell"):
        records.decode(bytes(data))


def test_valid_checksum_but_wrong_shape_is_still_rejected() -> None:
    payload = msgpack.packb(
        {"id": "not-an-id", "session": "s", "user": "u", "created_at": "2023-01-01T00:00:00+00:00"}
    )
    header = struct.pack(">8sBBHII", records.MAGIC, 1, 0, 0, len(payload), zlib.crc32(payload))
    with pytest.raises(CorruptRecord, match="not a memory id"):
        records.decode(header + payload)


def test_foreign_bytes_are_rejected() -> None:
    with pytest.raises(CorruptRecord, match="bad magic"):
        records.decode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(CorruptRecord):
        records.decode(b"")


def test_naive_datetimes_are_taken_as_local_time() -> None:
    memory = sample(at=datetime(2023, 5, 8, 12, 0))
    assert memory.created_at.tzinfo is not None
    assert records.parse_datetime("2023-05-08").tzinfo is not None
    with pytest.raises(InvalidRecord):
        records.parse_datetime("next tuesday")


def test_ids_follow_the_ulid_spec() -> None:
    # The spec's example: 1469918176385 ms encodes as 01ARYZ6S41 in the first 10 characters.
    at = datetime.fromtimestamp(1469918176.385, UTC)
    memory_id = records.new_id(at)
    assert memory_id.startswith("01ARYZ6S41") and records.is_valid_id(memory_id)
    assert records.id_milliseconds(memory_id) == 1469918176385
    made = [records.new_id(at) for _ in range(2000)]  # all in one millisecond
    assert made == sorted(made) and len(set(made)) == 2000, "same-millisecond ids stay ordered"
    assert all(records.is_valid_id(i) for i in made)


FIXTURES = Path(__file__).parent / "fixtures" / "records"


def test_every_format_has_its_upgrade_step_and_frozen_fixtures() -> None:
    """A major bump registers the step from the old format and freezes the new one's files."""
    assert set(records.UPGRADES) == set(range(1, records.FORMAT_MAJOR))
    for major in range(1, records.FORMAT_MAJOR + 1):
        assert list((FIXTURES / f"v{major}.0").glob("*.memo")), f"no frozen v{major}.0 records"


def test_older_formats_are_upgraded_step_by_step_on_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if format 2 had shipped: a 1.x file decodes through the registered step, unchanged on
    disk; a format with no step stays unsupported; a step that cannot read a record makes it
    corrupt (quarantined), never a crash."""
    data = (FIXTURES / "v1.0" / "basic.memo").read_bytes()
    before = records.decode(data)

    def step(payload: dict) -> dict:
        return {**payload, "tags": [*payload.get("tags", []), "from-1.x"]}

    monkeypatch.setattr(records, "FORMAT_MAJOR", 2)
    monkeypatch.setattr(records, "UPGRADES", {1: step})
    upgraded = records.decode(data)
    assert upgraded == before.with_changes(tags=(*before.tags, "from-1.x"))
    assert (FIXTURES / "v1.0" / "basic.memo").read_bytes() == data

    monkeypatch.setattr(records, "UPGRADES", {})
    with pytest.raises(UnsupportedVersion, match=r"record format 1\.x "):
        records.decode(data)

    def broken(payload: dict) -> dict:
        return {"user": payload["no such field"]}

    monkeypatch.setattr(records, "UPGRADES", {1: broken})
    with pytest.raises(CorruptRecord, match="cannot be upgraded"):
        records.decode(data)
