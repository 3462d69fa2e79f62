"""The layers of ARCHITECTURE.md hold: import-linter checks the contract in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_imports_point_down_the_layers_only() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.fail("import-linter is not installed: pip install -e '.[dev]'")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _layer_of(module: str, layers: list[list[str]]) -> tuple[int, str] | None:
    for number, siblings in enumerate(layers):
        for package in siblings:
            if module == package or module.startswith(package + "."):
                return number, package
    return None


def test_deferred_imports_by_name_point_down_too() -> None:
    """``lazy("memo_shell.x")`` and ``import_module("memo_shell.x")`` hide an import from
    import-linter; the same layer rule holds for them (a recall call from the index once hid
    there)."""
    import re
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = config["contracts"][0]
    layers = [[p.strip() for p in layer.split("|")] for layer in contract["layers"]]
    by_name = re.compile(r"""\b(?:lazy|import_module)\(\s*["'](memo_shell[\w.]*)["']""")
    wrong = []
    for path in (ROOT / "memo_shell").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        source = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        here = _layer_of(source, layers)
        for target in by_name.findall(path.read_text(encoding="utf-8")):
            there = _layer_of(target, layers)
            if here is None or there is None or there[1] == here[1]:
                continue
            if there[0] <= here[0]:
                wrong.append(f"{source} -> {target}")
    assert not wrong, wrong


#: The surfaces (and the shell they drive): everything above the front door, memo_shell.api.
SURFACES = ("cli", "tui", "mcp", "serve", "importers", "shell.py", "chat_export.py", "wiring.py")


def _reaches_behind(source: str) -> list[int]:
    """Lines that read an attribute named ``store`` or ``index`` (``memories.store.wipe()``,
    ``mem.index.notices``), as opposed to calling a method of that name (``list.index(x)``) or
    naming a module's function (``run.store`` of memo_shell.importers.run)."""
    import ast

    tree = ast.parse(source)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("memo_shell"):
            for alias in node.names:
                where = ROOT.joinpath(*(node.module or "").split("."), alias.name)
                if where.with_suffix(".py").is_file() or where.is_dir():
                    modules.add(alias.asname or alias.name)
    return sorted(
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in ("store", "index")
        and id(node) not in called
        and not (isinstance(node.value, ast.Name) and node.value.id in modules)
    )


def test_surfaces_never_reach_behind_memories() -> None:
    """Surfaces use ``Memories`` (the front door), never its ``.store`` or ``.index``: the
    import contract in pyproject.toml stops them importing those packages, this stops them
    using the handle's attributes (which imports nothing)."""
    wrong = []
    for name in SURFACES:
        where = ROOT / "memo_shell" / name
        for path in [where] if where.is_file() else sorted(where.rglob("*.py")):
            for line in _reaches_behind(path.read_text(encoding="utf-8")):
                wrong.append(f"{path.relative_to(ROOT)}:{line}")
    assert not wrong, wrong


def test_the_front_door_check_sees_a_reach_behind() -> None:
    assert _reaches_behind("memories.store.wipe()\nmem.index.notices\n") == [1, 2]
    assert _reaches_behind("SORTS.index(sort)\nrun.store(mem, turns)\n") == []
    imported = "from memo_shell.importers import run\nio(run.store, mem)\nio(mem.store)\n"
    assert _reaches_behind(imported) == [3]
