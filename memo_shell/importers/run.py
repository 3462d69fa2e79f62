"""Storing imported turns: through ``Memories``, skipping what is already there.

Ids are derived from the original conversation and message ids (``base.stable_id``), so "already
present" is a file-exists check, the same one memo-shell's own JSONL import relies on to make
re-importing an export a no-op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from memo_shell.api import Memories
from memo_shell.importers.base import Problem
from memo_shell.records import Memory


@dataclass
class Report:
    """What an import did: counts for the summary, problems and ids for ``--json``."""

    imported: list[str] = field(default_factory=list)
    already_present: int = 0
    problems: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "imported": len(self.imported),
            "already_present": self.already_present,
            "rejected": [
                {"conversation": p.conversation, "message": p.message, "reason": p.reason}
                for p in self.problems
            ],
            "ids": self.imported,
        }

    def summary(self) -> str:
        text = f"imported {len(self.imported)} memories"
        if self.already_present:
            text += f", {self.already_present} already present"
        if self.problems:
            text += f", skipped {len(self.problems)} record(s) that could not be read"
        return text


def store(
    memories: Memories,
    items: Iterable[Memory | Problem],
    *,
    on_problem: Callable[[Problem], None] | None = None,
) -> Report:
    """Add every new turn in durable batches; problems are collected, never fatal."""
    report = Report()
    # A turn repeated in the export (the same conversation twice) that add_many has not
    # written yet is not found by ``exists``: add_many finds it and says so in ``present``.
    present: list[str] = []

    def new_turns() -> Iterator[Memory]:
        for item in items:
            if isinstance(item, Problem):
                report.problems.append(item)
                if on_problem is not None:
                    on_problem(item)
            elif memories.exists(item.id):
                report.already_present += 1
            else:
                yield item

    report.imported = memories.add_many(new_turns(), present=present)
    report.already_present += len(present)
    return report
