"""Helpers for the app's tests: seeding a store, building the app, waiting, reading the screen."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

from textual.message import Message
from textual.notifications import Notify

import memo_shell
from memo_shell.config import Settings

MODEL = "scripted:latest"
REPLY = "Textual apps use **workers** for slow jobs.\n\n```python\nprint('hi')\n```"
#: Memories every seeded store holds, oldest first: (session, user, assistant, tags, pinned).
SEED: list[tuple[str, str, str, tuple[str, ...], bool]] = [
    (
        "work",
        "How do I profile a Textual app?",
        "Use textual console and devtools.",
        ("dev",),
        False,
    ),
    ("work", "Remind me: Ada prefers tabs over spaces.", "Noted: Ada likes tabs.", (), True),
    (
        "home",
        "Plan a trip to Lisbon with Ada in May.",
        "Lisbon in May: trams, pastel de nata.",
        (),
        False,
    ),
    ("home", "What wine goes with bacalhau?", "Try a Vinho Verde.", ("food",), False),
    (
        "work",
        "Textual workers keep the UI responsive.",
        "Yes: run slow calls in workers.",
        ("dev",),
        False,
    ),
]
SEED_START = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def seed(memories: memo_shell.Memories, rows: list[tuple[Any, ...]] = SEED) -> list[str]:
    ids = []
    for n, (session, user, assistant, tags, pinned) in enumerate(rows):
        ids.append(
            memories.add(
                user,
                assistant,
                session=session,
                at=SEED_START + timedelta(days=n, minutes=7 * n),
                model="scripted",
                backend="ollama",
                tags=tags,
                pinned=pinned,
            )
        )
    return ids


M = TypeVar("M", bound=Message)


class Heard:
    """Every message the app's parts handled, in order (``run_test(message_hook=heard)``):
    tests assert on what the app was told and told the user, not on private state."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> None:
        self.messages.append(message)

    def of(self, kind: type[M]) -> list[M]:
        """Messages of ``kind``, each once (a routed message reaches several screens)."""
        seen: dict[int, M] = {}
        for message in self.messages:
            if isinstance(message, kind):
                seen.setdefault(id(message), message)
        return list(seen.values())

    def notes(self) -> str:
        """Every notification shown so far, one per line (expired ones included)."""
        return "\n".join(str(n.notification.message) for n in self.of(Notify))


@cache
def _app_class() -> type:
    from memo_shell.tui.app import MemoShellApp

    class HeardApp(MemoShellApp):
        """The app, listened to: ``run_test`` records its messages in ``app.heard``."""

        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            self.heard = Heard()

        def run_test(self, *args: Any, **kw: Any) -> Any:
            kw.setdefault("message_hook", self.heard)
            return super().run_test(*args, **kw)

    return HeardApp


def make_app(settings: Settings, memories: memo_shell.Memories | None = None, **kw: Any) -> Any:
    return _app_class()(settings, memories=memories, **kw)


def notes(app: Any) -> str:
    """The notifications the app has shown, one per line."""
    return app.heard.notes()


async def settle(pilot: Any, timeout: float = 15.0) -> None:
    """Wait until the app is idle: no worker running (other than one waiting on a dialog), no
    table rows waiting for metadata; then let it repaint. Fails loudly instead of hanging."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause()
        if not _busy(app):
            await pilot.pause()
            if not _busy(app):
                return
        if time.monotonic() > deadline:
            running = [w.name for w in app.workers if w.is_running]
            raise AssertionError(f"the app did not settle; still running: {running}")
        await pilot.pause(0.01)


def _busy(app: Any) -> bool:
    from memo_shell.tui.screens.dialogs import ConfirmScreen, TextPromptScreen
    from memo_shell.tui.screens.settings import SessionSettingsScreen

    if isinstance(app.screen, ConfirmScreen | TextPromptScreen | SessionSettingsScreen):
        return False  # the worker that opened the dialog waits for an answer: that is idle
    if any(t.pending for t in app.screen.query("MemoryTable")):
        return True
    return any(w.is_running for w in app.workers)


def screen_text(app: Any) -> str:
    """Everything on the top screen as plain text, line by line (what a user would read)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def ask(pilot: Any, question: str) -> None:
    """Type ``question`` into the chat's input and send it; wait until the app is idle."""
    from memo_shell.tui.widgets.composer import Composer

    composer = pilot.app.screen.query_one(Composer)
    composer.focus()
    composer.load_text(question)
    await pilot.press("enter")
    await settle(pilot)
