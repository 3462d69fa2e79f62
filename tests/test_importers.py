"""Importing other apps' chat histories: branch choice, pairing, times, sessions, bad records,
and idempotence, from fixture exports written after each format's documentation."""

from __future__ import annotations

import copy
import json
import os
import sqlite3
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memo_shell import importers
from memo_shell.api import Memories
from memo_shell.errors import MemoShellError
from memo_shell.importers import run
from memo_shell.importers.base import Problem
from memo_shell.records import Memory, Provenance

FIXTURES = Path(__file__).parent / "fixtures" / "importers"
CHATGPT = FIXTURES / "chatgpt_conversations.json"
CLAUDE = FIXTURES / "claude_conversations.json"
OPENWEBUI = FIXTURES / "openwebui_export.json"


def split(fmt: str, path: Path) -> tuple[list[Memory], list[Problem]]:
    memories, problems = [], []
    for item in importers.turns(fmt, path):
        (problems if isinstance(item, Problem) else memories).append(item)
    return memories, problems


def everything(memories: list[Memory]) -> str:
    return "\n".join(m.text + json.dumps(m.meta, ensure_ascii=False) for m in memories)


@pytest.fixture
def oterm_db(tmp_path: Path) -> Path:
    path = tmp_path / "oterm" / "store.db"
    path.parent.mkdir()
    db = sqlite3.connect(path)
    db.executescript((FIXTURES / "oterm_store.sql").read_text())
    db.close()
    return path


# ---------------------------------------------------------------------------- ChatGPT


def test_chatgpt_imports_only_the_current_branch_paired_in_order() -> None:
    memories, _ = split("chatgpt", CHATGPT)
    lisbon = [m for m in memories if m.meta["conversation_id"].endswith("0001")]
    assert [(m.meta["message_id"], m.meta["reply_id"]) for m in lisbon] == [
        ("n-q1", "n-a1"),
        ("n-q2", "n-a2"),
        ("n-q3", "n-a3-final"),
    ]
    assert lisbon[1].assistant == "Pastéis de Belém, since 1837."
    text = everything(memories)
    # edits and regenerations left other branches; hidden context, reasoning and tool output
    # are not what anyone said
    for absent in ("ABANDONED", "SECRET", "TOOL OUTPUT", "Porto", "Be brief", "search("):
        assert absent not in text


def test_chatgpt_keeps_times_models_provenance_and_notes_tools_and_images() -> None:
    memories, _ = split("chatgpt", CHATGPT)
    first, second, third = memories[:3]
    assert first.created_at == datetime.fromtimestamp(1700000100.25, UTC)
    assert first.id[:10] == Memory(first.id, "", first.created_at, "").id[:10]  # time-ordered
    assert first.model == "gpt-4o" and second.model == "gpt-4o-mini" and third.model == "o3"
    assert all(m.provenance is Provenance.IMPORTED for m in memories)
    assert first.backend == "chatgpt" and first.meta["source"] == "chatgpt"
    assert third.user == "What is the weather there today, judging by this photo?"
    assert third.meta["non_text_parts"] == "image_asset_pointer x1"
    assert third.meta["tools"] == "browser"
    assert first.user.endswith("Ünïcödé test ✓")


def test_chatgpt_sessions_are_titles_kept_apart_by_id_and_times_fall_back() -> None:
    memories, _ = split("chatgpt", CHATGPT)
    sessions = {m.meta["conversation_id"]: m.session for m in memories}
    first = sessions["c0ffee00-0000-4000-8000-000000000001"]
    other = sessions["deadbeef-0000-4000-8000-000000000004"]
    assert first.startswith("Trip to Lisbon 🇵🇹") and other.startswith("Trip to Lisbon 🇵🇹")
    assert first != other
    (same_title,) = [m for m in memories if m.meta["conversation_id"].startswith("deadbeef")]
    # its messages carry no time: the conversation's is used
    assert same_title.created_at == datetime.fromtimestamp(1700003000, UTC)
    assert same_title.assistant == "はい。"


def test_chatgpt_bad_records_are_reported_and_the_rest_kept() -> None:
    memories, problems = split("chatgpt", CHATGPT)
    assert len(memories) == 5
    described = [p.describe() for p in problems]
    assert len(problems) == 4, described
    assert any("000000000003" in d and "mapping" in d for d in described)
    assert any("000000000005" in d and "missing" in d for d in described)
    assert any("message g1" in d for d in described)
    assert any("#7" in d for d in described)
    assert any(m.meta["message_id"] == "g2" for m in memories)  # after the bad message


def test_chatgpt_zip_export_is_read_in_place(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("user.json", "{}")
        z.write(CHATGPT, "export-2024/conversations.json")
        z.writestr("chat.html", "<html></html>")
    from_zip, _ = split("chatgpt", archive)
    from_json, _ = split("chatgpt", CHATGPT)
    assert [m.id for m in from_zip] == [m.id for m in from_json]
    assert importers.detect(archive) == "chatgpt"


def test_a_damaged_zip_keeps_what_came_before_and_claude_zips_are_detected(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "export.zip"
    padding = b" " * 300_000  # stored uncompressed, so the flipped byte lands after the 1st chat
    data = CHATGPT.read_bytes().replace(
        b'  {\n    "title": "Empty chat"', padding + b'{"title": "E"', 1
    )
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr("conversations.json", data)
    raw = bytearray(archive.read_bytes())
    spot = raw.index(b'{"title": "E"') + 5
    raw[spot] ^= 0x20  # the checksum no longer matches
    archive.write_bytes(bytes(raw))
    memories, problems = split("chatgpt", archive)
    assert len(memories) == 3  # the first conversation, read before the damage
    assert problems and "damaged" in problems[-1].reason

    claude_zip = tmp_path / "claude.zip"
    with zipfile.ZipFile(claude_zip, "w") as z:
        z.write(CLAUDE, "conversations.json")
        z.writestr("users.json", "[]")
    assert importers.detect(claude_zip) == "claude"
    assert len(split("claude", claude_zip)[0]) == 4


def test_a_truncated_export_keeps_what_came_before(tmp_path: Path) -> None:
    data = CHATGPT.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[: data.index(b'"Empty chat"') + 200])
    memories, problems = split("chatgpt", cut)
    assert len(memories) == 3  # the whole first conversation
    assert len(problems) == 1 and "stopped" in problems[0].reason


def test_without_current_node_the_latest_branch_is_followed(tmp_path: Path) -> None:
    (conversation,) = [c for c in json.loads(CHATGPT.read_text())[:1]]
    del conversation["current_node"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps([conversation]))
    memories, problems = split("chatgpt", path)
    assert not problems
    assert [m.meta["reply_id"] for m in memories] == ["n-a1", "n-a2", "n-a3-final"]


# ---------------------------------------------------------------------------- Claude, Open WebUI


def test_claude_pairs_text_blocks_names_attachments_and_follows_retries() -> None:
    memories, problems = split("claude", CLAUDE)
    by_question = {m.meta["message_id"]: m for m in memories}
    assert by_question["m-a1"].assistant == "Once a day at room temperature."
    assert by_question["m-a1"].created_at == datetime(2024, 3, 5, 9, 15, 1, tzinfo=UTC)
    assert by_question["m-a3"].meta["attachments"] == "recipe.txt, photo.jpg"
    assert by_question["m-a3"].meta["tools"] == "web_search"
    assert by_question["m-a3"].assistant == "Your hydration is 75%."
    assert by_question["r1"].assistant == "Canberra."
    assert by_question["o2"].assistant == ""  # an unanswered question is still kept
    text = everything(memories)
    assert "SECRET" not in text and "ABANDONED" not in text and "TOOL RESULT" not in text
    assert sorted(p.message or p.conversation[-1] for p in problems) == ["e", "o1"]


def test_openwebui_follows_current_id_and_reads_old_flat_exports() -> None:
    memories, problems = split("openwebui", OPENWEBUI)
    assert [(m.meta["message_id"], m.meta["reply_id"]) for m in memories] == [
        ("w1", "w2"),
        ("w3", "w4"),
        ("f2", "f3"),
    ]
    assert memories[0].model == "llama3.1:8b" and memories[1].model == "qwen2.5:7b"
    assert memories[0].created_at == datetime.fromtimestamp(1710000000, UTC)
    assert memories[1].user == "And this screenshot?"
    assert memories[1].meta["attachments"] == "shot.png"
    assert memories[0].assistant == "A lifetime parameter named a."  # reasoning left out
    assert "ABANDONED" not in everything(memories) and "SECRET" not in everything(memories)
    assert "You are helpful" not in everything(memories)
    assert {p.message for p in problems} == {"f4", ""}


# ---------------------------------------------------------------------------- oterm


def test_oterm_store_is_read_in_place_without_changing_it(oterm_db: Path) -> None:
    before = (oterm_db.read_bytes(), os.stat(oterm_db).st_mtime_ns)
    writer = sqlite3.connect(oterm_db)  # oterm itself may have it open
    writer.execute("BEGIN")
    try:
        memories, problems = split("oterm", oterm_db)
    finally:
        writer.rollback()
        writer.close()
    assert (oterm_db.read_bytes(), os.stat(oterm_db).st_mtime_ns) == before
    assert not list(oterm_db.parent.glob("*-journal")) and not list(oterm_db.parent.glob("*-wal"))
    assert [(m.user, m.assistant) for m in memories] == [
        ("Write a haiku about rain ☔", "Soft rain on the roof"),
        ("Another one", "Puddles hold the sky"),
        ("Hello from 2023", "Hi!"),
    ]
    assert memories[0].session.startswith("Haiku practice") and memories[0].model == "llama3.2"
    assert all(m.meta["time"] == "unknown" for m in memories)
    assert [m.created_at for m in memories] == sorted(m.created_at for m in memories)
    assert [p.message for p in problems] == ["7"]
    assert importers.detect(oterm_db) == "oterm"


def test_a_foreign_sqlite_file_is_refused_with_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t(x)").connection.close()
    with pytest.raises(MemoShellError, match="not an oterm store"):
        list(importers.turns("oterm", path))
    assert importers.detect(path) is None


# ---------------------------------------------------------------------------- idempotence


def test_importing_twice_adds_nothing_and_a_later_export_adds_only_new_turns(
    tmp_path: Path,
) -> None:
    with Memories(tmp_path / "data") as memories:
        first = run.store(memories, importers.turns("chatgpt", CHATGPT))
        again = run.store(memories, importers.turns("chatgpt", CHATGPT))
        assert len(first.imported) == 5 and first.already_present == 0
        assert again.imported == [] and again.already_present == 5
        # a later export: the Lisbon chat went on, and a new chat was started
        export = json.loads(CHATGPT.read_text())
        lisbon = export[0]
        lisbon["mapping"]["n-a3-final"]["children"] = ["n-q4"]
        lisbon["mapping"]["n-q4"] = {
            "id": "n-q4",
            "parent": "n-a3-final",
            "children": [],
            "message": {
                "id": "n-q4",
                "author": {"role": "user"},
                "create_time": 1700009999,
                "content": {"content_type": "text", "parts": ["And tomorrow?"]},
            },
        }
        lisbon["current_node"] = "n-q4"
        fresh = copy.deepcopy(export[3])
        fresh["conversation_id"] = fresh["id"] = "fresh-0000"
        export.append(fresh)
        later = tmp_path / "later.json"
        later.write_text(json.dumps(export))
        third = run.store(memories, importers.turns("chatgpt", later))
        assert len(third.imported) == 2 and third.already_present == 5
        added = [memories.get(i) for i in third.imported]
        assert {m.user for m in added} == {"And tomorrow?", "Same title, another chat: 日本語も"}
        assert memories.count() == 7


def test_a_forgotten_memory_stays_forgotten_when_the_export_is_imported_again(
    tmp_path: Path,
) -> None:
    with Memories(tmp_path / "data") as memories:
        first = run.store(memories, importers.turns("chatgpt", CHATGPT))
        gone = first.imported[0]
        memories.forget(gone)
        again = run.store(memories, importers.turns("chatgpt", CHATGPT))
        assert gone not in again.imported
        assert gone not in memories.ids()
        assert memories.count() == len(first.imported) - 1


def test_a_conversation_repeated_inside_one_export_is_stored_once(tmp_path: Path) -> None:
    export = json.loads(CHATGPT.read_text())
    path = tmp_path / "dup.json"
    path.write_text(json.dumps([export[0], export[0]]))
    with Memories(tmp_path / "data") as memories:
        report = run.store(memories, importers.turns("chatgpt", path))
        assert len(report.imported) == 3 and report.already_present == 3
        assert memories.count() == 3


# ---------------------------------------------------------------------------- CLI


def test_cli_imports_with_from_and_reports_one_json_document(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("mem", "import", "--from", "claude", str(CLAUDE), "--json")
    assert result.exit_code == 1  # some records were skipped
    doc = json.loads(result.stdout)
    assert doc["format"] == "claude" and doc["imported"] == 4 and doc["already_present"] == 0
    assert {r["message"] for r in doc["rejected"]} == {"o1", ""}
    assert "unknown sender" in result.stderr
    again = json.loads(run_cli("mem", "import", "--from", "claude", str(CLAUDE), "--json").stdout)
    assert again["imported"] == 0 and again["already_present"] == 4
    listed = json.loads(run_cli("mem", "list", "--json").stdout)
    assert len(listed) == 4 and all(m["provenance"] == "imported" for m in listed)


def test_cli_detects_an_export_given_without_from(run_cli, oterm_db: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("mem", "import", str(OPENWEBUI))
    assert "detected format openwebui (Open WebUI chat export)" in result.stderr
    assert "imported 3 memories" in result.stderr
    result = run_cli("mem", "import", str(oterm_db), "--json")
    assert json.loads(result.stdout)["imported"] == 3


def test_cli_jsonl_stays_the_default(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.jsonl"
    path.write_text('{"user": "plain jsonl"}\n')
    doc = json.loads(run_cli("mem", "import", str(path), "--json").stdout)
    assert doc["imported"] == 1 and "format" not in doc


def test_cli_refuses_a_missing_file_or_stdin_with_a_sentence(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("mem", "import", "--from", "chatgpt", str(tmp_path / "nope.json"))
    assert result.exit_code == 1 and "no such file" in result.stderr
    result = run_cli("mem", "import", "--from", "oterm", str(CLAUDE))
    assert result.exit_code == 1 and "oterm store" in result.stderr
    assert "Traceback" not in result.stderr
