"""The root ``memo-shell`` command: global options, error reporting, and subcommand registry.

Every user-facing failure is a MemoShellError carrying one sentence; ``main`` prints it and exits
1, so no traceback ever reaches a user. Global options (``--data-dir``, ``--backend``...) are
accepted before any subcommand and apply to the TUI too.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from memo_shell import __version__
from memo_shell.cli.context import CliContext
from memo_shell.config import BACKENDS, load_settings
from memo_shell.errors import MemoShellError, describe_os_error, error_kind


def _wants_json(ctx: click.Context) -> bool:
    """Whether the command line asked for ``--json`` (before any ``--``). Read before the
    group invokes its subcommand, which consumes the arguments."""
    args = [*getattr(ctx, "_protected_args", ()), *ctx.args]
    if "--" in args:
        args = args[: args.index("--")]
    return "--json" in args


def _json_error(as_json: bool, exc: BaseException, message: str) -> None:
    """With ``--json``, an error is exactly one document on stdout, like a result is:
    ``{"error": {"message": ..., "kind": ...}}`` plus whatever was done before it failed."""
    if not as_json:
        return
    wrapped = isinstance(exc, click.ClickException) and isinstance(exc.__cause__, MemoShellError)
    # `ask` wraps its errors to add "not stored"
    cause = exc.__cause__ if wrapped and exc.__cause__ is not None else exc
    doc: dict[str, object] = {"error": {"message": message, "kind": error_kind(cause)}}
    results = getattr(cause, "partial_results", None)
    if results:
        doc.update(results)
    from memo_shell.cli.output import write_json  # rich is not needed for a plain error

    write_json(doc)


class _Group(click.Group):
    """Turns every failure into click's one-line "Error: ..." on stderr and exit status 1
    (2 for usage errors), and with ``--json`` also into one JSON error document on stdout."""

    def invoke(self, ctx: click.Context) -> object:
        as_json = _wants_json(ctx)
        try:
            return super().invoke(ctx)
        except MemoShellError as exc:
            _json_error(as_json, exc, str(exc))
            raise click.ClickException(str(exc)) from exc
        except click.ClickException as exc:
            _json_error(as_json, exc, exc.format_message())
            raise
        except click.Abort as exc:
            _json_error(as_json, exc, "cancelled")
            raise
        except OSError as exc:  # one the command did not expect: still a sentence, not a trace
            if exc.errno == errno.EPIPE:
                raise  # `… | head`: click exits quietly, as a Unix filter should
            message = describe_os_error(exc, "the command")
            _json_error(as_json, exc, message)
            raise click.ClickException(message) from exc


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
    if data_dir is not None or os.environ.get("MEMO_SHELL_DATA_DIR"):
        _check_explicit_data_dir(settings.data_dir)
    ctx.obj = CliContext(settings)
    if ctx.invoked_subcommand is None:
        from memo_shell.tui import run

        run(settings)


def _check_explicit_data_dir(root: Path) -> None:
    """A data dir the user named is created only inside a folder that exists: a typo in its
    path must not silently open a fresh, empty store ("0 memories"). The default one (and its
    parents) is created as needed."""
    root = root.expanduser()
    if not root.exists() and not root.parent.exists():
        raise click.BadParameter(
            f"{root} does not exist and neither does its parent folder {root.parent} "
            "(a typo?); create the parent first, or leave --data-dir out to use the default",
            param_hint="--data-dir",
        )


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
