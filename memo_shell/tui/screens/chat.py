"""The chat screen: the conversation, the recalled-memories panel and the status line.

A turn runs in one exclusive worker that consumes ``Shell.turn()``: the panel fills when recall
is done, the reply streams in, and the status line shows model and timing when it finishes.
Cancelling the worker (escape) stops generation, stores nothing and puts the question back.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.worker import Worker

from memo_shell.errors import MemoShellError, StoreError
from memo_shell.tui import fmt, keymap, messages
from memo_shell.tui.screens.chat_text import done_status, welcome_text
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
#: Earlier questions of the session offered by ↑ in the message box.
HISTORY_QUESTIONS = 100
# Screens opened from here are imported when first opened: the chat must paint before
# anything else is loaded.


class ChatScreen(Screen[None]):
    """The screen users live in."""

    BINDINGS = keymap.bindings("chat")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(id="chat")
        self.runtime = runtime
        self.turn_worker: Worker[None] | None = None
        self._notices_seen = 0
        self._index_state = ""
        self.last_turn_id = ""  # the last turn this chat stored (F11 forgets it)
        #: The turn being edited (F9): sending replaces it.
        self.editing: TurnView | None = None
        self._code_back = 0  # ctrl+b pressed again copies the code block before the last one

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

    # ----------------------------------------------------------------- start-up and status

    def on_mount(self) -> None:
        self.composer.focus()
        self.status.memory_mode = self.runtime.memory_mode
        self.panel.set_memory_enabled(self.runtime.use_memory)
        self.show_runtime()
        self.load_history()

    @on(messages.BackendPreparing)
    @on(messages.BackendReady)
    @on(messages.BackendFailed)
    @on(messages.SessionChanged)
    def show_runtime(self) -> None:
        """Mirror the runtime's backend, session and model preparation in the status line."""
        rt = self.runtime
        status = self.status
        if rt.backend is not None:
            status.backend, status.model = rt.backend.name, rt.backend.model
            status.backend_ok = True
        elif rt.backend_error is not None:
            status.backend, status.model, status.backend_ok = "no model", "", False
        else:
            status.backend, status.model = "finding a model…", ""
        status.session = rt.session
        self.show_preparing(rt.preparing)

    @on(messages.StoreOpened)
    @on(messages.IndexChanged)
    def show_index(self) -> None:
        """The index's state in the status line (the count once it changes), its notices as
        toasts."""
        mem = self.runtime.memories
        if mem is None:
            return
        state = mem.index_state
        self.status.index_state = state
        if state != self._index_state:
            self._index_state = state
            self.refresh_count()
        notices = mem.notices
        for notice in notices[self._notices_seen :]:
            self.notify(notice, title="Memory index", severity="warning", timeout=10)
        self._notices_seen = len(notices)

    @on(messages.MemoriesChanged)
    def memories_changed(self, message: messages.MemoriesChanged) -> None:
        if isinstance(message, messages.MemoriesForgotten):
            gone = set(message.ids)  # forgotten anywhere in the app: no longer shown as recalled
            for memory_id in [h.memory.id for h in self.panel.hits if h.memory.id in gone]:
                self.panel.drop_memory(memory_id)
        self.refresh_count()

    @work(group="count", exclusive=True)
    async def refresh_count(self) -> None:
        mem = self.runtime.memories
        if mem is None:
            return
        stats = await self.runtime.io(mem.index_stats)
        self.status.memories = stats.get("memories")

    def show_preparing(self, preparing: tuple[str, float | None] | None) -> None:
        """A labelled progress bar while a model is prepared (e.g. assembled on first run).
        Mounted only when needed: most starts never show it, and first paint should not pay."""
        found = self.query("#model-progress")
        if preparing is None:
            found.remove()
            return
        from textual.widgets import Label, ProgressBar

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
    async def load_history(self, *, at_start: bool = True) -> None:
        """Show the welcome on an empty store, else the session's recent turns.

        At start-up, when the current session has no turns yet, the app continues the most
        recently active one (as chat apps reopen the last chat) and says so in a hint line.
        """
        rt = self.runtime
        mem = await rt.wait_store()
        if mem is None:
            return
        empty = await rt.io(mem.is_empty)
        log = self.log_view
        if empty:
            if not log.query(TurnView):
                await log.show_welcome(welcome_text(str(mem.data_dir)))
            return
        await rt.io(mem.wait_ready)
        sessions = await rt.io(mem.sessions)
        counts = {s.name: s.count for s in sessions}
        if at_start and not counts.get(rt.session) and sessions and not log.query(TurnView):
            rt.set_session(sessions[0].name)
            self.status.session = rt.session
        await self.use_session_settings()
        # newest first; damaged (now quarantined) or vanished records are skipped
        memories = await rt.io(mem.recent, HISTORY_QUESTIONS, session=rt.session)
        memories.reverse()  # oldest first
        self.composer.set_history(m.user for m in memories)
        shown = memories[-HISTORY_TURNS:]
        first = log.children[0] if log.children else None
        for memory in shown:
            meta = f"{memory.model} · {fmt.when(memory.created_at)}"
            turn = TurnView(memory.user, memory.assistant, meta, memory_id=memory.id)
            turn.add_class("history")
            await log.mount(turn, before=first) if first is not None else await log.mount(turn)
        total = counts.get(rt.session, len(memories))
        if shown:
            last = fmt.count(len(shown), "earlier turn") if len(shown) > 1 else "turn"
            more = f" (of {total:,})" if total > len(shown) else ""
            await log.show_hint(
                f"Session {rt.session!r}: its last {last}{more}. F6 switches session, ctrl+n "
                "starts a new one; older turns come back through recall."
            )
        elif not log.query(TurnView):
            yours = fmt.count(sum(counts.values()), "memory", "memories")
            await log.show_hint(
                f"Session {rt.session!r} is new. Your {yours} are recalled when relevant; "
                "F3 browses them, F6 lists sessions."
            )
        log.scroll_end(animate=False)

    async def use_session_settings(self) -> None:
        """Read the session's own settings (once) and hand them to the shell."""
        from memo_shell.tui.session_settings import SettingsError

        rt = self.runtime
        try:
            await rt.io(rt.load_session_settings)
        except SettingsError as exc:
            self.notify(str(exc), title="Session settings", severity="warning", timeout=15)
        rt.apply_session_settings()

    async def session_changed(self) -> None:
        """The app switched session: start a clean view of that session."""
        self.stop_editing()
        await self.log_view.clear()
        self.panel.show_hits([], [])
        self.status.session = self.runtime.session
        self.composer.set_history([])
        self.load_history(at_start=False)

    # ----------------------------------------------------------------- a turn

    @property
    def busy(self) -> bool:
        return self.turn_worker is not None and self.turn_worker.is_running

    @on(Composer.Submitted)
    def send(self, event: Composer.Submitted) -> None:
        if self.busy:
            event.composer.put_back(event.text)
            self.notify("A reply is still coming: wait, or press escape to cancel it.")
            return
        event.composer.remember(event.text)
        replacing, self.editing = self.editing, None
        if replacing is not None:
            replacing.remove_class("editing")
        self.turn_worker = self.run_turn(event.text, replacing)

    @work(group="turn", exclusive=True, exit_on_error=False)
    async def run_turn(self, question: str, replacing: TurnView | None = None) -> None:
        """Ask ``question``; ``replacing``: a turn it takes the place of (regenerate, edit),
        forgotten first so recall and the recent turns never see the old reply."""
        from memo_shell.shell import Done, Piece, Recalled

        log = self.log_view
        await log.hide_welcome()
        if replacing is not None:
            if replacing.memory_id is not None and self.runtime.store_ready:
                try:
                    await self.runtime.io(self.runtime.forget_turn, replacing.memory_id)
                except MemoShellError as exc:
                    self.notify(str(exc), severity="error", title="Forget")
                    self.composer.put_back(question)
                    return
            await replacing.remove()
        keep = self.runtime.keep_turns
        self._code_back = 0
        turn = await log.add_turn(question)
        turn.set_status("waiting for the model…" if self.runtime.shell is None else "recalling…")
        try:
            shell = await self.runtime.wait_shell()
            await self.use_session_settings()
            # private: the turn is answered but never written (not even for a moment)
            async for event in shell.turn(question, remember=keep):
                if isinstance(event, Recalled):
                    self.panel.show_hits(event.hits, list(event.plan.included), event.plan.left_out)
                    turn.set_status("thinking…")
                elif isinstance(event, Piece):
                    await turn.write(event.text)
                elif isinstance(event, Done):
                    self.runtime.store_changed([event.memory_id] if event.memory_id else [])
                    await turn.finish()
                    status = done_status(event)
                    if keep:
                        turn.memory_id = self.last_turn_id = event.memory_id
                    else:
                        turn.add_class("private")
                        status += " · not kept (private)"
                    turn.set_status(status)
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
        if self.busy:
            assert self.turn_worker is not None
            self.turn_worker.cancel()
        elif self.editing is not None:
            self.stop_editing()
            self.notify(
                "Stopped editing: the last turn stays; the text in the box is a new question."
            )
        else:
            self.composer.focus()

    # ----------------------------------------------------------------- regenerate, edit, copy

    def _last_turn(self) -> TurnView | None:
        turns = self.log_view.turns
        return turns[-1] if turns else None

    def stop_editing(self) -> None:
        if self.editing is not None:
            self.editing.remove_class("editing")
            self.editing = None

    def action_regenerate(self) -> None:
        """Ask the last question again in place of its reply (which is forgotten)."""
        if self.busy:
            self.notify("A reply is still coming: wait, or press escape to cancel it.")
            return
        last = self._last_turn()
        if last is None:
            self.notify("Nothing to regenerate yet: ask something first.")
            return
        self.stop_editing()
        self.notify(
            "Asking again; the earlier reply is forgotten (u in the memory browser, F3, "
            "brings it back).",
            timeout=5,
        )
        self.turn_worker = self.run_turn(last.question, last)

    def action_edit_last(self) -> None:
        """Put the last question in the box; sending it replaces that turn."""
        if self.busy:
            self.notify("A reply is still coming: wait, or press escape to cancel it.")
            return
        last = self._last_turn()
        if last is None:
            self.notify("No question to edit yet.")
            return
        if self.composer.text.strip() and self.composer.text.strip() != last.question:
            self.notify(
                "The message box has text in it: send or clear it first, then edit.",
                severity="warning",
            )
            return
        self.stop_editing()
        self.editing = last
        last.add_class("editing")
        self.composer.load_text(last.question)
        self.composer.move_cursor(self.composer.document.end)
        self.composer.focus()
        self.notify(
            "Editing the last question: enter sends it in place of that turn (the old turn is "
            "forgotten; u in F3 undoes that); escape stops editing."
        )

    def action_copy_reply(self) -> None:
        last = next((t for t in reversed(self.log_view.turns) if t.answer), None)
        if last is None:
            self.notify("No reply to copy yet.")
            return
        self.app.copy_to_clipboard(last.answer)
        self.notify(f"Copied the last reply ({fmt.count(len(last.answer), 'character')}).")

    def action_copy_code(self) -> None:
        from memo_shell.tui.widgets.chat_log import code_blocks

        last = next((t for t in reversed(self.log_view.turns) if t.answer), None)
        blocks = code_blocks(last.answer) if last is not None else []
        if not blocks:
            self.notify("The last reply has no code block; F10 copies the whole reply.")
            return
        n = self._code_back % len(blocks)
        self._code_back += 1
        block = blocks[-1 - n]
        self.app.copy_to_clipboard(block)
        which = (
            "the last code block" if n == 0 else f"code block {len(blocks) - n} of {len(blocks)}"
        )
        more = " (ctrl+b again: the one before)" if len(blocks) > 1 else ""
        self.notify(f"Copied {which}, {fmt.count(block.count(chr(10)), 'line')}{more}.")

    async def action_clear_view(self) -> None:
        self.stop_editing()
        await self.log_view.clear()
        self.panel.show_hits([], [])
        self.notify(
            "Chat view cleared; nothing was forgotten, and the session's recent turns still "
            "go to the model (ctrl+n starts a new session)."
        )

    # ----------------------------------------------------------------- panel and toggles

    def action_toggle_panel(self) -> None:
        panel = self.panel
        panel.display = not panel.display
        if not panel.display and panel.has_focus_within:
            self.composer.focus()

    def action_forget_last(self) -> None:
        if not self.last_turn_id:
            self.notify("Nothing to forget: no turn of this chat is stored.")
            return
        self.forget(self.last_turn_id)

    def on_screen_resume(self) -> None:
        """Back from the browser or the graph: memories forgotten there leave the panel."""
        if self.panel.hits:
            self.drop_forgotten()

    @work(group="panel")
    async def drop_forgotten(self) -> None:
        for memory_id in [h.memory.id for h in self.panel.hits]:
            if not await self.runtime.io(self.runtime.mem.exists, memory_id):
                self.panel.drop_memory(memory_id)

    def action_toggle_memory(self) -> None:
        from memo_shell.tui.runtime import MEMORY_MODES

        rt = self.runtime
        mode = MEMORY_MODES[(MEMORY_MODES.index(rt.memory_mode) + 1) % len(MEMORY_MODES)]
        rt.set_memory_mode(mode)
        self.status.memory_mode = mode
        self.panel.set_memory_enabled(rt.use_memory)
        self.notify(
            {
                "on": "Memory is on: related memories are recalled, and every turn is kept.",
                "off": "Memory is off until you press ctrl+t again: nothing is recalled; "
                "turns are still kept. ctrl+t once more makes the chat private.",
                "private": "Private until you press ctrl+t again: nothing is recalled and "
                "turns are answered without being written to disk.",
            }[mode],
            title=f"Memory {mode}",
        )

    def action_show_prompt(self) -> None:
        shell = self.runtime.shell
        plan = shell.last_plan if shell is not None else None
        if shell is None or plan is None:
            self.notify("No prompt has been sent yet.")
            return
        from memo_shell.tui.screens.prompt import PromptScreen

        text = plan.render()
        # what the model really received, where the backend reshapes the messages
        render = getattr(shell.backend, "render_prompt", None)
        exact = render(plan) if render is not None else None
        if exact is not None:
            text += f"\n── exact text sent to {shell.backend.model} ──\n{exact}"
        self.app.push_screen(PromptScreen(text, list(plan.included)))

    @work(group="settings", exclusive=True)
    async def action_session_settings(self) -> None:
        from memo_shell.tui.screens.settings import SessionSettingsScreen
        from memo_shell.tui.session_settings import SettingsError

        rt = self.runtime
        if await rt.wait_store() is None:
            return
        try:
            current = await rt.io(rt.load_session_settings)
        except SettingsError as exc:
            self.notify(str(exc), title="Session settings", severity="warning", timeout=15)
            from memo_shell.tui.session_settings import SessionSettings

            current = SessionSettings()
        chosen = await self.app.push_screen_wait(
            SessionSettingsScreen(rt.session, current, rt.settings)
        )
        if chosen is None:
            return
        try:
            await rt.io(rt.save_session_settings, chosen)
        except OSError as exc:
            self.notify(
                f"The settings could not be saved: {exc.strerror or exc}. Nothing changed.",
                title="Session settings",
                severity="error",
            )
            return
        note = ""
        backend = rt.backend
        if chosen.context_size is not None and getattr(backend, "name", "") == "llama-cpp":
            note = (
                " llama.cpp keeps the context its model was loaded with; pick the model again "
                "(F5) after changing context_size in the config file to change it."
            )
        self.notify(f"Session {rt.session!r} now uses {chosen.describe()}.{note}")

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
        from memo_shell.tui.screens.dialogs import ConfirmScreen, describe
        from memo_shell.tui.undo import forget_keeping

        rt = self.runtime
        named = await rt.io(describe, rt.mem, memory_id)
        confirmed = await self.app.push_screen_wait(
            ConfirmScreen(
                "Forget this memory?",
                f"{named}\n\nIts file is deleted and it is removed from the index. Undo: u in "
                "the memory browser (F3), until the app quits.",
            )
        )
        if not confirmed:
            return
        try:
            await forget_keeping(rt, rt.undo_stack, [memory_id], named)
        except MemoShellError as exc:
            self.notify(str(exc), severity="error", title="Forget")
            return
        self.panel.drop_memory(memory_id)
        if memory_id == self.last_turn_id:
            self.last_turn_id = ""
        for turn in self.log_view.turns:
            if turn.memory_id == memory_id:
                turn.memory_id = None
        self.notify("Forgotten. u in the memory browser (F3) undoes it.")
