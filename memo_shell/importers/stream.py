"""Reading an export without loading it: the top-level JSON array, one conversation at a time.

A heavy user's ChatGPT export is hundreds of megabytes of JSON; ``json.load`` would need several
times that in memory. ``ijson`` parses incrementally, so only one conversation is held at once.
A ``.zip`` export is read by streaming its member out of the archive, never extracted.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import ijson

from memo_shell.errors import MemoShellError
from memo_shell.importers.base import Problem

#: Called with the number of bytes read since the last call (drives progress bars).
Progress = Callable[[int], None]


class _Counting:
    """A read-only file wrapper that reports how many bytes were read (for progress)."""

    def __init__(self, raw: IO[bytes], progress: Progress | None) -> None:
        self.raw = raw
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if self.progress is not None and data:
            self.progress(len(data))
        return data


def _member(archive: zipfile.ZipFile, names: tuple[str, ...]) -> zipfile.ZipInfo:
    """The archive member holding the conversations (at the top or in one folder)."""
    candidates = [
        info
        for info in archive.infolist()
        if not info.is_dir() and info.filename.rsplit("/", 1)[-1] in names
    ]
    if not candidates:
        raise MemoShellError(f"the archive holds no {' or '.join(names)}")
    return min(candidates, key=lambda info: info.filename.count("/"))


def size_of(path: Path, names: tuple[str, ...] = ("conversations.json",)) -> int:
    """Bytes the import will read (the uncompressed member for a .zip), for a progress total."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _member(archive, names).file_size
        return path.stat().st_size
    except (OSError, zipfile.BadZipFile):
        return 0


@contextmanager
def open_json(
    path: Path,
    names: tuple[str, ...] = ("conversations.json",),
    progress: Progress | None = None,
) -> Iterator[_Counting]:
    """Open a JSON export, or the right member of a ``.zip`` export, as a byte stream."""
    with ExitStack() as stack:
        try:
            if zipfile.is_zipfile(path):
                archive = stack.enter_context(zipfile.ZipFile(path))
                raw = stack.enter_context(archive.open(_member(archive, names)))
            else:
                raw = stack.enter_context(open(path, "rb"))
        except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
            # RuntimeError: an encrypted member; NotImplementedError: an unknown compression
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise MemoShellError(f"cannot read {path}: {reason}") from exc
        yield _Counting(raw, progress)


def _first_byte(stream: _Counting) -> tuple[bytes, _Counting]:
    """Peek at the first non-blank byte, then hand back a stream that still starts with it."""
    head = b""
    while True:
        chunk = stream.read(1)
        if not chunk:
            return b"", stream
        if chunk in (b"\xef", b"\xbb", b"\xbf"):
            continue  # a UTF-8 byte-order mark, which the parser would choke on
        head += chunk
        if not chunk.isspace():
            break

    class _Prefixed:
        def __init__(self) -> None:
            self.pending = head

        def read(self, size: int = -1) -> bytes:
            if self.pending and size != 0:  # ijson probes with read(0) for bytes vs str
                data, self.pending = self.pending, b""
                return data
            return stream.read(size)

    return chunk, _Prefixed()  # type: ignore[return-value]


#: Deeper than any real export (a ChatGPT conversation is ~8 levels). ijson's own ``items``
#: keeps a path string per level, so a hostile file nested 20k deep costs gigabytes there;
#: building values from ``basic_parse`` events ourselves lets us refuse such a value cheaply.
MAX_DEPTH = 100
_STARTS = {"start_map": dict, "start_array": list}
_ENDS = {"end_map", "end_array"}


class _TooDeep:
    """Stands in for a value that nested deeper than MAX_DEPTH (it was skipped, not built)."""


def _skip_rest(events: Iterator[tuple[str, Any]], depth: int) -> _TooDeep:
    for event, _value in events:
        if event in _STARTS:
            depth += 1
        elif event in _ENDS:
            depth -= 1
            if depth == 0:
                break
    return _TooDeep()


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]]) -> Any:
    """One whole JSON value, starting at ``event``, built without recursion."""
    if event not in _STARTS:
        return value
    root = _STARTS[event]()
    stack: list[Any] = [root]
    keys: list[Any] = [None]
    for event, value in events:
        if event == "map_key":
            keys[-1] = value
            continue
        if event in _ENDS:
            stack.pop()
            keys.pop()
            if not stack:
                return root
            continue
        if event in _STARTS:
            if len(stack) >= MAX_DEPTH:
                return _skip_rest(events, len(stack) + 1)
            item = _STARTS[event]()
        else:
            item = value
        top = stack[-1]
        if type(top) is dict:
            top[keys[-1]] = item
        else:
            top.append(item)
        if event in _STARTS:
            stack.append(item)
            keys.append(None)
    raise ijson.IncompleteJSONError("the file ends inside a value")


def _elements(raw: Any) -> Iterator[Any]:
    """Each element of a top-level array, or the lone top-level value."""
    events = iter(ijson.basic_parse(raw, use_float=True))
    for event, value in events:
        if event != "start_array":
            yield _build(event, value, events)
            return
        for event, value in events:
            if event == "end_array":
                return
            yield _build(event, value, events)
        raise ijson.IncompleteJSONError("the file ends inside the list of conversations")


def conversations(stream: _Counting) -> Iterator[tuple[int, Any] | Problem]:
    """Each element of the top-level array as ``(position, value)``; a lone object counts as one.

    Malformed JSON cannot be resumed after: everything read before it is yielded, then one
    Problem says where the file stopped making sense.
    """
    first, prefixed = _first_byte(stream)
    if not first:
        yield Problem("the file is empty")
        return
    if first not in b"[{":
        yield Problem("not a JSON export (it does not start with [ or {)")
        return
    position = -1
    try:
        for position, value in enumerate(_elements(prefixed)):
            if isinstance(value, _TooDeep):
                yield Problem(f"conversation #{position + 1} nests deeper than {MAX_DEPTH} levels")
            else:
                yield position, value
    except ijson.JSONError as exc:
        yield Problem(f"the JSON is malformed after conversation {position + 1} ({exc}); stopped")
    except (
        UnicodeDecodeError,
        ValueError,
        RecursionError,
        OSError,
        EOFError,
        zlib.error,
        zipfile.BadZipFile,
    ) as exc:
        # also a zip member whose data or checksum is damaged part-way
        yield Problem(f"the file is damaged after conversation {position + 1} ({exc}); stopped")
