"""What a wheel carries: the built-in themes (top-level ``themes/``) and the app's stylesheet,
where the app looks for them once installed, so an installed memo-shell looks like a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from memo_shell.tui import themes

REPO = Path(__file__).resolve().parents[1]
DATA = "/data/share/memo-shell/themes/"  # in the wheel: <name>.data/data/... -> <prefix>/...


def test_the_wheel_ships_the_themes_where_the_app_looks_for_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("memo_shell-*.whl")
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    assert "memo_shell/tui/app.tcss" in names
    shipped = [n for n in names if DATA in n]
    assert sorted(Path(n).name for n in shipped) == sorted(
        p.name for p in (REPO / "themes").glob("*.toml")
    )
    # pip installs a wheel's data/ under the environment's prefix: lay it out like that
    prefix = tmp_path / "env"
    installed = prefix / "share" / "memo-shell" / "themes"
    installed.mkdir(parents=True)
    for name in shipped:
        (installed / Path(name).name).write_bytes(archive.read(name))
    assert themes.BUILTIN_DIRS[-1] == Path(sys.prefix) / "share" / "memo-shell" / "themes"
    found = themes.find_builtin_dir((tmp_path / "no-checkout" / "themes", installed))
    assert found == installed
    loaded = themes.load_themes(tmp_path / "config" / "config.toml", builtin_dir=found)
    assert loaded.problems == []
    assert {"memo-dark", "memo-light", "memo-high-contrast"} <= set(loaded.themes)
