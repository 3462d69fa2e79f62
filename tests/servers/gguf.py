"""Tiny GGUF files for tests: real GGUF headers that llama.cpp refuses as models."""

from __future__ import annotations

import struct
from pathlib import Path


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf_without_weights(path: Path) -> Path:
    """A valid GGUF v3 header with one metadata key and no tensors: a GGUF, but not a model."""
    path.write_bytes(
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + _string("general.architecture")
        + struct.pack("<I", 8)
        + _string("llama")
    )
    return path
