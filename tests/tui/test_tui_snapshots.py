"""Snapshot tests: the main screens at 120x36 and at 80x24 in the default theme (memo-dark).

Everything that varies between runs is pinned: dates (seeded memories at fixed times, TZ=UTC),
the data directory's path (a fixed temp path), reply timing (the one line that shows it is
overwritten after the turn), toasts (cleared), the text cursor (not blinking).
Update after an intended change with ``pytest tests/tui --snapshot-update`` and review the SVGs.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from textual.widgets import DataTable
from tui_helpers import MODEL, make_app, seed, settle

import memo_shell
from memo_shell.api import Hit
from memo_shell.tui.widgets.chat_log import TurnView
from memo_shell.tui.widgets.composer import Composer
from memo_shell.tui.widgets.recall_panel import RecallPanel

SIZES = pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
FIXED_DIR = Path(tempfile.gettempdir()) / "memo-shell-snapshot"


@pytest.fixture
def fixed_store(settings):
    """A store at a fixed path (it is printed on the welcome screen)."""
    shutil.rmtree(FIXED_DIR, ignore_errors=True)
    settings = type(settings)(**{**settings.__dict__, "data_dir": FIXED_DIR / "data"})
    memories = memo_shell.open(settings.data_dir, settings=settings)
    memories.wait_ready(30)
    yield settings, memories
    memories.close()
    shutil.rmtree(FIXED_DIR, ignore_errors=True)


async def steady(pilot) -> None:
    await settle(pilot)
    pilot.app.clear_notifications()
    for composer in pilot.app.screen.query(Composer):
        composer.cursor_blink = False
    await pilot.pause()


@SIZES
def test_chat_with_recalled_panel(snap_compare, size, settings, memories, seeded):
    async def run_before(pilot) -> None:
        await settle(pilot)
        composer = pilot.app.screen.query_one(Composer)
        composer.load_text("When is the Lisbon trip with Ada?")
        await pilot.press("enter")
        await settle(pilot)
        turn = pilot.app.screen.query(TurnView).last()
        turn.set_status(f"{MODEL} · ollama · first token 180 ms · 420 ms")  # timing varies
        # Recall scores include recency, which moves with the clock: pin them for the image.
        panel = pilot.app.screen.query_one(RecallPanel)
        fixed = [Hit(h.memory, 1.5 / (n + 1), h.why) for n, h in enumerate(panel.hits)]
        panel.show_hits(fixed, list(panel.included))
        await steady(pilot)

    assert snap_compare(make_app(settings, memories), terminal_size=size, run_before=run_before)


@SIZES
def test_chat_welcome_on_an_empty_store(snap_compare, size, fixed_store):
    settings, memories = fixed_store
    assert snap_compare(make_app(settings, memories), terminal_size=size, run_before=steady)


@SIZES
def test_memory_browser(snap_compare, size, settings, memories, seeded):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("space", "space")  # two selected rows
        await steady(pilot)

    assert snap_compare(make_app(settings, memories), terminal_size=size, run_before=run_before)


@SIZES
def test_memory_detail(snap_compare, size, settings, memories, seeded):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        await pilot.press("down", "down", "enter")
        await steady(pilot)
        title = pilot.app.screen.query_one("#detail-title")
        title.update(str(title.content)[:17] + "…")  # ids are random past the time part
        await pilot.pause()

    assert snap_compare(make_app(settings, memories), terminal_size=size, run_before=run_before)


@SIZES
def test_knowledge_graph(snap_compare, size, settings, memories, seeded):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        table = pilot.app.screen.query_one(DataTable)
        table.move_cursor(row=[e.name for e in memories.entities()].index("Ada"))
        await steady(pilot)

    assert snap_compare(make_app(settings, memories), terminal_size=size, run_before=run_before)


@SIZES
def test_help(snap_compare, size, settings, memories):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("f1")
        await steady(pilot)

    assert snap_compare(make_app(settings, memories), terminal_size=size, run_before=run_before)


@SIZES
def test_chat_in_the_light_theme(snap_compare, size, settings, memories):
    seed(memories)
    light = type(settings)(**{**settings.__dict__, "theme": "memo-light"})

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("f6")
        await steady(pilot)

    assert snap_compare(
        make_app(light, memories, persist_theme=False), terminal_size=size, run_before=run_before
    )


@SIZES
def test_session_settings(snap_compare, size, settings, memories, seeded):
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        pilot.app.screen.query_one("#temperature").value = "0.2"
        await steady(pilot)

    assert snap_compare(make_app(settings, memories), terminal_size=size, run_before=run_before)
