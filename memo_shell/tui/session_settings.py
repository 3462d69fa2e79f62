"""Per-session system prompt and model parameters, saved beside the memories.

Where: one small JSON file per session under ``<data dir>/sessions/``, named by a hash of the
session's name (names are free text; the file keeps the name inside). Not in the record files:
a session is not a memory, and rewriting every turn's record to change a prompt would be
absurd. Not in the config file: these belong to a conversation, and should travel with it when
the data directory is backed up or synced. One file per session keeps to the store's sync rule
(two devices only ever write the same file when they edit the same session's settings).

How: written atomically through the same ``Disk`` seam as the records (a private temp file,
fsync, rename, fsync of the directory), mode 0600, so a crash leaves the old settings or the
new ones, never half a file. A damaged or hand-mangled file is reported and ignored (the
defaults apply); it is never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from memo_shell.disk import Disk

DIR_NAME = "sessions"
#: Longest system prompt kept (a prompt longer than this is a document, not an instruction).
MAX_SYSTEM_CHARS = 20_000
MAX_CONTEXT = 1_048_576


class SettingsError(ValueError):
    """A value the user typed is not acceptable; the message is one sentence for them."""


@dataclass(frozen=True)
class SessionSettings:
    """None means "the app's setting" (config file, environment, flags)."""

    system: str | None = None
    temperature: float | None = None
    context_size: int | None = None
    max_tokens: int | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def describe(self) -> str:
        """``temperature 0.2 · context 8,192 · system prompt`` (for notices)."""
        parts = []
        if self.temperature is not None:
            parts.append(f"temperature {self.temperature:g}")
        if self.context_size is not None:
            parts.append(f"context {self.context_size:,}")
        if self.max_tokens is not None:
            parts.append(f"max tokens {self.max_tokens:,}")
        if self.system is not None:
            parts.append("own system prompt")
        return " · ".join(parts) or "the defaults"


def parse(system: str, temperature: str, context_size: str, max_tokens: str) -> SessionSettings:
    """Check what was typed in the settings dialog; raises SettingsError with one sentence."""
    system = system.strip()
    if len(system) > MAX_SYSTEM_CHARS:
        raise SettingsError(f"The system prompt is at most {MAX_SYSTEM_CHARS:,} characters.")
    temp: float | None = None
    if temperature.strip():
        try:
            temp = float(temperature)
        except ValueError:
            raise SettingsError(f"Temperature {temperature.strip()!r} is not a number.") from None
        if not math.isfinite(temp) or not 0 <= temp <= 2:
            raise SettingsError("Temperature goes from 0 (steady) to 2 (wild).")
    ctx = _int(context_size, "Context size", 256, MAX_CONTEXT)
    most = _int(max_tokens, "Max tokens", 1, MAX_CONTEXT)
    if ctx is not None and most is not None and most >= ctx:
        raise SettingsError("Max tokens must be less than the context size.")
    return SessionSettings(system or None, temp, ctx, most)


def _int(text: str, name: str, low: int, high: int) -> int | None:
    text = text.strip().replace(",", "").replace("_", "")
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"{name} {text!r} is not a whole number.") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} goes from {low:,} to {high:,}.")
    return value


def path_for(data_dir: Path, session: str) -> Path:
    digest = hashlib.sha256(session.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return Path(data_dir) / DIR_NAME / f"{digest}.json"


def load(data_dir: Path, session: str) -> SessionSettings:
    """The session's settings; defaults when there is no file. Raises SettingsError (one
    sentence) for a damaged file, which the caller reports before using the defaults."""
    path = path_for(data_dir, session)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return SessionSettings()
    except OSError as exc:
        raise SettingsError(f"Session settings {path} cannot be read: {exc.strerror}.") from exc
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("session") != session:
            raise TypeError
        values = {f.name: data.get(f.name) for f in fields(SessionSettings)}
        checked = parse(
            values["system"] if isinstance(values["system"], str) else "",
            _text(values["temperature"]),
            _text(values["context_size"]),
            _text(values["max_tokens"]),
        )
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise SettingsError(
            f"Session settings {path} are damaged, so the defaults apply; saving new ones "
            "replaces the file."
        ) from exc
    return checked


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return repr(value)


def save(data_dir: Path, session: str, settings: SessionSettings, disk: Disk | None = None) -> None:
    """Write (or, when all are defaults, delete) the session's settings, atomically, 0600."""
    disk = disk or Disk()
    path = path_for(data_dir, session)
    directory = path.parent
    if settings.empty:
        try:
            disk.unlink(path)
        except FileNotFoundError:
            return
        disk.fsync_dir(directory)
        return
    if not directory.is_dir():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        disk.fsync_dir(directory.parent)
    data = json.dumps({"session": session, **asdict(settings)}, ensure_ascii=False, indent=1)
    temp = directory / f".{path.name}.{os.getpid()}.tmp"
    temp.unlink(missing_ok=True)  # debris of a crash of this same process id
    fd = disk.open_new(temp)
    try:
        try:
            disk.write_all(fd, data.encode("utf-8", "surrogatepass"))
            disk.fsync(fd)
        finally:
            disk.close(fd)
        disk.rename(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    disk.fsync_dir(directory)
