"""The ``memo-shell`` command line: the TUI by default, scriptable subcommands with ``--json``."""

from memo_shell.cli.main import cli, main

__all__ = ["cli", "main"]
