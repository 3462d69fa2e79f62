"""Leave-one-out switches for rules that live outside ``RecallOptions`` (bench only).

Some signals act when a memory is indexed or are plain parsing rules
(numeric dates, name variants) that users never need to switch off, so they have no option. To
justify each by ablation, the benchmark rebuilds an index with the rule patched out. Each entry
names the module and the values that switch the rule off; a rule this version of memo-shell does
not have is left out (so the same bench measures a baseline checkout too).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator

#: switch name -> (module, {attribute: value that turns the rule off})
SWITCHES: dict[str, tuple[str, dict[str, object]]] = {
    "numeric dates": ("memo_shell.temporal", {"NUMERIC_DATES": False}),
    "name variants": ("memo_shell.index.names", {"NAME_VARIANTS": False}),
}


def available() -> list[str]:
    """The switches this checkout has."""
    out = []
    for name, (module, values) in SWITCHES.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        if all(hasattr(mod, attr) for attr in values):
            out.append(name)
    return out


@contextlib.contextmanager
def without(name: str) -> Iterator[None]:
    module, values = SWITCHES[name]
    mod = importlib.import_module(module)
    old = {attr: getattr(mod, attr) for attr in values}
    for attr, value in values.items():
        setattr(mod, attr, value)
    try:
        yield
    finally:
        for attr, value in old.items():
            setattr(mod, attr, value)
