"""The scriptable CLI, driven the way a user types it: JSON documents, plain output, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from memo_shell import records
from memo_shell.paths import index_dir, quarantine_dir
from memo_shell.store import Store


def add(run_cli, user: str, *extra: str) -> str:  # type: ignore[no-untyped-def]
    result = run_cli("mem", "add", "--user", user, *extra, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["id"]


def test_add_prints_the_id_of_a_durable_record(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(
        "mem",
        "add",
        "--user",
        "I adopted a cat named Miso",
        "--assistant",
        "Lovely!",
        "--session",
        "pets",
        "--at",
        "2023-05-08T13:56:00+00:00",
        "--meta",
        "src=cli",
        "--meta",
        "empty=",
    )
    assert result.exit_code == 0, result.stderr
    memory_id = result.stdout.strip()
    assert records.is_valid_id(memory_id)
    memory = Store(data_dir).read(memory_id)
    assert memory.user == "I adopted a cat named Miso" and memory.session == "pets"
    assert memory.meta == {"src": "cli", "empty": ""}
    assert memory.created_at.isoformat() == "2023-05-08T13:56:00+00:00"


def test_show_list_pin_and_stats_as_json(run_cli) -> None:  # type: ignore[no-untyped-def]
    first = add(run_cli, "first memory", "--session", "a", "--at", "2023-01-01")
    second = add(run_cli, "second memory", "--session", "b", "--at", "2023-01-02")
    shown = json.loads(run_cli("mem", "show", first, "--json").stdout)
    assert shown["user"] == "first memory" and shown["session"] == "a"

    listed = json.loads(run_cli("mem", "list", "--json").stdout)
    assert [m["id"] for m in listed] == [second, first]  # newest first
    assert [
        m["id"] for m in json.loads(run_cli("mem", "list", "--limit", "1", "--json").stdout)
    ] == [second]
    only_a = json.loads(run_cli("mem", "list", "--session", "a", "--json").stdout)
    assert [m["id"] for m in only_a] == [first]

    assert json.loads(run_cli("mem", "pin", first, "--json").stdout) == {
        "id": first,
        "pinned": True,
    }
    stats = json.loads(run_cli("mem", "stats", "--json").stdout)
    assert stats["memories"] == 2 and stats["pinned"] == 1 and stats["sessions"] == 2
    assert json.loads(run_cli("mem", "unpin", first, "--json").stdout)["pinned"] is False

    tagged = json.loads(run_cli("mem", "tag", first, "work", "urgent", "--json").stdout)
    assert tagged["tags"] == ["work", "urgent"]
    untagged = json.loads(run_cli("mem", "tag", first, "--remove", "work", "--json").stdout)
    assert untagged["tags"] == ["urgent"]


def test_unknown_id_is_a_clear_error_with_exit_1(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("mem", "show", "01JD3M8Q0000000000000000ZZ")
    assert result.exit_code == 1
    assert "no memory with id 01JD3M8Q0000000000000000ZZ" in result.stderr
    assert "Traceback" not in result.stderr
    bad = run_cli("mem", "forget", "not-an-id", "--yes")
    assert bad.exit_code == 1 and "is not a memory id" in bad.stderr


def test_import_keeps_good_lines_and_reports_bad_ones(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"user": "alpha", "assistant": "A", "session": "imp", "at": "2023-05-08"}),
        "this is not json",
        json.dumps({"user": "beta", "meta": {"k": "v"}}),
        json.dumps({"user": "x" * (11 * 1024 * 1024)}),
        json.dumps({"user": "gamma"}),
    ]
    source.write_text("\n".join(lines) + "\n")
    result = run_cli("mem", "import", str(source), "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["imported"] == 3
    assert [r["line"] for r in report["rejected"]] == [2, 4]
    assert "not valid JSON" in report["rejected"][0]["reason"]
    assert "MiB limit" in report["rejected"][1]["reason"]
    assert "line 2: not valid JSON" in result.stderr
    users = {m["user"] for m in json.loads(run_cli("mem", "list", "--json").stdout)}
    assert users == {"alpha", "beta", "gamma"}


def test_import_from_stdin_and_export_round_trip(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = "".join(json.dumps({"user": f"line {i}", "session": "s"}) + "\n" for i in range(5))
    assert run_cli("mem", "import", "-", input=data).exit_code == 0
    target = tmp_path / "export.jsonl"
    assert run_cli("mem", "export", str(target)).exit_code == 0
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    exported = [json.loads(line) for line in target.read_text().splitlines()]
    assert [e["user"] for e in exported] == [f"line {i}" for i in range(5)]
    assert all(records.is_valid_id(e["id"]) for e in exported)

    # Importing the export into a fresh store recreates it exactly; into the same one, a no-op.
    other = tmp_path / "other"
    assert run_cli("mem", "import", str(target), data=other).exit_code == 0
    again = [json.loads(x) for x in run_cli("mem", "export", data=other).stdout.splitlines()]
    assert again == exported
    same = json.loads(run_cli("mem", "import", str(target), "--json").stdout)
    assert same["imported"] == 0 and same["already_present"] == 5


def test_forget_by_id_session_and_date(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    old = add(run_cli, "old news", "--session", "x", "--at", "2020-01-01")
    keep = add(run_cli, "pinned old", "--session", "x", "--at", "2020-01-02", "--pin")
    new = add(run_cli, "new stuff", "--session", "y", "--at", "2024-01-01")
    refused = run_cli("mem", "forget", old)  # not a terminal, no --yes
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    assert Store(data_dir).exists(old)

    result = json.loads(
        run_cli("mem", "forget", "--before", "2021-01-01", "--yes", "--json").stdout
    )
    assert result == {"forgotten": [old], "spared_pinned": 1}
    assert not Store(data_dir).exists(old) and Store(data_dir).exists(keep)

    by_session = json.loads(run_cli("mem", "forget", "--session", "y", "--yes", "--json").stdout)
    assert by_session["forgotten"] == [new]
    assert json.loads(run_cli("mem", "forget", keep, "--yes", "--json").stdout)["forgotten"] == [
        keep
    ]
    assert json.loads(run_cli("mem", "list", "--json").stdout) == []


def test_forget_all_wipes_files_index_and_quarantine(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        add(run_cli, f"secret number {i}")
    assert run_cli("recall", "secret", "--json").exit_code == 0  # builds an index on disk
    result = json.loads(run_cli("mem", "forget", "--all", "--yes", "--json").stdout)
    assert len(result["forgotten"]) == 3
    leftovers = [p for p in data_dir.rglob("*") if p.is_file()]
    # only the empty forget markers stay, so a synced device forgets the same memories
    assert sorted(p.name for p in leftovers) == sorted(result["forgotten"])
    assert all(p.parent.name == "forgotten" and p.stat().st_size == 0 for p in leftovers)
    device = [p for p in quarantine_dir(data_dir).parent.rglob("*") if p.is_file()]
    assert all(p.name in {"store.lock", "lock", "data-dir"} for p in device), device
    # the index's lock file stays (empty) so that a process waiting on it keeps excluding others
    assert [p.name for p in index_dir(data_dir).iterdir()] == ["lock"]
    assert not list((data_dir / "memories").rglob("*.memo"))


def test_recall_returns_the_documented_json_shape(run_cli) -> None:  # type: ignore[no-untyped-def]
    thai = add(run_cli, "We had dinner at a Thai restaurant downtown", "--meta", "k=v")
    add(run_cli, "The weather was rainy all week")
    hits = json.loads(run_cli("recall", "thai restaurant", "-k", "1", "--json").stdout)
    assert len(hits) == 1
    assert set(hits[0]) == {
        "id", "score", "session", "at", "user", "assistant", "meta", "provenance", "why"
    }
    assert hits[0]["id"] == thai and hits[0]["meta"] == {"k": "v"}
    assert any("thai" in reason.lower() for reason in hits[0]["why"])


def test_reindex_rebuilds_from_files(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    target = add(run_cli, "the spare key is under the blue flowerpot")
    import shutil

    shutil.rmtree(index_dir(data_dir), ignore_errors=True)
    result = json.loads(run_cli("reindex", "--json").stdout)
    assert result["indexed"] == 1
    hits = json.loads(run_cli("recall", "where is the spare key", "--json").stdout)
    assert hits and hits[0]["id"] == target


def test_bad_config_and_bad_dates_give_one_line_errors(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "c.toml"
    config.write_text("backend = 'cloud'\n")
    result = run_cli("--config", str(config), "mem", "list")
    assert result.exit_code == 1 and "backend 'cloud' is not one of" in result.stderr
    bad_date = run_cli("mem", "add", "--user", "x", "--at", "tomorrow-ish")
    assert bad_date.exit_code == 2 and "ISO 8601" in bad_date.stderr


def test_human_output_is_plain_text_when_piped(run_cli) -> None:  # type: ignore[no-untyped-def]
    memory_id = add(run_cli, "plain\ttext please", "--session", "p")
    listed = run_cli("mem", "list").stdout.splitlines()
    assert len(listed) == 1
    fields = listed[0].split("\t")
    assert fields[0] == memory_id and fields[2] == "p" and fields[3] == "plain text please"
    assert "\x1b[" not in run_cli("mem", "show", memory_id).stdout


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    env = {**os.environ, "MEMO_SHELL_DATA_DIR": str(tmp_path / "d")}
    for command in (
        [sys.executable, "-m", "memo_shell"],
        [str(Path(sys.executable).with_name("memo-shell"))],
    ):
        out = subprocess.run(
            [*command, "--version"], capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.startswith("memo-shell, version ")
    created = subprocess.run(
        [sys.executable, "-m", "memo_shell", "mem", "add", "--user", "via env", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    memory_id = json.loads(created.stdout)["id"]
    assert Store(tmp_path / "d").read(memory_id).user == "via env"


def test_a_corrupt_file_is_reported_by_path_and_the_rest_still_lists(
    run_cli, data_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    good = add(run_cli, "intact memory")
    bad = add(run_cli, "this one gets torn")
    path = Store(data_dir).path_for(bad)
    path.write_bytes(path.read_bytes()[:25])
    result = run_cli("mem", "list", "--json")
    assert result.exit_code == 0
    assert [m["id"] for m in json.loads(result.stdout)] == [good]
    assert str(path) in result.stderr and "quarantine" in result.stderr
    assert (quarantine_dir(data_dir) / path.name).exists()


def test_unwritable_data_dir_is_one_clear_message(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = run_cli("mem", "add", "--user", "x", data=blocker / "data")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: creating") and "Not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_restore_and_rename_session_through_the_api(data_dir: Path) -> None:
    import memo_shell

    with memo_shell.open(data_dir) as memories:
        first = memories.add(user="kayak trip on the lake", session="old")
        second = memories.add(user="kayak paddles need wax", session="old")
        other = memories.add(user="unrelated", session="keep")
        original = memories.get(first)
        memories.forget(first)
        memories.restore(original)
        assert memories.get(first) == original
        assert first in [h.memory.id for h in memories.recall("kayak lake")]
        assert memories.rename_session("old", "new") == 2
        assert {memories.get(i).session for i in (first, second)} == {"new"}
        assert memories.get(other).session == "keep"
        assert sorted(memories.index.ids(session="new")) == sorted([first, second])
        assert memories.index.ids(session="old") == []
    assert Store(data_dir).read(second).session == "new"
