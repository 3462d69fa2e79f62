"""The app's link to the library: the memory store, the model backend and the conversation.

Everything here that touches disk or the network is async (sync library calls go through
``asyncio.to_thread``) and is awaited from Textual workers, so the event loop never waits on
I/O. Heavy imports (the index, model backends, llama.cpp) happen inside those workers, after
the first paint, which is what keeps start-up fast however large the store is.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from memo_shell.config import Settings
from memo_shell.tui import messages
from memo_shell.tui.undo import Forgotten

if TYPE_CHECKING:
    from textual.message import Message

    from memo_shell.api import Memories
    from memo_shell.backends.base import Backend
    from memo_shell.records import Memory
    from memo_shell.shell import Shell
    from memo_shell.tui.session_settings import SessionSettings

T = TypeVar("T")

#: ctrl+t cycles these. "off": nothing is recalled, turns are still kept; "private": nothing is
#: recalled and a turn is answered without being written at all (Shell.turn(remember=False)).
MEMORY_MODES = ("on", "off", "private")
#: Forget batches kept for undo (the records are held in memory while the app runs).
UNDO_DEPTH = 20


class Runtime:
    """Owns the ``Memories`` handle, the chosen backend and the ``Shell`` for the app's lifetime.

    Screens read and act through it; the app starts it after the first paint. Tests may pass an
    already open ``memories`` or a ready ``backend`` to skip discovery. Every change the screens
    may show is announced through ``post`` (the app's ``post_message``: see messages.py).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        memories: Memories | None = None,
        backend: Backend | None = None,
        post: Callable[[Message], object] | None = None,
    ) -> None:
        self.settings = settings
        self.memories: Memories | None = memories
        self.backend: Backend | None = backend
        self.backend_reason = ""
        self.backend_error: str | None = None
        self.shell: Shell | None = None
        self._post = post or (lambda message: None)
        self.session = "default"
        self.memory_mode = "on" if settings.use_memory else "off"
        #: Forgotten batches, newest last: shared by every screen, so a forget made anywhere
        #: (chat, details, browser, graph) can be undone from the browser or the graph.
        self.undo_stack: list[Forgotten] = []
        self._owns_memories = memories is None
        #: The current session's own system prompt and model parameters (session_settings.py).
        self.session_settings: SessionSettings | None = None
        self._store_ready = asyncio.Event()
        self._backend_ready = asyncio.Event()
        #: While a model is being prepared: what is happening and how far (0..1, None unknown).
        self.preparing: tuple[str, float | None] | None = None
        #: Bytes of record files, measured by walking the store (slow on big stores), so kept
        #: until something is written or forgotten.
        self._disk_bytes: int | None = None

    # ----------------------------------------------------------------- helpers

    @staticmethod
    async def io(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking library call off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def set_preparing(self, label: str | None, fraction: float | None = None) -> None:
        """Say what is being done to get a model ready (None: done). Any thread."""
        self.preparing = None if label is None else (label, fraction)
        self._post(messages.BackendPreparing(label, fraction))

    @property
    def store_ready(self) -> bool:
        return self._store_ready.is_set() and self.memories is not None

    @property
    def mem(self) -> Memories:
        """The open store; only call once ``store_ready`` (screens check or await first)."""
        if self.memories is None:
            raise RuntimeError("the memory store is not open yet")
        return self.memories

    # ----------------------------------------------------------------- start-up

    async def open_store(self) -> None:
        """Open the data directory (returns at once; the index keeps loading in the background)."""
        try:
            if self.memories is None:
                self.memories = await self.io(_open_memories, self.settings)
        except Exception as exc:
            self._post(messages.StoreFailed(str(exc) or type(exc).__name__))
            raise
        finally:
            self._store_ready.set()
        self._make_shell()
        mem = self.memories
        # a notice is a wake-up call: the chat reads the new ones from ``mem.notices``
        mem.on_notice(lambda _: self._post(messages.IndexChanged(mem.index_state)))
        self._post(messages.StoreOpened())

    async def watch_index(self) -> None:
        """Announce the index's state now and once it has loaded (in its own thread)."""
        mem = await self.wait_store()
        if mem is None:
            return
        if mem.index_state != "ready":
            self._post(messages.IndexChanged(mem.index_state))
            await self.io(mem.wait_ready)
        self._post(messages.IndexChanged(mem.index_state))

    async def wait_store(self) -> Memories | None:
        """The store once open; None if it could not be opened (the app has said why)."""
        await self._store_ready.wait()
        return self.memories

    async def choose_backend(self) -> None:
        """Pick the backend the settings ask for (``auto``: Ollama, else the embedded model),
        then load a local model at once so the first question does not wait for it."""
        try:
            if self.backend is None:
                # Import off the event loop: the HTTP clients take a moment to import.
                await self.io(importlib.import_module, "memo_shell.shell")
                from memo_shell.backends import choose_backend, embedded

                first_run = (
                    self.settings.backend in ("auto", "llama-cpp")
                    and embedded.available()
                    and embedded.cached_path() is None
                )
                self.set_preparing(
                    "looking for a model (first run: preparing the embedded model)…"
                    if first_run
                    else "looking for a model…"
                )
                choice = await choose_backend(self.settings)
                self.backend = choice.backend
                self.backend_reason = choice.reason
            if getattr(self.backend, "loaded", True) is False:
                self.set_preparing(f"loading {self.backend.model}…")
                await self.backend.load()  # type: ignore[attr-defined]  # local models only
            self.backend_error = None
        except Exception as exc:
            self.backend_error = str(exc) or type(exc).__name__
            if self.backend is not None:  # chosen, but its model failed to load (or crashed):
                self._make_shell()  # the next question loads it again, in a fresh worker
            self._post(messages.BackendFailed(self.backend_error))
            raise
        finally:
            self.preparing = None
            self._backend_ready.set()
        self._make_shell()
        chosen = self.backend
        assert chosen is not None  # chosen above, or given
        self._post(messages.BackendReady(chosen.name, chosen.model))

    async def set_backend(self, backend: Backend) -> None:
        old, self.backend = self.backend, backend
        self.backend_error = None
        self.preparing = None
        self._backend_ready.set()
        if self.shell is not None:
            self.shell.set_backend(backend)
            self.apply_session_settings()
        else:
            self._make_shell()
        self._post(messages.BackendReady(backend.name, backend.model))
        if old is not None and old is not backend:
            await _close_quietly(old)

    def _make_shell(self) -> None:
        if self.shell is not None or self.memories is None or self.backend is None:
            return
        from memo_shell.shell import Shell

        self.shell = Shell(self.memories, self.backend, self.settings, session=self.session)
        self.shell.use_memory = self.use_memory
        self.apply_session_settings()

    async def wait_shell(self) -> Shell:
        """The shell once both the store and a backend are ready; raises the backend's error."""
        await self._store_ready.wait()
        await self._backend_ready.wait()
        if self.shell is None:
            from memo_shell.errors import BackendError, StoreError

            if self.memories is None:
                raise StoreError("the memory store could not be opened, so nothing can be sent")
            raise BackendError(self.backend_error or "no model backend is available")
        return self.shell

    # ----------------------------------------------------------------- conversation state

    @property
    def use_memory(self) -> bool:
        """Whether the next turn recalls memories."""
        return self.memory_mode == "on"

    @property
    def keep_turns(self) -> bool:
        """Whether the next turn is kept in memory."""
        return self.memory_mode != "private"

    def set_memory_mode(self, mode: str) -> None:
        if mode not in MEMORY_MODES:
            raise ValueError(f"unknown memory mode {mode!r}")
        self.memory_mode = mode
        if self.shell is not None:
            self.shell.use_memory = self.use_memory

    def set_use_memory(self, enabled: bool) -> None:
        self.set_memory_mode("on" if enabled else "off")

    def set_session(self, name: str) -> None:
        self.session = name
        if self.shell is not None:
            self.shell.session = name
        self.session_settings = None  # the new session's are read on the next apply
        self._post(messages.SessionChanged(name))

    def new_session(self) -> str:
        if self.shell is not None:
            self.shell.new_session()
            self.session = self.shell.session
        else:
            from memo_shell.shell import session_name

            self.session = session_name()
        self.session_settings = None
        self.apply_session_settings()
        self._post(messages.SessionChanged(self.session))
        return self.session

    # ----------------------------------------------------------------- per-session settings

    def load_session_settings(self) -> SessionSettings:
        """The current session's settings (read once, then kept). Blocking (a small read).

        Raises SettingsError for a damaged file; the defaults then apply until it is saved."""
        from memo_shell.tui import session_settings

        if self.session_settings is None:
            self.session_settings = session_settings.SessionSettings()
            if self.memories is not None:
                self.session_settings = session_settings.load(self.memories.data_dir, self.session)
        return self.session_settings

    def save_session_settings(self, chosen: SessionSettings) -> None:
        """Save the current session's settings and use them from the next turn. Blocking."""
        from memo_shell.tui import session_settings

        session_settings.save(self.mem.data_dir, self.session, chosen)
        self.session_settings = chosen
        self.apply_session_settings()

    def apply_session_settings(self) -> None:
        """Give the shell the session's system prompt and parameters (the app's otherwise).

        Only from settings already read (``load_session_settings`` runs in a thread first);
        a context size reaches the servers (Ollama's num_ctx, the prompt budget); llama.cpp
        keeps the window its model was loaded with.
        """
        if self.shell is None:
            return
        from memo_shell.shell import DEFAULT_SYSTEM

        chosen = self.session_settings
        if chosen is None:
            from memo_shell.tui.session_settings import SessionSettings

            chosen = SessionSettings()
        self.shell.system = chosen.system or DEFAULT_SYSTEM
        self.shell.settings = self.settings.with_overrides(
            temperature=chosen.temperature,
            max_tokens=chosen.max_tokens,
            context_size=chosen.context_size,
        )
        backend = self.backend
        if backend is not None and getattr(backend, "name", "") in ("ollama", "openai"):
            backend.context_size = self.shell.settings.context_size

    # ----------------------------------------------------------------- store operations

    async def disk_bytes(self) -> int:
        if self._disk_bytes is None:
            self._disk_bytes = await self.io(self.mem.disk_usage)
        return self._disk_bytes

    def store_changed(self, ids: Iterable[str] = ()) -> None:
        """Memories were written: the disk size must be measured again. Any thread."""
        self._disk_bytes = None
        self._post(messages.MemoriesChanged(tuple(ids)))

    def forget_turn(self, memory_id: str) -> None:
        """Forget one turn of the conversation (regenerate, edit). Blocking.

        The record is kept for undo (u in the browser or graph), as every forget in the app
        is. The shell reads the session's recent turns from the store again after this, so the
        forgotten turn is not sent to the model any more.
        """
        kept = self.forget_for_undo([memory_id])
        if kept:
            self.undo_stack.append(Forgotten("a replaced reply", kept))
            del self.undo_stack[:-UNDO_DEPTH]
        if self.shell is not None:
            self.shell.reload_recent()

    def forget_for_undo(self, ids: Iterable[str]) -> list[Memory]:
        """Forget memories, returning the records so the caller can offer undo. Blocking."""
        wanted = list(ids)
        self._disk_bytes = None
        try:
            return self.mem.forget_for_undo(wanted)
        finally:  # a failure may come after some are gone: the screens look again
            self._post(messages.MemoriesForgotten(tuple(wanted)))

    def restore(self, memories: Iterable[Memory]) -> int:
        """Put forgotten records back exactly (same ids, same content). Blocking."""
        done: list[str] = []
        try:
            for memory in memories:
                self.mem.restore(memory)
                done.append(memory.id)
        finally:
            self.store_changed(done)
        return len(done)

    def rename_session(self, old: str, new: str) -> int:
        """Move every memory of session ``old`` to ``new``. Blocking; returns how many moved."""
        moved = self.mem.rename_session(old, new)
        self._move_session_settings(old, new)
        if self.session == old:
            self.set_session(new)
        self.store_changed()
        return moved

    def _move_session_settings(self, old: str, new: str) -> None:
        """A renamed session keeps its settings (unless the new name already has its own)."""
        from memo_shell.tui import session_settings

        data_dir = self.mem.data_dir
        try:
            moving = session_settings.load(data_dir, old)
            if moving.empty or not session_settings.load(data_dir, new).empty:
                return
        except session_settings.SettingsError:
            return  # a damaged file stays where it is, reported when its session is opened
        session_settings.save(data_dir, new, moving)
        session_settings.save(data_dir, old, session_settings.SessionSettings())

    async def close(self) -> None:
        if self.backend is not None:
            await _close_quietly(self.backend)
        if self.memories is not None and self._owns_memories:
            await self.io(self.memories.close)


def _open_memories(settings: Settings) -> Memories:
    """Runs in a thread: importing the library (index, recall, graph) takes a moment too."""
    from memo_shell.wiring import open_memories

    return open_memories(settings)


async def _close_quietly(backend: Backend) -> None:
    aclose = getattr(backend, "aclose", None)
    if aclose is None:
        return
    # closing a dead connection must not stop a switch or a quit
    with contextlib.suppress(Exception):
        await aclose()
