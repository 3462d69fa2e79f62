"""The JSON Lines interchange format used by ``mem import`` and ``mem export``.

One object per line: ``{"user": str, "assistant": str?, "session": str?, "at": ISO 8601?,
"meta": {str: str}?}``. Export adds ``id`` and the remaining record fields (``model``,
``backend``, ``provenance``, ``pinned``, ``tags``) so that export → import round-trips without
loss; import accepts all of them. Unknown keys are rejected rather than dropped, because a typo
such as ``"asistant"`` would otherwise silently lose half of a memory.

Every line is validated completely (JSON, types, text that UTF-8 can encode, the record's
encoded size) before it joins a batch, so one bad line is rejected alone and never aborts the
others. A line without an ``id`` gets a deterministic one, from its time and a hash of its
content, so importing the same file again (or re-running an interrupted import) finds those
memories "already present" instead of storing them twice. An undated line's time is the
file's modification time plus its line number in milliseconds (stable across re-runs of an
unchanged file, and keeping line order); from a pipe it is the time of the import.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from memo_shell import records
from memo_shell.records import InvalidRecord, Memory, Provenance

#: A line longer than this cannot hold a record we could store; it is skipped, not read whole.
MAX_LINE_BYTES = records.MAX_PAYLOAD_BYTES
_KNOWN_KEYS = {
    "id",
    "user",
    "assistant",
    "session",
    "at",
    "meta",
    "model",
    "backend",
    "provenance",
    "pinned",
    "tags",
}


class LineError(ValueError):
    """Why one import line was rejected (the message names no line number; the caller adds it)."""


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str


def memory_to_json(memory: Memory) -> dict[str, Any]:
    """The JSON shape shared by export, ``mem show --json`` and ``recall --json``."""
    return {
        "id": memory.id,
        "session": memory.session,
        "at": memory.created_at.isoformat(),
        "user": memory.user,
        "assistant": memory.assistant,
        "meta": memory.meta,
        "model": memory.model,
        "backend": memory.backend,
        "provenance": str(memory.provenance),
        "pinned": memory.pinned,
        "tags": list(memory.tags),
    }


def _expect(obj: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = obj.get(key, default)
    if not isinstance(value, kind) or (kind is str and isinstance(value, bool)):
        raise LineError(f'"{key}" must be a {kind.__name__}, not {type(value).__name__}')
    return value


def content_id(memory: Memory) -> str:
    """A deterministic id: the memory's time, then 80 bits of a hash of everything else.

    The same line imported twice yields the same id, so the store reports it present.
    """
    canonical = json.dumps(
        [
            memory.created_at.isoformat(),
            memory.session,
            memory.user,
            memory.assistant,
            memory.model,
            memory.backend,
            str(memory.provenance),
            memory.pinned,
            list(memory.tags),
            sorted(memory.meta.items()),
        ],
        ensure_ascii=True,
    ).encode("ascii")
    digest = hashlib.blake2b(canonical, digest_size=10).digest()
    millis = int(memory.created_at.timestamp() * 1000)
    return records.id_from_parts(millis, int.from_bytes(digest, "big"))


def parse_object(
    obj: Any, *, default_session: str = "imported", undated: datetime | None = None
) -> Memory:
    """Turn one decoded JSON value into a validated record (provenance "imported" by default).

    ``undated``: the time given to a line without ``at`` (default: now). The record is
    encoded once here, so a line too large or holding text UTF-8 cannot carry (a lone
    surrogate from a ``"\ud800"`` escape) is rejected by itself rather than failing a batch.
    """
    if not isinstance(obj, dict):
        raise LineError(f"expected a JSON object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - _KNOWN_KEYS)
    if unknown:
        raise LineError(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(_KNOWN_KEYS))})")
    if "user" not in obj:
        raise LineError('missing "user"')
    meta = _expect(obj, "meta", dict, {})
    for key, value in meta.items():
        if not isinstance(value, str):
            raise LineError(f'"meta" values must be strings ("{key}" is {type(value).__name__})')
    tags = _expect(obj, "tags", list, [])
    if not all(isinstance(t, str) for t in tags):
        raise LineError('"tags" must be a list of strings')
    at = _expect(obj, "at", str, "") or None
    given_id = obj.get("id")
    if given_id is not None and not records.is_valid_id(given_id):
        raise LineError(f'"id" {str(given_id)[:40]!r} is not a memory id')
    try:
        memory = records.make_memory(
            user=_expect(obj, "user", str, ""),
            assistant=_expect(obj, "assistant", str, ""),
            session=_expect(obj, "session", str, default_session) or default_session,
            at=records.parse_datetime(at) if at else undated,
            model=_expect(obj, "model", str, ""),
            backend=_expect(obj, "backend", str, ""),
            provenance=_expect(obj, "provenance", str, str(Provenance.IMPORTED)),
            pinned=_expect(obj, "pinned", bool, False),
            tags=tags,
            meta=meta,
        )
        memory = memory.with_changes(id=given_id if given_id is not None else content_id(memory))
        records.encode(memory)  # size and encodability, checked for this line alone
    except InvalidRecord as exc:
        raise LineError(str(exc)) from exc
    return memory


def parse_line(
    raw: bytes, *, default_session: str = "imported", undated: datetime | None = None
) -> Memory:
    """Decode one line's bytes (UTF-8 JSON) into a record, or raise LineError saying why."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 (byte {exc.start})") from exc
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    except RecursionError as exc:
        raise LineError("JSON nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise LineError(f"not valid JSON ({exc})") from exc
    return parse_object(obj, default_session=default_session, undated=undated)


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes | None, int]]:
    """Yield (line number, bytes or None if over the limit, byte count) without loading huge lines.

    A line longer than MAX_LINE_BYTES is consumed in chunks and reported as None, so a 10 GB
    single line costs constant memory and everything after it still imports.
    """
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            size = len(line)
            while True:
                chunk = stream.readline(1 << 20)
                size += len(chunk)
                if not chunk or chunk.endswith(b"\n"):
                    break
            yield number, None, size
            continue
        yield number, line, len(line)


def iter_import(
    stream: IO[bytes], *, default_session: str = "imported", undated: datetime | None = None
) -> Iterator[tuple[int, Memory | Rejected, int]]:
    """Parse a JSONL stream into (line number, record or rejection, bytes); skips blank lines.

    ``undated``: the base time of lines without ``at`` (line N gets it plus N ms); give the
    source file's modification time so a re-run yields the same ids. Default: now.
    """
    base = undated if undated is not None else datetime.now().astimezone()
    for number, raw, size in read_lines(stream):
        if raw is None:
            reason = f"line is {size / 1e6:.1f} MB, over the {MAX_LINE_BYTES // 2**20} MiB limit"
            yield number, Rejected(number, reason), size
            continue
        if not raw.strip():
            continue
        try:
            when = base + timedelta(milliseconds=number)
            yield number, parse_line(raw, default_session=default_session, undated=when), size
        except LineError as exc:
            reason = str(exc)  # bounded: a reason may quote the line
            reason = reason if len(reason) <= 300 else reason[:299] + "…"
            yield number, Rejected(number, reason), size
