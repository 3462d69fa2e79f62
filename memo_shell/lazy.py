"""A module stand-in that imports the real module on first attribute access.

numpy, networkx and the index's data structures cost ~0.2 s to import, and most commands
(`mem add`, `mem list`, the first paint of the TUI) never touch them. Modules on the start-up
path bind heavy dependencies through ``lazy("name")`` instead of ``import``; the first use,
usually in the index's loader thread, pays the import once. Python's import lock makes that
first use safe from any thread.

It must also be safe across ``fork()``: a child forked while the loader thread is half-way
through importing numpy inherits a *partially initialised* module that no thread will ever
finish ("partially initialized module 'memo_shell.index.data'"). So lazy imports run under one
lock that ``fork()`` takes first (``os.register_at_fork``): a fork waits for an import in
progress, and a child never sees half a module.
"""

from __future__ import annotations

import importlib
import os
import threading
from types import ModuleType
from typing import Any

_import_lock = threading.RLock()


def _after_fork_in_child() -> None:
    global _import_lock
    _import_lock = threading.RLock()  # held by the parent's forking thread: start afresh


os.register_at_fork(
    before=lambda: _import_lock.acquire(),
    after_in_parent=lambda: _import_lock.release(),
    after_in_child=_after_fork_in_child,
)


class LazyModule:
    """Behaves like the named module once any attribute is read."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            with _import_lock:
                module = self._module
                if module is None:
                    module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)


def lazy(name: str) -> Any:
    """``np = lazy("numpy")`` reads like ``import numpy as np`` but imports on first use."""
    return LazyModule(name)
