"""How the surfaces (CLI, app, MCP server, proxy) open the store: ``Memories`` with the
configured embedder wired in.

The library builds no backends (``Memories`` takes an ``embedder`` or none); this is the one
place that turns the ``embedder`` setting into one. The backends are imported only when an
embedder is configured: a short CLI command such as ``mem list`` must not pay for the model
clients' imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memo_shell.api import Memories
    from memo_shell.config import Settings


def open_memories(
    settings: Settings, data_dir: Path | None = None, *, preload: bool = True
) -> Memories:
    """The store in ``data_dir`` (default ``settings.data_dir``) with the ``embedder``
    setting's model, closed with the handle."""
    from memo_shell.api import Memories

    embedder = None
    if settings.embedder:
        from memo_shell.backends.embedder import make_embedder

        embedder = make_embedder(settings)
    try:
        return Memories(
            data_dir if data_dir is not None else settings.data_dir,
            settings=settings,
            embedder=embedder,
            own_embedder=True,
            preload=preload,
        )
    except BaseException:
        if embedder is not None:
            embedder.close()
        raise
