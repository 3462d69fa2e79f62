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


# Terminals act on control characters: ESC starts sequences that clear the screen, set the window
# title or (OSC 52) write the clipboard; BEL, backspace and a lone CR rewrite what is shown. Text
# from memories (imported, synced in) or from a model's reply must never reach a terminal raw,
# so every C0 control but tab and newline, DEL and every C1 control is shown as a visible
# symbol instead (U+241B "␛" for ESC); CR is dropped, since a CRLF line ending is harmless.
#: code point -> what a terminal shows instead (``str.translate`` table)
CONTROL_PICTURES: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20) if c not in (9, 10, 13)}
CONTROL_PICTURES[13] = ""
CONTROL_PICTURES[0x7F] = "\u2421"
CONTROL_PICTURES.update({c: "\ufffd" for c in range(0x80, 0xA0)})


# Invisible characters that change what a terminal shows without being seen themselves: bidi
# overrides, embeddings and isolates reorder the rest of the line ("Trojan Source"), and
# zero-width spaces, marks and the BOM hide inside words so that two different texts look the
# same. In human output they are shown as their code point, e.g. "<U+202E>". ZWJ and ZWNJ stay:
# emoji sequences and several scripts need them, and they move nothing.
INVISIBLES: dict[int, str] = {
    c: f"<U+{c:04X}>"
    for c in (
        0x061C,  # Arabic letter mark
        0x180E,  # Mongolian vowel separator
        0x200B,  # zero-width space
        0x200E,  # left-to-right mark
        0x200F,  # right-to-left mark
        *range(0x202A, 0x202F),  # LRE RLE PDF LRO RLO
        *range(0x2060, 0x2065),  # word joiner, invisible operators
        *range(0x2066, 0x206A),  # LRI RLI FSI PDI
        0xFEFF,  # zero-width no-break space (BOM)
    )
}
#: lone surrogates (a model reply's "\\ud800" escape) cannot be written as UTF-8 at all
_SURROGATES = dict.fromkeys(range(0xD800, 0xE000), "\ufffd")
_HUMAN = {**CONTROL_PICTURES, **INVISIBLES, **_SURROGATES}


def printable(text: str) -> str:
    """``text`` safe to write to a terminal: control characters made visible as symbols and
    invisible reordering or zero-width characters shown as code points (see above)."""
    return text.translate(_HUMAN)
