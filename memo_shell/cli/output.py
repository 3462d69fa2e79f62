"""How commands speak: exactly one JSON document with ``--json``, rich tables on a terminal,
plain tab-separated text when piped (so ``cut`` and ``grep`` work on it).

Human output (tables, lines, notices) never carries a control character, a bidi override or a
zero-width character from memory text or a model reply to the terminal: ``printable`` shows
them visibly. Nor is such text ever parsed as rich markup. JSON keeps the exact text.

Diagnostics (warnings, notices, progress) go to stderr so stdout stays a clean data channel.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from memo_shell.text import human_size, one_line, printable

__all__ = ["Output", "human_size", "json_option", "preview", "progress_bar", "write_json"]

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print exactly one JSON document on stdout."
)


class Output:
    """One per command invocation; knows whether we are talking to a person or a program."""

    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal

    def document(self, obj: Any) -> None:
        """The JSON result of the command (call once)."""
        write_json(obj)

    def line(self, text: str, style: str | None = None) -> None:
        """A human line on stdout (suppressed in JSON mode)."""
        if self.as_json:
            return
        text = printable(text)
        if self.is_terminal:
            self.console.print(text, style=style, markup=False)
        else:
            sys.stdout.write(text + "\n")

    def note(self, text: str, style: str = "yellow") -> None:
        """A notice for the person at the keyboard: always stderr, never mixed into data."""
        self.errors.print(printable(text), style=style, markup=False)

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        title: str | None = None,
        styles: Sequence[str | None] | None = None,
    ) -> None:
        if self.as_json:
            return
        rows = [[printable(cell) for cell in row] for row in rows]
        if not self.is_terminal:
            for row in rows:
                sys.stdout.write("\t".join(cell.replace("\t", " ") for cell in row) + "\n")
            return
        table = Table(title=title, header_style="bold", show_edge=False, pad_edge=False)
        for i, column in enumerate(columns):
            style = styles[i] if styles else None
            table.add_column(
                column, style=style, overflow="fold" if i == len(columns) - 1 else "ellipsis"
            )
        for row in rows:
            # Text, never a str: rich would parse a str cell as markup, so a memory holding
            # "[link=http://…]" became a live hyperlink and "[/INST]" raised MarkupError.
            table.add_row(*(Text(cell) for cell in row))
        self.console.print(table)


def write_json(obj: Any) -> None:
    """One JSON document and a newline on stdout. Text that UTF-8 cannot carry (a lone
    surrogate in an error message) is written as JSON escapes instead of crashing."""
    try:
        text = json.dumps(obj, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, ensure_ascii=True)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def preview(text: str, width: int = 60) -> str:
    """One line of a memory for tables."""
    return one_line(text, width)


def progress_bar(
    out: Output, total: int | None, description: str
) -> tuple[Any, Callable[[int], None]]:
    """A rich progress bar on stderr when a person is watching; a no-op otherwise."""
    from contextlib import nullcontext

    if out.as_json or not out.errors.is_terminal:
        return nullcontext(), lambda _n: None
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn() if total else TextColumn("{task.completed}"),
        TimeRemainingColumn(),
        console=out.errors,
        transient=True,
    )
    task = progress.add_task(description, total=total)
    return progress, lambda n: progress.advance(task, n)
