"""Bring your history, take a chat with you: the palette's "Import conversations…" dialog and
"Export this chat as Markdown" action (the same code as ``mem import --from`` and
``chat export``).

The import runs in a thread worker (file parsing and durable batch writes), reporting progress to
the bar through ``call_from_thread``; the dialog ends with the summary and the first problems.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, ProgressBar, Select, Static

from memo_shell.errors import MemoShellError
from memo_shell.tui import keymap
from memo_shell.tui.screens import SCREENS_CSS

if TYPE_CHECKING:
    from memo_shell.importers.run import Report
    from memo_shell.tui.runtime import Runtime

AUTO = "auto"
#: Problems listed in the dialog (all of them are in ``mem import --json``).
SHOWN_PROBLEMS = 5


def _choices() -> list[tuple[str, str]]:
    from memo_shell import importers

    return [("Detect from the file", AUTO), *((n, k) for k, n in importers.FORMATS.items())]


class ImportScreen(ModalScreen[None]):
    """Pick a format and a file, watch the bar, read the summary. Escape closes."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.pick("dialog.close")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(classes="dialog-screen")
        self.runtime = runtime
        self.report: Report | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="import-dialog"):
            yield Label("Import conversations", classes="dialog-title")
            yield Static(
                "A ChatGPT or Claude export (.zip or conversations.json), an Open WebUI chat "
                "export, or oterm's store.db (read in place). Importing again adds only new turns.",
                classes="dialog-hint",
            )
            yield Select(_choices(), value=AUTO, allow_blank=False, id="import-format")
            yield Input(placeholder="path to the export file", id="import-path")
            yield ProgressBar(id="import-progress", show_eta=False)
            yield Static("", id="import-summary", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Import", variant="primary", id="import-start")
                yield Button("Close", id="import-close")

    def on_mount(self) -> None:
        self.query_one("#import-path", Input).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#import-close")
    def _close(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#import-start")
    @on(Input.Submitted, "#import-path")
    def _start(self, event: Any) -> None:
        event.stop()
        raw = self.query_one("#import-path", Input).value.strip()
        if not raw:
            self._say("Give the path of the export file.")
            return
        fmt = self.query_one("#import-format", Select).value
        self.query_one("#import-start", Button).disabled = True
        self.run_import(str(fmt), Path(raw).expanduser())

    def _say(self, text: str) -> None:
        self.query_one("#import-summary", Static).update(text)

    @work(exclusive=True, group="import")
    async def run_import(self, fmt: str, path: Path) -> None:
        from memo_shell import importers
        from memo_shell.importers import run

        rt = self.runtime
        bar = self.query_one("#import-progress", ProgressBar)
        try:
            mem = await rt.wait_store()
            if mem is None:
                raise MemoShellError("the memory store is not open")
            if not path.is_file():
                raise MemoShellError(f"{path} is not a file")
            if fmt == AUTO:
                found = await rt.io(importers.detect, path)
                if found is None:
                    raise MemoShellError(
                        f"{path.name} is not an export memo-shell knows; pick its format"
                    )
                fmt = found
            self._say(f"Importing {importers.FORMATS[fmt]}…")
            bar.update(total=await rt.io(importers.total, fmt, path) or None, progress=0)

            def advance(n: int) -> None:
                self.app.call_from_thread(bar.advance, n)

            report = await rt.io(run.store, mem, importers.turns(fmt, path, progress=advance))
        except MemoShellError as exc:
            self._say(str(exc))
            self.query_one("#import-start", Button).disabled = False
            return
        self.report = report
        rt.store_changed()  # the status line's count and the browser's disk size
        if bar.total is not None:
            bar.update(progress=bar.total)
        lines = [report.summary() + "."]
        lines += [f"• {p.describe()}" for p in report.problems[:SHOWN_PROBLEMS]]
        if len(report.problems) > SHOWN_PROBLEMS:
            lines.append(
                f"… and {len(report.problems) - SHOWN_PROBLEMS} more "
                "(memo-shell mem import --json lists them all)"
            )
        self._say("\n".join(lines))
        self.query_one("#import-start", Button).disabled = False
        self.notify(report.summary(), title="Import")


def _fresh(path: Path) -> Path:
    """``path``, or ``name-2.md``, ``name-3.md``… : an export never replaces an existing file."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def export_session(runtime: Runtime, directory: Path | None = None) -> tuple[Path, int]:
    """Write the current session as Markdown into ``directory`` (default: the working one)."""
    from memo_shell import chat_export

    turns = chat_export.session_turns(runtime.mem, runtime.session)
    target = _fresh((directory or Path.cwd()) / chat_export.default_filename(runtime.session))
    chat_export.write_private(target, chat_export.render(runtime.session, turns, "md"))
    return target.resolve(), len(turns)


def system_commands(app: Any) -> Iterable[SystemCommand]:
    """The palette entries; the app yields these beside its key-bound commands."""
    yield SystemCommand(
        "Import conversations…",
        "ChatGPT, Claude, Open WebUI or oterm history as memories (with a progress bar)",
        lambda: app.push_screen(ImportScreen(app.runtime)),
    )

    async def export() -> None:
        runtime = app.runtime
        try:
            await runtime.wait_store()
            where, count = await runtime.io(export_session, runtime)
        except (MemoShellError, OSError) as exc:
            app.notify(f"Could not export the chat: {exc}", title="Export", severity="error")
            return
        app.notify(f"{count} turns of {runtime.session!r} written to {where}", title="Export")

    yield SystemCommand(
        "Export this chat as Markdown",
        "Write the current session (questions, answers, times, models) to a .md file",
        lambda: app.run_worker(export(), group="export"),
    )
