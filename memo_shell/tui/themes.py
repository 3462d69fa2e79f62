"""Themes as data: TOML files mapped onto ``textual.theme.Theme``.

Built-in themes ship in the repository's top-level ``themes/`` directory and users add their own
in ``<config dir>/themes/``; a user file with a built-in's name replaces it. Themes are data, not
code, so a user can copy one, change a colour and see it without touching Python. A broken file
is reported and skipped; it never stops the app from starting.
"""

from __future__ import annotations

import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

import memo_shell

#: Where the built-in themes live: the repository's top-level ``themes/`` (a checkout or the
#: editable install the README uses), else where a wheel installs them (``data-files`` in
#: pyproject.toml puts them under the environment's ``share/``).
BUILTIN_DIRS = (
    Path(memo_shell.__file__).resolve().parents[1] / "themes",
    Path(sys.prefix) / "share" / "memo-shell" / "themes",
)


def find_builtin_dir(candidates: tuple[Path, ...] = BUILTIN_DIRS) -> Path:
    """The first candidate that exists (the first if none does: its absence is then reported)."""
    return next((d for d in candidates if d.is_dir()), candidates[0])


BUILTIN_DIR = find_builtin_dir()
DEFAULT_THEME = "memo-dark"
#: Used when no theme file can be read at all, so the app still has memo-shell's look.
FALLBACK_THEME = "textual-dark"

#: memo-shell's own design variables. A theme may set them in [variables]; one that does not
#: gets the colour of the Textual variable named here (so any Textual theme works too).
VARIABLE_FALLBACKS: dict[str, str] = {
    "memo-user": "primary",
    "memo-assistant": "success",
    "memo-recalled": "accent",
}


def with_memo_variables(variables: dict[str, str]) -> dict[str, str]:
    """Fill in memo-shell's variables the current theme leaves out."""
    for name, source in VARIABLE_FALLBACKS.items():
        variables.setdefault(name, variables[source])
    return variables


_COLOUR_FIELDS = {
    "primary", "secondary", "warning", "error", "success", "accent",
    "foreground", "background", "surface", "panel", "boost",
}  # fmt: skip
_OTHER_FIELDS = {"name": str, "dark": bool, "luminosity_spread": float, "text_alpha": float}


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message names the file and the problem."""


@dataclass
class LoadedThemes:
    """The themes found, in load order, and one sentence per file that could not be used."""

    themes: dict[str, Theme] = field(default_factory=dict)
    origins: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _check_colour(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeFileError(f'{path.name}: {key} must be a colour string like "#1E90FF"')
    try:
        Color.parse(value)
    except ColorParseError as exc:
        raise ThemeFileError(f"{path.name}: {key} = {value!r} is not a colour") from exc
    return value


def parse_theme(text: str, path: Path) -> Theme:
    """Build a Theme from one file's text; raises ThemeFileError with a readable reason."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{path.name}: not valid TOML ({exc})") from exc
    table = data.get("theme")
    if not isinstance(table, dict):
        raise ThemeFileError(f"{path.name}: missing the [theme] table")
    known = {f.name for f in fields(Theme)} - {"variables", "ansi"}
    values: dict[str, object] = {}
    for key, value in table.items():
        if key not in known:
            raise ThemeFileError(f"{path.name}: unknown theme key {key!r}")
        if key in _COLOUR_FIELDS:
            values[key] = _check_colour(path, key, value)
        else:
            kind = _OTHER_FIELDS[key]
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, kind):
                raise ThemeFileError(f"{path.name}: {key} must be a {kind.__name__}")
            values[key] = value
    values.setdefault("name", path.stem)
    if "primary" not in values:
        raise ThemeFileError(f"{path.name}: a theme needs at least a primary colour")
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ThemeFileError(f"{path.name}: [variables] must map names to strings")
    return Theme(variables=dict(variables), **values)  # type: ignore[arg-type]


def load_dir(directory: Path, into: LoadedThemes) -> None:
    """Add every ``*.toml`` theme in ``directory`` (missing directory: nothing to add)."""
    try:
        paths = sorted(directory.glob("*.toml"))
    except OSError as exc:
        into.problems.append(f"cannot list themes in {directory}: {exc.strerror}")
        return
    for path in paths:
        try:
            theme = parse_theme(path.read_text(encoding="utf-8"), path)
        except (OSError, UnicodeDecodeError) as exc:
            into.problems.append(f"cannot read theme {path}: {exc}")
            continue
        except ThemeFileError as exc:
            into.problems.append(f"theme skipped: {exc}")
            continue
        into.themes[theme.name] = theme
        into.origins[theme.name] = path


def user_theme_dir(config_file: Path) -> Path:
    """User themes sit beside the config file, so ``--config`` moves them too."""
    return config_file.parent / "themes"


def load_themes(config_file: Path, builtin_dir: Path = BUILTIN_DIR) -> LoadedThemes:
    """Built-ins first, then the user's (which may override a built-in by name)."""
    loaded = LoadedThemes()
    load_dir(builtin_dir, loaded)
    load_dir(user_theme_dir(config_file), loaded)
    return loaded
