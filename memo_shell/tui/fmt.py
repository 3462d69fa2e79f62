"""Small pure formatting helpers shared by widgets (dates, sizes, previews, recall reasons)."""

from __future__ import annotations

from datetime import datetime

from memo_shell.text import human_size, one_line

__all__ = ["one_line", "seconds", "size", "when"]


def when(dt: datetime) -> str:
    """A memory's time in the user's local zone, to the minute."""
    return dt.astimezone().strftime("%Y-%m-%d %H:%M")


def size(num_bytes: int | None) -> str:
    return human_size(num_bytes)


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def count(n: int | None, noun: str, plural: str | None = None) -> str:
    """``1 memory``, ``1,204 memories``; ``? memories`` while still unknown."""
    many = plural or f"{noun}s"
    if n is None:
        return f"? {many}"
    return f"{n:,} {noun if n == 1 else many}"
