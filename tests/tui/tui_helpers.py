"""Helpers for the app's tests: seeding a store, building the app, waiting, reading the screen."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

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


def make_app(settings: Settings, memories: memo_shell.Memories | None = None, **kw: Any) -> Any:
    from memo_shell.tui.app import MemoShellApp

    return MemoShellApp(settings, memories=memories, **kw)


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
