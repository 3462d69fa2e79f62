"""The runtime tells the app what changed (store, index, backend, memories, session) through
messages; the screens show it from those messages, with nothing polling."""

from __future__ import annotations

import threading
from dataclasses import replace

from tui_helpers import MODEL, make_app, notes, screen_text, settle

from memo_shell.tui import messages
from memo_shell.tui.screens.chat import ChatScreen


async def test_start_up_announces_the_store_the_index_and_the_backend(settings, memories, seeded):
    memories.close()
    app = make_app(settings)  # the app opens the store itself
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        heard = app.heard
        assert heard.of(messages.StoreOpened)
        assert heard.of(messages.IndexChanged)[-1].state == "ready"
        ready = heard.of(messages.BackendReady)
        assert [(r.name, r.model) for r in ready] == [("ollama", MODEL)]
        assert heard.of(messages.BackendPreparing)[0].label == "looking for a model…"
        assert not heard.of(messages.BackendFailed)
        text = screen_text(app)
        assert f"ollama · {MODEL}" in text and "5 memories" in text
        # the messages are the runtime's, routed by the app to the screens: each once each
        routed = [m for m in heard.messages if isinstance(m, messages.BackendReady)]
        assert len(routed) == 1 + len(app.screen_stack)


async def test_a_backend_that_cannot_work_is_announced_and_shown(settings, memories):
    app = make_app(replace(settings, backend="openai", openai_base_url=None), memories)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        (failed,) = app.heard.of(messages.BackendFailed)
        assert failed.error and failed.error in notes(app)
        assert not app.heard.of(messages.BackendReady)
        assert "no model" in screen_text(app)


async def test_a_notice_from_an_index_thread_becomes_a_toast(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        before = len(app.heard.of(messages.IndexChanged))
        worker = threading.Thread(target=memories.index._notice, args=("index could not be saved",))
        worker.start()
        worker.join()
        await settle(pilot)
        assert len(app.heard.of(messages.IndexChanged)) == before + 1
        assert notes(app).count("index could not be saved") == 1
        await settle(pilot)
        assert notes(app).count("index could not be saved") == 1  # once, however long we wait


async def test_forgetting_anywhere_is_announced_and_leaves_the_chat_panel(
    settings, memories, seeded
):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        chat = app.screen
        assert isinstance(chat, ChatScreen)
        chat.composer.load_text("When is the Lisbon trip with Ada?")
        await pilot.press("enter")
        await settle(pilot)
        recalled = [h.memory.id for h in chat.panel.hits]
        assert seeded[2] in recalled
        await pilot.press("f3")
        await settle(pilot)
        kept = await app.runtime.io(app.runtime.forget_for_undo, [seeded[2]])
        await settle(pilot)
        assert [m.id for m in kept] == [seeded[2]]
        (forgotten,) = app.heard.of(messages.MemoriesForgotten)
        assert forgotten.ids == (seeded[2],)
        assert seeded[2] not in [h.memory.id for h in chat.panel.hits]  # told while hidden
        assert chat.status.memories == len(seeded)  # 5 seeded + 1 turn - 1 forgotten
