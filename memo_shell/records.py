"""The memory record and its on-disk encoding.

One interaction (the user's message and the model's reply) is one record, and one record is one
file. The file is a fixed header followed by a msgpack payload:

    offset  size  field
    0       8     magic  b"\\x89MEMO\\r\\n\\x1a" (PNG-style: catches text-mode mangling and
                  foreign files at a glance)
    8       1     major format version (readers reject majors they do not know)
    9       1     minor format version (additive changes only; unknown keys are ignored)
    10      2     flags (reserved, must be 0 in 1.x)
    12      4     payload length in bytes, big-endian
    16      4     CRC-32 of the payload, big-endian

The file must be exactly ``HEADER_SIZE + length`` bytes long. A torn write (short file), trailing
garbage, a flipped bit or a file from another program all fail one of those checks, so a record
is either decoded whole or rejected: it is never half-read.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import time
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgpack

from memo_shell.errors import MemoShellError

MAGIC = b"\x89MEMO\r\n\x1a"
FORMAT_MAJOR = 1
FORMAT_MINOR = 0
_HEADER = struct.Struct(">8sBBHII")
HEADER_SIZE = _HEADER.size

#: Largest payload we write or read. Big enough for a long pasted document and its reply, small
#: enough that a hostile "length" field can never make us allocate gigabytes.
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
MAX_FILE_BYTES = HEADER_SIZE + MAX_PAYLOAD_BYTES
MAX_TAGS = 64
MAX_META_ITEMS = 256
MAX_SHORT_FIELD = 512  # session, model, backend, tags, meta keys

_ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")  # used with fullmatch: `$` allows "\n"
#: Time part of 9999-12-31T23:59:59.999Z, the last instant a ``memories/YYYY/`` shard can name.
#: The Crockford alphabet is in ASCII order, so comparing the strings compares the times.
_MAX_TIME_PREFIX = "76EZ91ZPZZ"


class Provenance(StrEnum):
    """Where a memory came from; shown to the user beside every recalled memory."""

    TYPED = "typed"
    IMPORTED = "imported"
    TOOL = "tool"


class RecordError(MemoShellError):
    """Base class for every reason a record cannot be built, encoded or decoded.

    A MemoShellError, so a surface that meets one (a corrupt file, a newer format, a bad
    field) prints its one sentence instead of a traceback.
    """


class CorruptRecord(RecordError):
    """The bytes are not a whole, valid record: torn, truncated, bit-flipped or foreign."""


class UnsupportedVersion(RecordError):
    """A valid-looking record from a newer major format: keep the file, do not read it."""


class InvalidRecord(RecordError):
    """Caller-supplied fields that cannot form a record (bad types, too large, bad id)."""


@dataclass(frozen=True, slots=True)
class Memory:
    """One remembered interaction. Immutable: pin/tag changes produce a new value and a rewrite."""

    id: str
    session: str
    created_at: datetime
    user: str
    assistant: str = ""
    model: str = ""
    backend: str = ""
    provenance: Provenance = Provenance.TYPED
    pinned: bool = False
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> Memory:
        """Return a copy with some fields replaced, re-validated."""
        return validate(replace(self, **changes))

    @property
    def text(self) -> str:
        """Everything recall should search: both sides of the interaction."""
        return f"{self.user}\n{self.assistant}" if self.assistant else self.user


def is_valid_id(value: str) -> bool:
    """True for a canonical ULID string (26 Crockford base32 characters, upper case).

    Its time must fall within year 9999, or the record could not be placed in a date shard.
    """
    return (
        isinstance(value, str)
        and _ULID_RE.fullmatch(value) is not None
        and value[:10] <= _MAX_TIME_PREFIX
    )


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_MAX_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z (see _MAX_TIME_PREFIX)


#: (milliseconds, random part) of the id made last, for monotonicity. -1: none made yet; a
#: start at 0 made the first id of 1970-01-01T00:00:00Z look like "same millisecond" and get
#: the predictable random part 1 (so two processes minted the same id).
_last_id = [-1, 0]
_id_lock = threading.Lock()


def _reset_after_fork() -> None:
    """A forked child must not continue its parent's sequence: both would mint the same ids."""
    global _id_lock
    _last_id[0], _last_id[1] = -1, 0
    _id_lock = threading.Lock()  # the parent may have held it at fork time


os.register_at_fork(after_in_child=_reset_after_fork)


def new_id(at: datetime | None = None) -> str:
    """A ULID whose time part is the memory's own time, so file order is conversation order.

    48 bits of milliseconds since the epoch, then 80 random bits, as 26 Crockford base32
    characters (the ULID spec). Ids made in the same millisecond as the previous one take its
    random part plus one (the spec's monotonic mode), so a fast import keeps its line order.
    Written out here rather than imported: the library costs ~30 ms of start-up.
    """
    seconds = at.timestamp() if at is not None else time.time()
    millis = int(seconds * 1000)
    if not 0 <= millis <= _MAX_MILLIS:
        raise InvalidRecord(
            "a memory's date must fall between 1970-01-01 and 9999-12-31 (UTC): "
            "ids count milliseconds from 1970"
        )
    with _id_lock:
        if millis == _last_id[0] and _last_id[1] < (1 << 80) - 1:
            random_part = _last_id[1] + 1
        else:
            random_part = int.from_bytes(os.urandom(10), "big")
        _last_id[0], _last_id[1] = millis, random_part
    return id_from_parts(millis, random_part)


def id_from_parts(millis: int, random_part: int) -> str:
    """Encode a ULID from its 48-bit time and 80-bit random parts (tests use it for fixed ids)."""
    value = (millis << 80) | random_part
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


_CROCKFORD_VALUE = {c: i for i, c in enumerate(_CROCKFORD)}


def id_milliseconds(memory_id: str) -> int:
    """Milliseconds since the epoch in a ULID's first 10 characters.

    Decoded by hand because it sits on the path of every file lookup, and a full ULID parse
    costs ~25 µs against ~1 µs here.
    """
    if not is_valid_id(memory_id):
        raise InvalidRecord(f"not a memory id: {memory_id!r}")
    value = 0
    for char in memory_id[:10]:
        value = value * 32 + _CROCKFORD_VALUE[char]
    return value


def id_datetime(memory_id: str) -> datetime:
    """The UTC instant encoded in a ULID (used to place its file without any lookup)."""
    return datetime.fromtimestamp(id_milliseconds(memory_id) / 1000, UTC)


def aware(dt: datetime) -> datetime:
    """Naive datetimes are taken as local time, the way a user typing a date means it."""
    return dt if dt.tzinfo is not None else dt.astimezone()


def parse_datetime(text: str) -> datetime:
    """Parse ISO 8601 (``2023-05-08``, ``...T13:56``, ``...Z``, offsets) to an aware value."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise InvalidRecord(f"not an ISO 8601 date/time: {text!r}") from exc
    try:
        return aware(parsed)
    except (ValueError, OverflowError) as exc:  # 0001-01-01 has no local time before it
        raise InvalidRecord(
            f"{text[:40]!r} is out of range: a memory's date must fall between 1970 and 9999"
        ) from exc


def clean_text(text: str) -> str:
    """Normalise to NFC and drop NUL, which no terminal or prompt should ever carry."""
    return unicodedata.normalize("NFC", text).replace("\x00", "")


def _check_short(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} must be a string, not {type(value).__name__}")
    if len(value) > MAX_SHORT_FIELD:
        raise InvalidRecord(f"{name} is longer than {MAX_SHORT_FIELD} characters")
    _check_encodable(name, value)
    return value


def _check_encodable(name: str, value: str) -> None:
    """Text must be valid Unicode to be stored as UTF-8: a lone surrogate (from a JSON
    ``"\ud800"`` escape, or an undecodable byte in a command-line argument) is not."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRecord(
            f"{name} holds an invalid character at position {exc.start} "
            f"({value[exc.start]!r}: a lone surrogate or undecodable byte), "
            "which cannot be stored as UTF-8"
        ) from None


def validate(memory: Memory) -> Memory:
    """Check every field's type and size; the one gate for records built in code or decoded."""
    if not is_valid_id(memory.id):
        raise InvalidRecord(f"not a memory id: {memory.id!r}")
    _check_short("session", memory.session)
    _check_short("model", memory.model)
    _check_short("backend", memory.backend)
    if not isinstance(memory.user, str) or not isinstance(memory.assistant, str):
        raise InvalidRecord("user and assistant must be strings")
    _check_encodable("user", memory.user)
    _check_encodable("assistant", memory.assistant)
    if not isinstance(memory.created_at, datetime) or memory.created_at.tzinfo is None:
        raise InvalidRecord("created_at must be a timezone-aware datetime")
    if not isinstance(memory.pinned, bool):
        raise InvalidRecord("pinned must be true or false")
    try:
        provenance = Provenance(memory.provenance)
    except ValueError as exc:
        raise InvalidRecord(f"unknown provenance {memory.provenance!r}") from exc
    if not isinstance(memory.tags, tuple) or len(memory.tags) > MAX_TAGS:
        raise InvalidRecord(f"tags must be a list of at most {MAX_TAGS} strings")
    for tag in memory.tags:
        _check_short("tag", tag)
    if not isinstance(memory.meta, dict) or len(memory.meta) > MAX_META_ITEMS:
        raise InvalidRecord(f"meta must be a map of at most {MAX_META_ITEMS} string pairs")
    for key, value in memory.meta.items():
        _check_short("meta key", key)
        if not isinstance(value, str):
            raise InvalidRecord(f"meta value for {key!r} must be a string")
    if provenance is not memory.provenance:
        memory = replace(memory, provenance=provenance)
    return memory


def make_memory(
    *,
    user: str,
    assistant: str = "",
    session: str = "default",
    at: datetime | None = None,
    model: str = "",
    backend: str = "",
    provenance: Provenance | str = Provenance.TYPED,
    pinned: bool = False,
    tags: tuple[str, ...] | list[str] = (),
    meta: dict[str, str] | None = None,
) -> Memory:
    """Build a new, validated record with a fresh time-ordered id."""
    created = aware(at) if at is not None else datetime.now(UTC).astimezone()
    if not isinstance(user, str) or not isinstance(assistant, str):
        raise InvalidRecord("user and assistant must be strings")
    memory = Memory(
        id=new_id(created),
        session=session,
        created_at=created,
        user=clean_text(user),
        assistant=clean_text(assistant),
        model=model,
        backend=backend,
        provenance=provenance,  # type: ignore[arg-type]  # validated just below
        pinned=pinned,
        tags=tuple(tags),
        meta=dict(meta or {}),
    )
    return validate(memory)


def _to_payload(memory: Memory) -> dict[str, Any]:
    return {
        "id": memory.id,
        "session": memory.session,
        "created_at": memory.created_at.isoformat(),
        "user": memory.user,
        "assistant": memory.assistant,
        "model": memory.model,
        "backend": memory.backend,
        "provenance": str(memory.provenance),
        "pinned": memory.pinned,
        "tags": list(memory.tags),
        "meta": memory.meta,
    }


def encode(memory: Memory) -> bytes:
    """Serialise a record to the bytes of its file (header + payload)."""
    payload = msgpack.packb(_to_payload(validate(memory)), use_bin_type=True)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InvalidRecord(
            f"memory is {len(payload) / 1e6:.1f} MB; the limit is {MAX_PAYLOAD_BYTES // 2**20} MiB"
        )
    header = _HEADER.pack(MAGIC, FORMAT_MAJOR, FORMAT_MINOR, 0, len(payload), zlib.crc32(payload))
    return header + payload


def _reject_ext(code: int, data: bytes) -> object:
    raise CorruptRecord(f"unexpected msgpack extension type {code}")


def _unpack_payload(payload: bytes) -> object:
    unpacker = msgpack.Unpacker(
        None,
        raw=False,
        strict_map_key=True,
        max_buffer_size=max(len(payload), 1),
        ext_hook=_reject_ext,
    )
    unpacker.feed(payload)
    try:
        obj = unpacker.unpack()
    except msgpack.OutOfData as exc:
        raise CorruptRecord("payload ends early") from exc
    except CorruptRecord:
        raise
    except (ValueError, TypeError, msgpack.StackError, msgpack.ExtraData) as exc:
        why = str(exc) or type(exc).__name__  # StackError has no message of its own
        raise CorruptRecord(f"payload is not valid msgpack: {why}") from exc
    if unpacker.tell() != len(payload):
        raise CorruptRecord("payload has trailing bytes")
    return obj


def _str_field(obj: dict[str, Any], key: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise CorruptRecord(f"field {key!r} is missing or not a string")
    return value


_PROVENANCE = {str(p): p for p in Provenance}


def _from_payload(obj: object) -> Memory:
    if not isinstance(obj, dict):
        raise CorruptRecord("payload is not a map")
    tags = obj.get("tags", [])
    meta = obj.get("meta", {})
    if not isinstance(tags, list) or not isinstance(meta, dict):
        raise CorruptRecord("tags or meta have the wrong type")
    try:
        created_at = datetime.fromisoformat(_str_field(obj, "created_at"))
    except ValueError as exc:
        raise CorruptRecord("created_at is not an ISO 8601 time") from exc
    try:
        return validate(
            Memory(
                id=_str_field(obj, "id"),
                session=_str_field(obj, "session"),
                created_at=created_at,
                user=_str_field(obj, "user"),
                assistant=_str_field(obj, "assistant", ""),
                model=_str_field(obj, "model", ""),
                backend=_str_field(obj, "backend", ""),
                # as the enum already, so validate() need not copy the record to convert it
                # (a dataclasses.replace per record was a tenth of reindex); it reports others
                provenance=_PROVENANCE.get(p := _str_field(obj, "provenance", "typed"), p),  # type: ignore[arg-type]
                pinned=obj.get("pinned", False),
                tags=tuple(tags),
                meta=meta,
            )
        )
    except InvalidRecord as exc:
        raise CorruptRecord(str(exc)) from exc


#: The upgrade registry: ``UPGRADES[n]`` turns the payload (a map) of a format ``n.x`` record into
#: that of format ``n+1``. A reader upgrades older records step by step on decode and never
#: rewrites their files; minor versions are additive and need no step. Empty while 1 is the only
#: format. Bumping FORMAT_MAJOR means: register the step from the old major here, and freeze
#: fixtures of the new format in ``tests/fixtures/records/v<major>.0`` beside the old ones
#: (tests/test_records.py checks both).
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _readable(major: int) -> bool:
    """Whether records of format ``major`` can be read: this one, or older with every step."""
    return major == FORMAT_MAJOR or (
        0 < major < FORMAT_MAJOR and all(n in UPGRADES for n in range(major, FORMAT_MAJOR))
    )


def _upgrade(major: int, obj: object) -> object:
    """A format ``major`` payload brought to FORMAT_MAJOR, one registered step at a time."""
    for step in range(major, FORMAT_MAJOR):
        if not isinstance(obj, dict):
            raise CorruptRecord("payload is not a map")
        try:
            obj = UPGRADES[step](obj)
        except (KeyError, TypeError, ValueError) as exc:  # an old record the step cannot read
            raise CorruptRecord(f"format {step}.x record cannot be upgraded: {exc}") from exc
    return obj


def decode(data: bytes) -> Memory:
    """Decode a whole file's bytes, or raise CorruptRecord / UnsupportedVersion. Never partial."""
    if len(data) < HEADER_SIZE:
        raise CorruptRecord(f"file is {len(data)} bytes, shorter than a record header")
    magic, major, _minor, flags, length, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CorruptRecord("not a memo-shell record (bad magic)")
    if not _readable(major):
        raise UnsupportedVersion(
            f"record format {major}.x is newer than this memo-shell reads ({FORMAT_MAJOR}.x); "
            "upgrade memo-shell to read it"
            if major > FORMAT_MAJOR
            else f"record format {major}.x is not one this memo-shell reads ({FORMAT_MAJOR}.x)"
        )
    if flags != 0:
        raise CorruptRecord(f"unknown header flags {flags:#06x}")
    if length > MAX_PAYLOAD_BYTES:
        raise CorruptRecord(f"declared payload length {length} exceeds the limit")
    if len(data) != HEADER_SIZE + length:
        raise CorruptRecord(
            f"file is {len(data)} bytes but its header declares {HEADER_SIZE + length}"
        )
    payload = data[HEADER_SIZE:]
    if zlib.crc32(payload) != crc:
        raise CorruptRecord("checksum mismatch (torn or bit-flipped file)")
    return _from_payload(_upgrade(major, _unpack_payload(payload)))
