"""MemoShellApp: themes, keys and routing between screens; the screens own everything else.

Only the chat screen is imported up front; the others are imported when first opened.

Start-up order is what makes the first paint fast: the app composes the chat screen at once, and
only after mount does it open the store (the index then loads in its own thread) and choose a
model backend, each in a worker. Nothing heavy is imported before the first frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme

from memo_shell.config import Settings, save_setting
from memo_shell.errors import MemoShellError
from memo_shell.tui import keymap, messages, notices, safe_text, themes
from memo_shell.tui.runtime import Runtime
from memo_shell.tui.screens import SCREENS_CSS
from memo_shell.tui.screens.chat import ChatScreen

if TYPE_CHECKING:
    from memo_shell.api import Memories
    from memo_shell.backends.base import Backend

safe_text.install()

#: Which keymap scopes the command palette offers on each screen, and which widget runs them
#: ("" is the screen itself).
PALETTE_TARGETS: dict[str, dict[str, str]] = {
    "chat": {"chat": "", "panel": "#panel"},
    "browser": {"browser": "", "table": "#table"},
    "graph": {"graph": ""},
}
#: The theme choice is written to the config file this long after the last change, so
#: previewing themes in the picker does not rewrite the file on every keystroke.
THEME_SAVE_DELAY_S = 0.5
#: After the first frame, the other screens' stylesheet is parsed this much later (see
#: _preload_screens_css): late enough not to compete with the store opening.
PRELOAD_CSS_AFTER_S = 1.0


class MemoShellApp(App[None]):
    """The memory shell."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every toast shows its message as text, never as markup: messages quote session
        names, tags, file names and model or server errors ("[/INST]" raised MarkupError)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses may live anywhere
    TITLE = "memo-shell"
    #: Below 100 columns the screens get the ``-narrow`` class (app.tcss lays them out for 80).
    # not ClassVar-annotated: Textual declares it an instance variable, which mypy keeps
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # noqa: RUF012
    BINDINGS: ClassVar = keymap.bindings("app")

    def __init__(
        self,
        settings: Settings,
        *,
        memories: Memories | None = None,
        backend: Backend | None = None,
        persist_theme: bool = True,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.runtime = Runtime(settings, memories=memories, backend=backend, post=self.post_message)
        self.persist_theme = persist_theme
        self.problems: list[str] = []
        loaded = themes.load_themes(settings.config_file)
        self.problems += loaded.problems
        for theme in loaded.themes.values():
            self.register_theme(theme)
        self.theme = self._initial_theme(settings.theme)
        self.key_overrides, key_problems = keymap.check_overrides(settings.keys)
        self.problems += key_problems
        self._saved_theme = self.theme

    def _initial_theme(self, wanted: str) -> str:
        if wanted in self.available_themes:
            return wanted
        fallback = (
            themes.DEFAULT_THEME
            if themes.DEFAULT_THEME in self.available_themes
            else themes.FALLBACK_THEME
        )
        self.problems.append(f"theme {wanted!r} was not found; using {fallback}")
        return fallback

    def get_css_variables(self) -> dict[str, str]:
        variables = themes.with_memo_variables(super().get_css_variables())
        self.theme_variables = variables
        return variables

    def get_default_screen(self) -> Screen[Any]:
        chat = ChatScreen(self.runtime)
        # The width class the first resize would add, added before anything is mounted: added
        # after, it restyles every widget of the chat (~14 ms of the first paint).
        chat.add_class(*self._breakpoint_classes(self.size.width))
        return chat

    def _breakpoint_classes(self, width: int) -> set[str]:
        """The class ``HORIZONTAL_BREAKPOINTS`` gives a screen of this width (as Textual picks
        it: the widest breakpoint not wider than the screen)."""
        for minimum, name in sorted(self.HORIZONTAL_BREAKPOINTS or [], reverse=True):
            if width >= minimum:
                return {name}
        return set()

    @property
    def chat(self) -> ChatScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, ChatScreen)
        return screen

    @on(messages.RuntimeMessage)
    def _route(self, message: messages.RuntimeMessage) -> None:
        """The runtime's news goes to every open screen; each shows what concerns it."""
        for screen in self.screen_stack:
            screen.post_message(message)

    # ----------------------------------------------------------------- start-up

    def on_mount(self) -> None:
        self._notices = notices.attach(self)
        self.set_keymap(self.key_overrides)
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def on_ready(self) -> None:
        """After the first frame: only now open the store and look for a model, so neither
        the index load nor the backend probe (threads and imports) delays the first paint."""
        for problem in self.problems:
            self.notify(problem, title="Configuration", severity="warning", timeout=10)
        self.open_store()
        self.start_backend()
        self.set_timer(PRELOAD_CSS_AFTER_S, self._preload_screens_css)

    def _preload_screens_css(self) -> None:
        """Parse the other screens' stylesheet while the app idles after start-up: Textual
        would parse it (and every other source again) when the first of them opens, and the
        first F3 or dialog would wait for that."""
        if self.is_running and not self.stylesheet.has_source(str(SCREENS_CSS)):
            self.stylesheet.read(SCREENS_CSS)
            self.refresh_css(animate=False)

    @work(group="startup")
    async def open_store(self) -> None:
        try:
            await self.runtime.open_store()
        except MemoShellError as exc:
            self.notify(str(exc), title="Memory store", severity="error", timeout=30)
            return
        warning = await self.runtime.io(self.runtime.mem.permission_problem)
        if warning:
            self.notify(warning, title="Privacy", severity="warning", timeout=15)
        await self.runtime.watch_index()

    @work(group="backend", exclusive=True)
    async def start_backend(self) -> None:
        try:
            await self.runtime.choose_backend()
        except Exception as exc:  # degrade, don't die: the store and browser still work
            self.notify(
                f"{exc or type(exc).__name__}. Press F5 to pick another model.",
                title="No model",
                severity="error",
                timeout=30,
            )

    async def on_unmount(self) -> None:
        try:
            await self.runtime.close()
        finally:
            notices.detach(self._notices)

    # ----------------------------------------------------------------- themes

    def _theme_changed(self, theme: Theme) -> None:
        if self.persist_theme and theme.name != self._saved_theme:
            self.save_theme(theme.name)

    @work(group="theme", exclusive=True)
    async def save_theme(self, name: str) -> None:
        await asyncio.sleep(THEME_SAVE_DELAY_S)
        try:
            await asyncio.to_thread(save_setting, self.settings.config_file, "theme", name)
        except OSError as exc:
            self.notify(f"Could not save the theme choice: {exc}", severity="warning")
            return
        self._saved_theme = name

    # ----------------------------------------------------------------- routing

    def action_open(self, name: str) -> None:
        """Show the chat, the memory browser or the graph (one of them at a time)."""
        while len(self.screen_stack) > 1:
            self.pop_screen()
        if name == "browser":
            from memo_shell.tui.screens.browser import BrowserScreen

            self.push_screen(BrowserScreen(self.runtime))
        elif name == "graph":
            from memo_shell.tui.screens.graph import GraphScreen

            self.push_screen(GraphScreen(self.runtime))

    def action_help(self) -> None:
        from memo_shell.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.key_overrides, self.settings.config_file))

    def action_pick_model(self) -> None:
        from memo_shell.tui.screens.models import ModelScreen

        if not isinstance(self.screen, ModelScreen):
            self.push_screen(ModelScreen(self.runtime))

    def action_pick_session(self) -> None:
        from memo_shell.tui.screens.sessions import SessionsScreen

        if not isinstance(self.screen, SessionsScreen):
            self.push_screen(SessionsScreen(self.runtime), self._session_picked)

    async def _session_picked(self, name: str | None) -> None:
        from memo_shell.tui.screens.sessions import NEW

        if name == NEW:
            await self.action_new_session()
        elif name is not None and name != self.runtime.session:
            self.runtime.set_session(name)
            await self.chat.session_changed()
            self.notify(f"Session {name!r}.")

    async def action_new_session(self) -> None:
        name = self.runtime.new_session()
        await self.chat.session_changed()
        self.notify(f"New session {name!r}: recent turns start afresh; recall still works.")

    # ----------------------------------------------------------------- command palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        from memo_shell.tui.screens import importer

        yield from super().get_system_commands(screen)
        yield from importer.system_commands(self)
        own = {"app.theme", "app.quit"}  # Textual already offers "Theme" and "Quit"
        targets: dict[str, Any] = {"app": self}
        for scope, selector in PALETTE_TARGETS.get(screen.id or "", {}).items():
            if not selector:
                targets[scope] = screen
            elif found := screen.query(selector):
                targets[scope] = found.first()
        offered: set[tuple[str, str]] = set()
        for key in keymap.palette_entries(targets):
            # one entry per action: "?" and F1 both open the help, offered once
            if key.id in own or (key.scope, key.action) in offered:
                continue
            offered.add((key.scope, key.action))
            shown = keymap.display(keymap.effective_key(key, self.key_overrides))
            yield SystemCommand(
                key.description,
                f"{key.help or key.description} (key: {shown})",
                partial(self.call_next, targets[key.scope].run_action, key.action),
            )
