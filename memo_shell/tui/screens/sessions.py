"""Sessions: switch to one, start a new one, or rename one (which moves its memories).

A session groups the turns whose recent history goes into the prompt; older turns of any session
come back through recall. The picker returns the session to switch to; renaming happens here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option, OptionDoesNotExist

from memo_shell.errors import MemoShellError
from memo_shell.records import MAX_SHORT_FIELD
from memo_shell.tui import fmt, keymap
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.screens.dialogs import TextPromptScreen
from memo_shell.tui.widgets.key_bar import KeyBar

if TYPE_CHECKING:
    from memo_shell.tui.runtime import Runtime

NEW = "\x00new"


class SessionsScreen(ModalScreen[str | None]):
    """Dismisses with a session name to switch to, ``NEW`` for a new session, or None."""

    CSS_PATH = SCREENS_CSS

    BINDINGS = keymap.bindings("sessions")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(classes="dialog-screen")
        self.runtime = runtime

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sessions-dialog"):
            yield Label("Sessions", classes="dialog-title")
            yield OptionList(id="sessions")
            yield KeyBar()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()
        self.load()

    @work(exclusive=True, group="sessions")
    async def load(self) -> None:
        rt = self.runtime
        mem = await rt.wait_store()
        if mem is None:
            return
        await rt.io(mem.wait_ready)
        sessions = await rt.io(mem.sessions)
        sessions.sort(key=lambda s: s.last_at, reverse=True)
        options = self.query_one(OptionList)
        options.clear_options()
        names = {s.name for s in sessions}
        if rt.session not in names:
            options.add_option(
                Option(
                    Content.assemble((rt.session, "bold"), ("  current, empty", "$text-muted")),
                    id=rt.session,
                )
            )
        for info in sessions:
            current = ("  ● current", "$success") if info.name == rt.session else ""
            options.add_option(
                Option(
                    Content.assemble(
                        (info.name, "bold"),
                        current,
                        "\n",
                        (
                            f"{fmt.count(info.count, 'turn')} · last {fmt.when(info.last_at)}",
                            "$text-muted",
                        ),
                    ),
                    id=info.name,
                )
            )
        # open with the current session highlighted, so enter and r act at once
        try:
            options.highlighted = options.get_option_index(rt.session)
        except OptionDoesNotExist:
            options.highlighted = 0 if options.option_count else None

    @property
    def current(self) -> str | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    @on(OptionList.OptionSelected)
    def selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_switch(self) -> None:
        self.dismiss(self.current)

    def action_new(self) -> None:
        self.dismiss(NEW)

    def action_close(self) -> None:
        self.dismiss(None)

    @work(exclusive=True, group="rename")
    async def action_rename(self) -> None:
        old = self.current
        if old is None:
            return
        new = await self.app.push_screen_wait(TextPromptScreen(f"Rename session {old!r} to", old))
        if new is None or not new.strip() or new.strip() == old:
            return
        new = new.strip()
        if len(new) > MAX_SHORT_FIELD:
            self.notify(f"A session name is at most {MAX_SHORT_FIELD} characters.")
            return
        try:
            moved = await self.runtime.io(self.runtime.rename_session, old, new)
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Rename")
            return
        self.notify(f"Renamed {old!r} to {new!r} ({fmt.count(moved, 'memory', 'memories')}).")
        self.load()
