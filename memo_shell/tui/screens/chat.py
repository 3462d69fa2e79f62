"""The chat screen: the conversation, the recalled-memories panel and the status line.

A turn runs in one exclusive worker that consumes ``Shell.turn()``: the panel fills when recall
is done, the reply streams in, and the status line shows model and timing when it finishes.
Cancelling the worker (escape) stops generation, stores nothing and puts the question back.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.worker import Worker

from memo_shell.errors import MemoShellError, StoreError
from memo_shell.tui import fmt, keymap
from memo_shell.tui.widgets.chat_log import ChatLog, TurnView
from memo_shell.tui.widgets.composer import Composer
from memo_shell.tui.widgets.key_bar import KeyBar
from memo_shell.tui.widgets.recall_panel import RecallPanel
from memo_shell.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from memo_shell.tui.runtime import Runtime
    from memo_shell.tui.screens.detail import DetailOutcome

#: Turns of the current session shown when it is opened (older ones come back through recall).
HISTORY_TURNS = 10
# Screens opened from here are imported when first opened: the chat must paint before
# anything else is loaded.
POLL_S = 0.5


def welcome_text(data_dir: str) -> str:
    return f"""\
## Welcome to memo-shell

Everything you say here, and every reply, is remembered **on this computer only**, one file
per exchange, under:

`{data_dir}`

When you ask something, related memories are recalled and shown on the right, with the reason
each was recalled; **ctrl+o** shows the exact prompt the model received.

To forget: select a recalled memory and press **f**, or open the memory browser (**F3**) to
search, select and prune. **ctrl+t** turns memory off for the next question. **F1** lists
every key.
"""


def done_status(done: Any) -> str:
    """``gemma3:270m · llama-cpp · first token 210 ms · 1.3 s``."""
    return (
        f"{done.model} · {done.backend} · first token {fmt.seconds(done.first_piece_s)}"
        f" · {fmt.seconds(done.total_s)}"
        + (" · cut off at max_tokens" if getattr(done, "cut_off", False) else "")
    )


class ChatScreen(Screen[None]):
    """The screen users live in."""

    BINDINGS = keymap.bindings("chat")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(id="chat")
        self.runtime = runtime
        self.turn_worker: Worker[None] | None = None
        self._notices_seen = 0
        self._index_state = ""

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="conversation"):
                yield ChatLog(id="log")
                yield Composer(id="composer")
            yield RecallPanel(id="panel")
        yield StatusBar(id="status")
        yield KeyBar()

    # ----------------------------------------------------------------- parts

    @property
    def composer(self) -> Composer:
        return self.query_one(Composer)

    @property
    def log_view(self) -> ChatLog:
        return self.query_one(ChatLog)

    @property
    def panel(self) -> RecallPanel:
        return self.query_one(RecallPanel)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    # ----------------------------------------------------------------- start-up and polling

    def on_mount(self) -> None:
        self.composer.focus()
        self.status.use_memory = self.runtime.use_memory
        self.panel.set_memory_enabled(self.runtime.use_memory)
        self.status.session = self.runtime.session
        self.set_interval(POLL_S, self.poll)
        self.load_history()

    def poll(self) -> None:
        """Mirror the runtime's state in the status line; cheap attribute reads only."""
        rt = self.runtime
        status = self.status
        if rt.backend is not None:
            status.backend, status.model = rt.backend.name, rt.backend.model
            status.backend_ok = True
        elif rt.backend_error is not None:
            status.backend, status.model, status.backend_ok = "no model", "", False
        else:
            status.backend = "connecting…"
        status.session = rt.session
        self.show_preparing(rt.preparing)
        if rt.memories is None:
            return
        index = rt.memories.index
        state = index.state
        status.index_state = state
        if state != self._index_state:
            self._index_state = state
            self.refresh_count()
        notices = list(index.notices)
        for notice in notices[self._notices_seen :]:
            self.notify(notice, title="Memory index", severity="warning", timeout=10)
        self._notices_seen = len(notices)

    @work(group="count", exclusive=True)
    async def refresh_count(self) -> None:
        if self.runtime.memories is None:
            return
        index = self.runtime.memories.index
        stats = await self.runtime.io(index.stats)
        self.status.memories = stats.get("memories")

    def show_preparing(self, preparing: tuple[str, float | None] | None) -> None:
        """A labelled progress bar while a model is prepared (e.g. assembled on first run).
        Mounted only when needed: most starts never show it, and first paint should not pay."""
        from textual.widgets import Label, ProgressBar

        found = self.query("#model-progress")
        if preparing is None:
            found.remove()
            return
        label, fraction = preparing
        if found:
            box = found.first(Horizontal)
        else:
            box = Horizontal(
                Label(label, id="model-progress-label"),
                ProgressBar(show_eta=False),
                id="model-progress",
            )
            self.query_one("#conversation").mount(box, before=self.composer)
        if box.is_mounted and box.children:
            box.query_one(Label).update(label)
            box.query_one(ProgressBar).update(
                total=None if fraction is None else 100, progress=(fraction or 0) * 100
            )

    @work(group="history", exclusive=True)
    async def load_history(self) -> None:
        """Show the welcome on an empty store, else the current session's recent turns."""
        rt = self.runtime
        mem = await rt.wait_store()
        if mem is None:
            return
        empty = await rt.io(lambda: next(mem.store.iter_ids(), None) is None)
        log = self.log_view
        if empty:
            if not log.query(TurnView):
                await log.show_welcome(welcome_text(str(mem.data_dir)))
            return
        from memo_shell.records import RecordError  # (msgpack, ulid: not before first paint)

        await rt.io(mem.wait_ready)
        ids = await rt.io(mem.index.ids, session=rt.session, newest_first=True)
        memories = []
        for memory_id in ids[:HISTORY_TURNS]:
            try:
                memories.append(await rt.io(mem.get, memory_id))
            except (MemoShellError, RecordError):  # damaged (now quarantined) or gone: skip
                continue
        first = log.children[0] if log.children else None
        for memory in reversed(memories):
            meta = f"{memory.model} · {fmt.when(memory.created_at)}"
            turn = TurnView(memory.user, memory.assistant, meta)
            turn.add_class("history")
            await log.mount(turn, before=first) if first is not None else await log.mount(turn)
        log.scroll_end(animate=False)

    async def session_changed(self) -> None:
        """The app switched session: start a clean view of that session."""
        await self.log_view.clear()
        self.panel.show_hits([], [])
        self.status.session = self.runtime.session
        self.load_history()

    # ----------------------------------------------------------------- a turn

    @on(Composer.Submitted)
    def send(self, event: Composer.Submitted) -> None:
        if self.turn_worker is not None and self.turn_worker.is_running:
            self.notify("A reply is still coming: wait, or press escape to cancel it.")
            return
        event.composer.clear()
        self.turn_worker = self.run_turn(event.text)

    @work(group="turn", exclusive=True, exit_on_error=False)
    async def run_turn(self, question: str) -> None:
        from memo_shell.shell import Done, Piece, Recalled

        log = self.log_view
        await log.hide_welcome()
        turn = await log.add_turn(question)
        turn.set_status("waiting for the model…" if self.runtime.shell is None else "recalling…")
        try:
            shell = await self.runtime.wait_shell()
            async for event in shell.turn(question):
                if isinstance(event, Recalled):
                    self.panel.show_hits(event.hits, list(event.plan.included))
                    turn.set_status("thinking…")
                elif isinstance(event, Piece):
                    await turn.write(event.text)
                elif isinstance(event, Done):
                    self.runtime.store_changed()
                    await turn.finish()
                    turn.set_status(done_status(event))
            self.poll()
            self.refresh_count()
        except asyncio.CancelledError:
            await turn.finish()
            await turn.remove()
            self.composer.put_back(question)
            self.notify("Reply cancelled; nothing was stored. Your question is back in the box.")
            raise
        except StoreError as exc:
            await turn.finish()
            turn.add_class("failed")
            turn.set_status("not remembered")
            self.composer.put_back(question)
            self.notify(
                f"{exc} The reply was not remembered; your question is back in the box.",
                title="Not saved",
                severity="error",
                timeout=15,
            )
        except MemoShellError as exc:
            await turn.finish()
            turn.add_class("failed")
            turn.set_status("no reply" if not turn.answer else "reply interrupted")
            self.composer.put_back(question)
            self.notify(str(exc), title="Model", severity="error", timeout=15)

    def action_cancel(self) -> None:
        if self.turn_worker is not None and self.turn_worker.is_running:
            self.turn_worker.cancel()
        else:
            self.composer.focus()

    # ----------------------------------------------------------------- panel and toggles

    def action_toggle_panel(self) -> None:
        panel = self.panel
        panel.display = not panel.display
        if not panel.display and panel.has_focus_within:
            self.composer.focus()

    def action_toggle_memory(self) -> None:
        enabled = not self.runtime.use_memory
        self.runtime.set_use_memory(enabled)
        self.status.use_memory = enabled
        self.panel.set_memory_enabled(enabled)
        self.notify(
            "Memory is on: recalled memories go into the next prompt."
            if enabled
            else "Memory is off: the next turn recalls nothing (it is still remembered)."
        )

    def action_show_prompt(self) -> None:
        shell = self.runtime.shell
        plan = shell.last_plan if shell is not None else None
        if plan is None:
            self.notify("No prompt has been sent yet.")
            return
        from memo_shell.tui.screens.prompt import PromptScreen

        text = plan.render()
        # what the model really received, where the backend reshapes the messages
        render = getattr(shell.backend, "render_prompt", None)
        exact = render(plan.messages) if render is not None else None
        if exact is not None:
            text += f"\n── exact text sent to {shell.backend.model} ──\n{exact}"
        self.app.push_screen(PromptScreen(text, list(plan.included)))

    def action_focus_panel(self) -> None:
        self.panel.display = True
        self.panel.focus_list()

    def action_focus_input(self) -> None:
        self.composer.focus()

    @on(RecallPanel.Open)
    def open_memory(self, event: RecallPanel.Open) -> None:
        from memo_shell.tui.screens.detail import MemoryDetailScreen

        memory_id = event.memory_id

        def done(outcome: DetailOutcome | None) -> None:
            if outcome is None:
                return
            if outcome.broken:
                self.panel.drop_memory(memory_id)
            elif outcome.forget:
                self.forget(memory_id)
            elif outcome.changed and outcome.memory is not None:
                self.panel.replace_memory(memory_id, outcome.memory)

        self.app.push_screen(MemoryDetailScreen(self.runtime, memory_id), done)

    @on(RecallPanel.Pin)
    def pin_from_panel(self, event: RecallPanel.Pin) -> None:
        self.pin(event.memory_id, event.pinned)

    @work(group="panel")
    async def pin(self, memory_id: str, pinned: bool) -> None:
        try:
            memory = await self.runtime.io(self.runtime.mem.pin, memory_id, pinned)
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Pin")
            return
        self.panel.replace_memory(memory_id, memory)
        self.notify("Pinned: always eligible for recall." if pinned else "Unpinned.")

    @on(RecallPanel.Forget)
    def forget_from_panel(self, event: RecallPanel.Forget) -> None:
        self.forget(event.memory_id)

    @work(group="panel")
    async def forget(self, memory_id: str) -> None:
        from memo_shell.tui.screens.dialogs import ConfirmScreen

        confirmed = await self.app.push_screen_wait(
            ConfirmScreen(
                "Forget this memory?",
                "Its file is deleted and it is removed from the index. This cannot be undone "
                "from the chat (the memory browser, F3, offers undo).",
            )
        )
        if not confirmed:
            return
        try:
            await self.runtime.io(self.runtime.mem.forget, memory_id)
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Forget")
            return
        self.panel.drop_memory(memory_id)
        self.refresh_count()
        self.notify("Forgotten.")
