"""``memo-shell chat …``: a session as a conversation (``chat export``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from memo_shell import chat_export
from memo_shell.cli.context import CliContext
from memo_shell.cli.output import Output, json_option
from memo_shell.errors import MemoShellError


@click.group()
def chat() -> None:
    """Work with a chat session as a whole."""


@chat.command("export")
@click.argument("session")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(chat_export.FORMATS),
    default="md",
    show_default=True,
    help="md: readable Markdown to share; json: the session's memories as one JSON document.",
)
@click.option(
    "-o",
    "--output",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (private: mode 0600) instead of stdout.",
)
@json_option
@click.pass_obj
def export(ctx: CliContext, session: str, fmt: str, target: Path | None, as_json: bool) -> None:
    """Export SESSION's turns (question, answer, times, model), oldest first.

    For a lossless backup use `mem export --session SESSION` (JSON Lines) instead.
    """
    out = Output(as_json)
    with ctx.open_memories() as memories:
        turns = chat_export.session_turns(memories, session)
    text = chat_export.render(session, turns, fmt)
    if target is None:
        if as_json and fmt == "md":
            out.document({"session": session, "turns": len(turns), "markdown": text})
        else:
            sys.stdout.write(text)
        return
    try:
        chat_export.write_private(target, text)
    except OSError as exc:
        raise MemoShellError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if as_json:
        out.document({"session": session, "turns": len(turns), "file": str(target)})
    else:
        out.note(f"exported {len(turns)} turns of {session!r} to {target}", style="green")
