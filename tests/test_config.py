"""Settings precedence: defaults < TOML file < environment < flags, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from memo_shell.config import ConfigError, load_settings, save_setting


def test_defaults_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    settings = load_settings(environ={})
    assert settings.data_dir == tmp_path / "xdg-data" / "memo-shell"
    assert settings.config_file == tmp_path / "xdg-config" / "memo-shell" / "config.toml"
    assert settings.backend == "auto"


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        'backend = "ollama"\nmodel = "from-file"\nrecall_k = 3\n'
        'data_dir = "~/from-file"\n[keys]\nsend = "ctrl+s"\n'
    )
    env = {"MEMO_SHELL_MODEL": "from-env", "MEMO_SHELL_RECALL_K": "5"}
    settings = load_settings(config, environ=env, recall_k=None, backend="openai")
    assert settings.backend == "openai"  # flag beats file
    assert settings.model == "from-env"  # env beats file
    assert settings.recall_k == 5
    assert settings.data_dir == Path("~/from-file").expanduser()
    assert settings.keys == {"send": "ctrl+s"}


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('theme = "memo-light"\n')
    settings = load_settings(environ={"MEMO_SHELL_CONFIG_FILE": str(config)})
    assert settings.theme == "memo-light" and settings.config_file == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backend = 'cloud'", "not one of"),
        ("recal_k = 3", "unknown setting 'recal_k'"),
        ("recall_k = 'many'", "not a valid int"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_missing_explicit_config_is_an_error_but_missing_default_is_not(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
    assert load_settings(environ={}).backend == "auto"


def test_save_setting_keeps_the_users_text(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('# my settings\ntheme = "memo-dark"\n\n[keys]\nsend = "ctrl+s"\n')
    save_setting(config, "theme", "memo-light")
    save_setting(config, "model", 'a "quoted" name')
    text = config.read_text()
    assert text.startswith('# my settings\ntheme = "memo-light"\n')
    settings = load_settings(config, environ={})
    assert settings.theme == "memo-light"
    assert settings.model == 'a "quoted" name'
    assert settings.keys == {"send": "ctrl+s"}
