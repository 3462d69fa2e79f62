"""A module stand-in that imports the real module on first attribute access.

numpy, networkx and the index's data structures cost ~0.2 s to import, and most commands
(`mem add`, `mem list`, the first paint of the TUI) never touch them. Modules on the start-up
path bind heavy dependencies through ``lazy("name")`` instead of ``import``; the first use,
usually in the index's loader thread, pays the import once. Python's import lock makes that
first use safe from any thread.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """Behaves like the named module once any attribute is read."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)


def lazy(name: str) -> Any:
    """``np = lazy("numpy")`` reads like ``import numpy as np`` but imports on first use."""
    return LazyModule(name)
