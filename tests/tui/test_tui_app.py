"""App-wide flows: sessions, the model picker, themes (persisted), the command palette."""

from __future__ import annotations

from dataclasses import replace

from servers import ScriptedModel
from textual.widgets import Input, OptionList
from tui_helpers import MODEL, ask, make_app, notes, screen_text, settle

from memo_shell.config import load_settings
from memo_shell.tui import messages
from memo_shell.tui.screens.browser import BrowserScreen
from memo_shell.tui.screens.chat import ChatScreen
from memo_shell.tui.screens.models import ModelScreen
from memo_shell.tui.screens.sessions import SessionsScreen
from memo_shell.tui.widgets.chat_log import TurnView


def newest(memories):
    return memories.get(memories.select()[0])


async def test_new_session_switch_and_rename(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        first = app.runtime.session
        assert first != "default"
        assert f"session {first}" in screen_text(app)
        await ask(pilot, "What is on in the new session?")
        assert newest(memories).session == first

        await pilot.press("f6")
        await settle(pilot)
        picker = pilot.app.screen
        assert isinstance(picker, SessionsScreen)
        text = screen_text(app)
        assert "home" in text and "work" in text and first in text
        options = picker.query_one(OptionList)
        options.highlighted = [o.id for o in options.options].index("home")
        await pilot.press("enter")
        await settle(pilot)
        chat = pilot.app.screen
        assert isinstance(chat, ChatScreen) and app.runtime.session == "home"
        assert app.runtime.shell.session == "home"
        # the session's recent turns are shown again
        questions = [t.question for t in chat.query(TurnView)]
        assert questions == [
            "Plan a trip to Lisbon with Ada in May.",
            "What wine goes with bacalhau?",
        ]

        await pilot.press("f6")
        await settle(pilot)
        options = pilot.app.screen.query_one(OptionList)
        options.highlighted = [o.id for o in options.options].index("home")
        await pilot.press("r")
        await settle(pilot)
        field = pilot.app.screen.query_one(Input)
        field.value = "travel"
        await pilot.press("enter")
        await settle(pilot)
        assert memories.get(seeded[2]).session == "travel"
        assert {s.name for s in memories.sessions()} >= {"travel", "work"}
        assert "home" not in {s.name for s in memories.sessions()}
        assert app.runtime.session == "travel"  # the current session followed its rename
        assert app.heard.of(messages.SessionChanged)[-1].name == "travel"
        await pilot.press("escape")
        await settle(pilot)
        await ask(pilot, "Still about the trip")
        assert newest(memories).session == "travel"


async def test_model_picker_lists_sources_and_switches(settings, memories, ollama):
    ollama.add(ScriptedModel("other:latest", reply="From the other model."))
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        picker = pilot.app.screen
        assert isinstance(picker, ModelScreen)
        text = screen_text(app)
        assert "scripted:latest" in text and "● in use" in text and "other:latest" in text
        assert "gemma3-270m" in text  # the embedded model is always offered
        options = picker.query_one(OptionList)
        options.highlighted = [o.id for o in options.options].index("ollama:other:latest")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ChatScreen)
        assert app.runtime.shell.backend.model == "other:latest"
        assert "ollama · other:latest" in screen_text(app)
        await ask(pilot, "who answers?")
        assert newest(memories).assistant == "From the other model."
        assert newest(memories).model == "other:latest"


async def test_model_picker_says_when_a_server_is_down(settings, memories):
    from servers import free_port

    dead = replace(settings, ollama_host=f"http://127.0.0.1:{free_port()}")
    app = make_app(dead, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f5")
        await settle(pilot)
        text = screen_text(app)
        assert "ollama:" in text  # the source is listed with its problem, not hidden
        assert "gemma3-270m" in text


async def test_theme_switch_applies_and_persists(settings, memories, config_file):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        assert app.theme == "memo-dark"
        before = app.screen.query_one("#status").styles.background
        await pilot.press("f8")
        await pilot.press(*"memo-light")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "memo-light"
        assert app.screen.query_one("#status").styles.background != before
    assert 'theme = "memo-light"' in config_file.read_text()
    reloaded = load_settings(config_file)
    assert reloaded.theme == "memo-light"
    app2 = make_app(replace(settings, theme=reloaded.theme), memories)
    async with app2.run_test(size=(80, 24)) as pilot:
        assert app2.theme == "memo-light"


async def test_builtin_and_user_themes_are_offered(settings, memories, config_file):
    user_dir = config_file.parent / "themes"
    user_dir.mkdir(parents=True)
    (user_dir / "mine.toml").write_text('[theme]\nname = "mine"\nprimary = "#ff00ff"\n')
    (user_dir / "broken.toml").write_text("[theme]\nprimary = 12\n")
    app = make_app(replace(settings, theme="mine"), memories)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "mine"
        for name in ("memo-dark", "memo-light", "memo-high-contrast", "mine"):
            assert name in app.available_themes
        assert "broken.toml" in notes(app)


async def test_unknown_theme_falls_back_with_a_notice(settings, memories):
    app = make_app(replace(settings, theme="no-such-theme"), memories)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.theme == "memo-dark"
        assert "no-such-theme" in notes(app)


async def test_command_palette_offers_screen_actions(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"Memories")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(pilot.app.screen, BrowserScreen)
        await pilot.press("ctrl+p")
        await pilot.press(*"Prune filter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert "Forget all 4 memories shown (1 pinned kept)?" in screen_text(app)
        await pilot.press("n")
        await settle(pilot)
        assert len(memories.select()) == 5


async def test_mouse_clicks_a_key_in_the_bar(settings, memories, seeded):
    app = make_app(settings, memories)
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(pilot)
        bar = app.screen.query_one("KeyBar")
        x = next(start for start, _end, key in bar._spans if key == "f3")
        await pilot.click("KeyBar", offset=(x + 1, 0))
        await settle(pilot)
        assert isinstance(pilot.app.screen, BrowserScreen)
        assert MODEL  # the scripted model is the one in use
