"""The recall index: derived from the record files, disposable, rebuilt by `memo-shell reindex`.

Public names: ``Index`` (lifecycle and queries) and the value types it returns. ``Index`` is
resolved lazily (PEP 562) so that the ranking modules can import the index's data modules
without importing ``Index`` itself, which depends on them.
"""

from typing import TYPE_CHECKING, Any

from memo_shell.index.schema import EntityInfo, IndexHit, MemoryMeta, SessionInfo

if TYPE_CHECKING:
    from memo_shell.index.core import Embedder, Index

__all__ = ["Embedder", "EntityInfo", "Index", "IndexHit", "MemoryMeta", "SessionInfo"]


def __getattr__(name: str) -> Any:
    if name in ("Index", "Embedder"):
        from memo_shell.index import core

        return getattr(core, name)
    raise AttributeError(f"module 'memo_shell.index' has no attribute {name!r}")
