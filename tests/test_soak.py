"""A small run of ``bench/soak.py``: the same invariants, checked after ~2,000 operations.

Children forked from this process add, recall, pin, forget and reindex on one data directory, two
at a time, and are SIGKILLed at random; then every acknowledged add must be present and intact
unless its forget was acknowledged, no forgotten memory may exist, pins must stick, nothing
damaged or stray may remain, and the index must agree with the files (and with a reindex) after
the restart. Children also re-import one JSONL file (killed mid-import at times: no line may be
stored twice) and run ``forget --all`` while others add. The full-size run is
``python bench/soak.py`` (10,000 operations).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import soak


@pytest.mark.slow
def test_soak_with_random_sigkills_loses_nothing(tmp_path: Path) -> None:
    report = soak.run(tmp_path / "data", turns=2000, procs=2, seed=20261121, samples=150, log=False)
    summary = "\n".join(report.lines())
    assert report.kills >= 5, summary  # it really was killed, many times
    assert report.ledger.ops["add"] > 300 and report.ledger.ops["forget"] > 30, summary
    # every acknowledged record is checked: intact, or gone because a forget --all covered it
    # (how many of each depends on when the last forget --all ran)
    assert report.verified > 0 and report.verified + report.wiped > 200, summary
    imported = report.ledger.ops["import line"] + report.ledger.ops["import line already present"]
    assert imported > 0, summary  # interrupted and repeated imports ran too
    assert report.duplicated == [] and report.survived_wipe == [], summary
    assert report.lost == [], summary
    assert report.ok, summary
