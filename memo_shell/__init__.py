"""memo-shell: a privacy-first, offline memory shell for local LLMs.

    import memo_shell
    with memo_shell.open(data_dir) as mem:
        mid = mem.add(user="...", assistant="...", session="s1")
        hits = mem.recall("query", k=10)

The public names are imported lazily so that ``memo-shell mem add`` and other short commands
start without loading the index machinery they do not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Hit", "Memories", "Memory", "Provenance", "Selection", "__version__", "open"]

if TYPE_CHECKING:
    from memo_shell.api import Hit, Memories, Selection, open
    from memo_shell.records import Memory, Provenance


def __getattr__(name: str) -> Any:
    if name in ("Hit", "Memories", "Selection", "open"):
        from memo_shell import api

        return getattr(api, name)
    if name in ("Memory", "Provenance"):
        from memo_shell import records

        return getattr(records, name)
    raise AttributeError(f"module 'memo_shell' has no attribute {name!r}")
