"""The model picker takes what was not discovered: a typed Ollama host, an OpenAI-compatible URL
or a GGUF path; it says plainly what the built-in model is; its lines are never cut off."""

from __future__ import annotations

from dataclasses import replace

import pytest
from servers import FakeOllama, FakeOpenAI, ScriptedModel, free_port
from textual.widgets import Input, OptionList
from tui_helpers import ask, make_app, notes, screen_text, settle

from memo_shell.tui import messages
from memo_shell.tui.screens.chat import ChatScreen
from memo_shell.tui.screens.models import ModelScreen, parse_source


async def type_source(pilot, text: str) -> ModelScreen:
    await settle(pilot)
    await pilot.press("f5")
    await settle(pilot)
    picker = pilot.app.screen
    assert isinstance(picker, ModelScreen)
    field = picker.query_one("#model-source", Input)
    field.focus()
    field.value = text
    await pilot.press("enter")
    await settle(pilot)
    return picker


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("gpu-box:11434", ("ollama", "http://gpu-box:11434")),
        ("http://127.0.0.1:1234/v1/", ("openai", "http://127.0.0.1:1234/v1")),
        ("~/models/qwen.gguf", ("gguf", "~/models/qwen.gguf")),
        ("./models", ("gguf", "./models")),
        ("Qwen2.5-7B-Q4_K_M.GGUF", ("gguf", "Qwen2.5-7B-Q4_K_M.GGUF")),
    ],
)
def test_typed_sources_are_understood(typed, parsed):
    assert parse_source(typed) == parsed


async def test_a_typed_ollama_host_is_listed_and_used(settings, memories):
    with FakeOllama([ScriptedModel("remote:latest", reply="From the typed host.")]) as other:
        app = make_app(settings, memories)
        async with app.run_test(size=(130, 40)) as pilot:
            picker = await type_source(pilot, other.url.removeprefix("http://"))
            assert "remote:latest" in screen_text(app)
            options = picker.query_one(OptionList)
            assert options.highlighted is not None
            await pilot.press("enter")
            await settle(pilot)
            assert isinstance(app.screen, ChatScreen)
            assert app.runtime.backend.model == "remote:latest"
            ready = app.heard.of(messages.BackendReady)[-1]  # the status line was told
            assert (ready.name, ready.model) == ("ollama", "remote:latest")
            assert f'ollama_host = "{other.url}"' in notes(app)  # how to keep it
            await ask(pilot, "who answers?")
            assert "From the typed host." in screen_text(app)


async def test_a_typed_openai_compatible_url_is_listed_and_used(settings, memories):
    with FakeOpenAI([ScriptedModel("lmstudio-model", reply="From LM Studio.")]) as server:
        app = make_app(settings, memories)
        async with app.run_test(size=(130, 40)) as pilot:
            await type_source(pilot, server.base_url)
            assert "lmstudio-model" in screen_text(app)
            await pilot.press("enter")
            await settle(pilot)
            assert app.runtime.backend.name == "openai"
            await ask(pilot, "who answers?")
            assert "From LM Studio." in screen_text(app)


async def test_bad_typed_sources_say_why_in_full_at_80_columns(settings, memories, tmp_path):
    app = make_app(settings, memories)
    async with app.run_test(size=(80, 24)) as pilot:
        missing = tmp_path / "nowhere" / "model.gguf"
        await type_source(pilot, str(missing))
        assert "No such file:" in screen_text(app).replace("\n", " ")
        dead = f"127.0.0.1:{free_port()}"
        field = app.screen.query_one("#model-source", Input)
        field.value = dead
        field.focus()
        await pilot.press("enter")
        await settle(pilot)
        problem = next(o for o in app.screen.query_one(OptionList).options if o.disabled)
        message = str(problem.prompt)
        assert message.startswith("ollama:")
        flat = " ".join(
            line.strip("▊▎ │") for line in screen_text(app).splitlines()
        )  # wrapped onto lines, every word on screen
        for word in message.split()[-3:]:
            assert word in flat
        assert isinstance(app.screen, ModelScreen)


async def test_f5_says_what_the_built_in_model_is(settings, memories):
    no_model = replace(settings, ollama_host=f"http://127.0.0.1:{free_port()}")
    app = make_app(no_model, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        app.runtime.backend = None  # as before any model is chosen
        await pilot.press("f5")
        await settle(pilot)
        shown = str(app.screen.query_one("#models-current").render())
        assert "a tiny base model for trying memo-shell out" in shown
        assert "(http://127.0.0.1:1234/v1) or a .gguf file" in shown
        assert "http://127.0.0.1:1234/v1" in screen_text(app)  # on screen, wrapped not cut


@pytest.mark.parametrize(
    "typed",
    ["http://[::1", "http://127.0.0.1:99999", "bad\x00host:1", "./\x00model", "[bold]x[/", "::::"],
)
async def test_hostile_typed_sources_are_one_line_never_a_crash(settings, memories, typed):
    app = make_app(settings, memories)
    async with app.run_test(size=(100, 30)) as pilot:
        picker = await type_source(pilot, typed)
        assert app.is_running and app.screen is picker
        lines = [str(o.prompt) for o in picker.query_one(OptionList).options]
        assert len(lines) == 1 and lines[0].endswith("."), lines
