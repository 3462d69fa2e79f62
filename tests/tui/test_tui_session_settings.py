"""Per-session system prompt and model parameters: edited in the app (ctrl+s), checked, saved
atomically (0600) beside the memories, sent to the model, kept per session and across renames;
a damaged file is a sentence, never a traceback."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from textual.widgets import Input, TextArea
from tui_helpers import ask, make_app, notes, screen_text, settle

from memo_shell.tui import session_settings as ss
from memo_shell.tui.screens.settings import SessionSettingsScreen


async def fill(pilot, **values: str) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, SessionSettingsScreen)
    for name, value in values.items():
        if name == "system":
            screen.query_one("#system", TextArea).load_text(value)
        else:
            screen.query_one(f"#{name}", Input).value = value
    await pilot.press("ctrl+s")
    await settle(pilot)


async def test_settings_are_saved_sent_and_per_session(settings, memories, ollama):
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Settings of session 'default'" in screen_text(app)
        await fill(pilot, system="Answer like a pirate.", temperature="0.2", context_size="8192")
        assert "now uses temperature 0.2 · context 8,192 · own system prompt" in notes(app)
        path = ss.path_for(memories.data_dir, "default")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        await ask(pilot, "Hello?")
        sent = ollama.posted("/api/chat")[-1]
        assert sent["messages"][0]["content"].startswith("Answer like a pirate.")
        assert sent["options"]["temperature"] == 0.2 and sent["options"]["num_ctx"] == 8192
        await pilot.press("ctrl+n")  # a new session has the defaults
        await settle(pilot)
        await ask(pilot, "Hello again?")
        sent = ollama.posted("/api/chat")[-1]
        assert "pirate" not in sent["messages"][0]["content"]
        assert sent["options"]["num_ctx"] == settings.context_size


async def test_a_bad_value_is_one_sentence_and_nothing_is_saved(settings, memories):
    app = make_app(settings, memories)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        await fill(pilot, temperature="hot", max_tokens="100")
        assert isinstance(app.screen, SessionSettingsScreen)  # still open, values as typed
        assert "Temperature 'hot' is not a number." in screen_text(app)
        assert app.screen.query_one("#max_tokens", Input).value == "100"
        await pilot.press("escape")
        assert not ss.path_for(memories.data_dir, "default").exists()


async def test_a_damaged_file_is_reported_and_the_defaults_apply(settings, memories, seeded):
    path = ss.path_for(memories.data_dir, "work")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"session": "work", "temperature": "very"}')
    app = make_app(settings, memories)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.runtime.session == "work"
        assert "are damaged, so the defaults apply" in notes(app)
        await pilot.press("ctrl+s")
        await settle(pilot)
        await fill(pilot, max_tokens="64")
        assert ss.load(memories.data_dir, "work") == ss.SessionSettings(max_tokens=64)


def test_rename_keeps_the_settings(settings, memories, seeded):
    from memo_shell.tui.runtime import Runtime

    ss.save(memories.data_dir, "work", ss.SessionSettings(system="Be brief."))
    runtime = Runtime(settings, memories=memories)
    runtime._store_ready.set()
    runtime.rename_session("work", "job")
    assert ss.load(memories.data_dir, "job").system == "Be brief."
    assert ss.load(memories.data_dir, "work").empty
    assert not ss.path_for(memories.data_dir, "work").exists()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (("", "3", "", ""), "Temperature goes from 0"),
        (("", "nan", "", ""), "Temperature goes from 0"),
        (("", "", "100", ""), "Context size goes from 256"),
        (("", "", "1024", "2048"), "less than the context size"),
        (("", "", "", "-1"), "Max tokens goes from 1"),
        (("x" * 20_001, "", "", ""), "at most 20,000 characters"),
    ],
)
def test_out_of_range_values_are_refused(typed, message):
    with pytest.raises(ss.SettingsError, match=message):
        ss.parse(*typed)


@hsettings(max_examples=60, deadline=None)
@given(
    session=st.text(min_size=1, max_size=80),
    system=st.text(max_size=300),
    temperature=st.none() | st.floats(0, 2),
    context=st.none() | st.integers(256, 100_000),
)
def test_saved_settings_come_back_exactly(tmp_path_factory, session, system, temperature, context):
    data_dir: Path = tmp_path_factory.mktemp("data")
    chosen = ss.SessionSettings(system.strip() or None, temperature, context, None)
    ss.save(data_dir, session, chosen)
    assert ss.load(data_dir, session) == chosen
    assert ss.load(data_dir, session + "x").empty  # another session is not affected


@hsettings(max_examples=60, deadline=None)
@given(junk=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_content_is_settings_or_one_sentence(tmp_path_factory, junk):
    data_dir: Path = tmp_path_factory.mktemp("data")
    path = ss.path_for(data_dir, "s")
    path.parent.mkdir(parents=True)
    path.write_bytes(junk)
    try:
        ss.load(data_dir, "s")
    except ss.SettingsError as exc:
        assert str(exc).endswith(".") and "\n" not in str(exc)
