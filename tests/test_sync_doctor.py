"""`memo-shell doctor` reports what a sync tool left behind; `--fix` repairs it (issue 18)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import memo_shell
from memo_shell import records
from memo_shell.paths import index_dir, quarantine_dir
from memo_shell.store import STALE_TEMP_SECONDS, Store

pytest_plugins = ["conftest_servers"]


@pytest.fixture
def messy(data_dir: Path) -> dict[str, Path]:
    """A store after a rough sync: a conflict copy, an old Syncthing temp file, a forgotten
    memory come back, a quarantined copy of a forgotten memory, and an index with a stale pin."""
    with memo_shell.open(data_dir) as memories:
        ids = [memories.add(f"memory number {i} about sailing") for i in range(4)]
        memories.wait_ready()
        gone = memories.get(ids[3])
        memories.forget(ids[3])
    store = Store(data_dir)
    live = store.path_for(ids[0])
    conflict = live.with_name(f"{ids[0]}.sync-conflict-20260101-101010-ABCDEFG.memo")
    conflict.write_bytes(records.encode(store.read(ids[0]).with_changes(pinned=True)))
    temp = live.with_name(f".syncthing.{ids[1]}.memo.tmp")
    temp.write_bytes(b"half a file")
    old = time.time() - 2 * STALE_TEMP_SECONDS
    os.utime(temp, (old, old))
    back = store.path_for(ids[3])
    back.write_bytes(records.encode(gone))
    quarantine_dir(data_dir).mkdir(parents=True, exist_ok=True)
    quarantined = quarantine_dir(data_dir) / f"{ids[3]}.memo.1"
    quarantined.write_bytes(records.encode(gone))
    # a pin the index never heard of (written behind its back, same mtime and size as before)
    path = store.path_for(ids[2])
    st = path.stat()
    path.write_bytes(records.encode(store.read(ids[2]).with_changes(pinned=True)))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return {"conflict": conflict, "temp": temp, "back": back, "quarantined": quarantined}


def test_doctor_reports_and_fix_repairs(
    run_cli: Callable, messy: dict[str, Path], dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    report = json.loads(run_cli("doctor", "--json").stdout)["store_checks"]
    assert report["conflict_copies"] == [str(messy["conflict"])]
    assert report["stale_sync_temps"] == [str(messy["temp"])]
    assert report["forgotten_but_back"] == [str(messy["back"])]
    assert report["forgotten_in_quarantine"] == [str(messy["quarantined"])]
    assert len(report["index_stale"]) == 1 and not report["ok"]
    # any command tidies conflict copies and forgotten files; a stale index entry stays
    human = run_cli("doctor")
    assert "index entries with old pins or tags" in human.stdout
    assert "doctor --fix" in human.stdout + human.stderr

    fixed = json.loads(run_cli("doctor", "--fix", "--json").stdout)["store_checks"]
    assert fixed["fixed"]["reindexed"] == 1
    assert all(not path.exists() for path in messy.values())
    again = json.loads(run_cli("doctor", "--json").stdout)["store_checks"]
    assert again["ok"], again
    assert "sync/store:  ok" in run_cli("doctor").stdout


def test_a_clean_store_is_ok(
    run_cli: Callable, data_dir: Path, dead_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url)
    run_cli("mem", "add", "-u", "one")
    report = json.loads(run_cli("doctor", "--json").stdout)["store_checks"]
    assert report["ok"] and not index_dir(data_dir).joinpath("quarantine").exists()
