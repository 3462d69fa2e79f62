"""``memo-shell mem import --from FORMAT``: other apps' chat histories (see memo_shell.importers).

Kept apart from ``cli/mem.py`` (which owns the JSON Lines import) so the two evolve separately;
``mem import`` hands over here when ``--from`` names another format or the file is one.
"""

from __future__ import annotations

import sys
from pathlib import Path

from memo_shell import importers
from memo_shell.cli.context import CliContext
from memo_shell.cli.output import Output, progress_bar
from memo_shell.errors import MemoShellError
from memo_shell.importers import run

CHOICES = ("jsonl", *importers.FORMATS)


def sniff(source: Path) -> str:
    """The format to use when ``--from`` is not given: another app's export if the file plainly
    is one (a zip, an SQLite file, a JSON array of known conversations), else JSON Lines."""
    if str(source) == "-":
        return "jsonl"
    return importers.detect(source) or "jsonl"


def import_from(ctx: CliContext, fmt: str, source: Path, as_json: bool, *, guessed: bool) -> None:
    """Import ``source`` in format ``fmt``; exit status 1 if any record had to be skipped."""
    out = Output(as_json)
    if str(source) == "-":
        raise MemoShellError(f"--from {fmt} reads a file, not standard input")
    if not source.is_file():
        raise MemoShellError(f"cannot read {source}: no such file")
    if guessed:
        out.note(
            f"{source}: detected format {fmt} ({importers.FORMATS[fmt]}); "
            "say --from jsonl to read it as JSON Lines instead",
            style="cyan",
        )
    bar, advance = progress_bar(out, importers.total(fmt, source), "importing")
    with ctx.open_memories() as memories, bar:
        report = run.store(
            memories,
            importers.turns(fmt, source, progress=advance),
            on_problem=lambda p: out.note(p.describe()),
        )
    if as_json:
        out.document({"format": fmt, **report.as_json()})
    else:
        out.note(report.summary(), style="yellow" if report.problems else "green")
    if report.problems:
        sys.exit(1)
