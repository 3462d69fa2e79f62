"""Hostile and damaged bytes against the record decoder and the store's quarantine.

``records.decode`` reads files that sync tools, backups, other programs and failing disks may
have touched, so for *any* input it must either return a fully validated ``Memory`` or raise
``CorruptRecord`` (damaged/foreign: quarantine it) or ``UnsupportedVersion`` (a newer format:
keep it, do not read it). Never another exception, never a hang, never an allocation driven by a
length field. Through the ``Store``, a bad file costs one quarantined file, never the others.

The frozen fixtures of format 1.0 (``fixtures/records/v1.0``) must decode to exactly the values
below, forever: they are the on-disk compatibility contract.
"""

from __future__ import annotations

import faulthandler
import json
import os
import shutil
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memo_shell import records
from memo_shell.errors import NotFound
from memo_shell.paths import quarantine_dir
from memo_shell.records import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    HEADER_SIZE,
    MAGIC,
    MAX_PAYLOAD_BYTES,
    CorruptRecord,
    InvalidRecord,
    Memory,
    Provenance,
    UnsupportedVersion,
    decode,
    encode,
    id_datetime,
    is_valid_id,
    make_memory,
    validate,
)
from memo_shell.store import Store

FUZZ = settings(
    max_examples=150,
    deadline=timedelta(milliseconds=500),  # a decode is ~µs; anything near this is a hang
    derandomize=True,  # same examples on every run and machine
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
#: The last millisecond a record's date directory can name (9999-12-31T23:59:59.999Z).
MAX_MS = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)
ALLOWED = (CorruptRecord, UnsupportedVersion)


@pytest.fixture(autouse=True, scope="module")
def hang_guard() -> Iterator[None]:
    """Last resort against a hang inside C code (msgpack), which no deadline can interrupt:
    dump every thread's stack and exit instead of stalling CI forever."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def frame(payload: bytes, major: int = 1, minor: int = 0, flags: int = 0) -> bytes:
    """A header with a correct length and CRC around any payload: gets fuzz past the checksum."""
    return (
        struct.pack(">8sBBHII", MAGIC, major, minor, flags, len(payload), zlib.crc32(payload))
        + payload
    )


def packed(obj: object) -> bytes:
    return frame(msgpack.packb(obj, use_bin_type=True))


def decode_or_reject(data: bytes) -> Memory | None:
    """decode(), allowing only the two documented refusals; a result must be usable as stored."""
    try:
        memory = decode(data)
    except ALLOWED:
        return None
    assert validate(memory) == memory
    # Every id decode accepts must name a date directory, or the store could not hold it.
    assert id_datetime(memory.id).year <= 9999 and is_valid_id(memory.id)
    return memory


# --------------------------------------------------------------------------- strategies

ids = st.builds(
    lambda ms, rnd: records.id_from_parts(ms, int.from_bytes(rnd, "big")),
    st.integers(0, MAX_MS),
    st.binary(min_size=10, max_size=10),
)
offsets = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
short = st.text(max_size=40)
memories = st.builds(
    Memory,
    id=ids,
    session=short,
    created_at=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
    ),
    user=st.text(max_size=300),
    assistant=st.text(max_size=300),
    model=short,
    backend=short,
    provenance=st.sampled_from(list(Provenance)),
    pinned=st.booleans(),
    tags=st.lists(short, max_size=5).map(tuple),
    meta=st.dictionaries(short, st.text(max_size=40), max_size=5),
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=30)
    | st.binary(max_size=30)
)
msgpack_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12) | st.binary(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


# --------------------------------------------------------------------------- valid records


@FUZZ
@given(memories)
def test_any_valid_record_round_trips(memory: Memory) -> None:
    assert decode(encode(memory)) == memory


@FUZZ
@given(memories, st.data())
def test_every_truncation_is_rejected(memory: Memory, data: st.DataObject) -> None:
    blob = encode(memory)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(CorruptRecord):
        decode(blob[:cut])


@FUZZ
@given(memories, st.data())
def test_every_single_bit_flip_is_caught(memory: Memory, data: st.DataObject) -> None:
    """CRC-32 catches every single-bit error; only the version bytes behave differently."""
    blob = bytearray(encode(memory))
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    if bit // 8 == 8:  # major version: a "newer format", kept aside, not read
        with pytest.raises(UnsupportedVersion):
            decode(bytes(blob))
    elif bit // 8 == 9:  # minor version: additive changes only, still readable
        assert decode(bytes(blob)) == memory
    else:
        with pytest.raises(CorruptRecord):
            decode(bytes(blob))


@FUZZ
@given(
    memories,
    st.lists(st.tuples(st.integers(0, 2**16), st.binary(max_size=8)), min_size=1, max_size=4),
)
def test_random_damage_never_escapes_the_two_refusals(
    memory: Memory, edits: list[tuple[int, bytes]]
) -> None:
    blob = bytearray(encode(memory))
    for pos, chunk in edits:  # overwrite, insert or delete a few bytes anywhere
        pos %= len(blob) + 1
        if chunk:
            blob[pos : pos + len(chunk) // 2] = chunk
        else:
            del blob[pos : pos + 3]
    decode_or_reject(bytes(blob))


# --------------------------------------------------------------------------- hostile bytes


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    decode_or_reject(data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_behind_a_valid_magic(data: bytes) -> None:
    decode_or_reject(MAGIC + data)


@FUZZ
@given(msgpack_values)
def test_any_msgpack_payload_with_a_valid_header(obj: object) -> None:
    decode_or_reject(packed(obj))


@FUZZ
@given(
    st.integers(0, 255).filter(lambda v: v != FORMAT_MAJOR),
    st.binary(min_size=HEADER_SIZE - 9, max_size=64),  # a whole header, whatever follows
)
def test_unknown_major_versions_are_unsupported_not_corrupt(major: int, rest: bytes) -> None:
    with pytest.raises(UnsupportedVersion, match=f"record format {major}\\.x "):
        decode(MAGIC + bytes([major]) + rest)


def test_newer_minor_version_with_unknown_keys_still_reads() -> None:
    """Minor versions are additive: a 1.7 writer's extra keys are ignored, not fatal."""
    memory = make_memory(user="hi", at=datetime(2024, 3, 1, tzinfo=UTC))
    payload = msgpack.unpackb(encode(memory)[HEADER_SIZE:])
    payload["mood"] = {"added in": "1.7"}
    assert decode(frame(msgpack.packb(payload), minor=7)) == memory


@FUZZ
@given(st.integers(MAX_PAYLOAD_BYTES + 1, 2**32 - 1), st.binary(max_size=64))
def test_huge_declared_length_is_rejected(length: int, tail: bytes) -> None:
    header = struct.pack(">8sBBHII", MAGIC, 1, 0, 0, length, 0)
    with pytest.raises(CorruptRecord, match="exceeds the limit"):
        decode(header + tail)


def test_length_fields_never_drive_allocation() -> None:
    """A 4 GB length in the header, or in a msgpack str/bin/array/map header, costs nothing."""
    bombs = [
        struct.pack(">8sBBHII", MAGIC, 1, 0, 0, 2**32 - 1, 0) + b"x" * 100,
        frame(b"\xdb\xff\xff\xff\xff" + b"a" * 50),  # str 32
        frame(b"\xc6\xff\xff\xff\xff" + b"a" * 50),  # bin 32
        frame(b"\xdd\xff\xff\xff\xff" + b"\xc0" * 50),  # array 32
        frame(b"\xdf\xff\xff\xff\xff" + b"\xc0" * 50),  # map 32
        frame(b"\x81\xa4tags\xdd\x7f\xff\xff\xff"),  # array 2**31-1 inside a valid map
    ]
    tracemalloc.start()
    try:
        for bomb in bombs:
            tracemalloc.reset_peak()
            with pytest.raises(CorruptRecord):
                decode(bomb)
            assert tracemalloc.get_traced_memory()[1] < 1_000_000
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("arrays", b"\x91" * 100_000 + b"\xc0"),
        ("maps", b"\x81\xa1k" * 100_000 + b"\xc0"),
        ("inside-tags", b"\x81\xa4tags" + b"\x91" * 100_000 + b"\xc0"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_deep_nesting_is_rejected_quickly(name: str, payload: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(CorruptRecord, match=r"not valid msgpack: .+"):  # says why, not just ":"
        decode(frame(payload))
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb(msgpack.ExtType(5, b"data")),
        msgpack.packb({"id": msgpack.ExtType(1, b"x")}),
        msgpack.packb({"user": msgpack.Timestamp(0)}),  # ext -1 decodes natively: wrong type
        msgpack.packb(msgpack.Timestamp(1)),
        msgpack.packb({1: "int key"}),
        msgpack.packb({"user": b"\xff\xfe"}, use_bin_type=False),  # raw str, invalid UTF-8
        b"\xc1",  # the one byte msgpack never uses
        b"",
        msgpack.packb("just a string"),
        msgpack.packb([1, 2, 3]),
    ],
)
def test_odd_msgpack_is_corrupt(payload: bytes) -> None:
    with pytest.raises(CorruptRecord):
        decode(frame(payload))


def test_trailing_bytes_and_flags_are_corrupt() -> None:
    blob = encode(make_memory(user="x"))
    payload = blob[HEADER_SIZE:] + b"\xc0"
    with pytest.raises(CorruptRecord, match="trailing"):
        decode(frame(payload))
    with pytest.raises(CorruptRecord, match="flags"):
        decode(frame(blob[HEADER_SIZE:], flags=1))


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


@pytest.mark.parametrize(
    "data",
    [
        PNG,
        b"Remember to buy milk.\n" * 3,
        b"",
        b"\x00" * 4096,
        b"\x1f\x8b\x08\x00" + b"\x00" * 20,  # gzip
        b'{"id": "01HQWNJQE0040G2081040G2081", "user": "hi"}',
        "\ufeffBOM text".encode("utf-16"),
        MAGIC,  # a header cut short
    ],
    ids=["png", "text", "empty", "zeros", "gzip", "json", "utf16", "magic-only"],
)
def test_foreign_files_are_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptRecord):
        decode(data)


# --------------------------------------------------------------------------- every field


GOOD = {
    "id": "01HQWNJQE0040G2081040G2081",
    "session": "default",
    "created_at": "2024-03-01T09:30:00+00:00",
    "user": "u",
    "assistant": "a",
    "model": "m",
    "backend": "b",
    "provenance": "typed",
    "pinned": False,
    "tags": ["t"],
    "meta": {"k": "v"},
}
STRING_FIELDS = [
    "id",
    "session",
    "created_at",
    "user",
    "assistant",
    "model",
    "backend",
    "provenance",
]
NOT_STRINGS = [0, -1, 1.5, None, True, b"bytes", [], {}, ["x"], {"a": "b"}]
BAD_VALUES: list[tuple[str, object]] = [
    *((f, v) for f in STRING_FIELDS for v in NOT_STRINGS),
    ("id", "not-an-id"),
    ("id", GOOD["id"].lower()),
    ("id", GOOD["id"] + "\n"),  # `$` in a regex also matches before a final newline
    ("id", "8" + GOOD["id"][1:]),  # over 128 bits
    ("id", "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"),  # a valid ULID, but year 10889: no shard for it
    ("id", GOOD["id"][:-1] + "U"),  # not Crockford
    ("created_at", "yesterday"),
    ("created_at", "2024-03-01T09:30:00"),  # naive: whose 09:30?
    ("created_at", ""),
    ("provenance", "dreamed"),
    ("session", "s" * 513),
    ("model", "m" * 513),
    ("backend", "b" * 513),
    *(("pinned", v) for v in [0, 1, "true", None, [], {}, 0.0]),
    *(
        ("tags", v)
        for v in ["work", {"a": "b"}, [1], [None], [b"t"], ["x" * 513], ["t"] * 65, None, 5]
    ),
    *(
        ("meta", v)
        for v in [
            [],
            "k=v",
            {"k": 1},
            {"k": None},
            {"k": b"v"},
            {b"k": "v"},
            {"x" * 513: "v"},
            {str(i): "v" for i in range(257)},
            None,
        ]
    ),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES)
def test_wrong_value_in_any_field_is_corrupt(field: str, value: object) -> None:
    assert decode(packed(GOOD)).id == GOOD["id"]  # the baseline is valid
    with pytest.raises(CorruptRecord):
        decode(packed({**GOOD, field: value}))


@pytest.mark.parametrize("field", ["id", "session", "created_at", "user"])
def test_missing_required_field_is_corrupt(field: str) -> None:
    with pytest.raises(CorruptRecord, match=field):
        decode(packed({k: v for k, v in GOOD.items() if k != field}))


def _wrong_for(field: str, value: object) -> bool:
    if field in STRING_FIELDS:
        return not isinstance(value, str)
    if field == "pinned":
        return not isinstance(value, bool)
    if field == "tags":
        return not isinstance(value, list) or any(not isinstance(t, str) for t in value)
    return not isinstance(value, dict) or any(
        not isinstance(k, str) or not isinstance(v, str) for k, v in value.items()
    )


@FUZZ
@given(st.sampled_from(list(GOOD)), msgpack_values)
def test_fuzzed_type_in_any_field_is_corrupt(field: str, value: object) -> None:
    if not _wrong_for(field, value):
        return
    with pytest.raises(CorruptRecord):
        decode(packed({**GOOD, field: value}))


def test_ids_must_be_canonical_and_placeable() -> None:
    assert is_valid_id(GOOD["id"])
    assert not is_valid_id(GOOD["id"] + "\n")
    assert not is_valid_id("7ZZZZZZZZZZZZZZZZZZZZZZZZZ")
    last = records.id_from_parts(MAX_MS, (1 << 80) - 1)
    past_9999 = records.id_from_parts(MAX_MS + 1, 0)
    assert is_valid_id(last) and not is_valid_id(past_9999)
    with pytest.raises(InvalidRecord):
        validate(Memory(id=GOOD["id"] + "\n", session="s", created_at=datetime.now(UTC), user="u"))


# --------------------------------------------------------------------------- frozen fixtures

FIXTURES = Path(__file__).parent / "fixtures" / "records" / "v1.0"
IST = timezone(timedelta(hours=5, minutes=30))
EST = timezone(timedelta(hours=-5))
#: Literal on purpose (not imported from make_fixtures.py): this is the contract, in one place.
EXPECTED_V1_0: dict[str, Memory] = {
    "basic": Memory(
        id="01HQWNJQE0040G2081040G2081",
        session="default",
        created_at=datetime(2024, 3, 1, 9, 30, tzinfo=UTC),
        user="What is the capital of France?",
        assistant="Paris.",
        model="llama3.2:3b",
        backend="ollama",
        provenance=Provenance.TYPED,
        pinned=False,
        tags=(),
        meta={},
    ),
    "unicode": Memory(
        id="01HQXAF93K081040G2081040G2",
        session="日本語セッション",
        created_at=datetime(2024, 3, 1, 21, 5, 7, 123456, tzinfo=IST),
        user="Ünïcödé: café, naïve, 日本語, العربية, emoji 🙂👍🏽, e\u0301 stays decomposed",
        assistant="Réponse : ça va 😊\n多行\ttab \u200b zero-width",
        model="qwen2.5:0.5b",
        backend="llama.cpp",
        provenance=Provenance.TYPED,
        pinned=False,
        tags=("café", "日本"),
        meta={},
    ),
    "empty_assistant": Memory(
        id="01JGFJJY0R0C1G60R30C1G60R3",
        session="s-2024-12-31",
        created_at=datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
        user="remember: my locker code is 4512",
        assistant="",
        model="",
        backend="",
        provenance=Provenance.TYPED,
        pinned=False,
        tags=(),
        meta={},
    ),
    "meta_tags": Memory(
        id="01JHN0S8400G2081040G208104",
        session="import-1",
        created_at=datetime(2025, 1, 15, 8, 0, tzinfo=EST),
        user="Summarise the Q1 plan",
        assistant="1. Ship import. 2. Fix recall.",
        model="gpt-4o-mini",
        backend="openai-compatible",
        provenance=Provenance.IMPORTED,
        pinned=False,
        tags=("work", "project-x", "q1"),
        meta={"source": "chatgpt-export.json", "conversation": "c-42", "note": ""},
    ),
    "pinned": Memory(
        id="01JWNNSVG00M2GA1850M2GA185",
        session="default",
        created_at=datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
        user="2+2?",
        assistant="4",
        model="gemma3:270m",
        backend="ollama",
        provenance=Provenance.TOOL,
        pinned=True,
        tags=("pinned",),
        meta={"tool": "calculator"},
    ),
    "minimal": Memory(  # only the required keys on disk: the rest are the documented defaults
        id="01H4F35T000R30C1G60R30C1G6",
        session="default",
        created_at=datetime(2023, 7, 4, tzinfo=UTC),
        user="hello",
        assistant="",
        model="",
        backend="",
        provenance=Provenance.TYPED,
        pinned=False,
        tags=(),
        meta={},
    ),
}


def test_fixture_set_is_complete() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.memo")) == sorted(EXPECTED_V1_0)


@pytest.mark.parametrize("name", sorted(EXPECTED_V1_0))
def test_v1_0_fixture_decodes_to_exact_values(name: str) -> None:
    data = (FIXTURES / f"{name}.memo").read_bytes()
    assert data[:8] == MAGIC and data[8:10] == b"\x01\x00"  # really a 1.0 file
    memory = decode(data)
    expected = EXPECTED_V1_0[name]
    assert memory == expected
    # == on aware datetimes compares instants; the file also keeps the writer's offset.
    assert memory.created_at.isoformat() == expected.created_at.isoformat()
    assert type(memory.provenance) is Provenance and type(memory.tags) is tuple


@pytest.mark.parametrize("name", sorted(set(EXPECTED_V1_0) - {"minimal"}))
def test_current_writer_still_produces_v1_0_bytes(name: str) -> None:
    if (FORMAT_MAJOR, FORMAT_MINOR) != (1, 0):
        pytest.skip(f"writer is now {FORMAT_MAJOR}.{FORMAT_MINOR}; its own fixtures cover it")
    assert encode(EXPECTED_V1_0[name]) == (FIXTURES / f"{name}.memo").read_bytes()


def test_v1_0_fixtures_read_through_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for name, expected in EXPECTED_V1_0.items():
        path = store.path_for(expected.id)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / f"{name}.memo", path)
    assert sorted(store.iter_ids()) == sorted(m.id for m in EXPECTED_V1_0.values())
    for expected in EXPECTED_V1_0.values():
        assert store.read(expected.id) == expected


# --------------------------------------------------------------------------- through the store


def _log(root: Path) -> list[dict[str, object]]:
    path = quarantine_dir(root) / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def populated(tmp_path: Path) -> tuple[Store, list[Memory]]:
    store = Store(tmp_path)
    good = [
        make_memory(user=f"good {i}", at=datetime(2024, 3, 1 + i % 2, 10, i, tzinfo=UTC))
        for i in range(6)
    ]
    store.write_batch(good)
    return store, good


def test_corrupt_files_are_quarantined_and_everything_else_loads(
    populated: tuple[Store, list[Memory]],
) -> None:
    store, good = populated
    donor = encode(good[0])
    flipped = bytearray(donor)
    flipped[len(flipped) // 2] ^= 0x10
    bad_contents = {
        "truncated": (donor[:-7], "bytes but its header declares"),
        "bit flip": (bytes(flipped), "checksum mismatch"),
        "empty": (b"", "shorter than a record header"),
        "zeros": (b"\0" * len(donor), "bad magic"),
        "png": (PNG, "bad magic"),
        "other id": (donor, f"file holds record {good[0].id}"),
        "bad field": (packed({**GOOD, "pinned": "yes"}), "pinned must be true or false"),
    }
    planted = {}
    for i, (label, (data, reason)) in enumerate(bad_contents.items()):
        bad = make_memory(user=label, at=datetime(2024, 3, 1 + i % 2, 11, i, tzinfo=UTC))
        path = store.path_for(bad.id)
        path.write_bytes(data)
        planted[bad.id] = (path, reason, data)
    assert sorted(store.scan().ids) == sorted([m.id for m in good] + list(planted))

    fresh = Store(store.root)  # as a later run of the app would see it
    for memory_id, (path, reason, data) in planted.items():
        with pytest.raises(CorruptRecord, match=reason.replace("(", r"\(")):
            fresh.read(memory_id)
        assert not path.exists()
        moved = store.quarantine_dir / path.name
        assert moved.read_bytes() == data  # moved intact, for the user to inspect
        with pytest.raises(NotFound):
            fresh.read(memory_id)  # quarantined once, then simply absent

    log = _log(store.root)
    assert [entry["file"] for entry in log] == [str(p) for p, _r, _d in planted.values()]
    for entry, (_path, reason, _data) in zip(log, planted.values(), strict=True):
        assert reason in str(entry["reason"])
    assert [q.original for q in fresh.quarantined] == [p for p, _r, _d in planted.values()]
    assert [fresh.read(m.id) for m in good] == good
    assert sorted(fresh.scan().ids) == sorted(m.id for m in good)


def test_file_too_large_is_refused_before_reading(populated: tuple[Store, list[Memory]]) -> None:
    store, good = populated
    huge = make_memory(user="huge", at=datetime(2024, 3, 1, 12, tzinfo=UTC))
    path = store.path_for(huge.id)
    with open(path, "wb") as f:
        f.truncate(5 * 2**30)  # sparse 5 GiB: costs no disk, would cost RAM if read
    tracemalloc.start()
    try:
        with pytest.raises(CorruptRecord, match=r"over the \d+-byte record limit"):
            store.read(huge.id)
        assert tracemalloc.get_traced_memory()[1] < 1_000_000
    finally:
        tracemalloc.stop()
    assert (store.quarantine_dir / path.name).exists()
    assert [store.read(m.id) for m in good] == good


def test_newer_major_version_is_kept_in_place_not_quarantined(
    populated: tuple[Store, list[Memory]],
) -> None:
    store, good = populated
    future = make_memory(user="from the future", at=datetime(2024, 3, 2, 9, tzinfo=UTC))
    path = store.path_for(future.id)
    path.write_bytes(frame(b"\x80", major=2))
    with pytest.raises(UnsupportedVersion, match=r"record format 2\.x "):
        store.read(future.id)
    assert path.exists() and _log(store.root) == []
    assert not store.quarantined
    assert [store.read(m.id) for m in good] == good


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_non_regular_file_at_a_record_path_never_hangs(
    populated: tuple[Store, list[Memory]], kind: str
) -> None:
    """A named pipe where a record should be would block open() forever; refuse it instead."""
    store, good = populated
    odd = make_memory(user=kind, at=datetime(2024, 3, 1, 13, tzinfo=UTC))
    path = store.path_for(odd.id)
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    else:
        path.mkdir()
    outcome: list[BaseException | Memory] = []

    def attempt() -> None:
        try:
            outcome.append(store.read(odd.id))
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # unblock the stuck open() so the test run can finish
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
        pytest.fail(f"Store.read blocked on a {kind}")
    assert len(outcome) == 1 and isinstance(outcome[0], CorruptRecord), outcome
    assert not path.exists() and (store.quarantine_dir / path.name).exists()
    assert [store.read(m.id) for m in good] == good


def test_far_future_or_malformed_ids_are_not_found_not_a_crash(
    populated: tuple[Store, list[Memory]],
) -> None:
    store, _good = populated
    for bad in ["7ZZZZZZZZZZZZZZZZZZZZZZZZZ", GOOD["id"] + "\n", "", "../../etc/passwd"]:
        with pytest.raises(NotFound):
            store.read(bad)
        assert not store.exists(bad)


def test_scan_and_quarantine_foreign_files(populated: tuple[Store, list[Memory]]) -> None:
    store, good = populated
    day1 = store.path_for(good[0].id).parent
    day2 = store.path_for(good[1].id).parent
    assert day1 != day2
    a_id = good[0].id
    foreign = [
        day1 / "notes.txt",
        day2 / "notes.txt",  # same name twice: the quarantine must not overwrite
        day1 / "photo.png",
        day1 / ".DS_Store",
        day1 / "Thumbs.db",
        day1 / f"{a_id}.sync-conflict-20240301-101010-ABCDEFG.memo",  # Syncthing
        day1 / f"{a_id}.memo~",  # editor backup
        day1 / f"{a_id.lower()}.memo",  # not canonical
        day1 / f"{a_id}.MEMO",
    ]
    for path in foreign:
        path.write_bytes(PNG if path.suffix == ".png" else b"not a record\n")
    temp = day1 / f".{a_id}.999999.1.tmp"
    temp.write_bytes(b"debris")

    scan = store.scan()
    assert sorted(scan.foreign) == sorted(foreign)
    assert scan.temps == [temp]
    assert sorted(scan.ids) == sorted(m.id for m in good)

    moved = store.quarantine_foreign(scan.foreign)

    assert sorted(q.original for q in moved) == sorted(foreign)
    assert not any(p.exists() for p in foreign)
    names = sorted(p.name for p in store.quarantine_dir.iterdir())
    assert "notes.txt" in names and "notes.txt.1" in names
    log = _log(store.root)
    assert len(log) == len(foreign)
    assert {e["reason"] for e in log} == {"not a memo-shell record file"}
    after = store.scan()
    assert after.foreign == [] and after.temps == [temp]
    assert [store.read(m.id) for m in good] == good
