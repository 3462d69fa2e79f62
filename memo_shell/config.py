"""Settings: one typed object, loaded as defaults < TOML file < environment < command-line flags.

Data and config locations come from platformdirs (XDG on Linux), so memo-shell behaves like the
other well-mannered tools on the machine. The TOML file is optional; unknown keys are reported,
not silently ignored, because a typo in a config file should never be a mystery.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import platformdirs

from memo_shell.disk import atomic_write
from memo_shell.errors import MemoShellError

APP_NAME = "memo-shell"
ENV_PREFIX = "MEMO_SHELL_"
BACKENDS = ("auto", "ollama", "llama-cpp", "openai")


class ConfigError(MemoShellError):
    """The config file or an environment variable holds something we cannot use."""


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def default_config_file() -> Path:
    return default_config_dir() / "config.toml"


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Field names are the TOML keys and, upper-cased, the env names."""

    data_dir: Path = field(default_factory=default_data_dir)
    config_file: Path = field(default_factory=default_config_file)
    # model backends
    backend: str = "auto"
    model: str | None = None
    ollama_host: str | None = None  # falls back to OLLAMA_HOST, then the client's default
    openai_base_url: str | None = None  # e.g. http://127.0.0.1:1234/v1 (LM Studio)
    openai_api_key: str | None = None
    gguf_path: Path | None = None  # a GGUF file, or a directory of them
    context_size: int = 4096
    temperature: float | None = None  # None: the model's own default (Modelfile, server, tuned)
    top_p: float | None = None
    max_tokens: int = 512
    seed: int | None = None
    # memory
    recall_k: int = 8
    use_memory: bool = True
    embedder: str | None = None  # e.g. "ollama:nomic-embed-text"; None = no vectors
    # interface
    theme: str = "memo-dark"
    keys: dict[str, str] = field(default_factory=dict)  # binding id -> key(s)

    def with_overrides(self, **overrides: Any) -> Settings:
        """Apply flags: values of None mean "flag not given" and leave the setting alone."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


_FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in fields(Settings)}


def _coerce(name: str, value: Any, source: str) -> Any:
    """Convert a TOML or environment value to the field's type, with a message naming the source."""
    kind = _FIELD_TYPES[name]
    try:
        if kind in ("Path", "Path | None"):
            return Path(os.path.expandvars(str(value))).expanduser()
        if kind in ("int", "int | None"):
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind in ("float", "float | None"):
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if kind == "dict[str, str]":
            if not isinstance(value, dict):
                raise ValueError
            return {str(k): str(v) for k, v in value.items()}
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {name} = {value!r} is not a valid {kind}") from exc


def _validate(settings: Settings) -> Settings:
    if settings.backend not in BACKENDS:
        raise ConfigError(f"backend {settings.backend!r} is not one of: {', '.join(BACKENDS)}")
    if settings.context_size < 256:
        raise ConfigError("context_size must be at least 256 tokens")
    if settings.recall_k < 0:
        raise ConfigError("recall_k cannot be negative")
    return settings


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """Parse the TOML file; a missing default file is fine, a missing --config file is not."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        if required:
            raise ConfigError(f"config file {path} does not exist") from None
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    values: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name in ("config_file",):
            continue
        if name not in _FIELD_TYPES:
            known = ", ".join(sorted(k for k in _FIELD_TYPES if k != "config_file"))
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {known})")
        values[name] = _coerce(name, value, str(path))
    return values


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Settings from MEMO_SHELL_* variables (MEMO_SHELL_DATA_DIR, MEMO_SHELL_BACKEND, ...)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, kind in _FIELD_TYPES.items():
        if kind == "dict[str, str]":
            continue
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw, ENV_PREFIX + name.upper())
    return values


def load_settings(
    config_file: Path | None = None,
    *,
    environ: dict[str, str] | None = None,
    **flags: Any,
) -> Settings:
    """Build Settings from every layer. ``flags`` with value None are treated as not given."""
    env_values = from_environment(environ)
    explicit = config_file or env_values.pop("config_file", None)
    path = Path(explicit).expanduser() if explicit else default_config_file()
    file_values = read_config_file(path, required=explicit is not None)
    settings = Settings(config_file=path)
    settings = replace(settings, **file_values)
    settings = replace(settings, **{k: v for k, v in env_values.items() if k != "config_file"})
    return _validate(settings.with_overrides(**flags))


def save_setting(path: Path, key: str, value: str) -> None:
    """Persist one top-level string setting (e.g. the theme chosen in the UI) in the TOML file.

    The file is small and hand-edited, so we rewrite just that key's line and keep the rest of
    the text (comments included) as the user wrote it.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    new_line = f"{key} = {_toml_string(value)}"
    in_table = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = True
        if not in_table and stripped.split("=", 1)[0].strip() == key and "=" in stripped:
            lines[i] = new_line
            break
    else:
        first_table = next((i for i, ln in enumerate(lines) if ln.strip().startswith("[")), None)
        if first_table is None:
            lines.append(new_line)
        else:
            lines.insert(first_table, new_line)
    # 0600 whatever the umask: the file may hold an API key
    atomic_write(path, ("\n".join(lines) + "\n").encode("utf-8"), 0o600)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
