"""Correcting memory: edit a memory's text (API and CLI); the file and recall follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memo_shell
from memo_shell.errors import NotFound
from memo_shell.records import InvalidRecord
from memo_shell.store import Store


def test_edit_rewrites_the_file_and_recall_follows(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        mid = mem.add("Where does Priya live?", "Priya lives in Lisbon.", session="s")
        mem.add("Tell me a joke", "No.", session="s")
        mem.wait_ready()
        assert mem.recall("Lisbon", k=3)[0].memory.id == mid
        edited = mem.edit(mid, assistant="Priya lives in Brno.")
        assert edited.id == mid and edited.user == "Where does Priya live?"
        assert edited.meta["edited"] == "assistant" and edited.meta["edited_at"]
        assert mem.recall("Lisbon", k=3) == []  # the old words are gone from the index
        assert mem.recall("Brno", k=3)[0].memory.assistant == "Priya lives in Brno."
        again = mem.edit(mid, user="Where does my sister Priya live now?")
        assert again.meta["edited"] == "assistant,user"
    # the file on disk holds the new text (a fresh process sees it), and nothing of the old
    on_disk = Store(data_dir).read(mid)
    assert on_disk.assistant == "Priya lives in Brno." and on_disk.user.endswith("live now?")
    raw = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert b"Lisbon" not in raw  # neither in the record nor in the saved index
    with memo_shell.open(data_dir) as mem:
        mem.wait_ready()
        assert mem.recall("sister Priya Brno", k=1)[0].memory.id == mid


def test_edit_without_change_does_not_rewrite(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        mid = mem.add("hello", "hi")
        assert "edited" not in mem.edit(mid, user="hello", assistant="hi").meta


def test_edit_refuses_an_empty_user_side_and_unknown_ids(data_dir: Path) -> None:
    with memo_shell.open(data_dir) as mem:
        mid = mem.add("hello", "hi")
        with pytest.raises(InvalidRecord):
            mem.edit(mid, user="   ")
        with pytest.raises(NotFound):
            mem.edit("01" + "0" * 24, user="x")
        assert mem.get(mid).user == "hello"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(user=st.text(min_size=1, max_size=200), assistant=st.text(max_size=200))
def test_edit_takes_any_text(data_dir: Path, user: str, assistant: str) -> None:
    with memo_shell.open(data_dir) as mem:
        mid = mem.add("original", "reply")
        try:
            edited = mem.edit(mid, user=user, assistant=assistant)
        except InvalidRecord:
            assert not user.strip()
            return
        assert mem.get(mid) == edited
        mem.forget(mid)


def test_cli_edit(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    added = run_cli("mem", "add", "--user", "my cat is Miso", "--assistant", "Nice dog!", "--json")
    mid = json.loads(added.stdout)["id"]
    result = run_cli("mem", "edit", mid, "--assistant", "Nice cat!", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["assistant"] == "Nice cat!" and doc["edited"] == "assistant"
    shown = json.loads(run_cli("mem", "show", mid, "--json").stdout)
    assert "Nice cat!" in json.dumps(shown)
    for args in ([mid], ["NOPE", "--user", "x"], [mid, "--user", ""]):
        bad = run_cli("mem", "edit", *args)
        assert bad.exit_code != 0
        message = (bad.stdout + bad.stderr).strip()
        assert message.startswith("Error:") and len(message.splitlines()) == 1, message
