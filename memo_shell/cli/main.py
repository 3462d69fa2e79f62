"""The root ``memo-shell`` command: global options, error reporting, and subcommand registry.

Every user-facing failure is a MemoShellError carrying one sentence; ``main`` prints it and exits
1, so no traceback ever reaches a user. Global options (``--data-dir``, ``--backend``...) are
accepted before any subcommand and apply to the TUI too.
"""

from __future__ import annotations

from pathlib import Path

import click

from memo_shell import __version__
from memo_shell.cli.context import CliContext
from memo_shell.config import BACKENDS, load_settings
from memo_shell.errors import MemoShellError


class _Group(click.Group):
    """Turns MemoShellError into click's one-line "Error: ..." and exit status 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MemoShellError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(
    cls=_Group,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where memories live (env MEMO_SHELL_DATA_DIR; default: the platform data dir).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (TOML; env MEMO_SHELL_CONFIG_FILE; default: the platform config dir).",
)
@click.option("--backend", type=click.Choice(BACKENDS), help="Model backend (default: auto).")
@click.option("--model", help="Model name (Ollama/OpenAI) or GGUF path (llama-cpp).")
@click.version_option(__version__, "--version", "-V", prog_name="memo-shell")
@click.pass_context
def cli(
    ctx: click.Context,
    data_dir: Path | None,
    config_file: Path | None,
    backend: str | None,
    model: str | None,
) -> None:
    """memo-shell: a private, offline memory for your local LLM.

    Run with no command to open the chat app. Memories are plain files under the data
    directory; every command below takes --json for scripting.
    """
    settings = load_settings(config_file, data_dir=data_dir, backend=backend, model=model)
    ctx.obj = CliContext(settings)
    if ctx.invoked_subcommand is None:
        from memo_shell.tui import run

        run(settings)


def _register() -> None:
    from memo_shell.cli import chat, mem, recall

    cli.add_command(chat.chat)
    cli.add_command(mem.mem)
    cli.add_command(recall.recall)
    cli.add_command(recall.reindex)
    # -- model commands (backends) register below this line --
    from memo_shell.cli import ask, doctor

    cli.add_command(ask.ask)
    cli.add_command(doctor.doctor)
    # -- surfaces for other clients (MCP server, memory proxy) --
    from memo_shell.cli import mcp, serve

    cli.add_command(mcp.mcp)
    cli.add_command(serve.serve)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``memo-shell`` script and ``python -m memo_shell``."""
    cli.main(args=argv, prog_name="memo-shell")
