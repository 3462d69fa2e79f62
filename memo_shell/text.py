"""Formatting shared by the CLI and the TUI, so a size or a preview reads the same in both."""

from __future__ import annotations


def human_size(num_bytes: int | None) -> str:
    """Decimal units, as disks and file managers count them: ``1.5 MB``; ``?`` when unknown."""
    if num_bytes is None:
        return "?"
    value = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable: the TB step always returns")


def one_line(text: str, limit: int = 120) -> str:
    """Collapse whitespace (newlines included) and cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
