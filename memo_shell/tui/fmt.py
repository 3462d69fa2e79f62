"""Small pure formatting helpers shared by widgets (dates, sizes, previews, recall reasons)."""

from __future__ import annotations

from datetime import datetime


def when(dt: datetime) -> str:
    """A memory's time in the user's local zone, to the minute."""
    return dt.astimezone().strftime("%Y-%m-%d %H:%M")


def size(num_bytes: int | None) -> str:
    if num_bytes is None:
        return "?"
    value = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - loop always returns


def one_line(text: str, limit: int = 120) -> str:
    """Collapse whitespace and cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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
