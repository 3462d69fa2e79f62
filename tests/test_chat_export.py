"""``memo-shell chat export``: a session as Markdown to share, or as one JSON document."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from memo_shell import chat_export
from memo_shell.api import Memories
from memo_shell.records import parse_datetime


def fill(data_dir: Path) -> None:
    with Memories(data_dir, preload=False) as memories:
        memories.add(
            "What is a *borrow*?\n\n# not a heading of ours",
            "A reference — ✓",
            session="rust",
            at=parse_datetime("2024-03-09T16:00:00+00:00"),
            model="llama3.1:8b",
            backend="ollama",
        )
        memories.add("Unanswered", session="rust", at=parse_datetime("2024-03-09T16:05:00+00:00"))
        memories.add("elsewhere", "other", session="cooking")


def test_markdown_has_questions_answers_times_and_models_in_order(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    fill(data_dir)
    result = run_cli("chat", "export", "rust")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert text.startswith("# rust\n")
    assert "*2 turns, " in text
    first, second = text.index("What is a *borrow*?"), text.index("Unanswered")
    assert first < second
    assert "### llama3.1:8b (ollama)" in text and "A reference — ✓" in text
    assert "elsewhere" not in text
    local = parse_datetime("2024-03-09T16:00:00+00:00").astimezone().strftime("%Y-%m-%d %H:%M")
    assert f"### You · {local}" in text


def test_json_format_and_file_output_is_private(run_cli, data_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fill(data_dir)
    doc = json.loads(run_cli("chat", "export", "rust", "--format", "json").stdout)
    assert doc["session"] == "rust" and [t["user"][:10] for t in doc["turns"]] == [
        "What is a ",
        "Unanswered",
    ]
    target = tmp_path / "out.md"
    result = run_cli("chat", "export", "rust", "-o", str(target), "--json")
    assert json.loads(result.stdout) == {"session": "rust", "turns": 2, "file": str(target)}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text().startswith("# rust")
    assert not list(tmp_path.glob(".*.tmp"))


def test_unknown_session_or_unwritable_target_is_one_sentence(
    run_cli, data_dir: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    fill(data_dir)
    result = run_cli("chat", "export", "nope")
    assert result.exit_code == 1 and "no memories in session 'nope'" in result.stderr
    result = run_cli("chat", "export", "rust", "-o", str(tmp_path / "missing" / "x.md"))
    assert result.exit_code == 1 and "cannot write" in result.stderr
    assert "Traceback" not in result.stderr


def test_default_filename_is_safe() -> None:
    assert chat_export.default_filename("Trip to Lisbon 🇵🇹 · c0ffee00") == (
        "Trip-to-Lisbon-c0ffee00.md"
    )
    assert chat_export.default_filename("../../etc/passwd") == "etc-passwd.md"
    assert chat_export.default_filename("///", "json") == "chat.json"
