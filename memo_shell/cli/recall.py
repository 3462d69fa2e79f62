"""``memo-shell recall`` and ``memo-shell reindex``: query and rebuild the derived index."""

from __future__ import annotations

import time

import click

from memo_shell.cli.context import CliContext
from memo_shell.cli.output import Output, json_option, preview, progress_bar


@click.command()
@click.argument("query")
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1, max=1000),
    default=10,
    show_default=True,
    help="How many memories to return.",
)
@click.option("--session", "-s", help="Your current session (a mild context signal).")
@json_option
@click.pass_obj
def recall(ctx: CliContext, query: str, k: int, session: str | None, as_json: bool) -> None:
    """Show the memories most relevant to QUERY, best first, and why each was recalled."""
    out = Output(as_json)
    with ctx.open_memories() as memories:
        hits = memories.recall(query, k=k, session=session)
    if as_json:
        out.document(
            [
                {
                    "id": h.memory.id,
                    "score": round(h.score, 6),
                    "session": h.memory.session,
                    "at": h.memory.created_at.isoformat(),
                    "user": h.memory.user,
                    "assistant": h.memory.assistant,
                    "meta": h.memory.meta,
                    "provenance": str(h.memory.provenance),
                    "why": h.why,
                }
                for h in hits
            ]
        )
        return
    if not hits:
        out.note("nothing recalled")
        return
    rows = [
        [
            f"{h.score:.3f}",
            h.memory.id,
            h.memory.created_at.astimezone().strftime("%Y-%m-%d"),
            h.memory.session,
            str(h.memory.provenance),  # typed / imported / tool: how far to trust it
            preview(h.memory.user, 50),
            "; ".join(h.why),
        ]
        for h in hits
    ]
    out.table(
        ["score", "id", "when", "session", "from", "user", "why"],
        rows,
        styles=["green", "dim", "cyan", "magenta", "blue", None, "yellow"],
    )


@click.command()
@json_option
@click.pass_obj
def reindex(ctx: CliContext, as_json: bool) -> None:
    """Rebuild every derived structure (lexical, graph, vectors) from the memory files."""
    out = Output(as_json)
    started = time.perf_counter()
    with ctx.open_memories() as memories:
        bar, advance = progress_bar(out, memories.count(), "reindexing")
        done = 0

        def progress(current: int, _total: int) -> None:
            nonlocal done
            advance(current - done)
            done = current

        with bar:
            count = memories.reindex(progress)
    elapsed = time.perf_counter() - started
    if as_json:
        out.document({"indexed": count, "seconds": round(elapsed, 3)})
    else:
        out.note(f"indexed {count} memories in {elapsed:.1f} s", style="green")
