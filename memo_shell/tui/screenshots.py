"""Regenerate the README screenshots: ``python -m memo_shell.tui.screenshots [OUT_DIR]``.

Runs the real app headless on a throwaway store seeded with example memories, and exports SVGs
(Textual's own screenshot format) of the chat screen with its recalled-memories panel and of the
memory browser, into ``.github/screenshots/`` by default. The model is a scripted stand-in (fixed
words, fixed timing line) so the images change only when the interface does; every other part,
store, index, recall, shell and screens, is the real thing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import memo_shell
from memo_shell.backends.base import GenerationOptions, Health, ModelInfo, estimate_tokens
from memo_shell.config import Settings
from memo_shell.errors import BackendError

SIZE = (120, 36)
OUT = Path(memo_shell.__file__).resolve().parents[1] / ".github" / "screenshots"
QUESTION = "What should I pack for the Lisbon trip with Ada?"
REPLY = """\
From what you told me before, the trip is **in May** and Ada prefers to walk:

- light layers and a rain jacket (May evenings are cool by the river)
- comfortable shoes for the hills of *Alfama*
- a reusable tram card — the 28 is the one you wanted to ride

```text
Lisbon, May: 17–23 °C, some rain
```
"""
MEMORIES = [
    ("work", "How do I profile a Textual app?", "Run it under `textual run --dev` and use the "
     "devtools console; `py-spy` shows where the event loop spends its time."),
    ("personal", "Remind me: Ada hates long drives, she'd rather walk or take a tram.",
     "Noted: Ada prefers walking and trams to driving."),
    ("travel", "Plan a trip to Lisbon with Ada in May.", "May is mild in Lisbon. Ride tram 28, "
     "walk Alfama, and book a day in Sintra."),
    ("travel", "What wine goes with bacalhau?", "A crisp Vinho Verde, or an Alvarinho."),
    ("work", "Textual workers keep the UI responsive, right?", "Yes: run slow calls in workers "
     "(`@work`), never on the event loop."),
    ("travel", "Is May a rainy month in Lisbon?", "Some showers; pack a light rain jacket."),
    ("personal", "Ada's birthday is on the 14th of June.", "I'll remember: Ada, 14 June."),
]  # fmt: skip


class ScriptedBackend:
    """A stand-in model that streams a fixed reply (so screenshots are reproducible)."""

    name = "ollama"
    model = "llama3.2"
    context_size = 8192

    async def stream(self, chat: Any, options: GenerationOptions) -> AsyncGenerator[str, None]:
        for word in REPLY.split(" "):
            await asyncio.sleep(0)
            yield word + " "

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise BackendError("the scripted screenshot model cannot embed")

    async def models(self) -> list[ModelInfo]:
        return [ModelInfo(self.model)]

    async def health(self) -> Health:
        return Health(True, "scripted")

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        return None


def seed(memories: memo_shell.Memories) -> None:
    start = datetime(2025, 4, 2, 18, 5, tzinfo=UTC)
    for n, (session, user, assistant) in enumerate(MEMORIES):
        memories.add(
            user,
            assistant,
            session=session,
            at=start + timedelta(days=3 * n, minutes=13 * n),
            model="llama3.2",
            backend="ollama",
            pinned=n == 1,
            tags=("trip",) if session == "travel" else (),
        )


async def idle(pilot: Any) -> None:
    """Wait for workers to finish and the screen to repaint."""
    for _ in range(100):
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            break
        await asyncio.sleep(0.02)
    pilot.app.clear_notifications()
    await pilot.pause()


async def shoot(data_dir: Path, out: Path) -> list[Path]:
    from memo_shell.tui.app import MemoShellApp
    from memo_shell.tui.widgets.chat_log import TurnView
    from memo_shell.tui.widgets.composer import Composer

    settings = Settings(data_dir=data_dir, config_file=data_dir / "config.toml", theme="memo-dark")
    written = []
    with memo_shell.open(data_dir, settings=settings) as memories:
        memories.wait_ready(60)
        seed(memories)
        app = MemoShellApp(
            settings, memories=memories, backend=ScriptedBackend(), persist_theme=False
        )
        async with app.run_test(size=SIZE) as pilot:
            await idle(pilot)
            await pilot.press("f3")
            await idle(pilot)
            await pilot.press("down", "space", "down", "down", "space")
            await idle(pilot)
            written.append(out / "browser.svg")
            written[-1].write_text(app.export_screenshot(title="memo-shell — memory browser"))
            await pilot.press("escape", "escape")
            await idle(pilot)
            composer = app.screen.query_one(Composer)
            composer.load_text(QUESTION)
            await pilot.press("enter")
            await idle(pilot)
            app.screen.query(TurnView).last().set_status(
                "llama3.2 · ollama · first token 240 ms · 1.9 s"
            )
            composer.cursor_blink = False
            await idle(pilot)
            written.append(out / "chat.svg")
            written[-1].write_text(app.export_screenshot(title="memo-shell — chat"))
    return written


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUT
    out.mkdir(parents=True, exist_ok=True)
    os.environ["TZ"] = "UTC"  # the dates shown must not depend on where this runs
    time.tzset()
    with tempfile.TemporaryDirectory(prefix="memo-shell-shots-") as tmp:
        for path in asyncio.run(shoot(Path(tmp) / "data", out)):
            print(path)


if __name__ == "__main__":
    main()
