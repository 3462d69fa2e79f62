"""``memo-shell doctor``: can anything answer, with which models, and where does the data live?

Every backend is checked at the same time with short timeouts, so the command is quick even
when servers are down. A local model is only reported ``ok`` once it has generated one token in
a child process (within a timeout): a llama.cpp build that crashes on this CPU, or a file it
cannot run, is reported with the fix instead. The exit status is 1 when no backend can answer,
or when the backend chosen with ``--backend`` (or the config) cannot, so scripts and installers
can use ``memo-shell doctor`` as a readiness check.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import click

from memo_shell.cli import doctor_store
from memo_shell.cli.context import CliContext
from memo_shell.cli.output import Output, human_size, json_option
from memo_shell.config import Settings

#: Longest a local model may take to load and produce its first token in `doctor`.
PROBE_TIMEOUT_S = 120.0


async def _backends(settings: Settings) -> tuple[list[dict[str, Any]], str]:
    """Every source, as JSON-ready dicts, and what ``auto``/the configured backend would pick."""
    from memo_shell.backends import choose_backend
    from memo_shell.backends.discover import discover
    from memo_shell.errors import BackendError

    sources = await asyncio.to_thread(_probe_local, await discover(settings))
    entries = [
        {
            "backend": s.backend,
            "where": s.where,
            "ok": s.ok,
            "detail": s.detail,
            "models": [
                {"name": m.name, "size_bytes": m.size_bytes, "details": m.details} for m in s.models
            ],
        }
        for s in sources
    ]
    try:
        choice = await choose_backend(settings)
        chosen = choice.reason
        await choice.backend.aclose()
    except BackendError as exc:
        chosen = f"no usable backend: {exc}"
    return entries, chosen


def _probe_local(sources: list[Any]) -> list[Any]:
    """Local sources reported ok only if each of their models generates a token (in a child
    process, so a model that crashes takes nothing down with it)."""
    from dataclasses import replace

    from memo_shell.backends import embedded
    from memo_shell.backends.llamacpp import probe
    from memo_shell.errors import BackendError

    checked = []
    for source in sources:
        if source.backend != "llama-cpp" or not source.ok:
            checked.append(source)
            continue
        problems = []
        for model in source.models:
            try:
                path = embedded.model_path() if source.where == "embedded" else Path(model.details)
            except BackendError as exc:
                problems.append(str(exc))
                continue
            problem = probe(path, timeout=PROBE_TIMEOUT_S)
            if problem is not None:
                problems.append(problem)
        if problems:
            source = replace(source, ok=False, detail="; ".join(problems))
        else:
            source = replace(source, detail=f"{source.detail}; generated a token")
        checked.append(source)
    return checked


def _free_bytes(path: Path) -> int | None:
    """Free space on the file system holding ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


def _store(ctx: CliContext) -> dict[str, Any]:
    with ctx.open_memories(preload=True) as memories:
        ready = memories.wait_ready(timeout=10.0)
        stats = memories.index_stats()
        return {
            "memories": memories.count(),
            "index_state": stats.get("state") if ready else "still loading",
            "index_bytes": stats.get("bytes_on_disk"),
            "quarantined": len(memories.quarantined),
        }


@click.command()
@click.option("--fix", is_flag=True, help="Repair what a sync tool left behind; reindex if needed.")
@json_option
@click.pass_obj
def doctor(ctx: CliContext, fix: bool, as_json: bool) -> None:
    """Check which backends answer, which models exist, and where data and config live.

    Exits with status 1 when no backend can answer, or not the one chosen with --backend.
    """
    out = Output(as_json)
    settings = ctx.settings
    entries, chosen = asyncio.run(_backends(settings))
    sync_report = doctor_store.check(ctx, fix)  # first: opening the index tidies some things
    store = _store(ctx)
    wanted = settings.backend
    usable = [e for e in entries if e["ok"] and wanted in ("auto", e["backend"])]
    report = {
        "ok": bool(usable),
        "backends": entries,
        "chosen": chosen,
        "backend": wanted,
        "data_dir": str(settings.data_dir),
        "config_file": str(settings.config_file),
        "config_exists": settings.config_file.exists(),
        "free_bytes": _free_bytes(settings.data_dir),
        **store,
        "store_checks": sync_report,
    }
    if as_json:
        out.document(report)
    else:
        _print(out, report)
    if not report["ok"]:
        raise click.exceptions.Exit(1)


def _print(out: Output, report: dict[str, Any]) -> None:
    rows = []
    for entry in report["backends"]:
        names = ", ".join(m["name"] for m in entry["models"][:6])
        if len(entry["models"]) > 6:
            names += f" (+{len(entry['models']) - 6})"
        rows.append(
            [
                "ok" if entry["ok"] else "no",
                entry["backend"],
                entry["where"],
                entry["detail"],
                names,
            ]
        )
    out.table(
        ["", "backend", "where", "state", "models"],
        rows,
        styles=["bold", "cyan", "dim", None, "green"],
    )
    out.line(f"chosen:      {report['chosen']}")
    config_state = "" if report["config_exists"] else " (not created; defaults apply)"
    out.line(f"config:      {report['config_file']}{config_state}")
    out.line(f"data:        {report['data_dir']}")
    out.line(
        f"memories:    {report['memories']:,}, index {report['index_state']}"
        f" ({human_size(report['index_bytes'])})"
        + (f", {report['quarantined']} quarantined" if report["quarantined"] else "")
    )
    out.line(f"free disk:   {human_size(report['free_bytes'])}")
    doctor_store.print_report(out, report["store_checks"])
    if not report["ok"] and report["backend"] != "auto":
        out.note(f"The {report['backend']} backend cannot answer: see its line above.")
    elif not report["ok"]:
        out.note("No backend can answer: start Ollama, configure a server, or install the model.")
