"""``memo-shell doctor``'s store part: what a sync tool left behind, and index vs files."""

from __future__ import annotations

from typing import Any

from memo_shell.cli.context import CliContext
from memo_shell.cli.output import Output

_LABELS = {
    "conflict_copies": "sync conflict copies",
    "stale_sync_temps": "leftover sync temp files",
    "forgotten_but_back": "forgotten memories back from a sync",
    "forgotten_in_quarantine": "quarantined copies of forgotten memories",
    "index_missing": "memories missing from the index",
    "index_extra": "index entries without a file",
    "index_stale": "index entries with old pins or tags",
}


def check(ctx: CliContext, fix: bool) -> dict[str, Any]:
    """Run the checks (and repairs with ``fix``) before anything else opens the index."""
    with ctx.open_memories(preload=False) as memories:
        return memories.check_store(fix=fix)


def print_report(out: Output, report: dict[str, Any]) -> None:
    out.line(f"this device: {report['device_dir']}  (index, quarantine: never synced)")
    problems = [(label, report[key]) for key, label in _LABELS.items() if report.get(key)]
    fixed = report.get("fixed")
    if not problems:
        out.line("sync/store:  ok" + (" (after repairs)" if fixed and any(fixed.values()) else ""))
        return
    for label, items in problems:
        out.line(f"sync/store:  {len(items)} {label}" + (f", e.g. {items[0]}" if items else ""))
    if fixed is None:
        out.note("Run `memo-shell doctor --fix` to merge, delete or reindex as needed.")
