"""The index's typed operations and state keep the strings they replaced where those leave it:
the change log's one-character tags, and the state the CLI, the TUI and JSON show."""

from __future__ import annotations

import json

from memo_shell.index.ops import Add, Kind, Remove, State, Update
from memo_shell.records import make_memory


def test_log_tags_map_to_kinds_as_the_index_always_read_them() -> None:
    assert [Kind.of_log(t) for t in "+~-"] == [Kind.ADD, Kind.UPDATE, Kind.REMOVE]
    # the log's reader lets "+~" through (a substring of "+~-"): it means "look at the file"
    assert Kind.of_log("+~") is Kind.UPDATE
    assert f"{Kind.REMOVE} ID origin" == "- ID origin"  # how ChangeLog.append writes a line


def test_ops_name_their_memory_and_kind() -> None:
    memory = make_memory(user="a memory")
    ops = [Add(memory), Update(memory), Remove(memory.id)]
    assert [op.memory_id for op in ops] == [memory.id] * 3
    assert [op.kind for op in ops] == [Kind.ADD, Kind.UPDATE, Kind.REMOVE]


def test_state_is_the_string_it_replaced() -> None:
    assert State.READY == "ready" and f"{State.LOADING}" == "loading"
    assert json.dumps({"state": State.REBUILDING}) == '{"state": "rebuilding"}'
