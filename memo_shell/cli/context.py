"""``CliContext``: what every subcommand receives as ``ctx.obj`` (settings, and how to open the
store for one command). Its own module so subcommands need not import the root command that
registers them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from memo_shell.config import Settings

if TYPE_CHECKING:
    from memo_shell.api import Memories


@dataclass
class CliContext:
    """What every subcommand receives as ``ctx.obj``."""

    settings: Settings

    @contextmanager
    def open_memories(self, *, preload: bool = False) -> Iterator[Memories]:
        """Open the store for one command, then report anything the user must know about.

        CLI commands load the index only when they need it (recall, stats), so short commands
        stay fast. Damaged files met on the way were quarantined; each is reported by path.
        """
        from memo_shell.wiring import open_memories

        memories = open_memories(self.settings, preload=preload)
        warning = memories.permission_problem()
        if warning:
            click.echo(f"warning: {warning}", err=True)
        try:
            yield memories
        finally:
            memories.close()
            for entry in memories.quarantined:
                click.echo(
                    f"warning: {entry.original} is damaged ({entry.reason}); "
                    f"moved to {entry.moved_to}",
                    err=True,
                )
            for path, why in memories.unreadable.items():
                click.echo(f"warning: skipped {path}: {why}", err=True)
            for notice in memories.notices:
                click.echo(f"note: {notice}", err=True)
