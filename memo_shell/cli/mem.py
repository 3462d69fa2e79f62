"""``memo-shell mem …``: add, import, export, list, show, forget, pin, unpin, tag, edit, stats."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import click

from memo_shell import jsonl, records
from memo_shell.api import Memories
from memo_shell.cli import imports
from memo_shell.cli.context import CliContext
from memo_shell.cli.output import Output, human_size, json_option, preview, progress_bar
from memo_shell.disk import atomic_write
from memo_shell.errors import MemoShellError, NotFound, describe_os_error
from memo_shell.records import Memory
from memo_shell.selection import Selection


def _parse_meta(pairs: Iterable[str]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--meta")
        meta[key] = value
    return meta


def _parse_when(text: str, option: str) -> datetime:
    try:
        return records.parse_datetime(text)
    except records.InvalidRecord as exc:
        if "out of range" in str(exc):  # a real date, but not one a memory can have
            raise click.BadParameter(str(exc), param_hint=option) from exc
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 date or time", param_hint=option
        ) from exc


def _human_time(memory: Memory) -> str:
    return memory.created_at.astimezone().strftime("%Y-%m-%d %H:%M")


@click.group()
def mem() -> None:
    """Manage stored memories (each one a file under the data directory)."""


# ---------------------------------------------------------------------------- add


@mem.command()
@click.option("--user", "-u", required=True, help="What the user said.")
@click.option("--assistant", "-a", default="", help="What the model replied.")
@click.option("--session", "-s", default="default", show_default=True)
@click.option("--at", "at_text", metavar="ISO8601", help="When it happened (default: now).")
@click.option("--meta", "meta_pairs", multiple=True, metavar="K=V", help="Metadata; repeatable.")
@click.option("--tag", "tags", multiple=True, help="A tag; repeatable.")
@click.option("--pin", is_flag=True, help="Pin it (always eligible for recall).")
@json_option
@click.pass_obj
def add(
    ctx: CliContext,
    user: str,
    assistant: str,
    session: str,
    at_text: str | None,
    meta_pairs: tuple[str, ...],
    tags: tuple[str, ...],
    pin: bool,
    as_json: bool,
) -> None:
    """Store one interaction. Prints its id once the file is durable on disk."""
    out = Output(as_json)
    at = _parse_when(at_text, "--at") if at_text else None
    meta = _parse_meta(meta_pairs)
    try:
        with ctx.open_memories() as memories:
            memory_id = memories.add(
                user=user,
                assistant=assistant,
                session=session,
                at=at,
                meta=meta,
                tags=tags,
                pinned=pin,
            )
    except records.InvalidRecord as exc:
        raise MemoShellError(str(exc)) from exc
    if as_json:
        out.document({"id": memory_id})
    else:
        click.echo(memory_id)


# ---------------------------------------------------------------------------- import


@mem.command("import")
@click.argument("source", type=click.Path(allow_dash=True, dir_okay=False, path_type=Path))
@click.option(
    "--session",
    default="imported",
    show_default=True,
    help='Session for lines that carry no "session".',
)
@click.option(
    "--from",
    "fmt",
    type=click.Choice(imports.CHOICES),
    help="The file's format (default: detected; JSON Lines unless it is another app's export).",
)
@json_option
@click.pass_obj
def import_(ctx: CliContext, source: Path, session: str, fmt: str | None, as_json: bool) -> None:
    """Import memories from a JSON Lines FILE (or - for stdin), or another app's history.

    Each line: {"user": str, "assistant": str?, "session": str?, "at": ISO8601?,
    "meta": {str: str}?}. Bad lines are reported by number and skipped; every valid line is
    kept. Exit status 1 if any line was rejected.

    --from chatgpt|claude|openwebui FILE reads those apps' exports (a .zip or its JSON);
    --from oterm FILE reads oterm's store.db in place, read-only. Each question and its answer
    become one memory in a session named after the conversation; importing again adds only
    turns not imported before.
    """
    chosen = fmt or imports.sniff(source)
    if chosen != "jsonl":
        imports.import_from(ctx, chosen, source, as_json, guessed=fmt is None)
        return
    out = Output(as_json)
    undated: datetime | None = None
    if str(source) == "-":
        stream = sys.stdin.buffer
        total = None
    else:
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below, after the import
            st = os.fstat(stream.fileno())
        except OSError as exc:
            raise MemoShellError(f"cannot read {source}: {exc.strerror}") from exc
        total = st.st_size
        # undated lines are dated by the file, so re-running an unchanged file finds them
        undated = datetime.fromtimestamp(st.st_mtime_ns // 1_000_000 / 1000).astimezone()
    tally = _ImportTally()
    bar, advance = progress_bar(out, total, "importing")
    stopped: BaseException | None = None
    try:
        with _sigterm_as_interrupt(), ctx.open_memories() as memories, bar:

            def accepted() -> Iterable[Memory]:
                lines = jsonl.iter_import(stream, default_session=session, undated=undated)
                for _number, item, size in lines:
                    advance(size)
                    if isinstance(item, jsonl.Rejected):
                        tally.rejected.append(item)
                        out.note(f"line {item.line}: {item.reason}")
                    else:
                        yield item

            memories.add_many(accepted(), added=tally.added, present=tally.present)
    except (MemoShellError, KeyboardInterrupt) as exc:
        stopped = exc
    except OSError as exc:  # reading the source failed midway (a device error, a vanished mount)
        stopped = MemoShellError(describe_os_error(exc, f"reading {source}"))
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    tally.report(out, stopped)


class _ImportTally:
    """What an import did so far: reported whole even when it stops early (disk full, ^C)."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.present: list[str] = []
        self.rejected: list[jsonl.Rejected] = []

    def counts(self) -> dict[str, object]:
        return {
            "imported": len(self.added),
            "already_present": len(self.present),
            "rejected": [{"line": r.line, "reason": r.reason} for r in self.rejected],
            "ids": self.added,
        }

    def report(self, out: Output, stopped: BaseException | None) -> None:
        if stopped is not None:
            why = "interrupted" if isinstance(stopped, KeyboardInterrupt) else str(stopped)
            message = (
                f"import stopped early ({why}); the memories counted as imported are stored, "
                "and running the same import again skips them"
            )
            raise ImportStopped(message, self.counts()) from stopped
        if out.as_json:
            out.document(self.counts())
            if self.rejected:
                sys.exit(1)
            return
        out.note(self.summary(), style="green" if not self.rejected else "yellow")
        if self.rejected:
            sys.exit(1)

    def summary(self) -> str:
        return (
            f"imported {len(self.added)}, already present {len(self.present)}, "
            f"rejected {len(self.rejected)}"
        )


class ImportStopped(MemoShellError):
    """An import cut short; carries what it had done (printed with the error, --json too)."""

    def __init__(self, message: str, partial: dict[str, object]) -> None:
        rejected = partial["rejected"]
        assert isinstance(rejected, list)
        super().__init__(
            f"{message} (imported {partial['imported']}, already present "
            f"{partial['already_present']}, rejected {len(rejected)})"
        )
        self.partial_results = partial


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM during an import stops it like Ctrl-C: the batch in flight is rolled back and
    the counts of what was stored are still printed."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (an embedding host): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------- export


def _write_private_atomically(path: Path, lines: Iterable[str]) -> int:
    """Exports hold private conversations: 0600, and never a half-written file under the name."""
    count = 0

    def chunks() -> Iterator[bytes]:
        nonlocal count
        for line in lines:
            count += 1
            yield line.encode("utf-8")

    path = path.resolve()  # through a symlink: replace its target, keep the link
    if path.exists() and not path.is_file():
        # /dev/stdout, a pipe, a device: stream into it; renaming over it would replace the
        # device node itself with a regular file
        with open(path, "wb") as sink:
            for chunk in chunks():
                sink.write(chunk)
        return count
    atomic_write(path, chunks(), 0o600)
    return count


@mem.command()
@click.argument("target", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--session", help="Only this session.")
@json_option
@click.pass_obj
def export(ctx: CliContext, target: Path | None, session: str | None, as_json: bool) -> None:
    """Export memories as JSON Lines to TARGET (default, or -: stdout), oldest first."""
    import json

    out = Output(as_json)
    with ctx.open_memories() as memories:
        items = memories.iter_memories(newest_first=False, session=session)
        if (target is None or str(target) == "-") and as_json:
            out.document([jsonl.memory_to_json(m) for m in items])
            return
        lines = (json.dumps(jsonl.memory_to_json(m), ensure_ascii=False) + "\n" for m in items)
        if target is None or str(target) == "-":
            for line in lines:
                sys.stdout.write(line)
            return
        try:
            count = _write_private_atomically(target, lines)
        except OSError as exc:
            raise MemoShellError(f"cannot write {target}: {exc.strerror}") from exc
    if as_json:
        out.document({"exported": count, "file": str(target)})
    else:
        out.note(f"exported {count} memories to {target}", style="green")


# ---------------------------------------------------------------------------- list / show


@mem.command("list")
@click.option("--session", "-s", help="Only this session.")
@click.option(
    "--limit", "-n", type=click.IntRange(min=1), help="At most N memories (newest first)."
)
@json_option
@click.pass_obj
def list_(ctx: CliContext, session: str | None, limit: int | None, as_json: bool) -> None:
    """List memories, newest first."""
    out = Output(as_json)
    found: list[Memory] = []
    with ctx.open_memories() as memories:
        for memory in memories.iter_memories(newest_first=True, session=session):
            found.append(memory)
            if limit is not None and len(found) >= limit:
                break
    if as_json:
        out.document([jsonl.memory_to_json(m) for m in found])
        return
    if not found:
        out.note("no memories yet" if session is None else f"no memories in session {session!r}")
        return
    rows = [
        [
            m.id,
            _human_time(m),
            m.session,
            ("📌 " if m.pinned else "") + preview(m.user, 50),
            preview(m.assistant, 50),
        ]
        for m in found
    ]
    out.table(
        ["id", "when", "session", "user", "assistant"],
        rows,
        styles=["dim", "cyan", "magenta", None, None],
    )


@mem.command()
@click.argument("memory_id")
@json_option
@click.pass_obj
def show(ctx: CliContext, memory_id: str, as_json: bool) -> None:
    """Show one memory in full."""
    out = Output(as_json)
    with ctx.open_memories() as memories:
        memory = memories.get(memory_id)
    if as_json:
        out.document(jsonl.memory_to_json(memory))
        return
    fields = [
        ("id", memory.id),
        ("when", memory.created_at.isoformat()),
        ("session", memory.session),
        ("provenance", str(memory.provenance)),
        ("model", f"{memory.model} ({memory.backend})" if memory.backend else memory.model),
        ("pinned", "yes" if memory.pinned else "no"),
        ("tags", ", ".join(memory.tags)),
        ("meta", ", ".join(f"{k}={v}" for k, v in memory.meta.items())),
    ]
    for name, value in fields:
        if value:
            out.line(f"{name:>10}: {value}")
    out.line("")
    out.line("user:", style="bold cyan")
    out.line(memory.user)
    if memory.assistant:
        out.line("")
        out.line("assistant:", style="bold green")
        out.line(memory.assistant)


# ---------------------------------------------------------------------------- forget


def _select_for_forget(
    memories: Memories,
    ids: tuple[str, ...],
    session: str | None,
    before: datetime | None,
    include_pinned: bool,
) -> tuple[list[str], int]:
    """Resolve the forget selection to ids; returns (ids, pinned ones spared)."""
    if ids:
        chosen = []
        for memory_id in ids:
            chosen.append(memories.get(memory_id).id)  # NotFound -> clear error, exit 1
        return chosen, 0
    chosen, spared = [], 0
    where = Selection(session=session)
    # the files, not the index: a forget must reach every memory, even one the index lacks
    for memory_id in memories.ids():
        if before is not None and records.id_datetime(memory_id) >= before:
            break  # ids are time-ordered: everything after is newer
        try:
            memory = memories.get(memory_id)
        except (NotFound, records.CorruptRecord, records.UnsupportedVersion):
            continue
        if not where.admits(memory):
            continue
        if memory.pinned and not include_pinned:
            spared += 1
            continue
        chosen.append(memory_id)
    return chosen, spared


@mem.command()
@click.argument("ids", nargs=-1)
@click.option("--session", "-s", help="Forget every memory of this session.")
@click.option("--before", "before_text", metavar="DATE", help="Forget memories older than DATE.")
@click.option("--all", "forget_all", is_flag=True, help="Forget everything (wipes the store).")
@click.option("--include-pinned", is_flag=True, help="With --session/--before: pinned too.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_obj
def forget(
    ctx: CliContext,
    ids: tuple[str, ...],
    session: str | None,
    before_text: str | None,
    forget_all: bool,
    include_pinned: bool,
    yes: bool,
    as_json: bool,
) -> None:
    """Forget memories: by ID, by --session, by --before DATE, or --all.

    The files are deleted (and the deletion made durable) before any index entry, so a rebuild
    can never bring a forgotten memory back.
    """
    out = Output(as_json)
    selectors = sum([bool(ids), session is not None, before_text is not None, forget_all])
    if selectors == 0:
        raise click.UsageError("say what to forget: IDs, --session S, --before DATE or --all")
    if forget_all and selectors > 1:
        raise click.UsageError("--all cannot be combined with other selections")
    if ids and selectors > 1:
        raise click.UsageError("give either IDs or --session/--before, not both")
    before = _parse_when(before_text, "--before") if before_text else None
    with ctx.open_memories() as memories:
        if forget_all:
            targets, spared = memories.ids(), 0
        else:
            targets, spared = _select_for_forget(memories, ids, session, before, include_pinned)
        if not targets:
            if as_json:
                out.document({"forgotten": [], "spared_pinned": spared})
            else:
                out.note("nothing to forget" + (f" ({spared} pinned kept)" if spared else ""))
            return
        if not yes:
            if not sys.stdin.isatty():
                raise MemoShellError(
                    f"refusing to forget {len(targets)} memories without confirmation; "
                    "add --yes to confirm"
                )
            what = (
                "EVERYTHING (" + str(len(targets)) + " memories)"
                if forget_all
                else (f"{len(targets)} memor{'y' if len(targets) == 1 else 'ies'}")
            )
            extra = f" ({spared} pinned kept)" if spared else ""
            click.confirm(f"Forget {what}{extra}? This cannot be undone", abort=True, err=True)
        if forget_all:
            memories.wipe()
            done = targets
        else:
            done = memories.forget_many(targets)
    if as_json:
        out.document({"forgotten": done, "spared_pinned": spared})
    else:
        out.note(
            f"forgot {len(done)} memor{'y' if len(done) == 1 else 'ies'}"
            + (f"; kept {spared} pinned" if spared else ""),
            style="green",
        )


# ---------------------------------------------------------------------------- pin / tags


def _set_pin(ctx: CliContext, memory_id: str, pinned: bool, as_json: bool) -> None:
    out = Output(as_json)
    with ctx.open_memories() as memories:
        memory = memories.pin(memory_id, pinned)
    if as_json:
        out.document({"id": memory.id, "pinned": memory.pinned})
    else:
        out.note(f"{'pinned' if pinned else 'unpinned'} {memory.id}", style="green")


@mem.command()
@click.argument("memory_id")
@json_option
@click.pass_obj
def pin(ctx: CliContext, memory_id: str, as_json: bool) -> None:
    """Pin a memory: always eligible for recall, kept by --session/--before forgets."""
    _set_pin(ctx, memory_id, True, as_json)


@mem.command()
@click.argument("memory_id")
@json_option
@click.pass_obj
def unpin(ctx: CliContext, memory_id: str, as_json: bool) -> None:
    """Unpin a memory."""
    _set_pin(ctx, memory_id, False, as_json)


@mem.command()
@click.argument("memory_id")
@click.argument("tags", nargs=-1)
@click.option("--remove", "-r", multiple=True, help="Remove this tag; repeatable.")
@json_option
@click.pass_obj
def tag(
    ctx: CliContext, memory_id: str, tags: tuple[str, ...], remove: tuple[str, ...], as_json: bool
) -> None:
    """Add TAGS to a memory (and --remove others)."""
    out = Output(as_json)
    with ctx.open_memories() as memories:
        memory = memories.get(memory_id)
        new_tags = [t for t in (*memory.tags, *tags) if t not in remove]
        memory = memories.set_tags(memory.id, new_tags)
    if as_json:
        out.document({"id": memory.id, "tags": list(memory.tags)})
    else:
        out.line(", ".join(memory.tags) or "(no tags)")


@mem.command()
@click.argument("memory_id")
@click.option("--user", "-u", help="The corrected text of what the user said.")
@click.option("--assistant", "-a", help="The corrected text of the model's reply ('' clears it).")
@json_option
@click.pass_obj
def edit(
    ctx: CliContext, memory_id: str, user: str | None, assistant: str | None, as_json: bool
) -> None:
    """Correct a memory's text; recall uses the new words at once."""
    out = Output(as_json)
    if user is None and assistant is None:
        raise MemoShellError("nothing to change: give --user and/or --assistant")
    try:
        with ctx.open_memories() as memories:
            memory = memories.edit(memory_id, user=user, assistant=assistant)
    except records.InvalidRecord as exc:
        raise MemoShellError(str(exc)) from exc
    if as_json:
        out.document(
            {"id": memory.id, "user": memory.user, "assistant": memory.assistant,
             "edited": memory.meta.get("edited", ""), "edited_at": memory.meta.get("edited_at", "")}
        )  # fmt: skip
    else:
        out.note(f"edited {memory.id}", style="green")


# ---------------------------------------------------------------------------- stats


@mem.command()
@json_option
@click.pass_obj
def stats(ctx: CliContext, as_json: bool) -> None:
    """Counts, date range, disk use and index state."""
    out = Output(as_json)
    with ctx.open_memories() as memories:
        info = memories.stats()
    if as_json:
        out.document(info)
        return
    index = info.get("index", {})
    rows = [
        ["memories", str(info["memories"])],
        ["sessions", str(info["sessions"])],
        ["pinned", str(info["pinned"])],
        ["oldest", info["oldest"] or "-"],
        ["newest", info["newest"] or "-"],
        ["disk", human_size(info["disk_bytes"])],
        ["quarantined", str(info["quarantined"])],
        ["index", str(index.get("state", "?"))],
        ["data dir", info["data_dir"]],
    ]
    out.table(["", ""], rows, styles=["bold", None])
