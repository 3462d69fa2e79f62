"""The adversarial round (issue 10): each test reproduces one way a hostile or careless user broke
"nothing acknowledged is ever lost, nothing reaches the user as a traceback", on real files.

Tests run the CLI in-process with ``catch_exceptions=False``, so any traceback fails them.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

import memo_shell
from memo_shell import paths, records
from memo_shell.errors import MemoShellError, StoreError
from memo_shell.records import RecordError
from memo_shell.store import AlreadyExists, Store

pytest_plugins = ["conftest_servers"]


def add(run_cli, user: str, *extra: str) -> str:  # type: ignore[no-untyped-def]
    result = run_cli("mem", "add", "--user", user, *extra, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["id"]


def write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------- 1. never overwritten


def test_two_adds_at_the_epoch_are_two_memories(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    at = ("--at", "1970-01-01T00:00:00Z")
    first = add(run_cli, "first at the epoch", *at)
    second = add(run_cli, "second at the epoch", *at)
    assert first != second
    assert first != records.id_from_parts(0, 1), "the random part must not be predictable"
    with memo_shell.open(data_dir, preload=False) as memories:
        assert memories.get(first).user == "first at the epoch"
        assert memories.get(second).user == "second at the epoch"


def test_a_new_record_never_replaces_an_existing_file(tmp_path: Path) -> None:
    store = Store(tmp_path)
    kept = records.make_memory(user="acknowledged")
    store.write(kept)
    intruder = kept.with_changes(user="same id, other text")
    with pytest.raises(AlreadyExists):
        store.write(intruder)
    assert store.read(kept.id) == kept
    assert not [p for p in store.path_for(kept.id).parent.iterdir() if p.name.endswith(".tmp")]
    assert store.write_batch([intruder]) == []  # a batch skips it too, and says so
    assert store.read(kept.id) == kept


def test_add_mints_a_fresh_id_when_its_id_is_taken(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with memo_shell.open(data_dir, preload=False) as memories:
        taken = memories.add("already here")
        original = records.new_id
        calls = iter([taken])
        monkeypatch.setattr(records, "new_id", lambda at=None: next(calls, None) or original(at))
        other = memories.add("minted the same id by bad luck")
        assert other != taken
        assert memories.get(taken).user == "already here"
        assert memories.get(other).user == "minted the same id by bad luck"


def test_forked_children_never_mint_their_parents_next_id() -> None:
    at = datetime(2024, 1, 1, tzinfo=UTC)
    records.new_id(at)  # the parent's generator now holds a state for this millisecond
    ids = []
    for _ in range(2):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, records.new_id(at).encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        ids.append(os.read(read, 64).decode())
        os.close(read)
    ids.append(records.new_id(at))
    assert len(set(ids)) == 3, ids


def test_dates_outside_the_id_range_are_a_sentence(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("mem", "add", "--user", "x", "--at", "1969-12-31T23:59:59Z")
    assert result.exit_code == 1
    assert "between 1970-01-01 and 9999-12-31" in result.stderr
    assert "not a memory id" not in result.stderr


# --------------------------------------------------------------------- 2/3. import


def test_one_bad_line_never_aborts_the_import(run_cli, data_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "in.jsonl"
    lines = [
        '{"user": "before"}',
        '{"user": "x\\ud800y"}',  # a lone surrogate
        '{"user": "big int", "meta": {"n": ' + "9" * 5000 + "}}",
        json.dumps({"user": "y" * (records.MAX_PAYLOAD_BYTES - 10)}),  # fits a line, not a record
        '{"user": "after"}',
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_cli("mem", "import", str(source), "--json")
    assert result.exit_code == 1  # some lines were rejected
    report = json.loads(result.stdout)
    assert report["imported"] == 2
    assert [r["line"] for r in report["rejected"]] == [2, 3, 4]
    assert "lone surrogate" in report["rejected"][0]["reason"]
    assert "limit" in report["rejected"][2]["reason"]
    with memo_shell.open(data_dir, preload=False) as memories:
        assert sorted(m.user for m in memories.iter_memories()) == ["after", "before"]


def test_importing_the_same_file_twice_stores_nothing_twice(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
    tmp_path: Path,
) -> None:
    source = write_jsonl(
        tmp_path / "in.jsonl",
        [{"user": "dated", "at": "2024-02-03T04:05:06Z"}, {"user": "undated"}, {"user": "undated"}],
    )
    first = json.loads(run_cli("mem", "import", str(source), "--json").stdout)
    again = json.loads(run_cli("mem", "import", str(source), "--json").stdout)
    assert (first["imported"], first["already_present"]) == (3, 0)
    assert (again["imported"], again["already_present"]) == (0, 3)
    human = run_cli("mem", "import", str(source))
    assert "imported 0, already present 3, rejected 0" in human.stderr
    with memo_shell.open(data_dir, preload=False) as memories:
        assert memories.count() == 3


def test_an_import_stopped_by_a_full_disk_reports_what_it_stored(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    from memo_shell import api

    monkeypatch.setattr(api, "BATCH_SIZE", 3)
    real = Store.write_batch
    batches = 0

    def fill_up(self: Store, memories: list[records.Memory]) -> list[str]:
        nonlocal batches
        batches += 1
        if batches == 3:
            raise StoreError("saving the imported memories failed: the disk is full") from OSError(
                errno.ENOSPC, "full"
            )
        return real(self, memories)

    monkeypatch.setattr(Store, "write_batch", fill_up)
    source = write_jsonl(tmp_path / "in.jsonl", [{"user": f"line {i}"} for i in range(10)])
    result = run_cli("mem", "import", str(source), "--json")
    assert result.exit_code == 1
    [document] = [json.loads(line) for line in result.stdout.splitlines()]
    assert document["error"]["kind"] == "import_stopped"
    assert "disk is full" in document["error"]["message"]
    assert (document["imported"], document["already_present"]) == (6, 0)
    assert "imported 6, already present 0" in result.stderr

    monkeypatch.setattr(Store, "write_batch", real)
    rerun = json.loads(run_cli("mem", "import", str(source), "--json").stdout)
    assert (rerun["imported"], rerun["already_present"]) == (4, 6)


def test_an_interrupted_import_still_prints_its_counts(
    run_cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from memo_shell import api

    monkeypatch.setattr(api, "BATCH_SIZE", 2)
    real = Store.write_batch
    batches = 0

    def interrupt(self: Store, memories: list[records.Memory]) -> list[str]:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise KeyboardInterrupt
        return real(self, memories)

    monkeypatch.setattr(Store, "write_batch", interrupt)
    source = write_jsonl(tmp_path / "in.jsonl", [{"user": f"line {i}"} for i in range(5)])
    result = run_cli("mem", "import", str(source))
    assert result.exit_code == 1
    assert "interrupted" in result.stderr and "imported 2, already present 0" in result.stderr


# --------------------------------------------------------------------- 4. markup, bidi


HOSTILE = "[link=http://evil.example]click[/link]\u202eb\u200bc [/INST]"  # < 50: no cut


@pytest.mark.parametrize("command", [("mem", "list"), ("recall", "click")])
def test_memory_text_is_never_markup_on_a_terminal(
    run_cli,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    add(run_cli, HOSTILE)
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich treats stdout as a terminal
    monkeypatch.setenv("COLUMNS", "400")
    result = run_cli(*command)
    assert result.exit_code == 0, result.stderr
    assert "\x1b]8;" not in result.stdout  # no OSC 8 hyperlink
    assert "[link=http://evil.example]" in result.stdout
    assert "[/INST]" in result.stdout
    assert "\u202e" not in result.stdout and "<U+202E>" in result.stdout
    assert "\u200b" not in result.stdout and "<U+200B>" in result.stdout


def test_bidi_and_zero_width_are_visible_in_plain_output_but_exact_in_json(run_cli) -> None:  # type: ignore[no-untyped-def]
    memory_id = add(run_cli, "evil\u202etxt.exe \ufeff")
    shown = run_cli("mem", "show", memory_id)
    assert "evil<U+202E>txt.exe <U+FEFF>" in shown.stdout
    exact = json.loads(run_cli("mem", "show", memory_id, "--json").stdout)
    assert exact["user"] == "evil\u202etxt.exe \ufeff"


# --------------------------------------------------------------------- 5. caches heal


def test_an_open_process_keeps_adding_after_another_forgets_everything(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
) -> None:
    with memo_shell.open(data_dir) as memories:
        memories.add("before the wipe")
        memories.wait_ready()
        assert run_cli("mem", "forget", "--all", "--yes").exit_code == 0
        after = memories.add("after the wipe")
        assert memories.get(after).user == "after the wipe"
    with memo_shell.open(data_dir, preload=False) as memories:
        assert [m.user for m in memories.iter_memories()] == ["after the wipe"]


# --------------------------------------------------------------------- 6. --json errors


def test_json_errors_are_one_document_on_stdout(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for args, kind in [
        (("mem", "show", "01JD3M8Q0000000000000000AA", "--json"), "not_found"),
        (("mem", "show", "nonsense", "--json"), "not_found"),
        (("mem", "import", str(tmp_path / "missing.jsonl"), "--json"), "error"),
        (("mem", "add", "--json"), "missing_parameter"),
        (("mem", "pin", "01JD3M8Q0000000000000000AA", "--json"), "not_found"),
    ]:
        result = run_cli(*args)
        assert result.exit_code in (1, 2), args
        [document] = [json.loads(line) for line in result.stdout.splitlines()]
        assert set(document) == {"error"}, args
        assert document["error"]["kind"] == kind, (args, document)
        assert document["error"]["message"], args
        assert "Error:" in result.stderr  # the person still reads it on stderr


def test_a_failed_ask_with_json_prints_an_error_document(
    run_cli,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MEMO_SHELL_OLLAMA_HOST", f"http://127.0.0.1:{port}")
    result = run_cli("ask", "--backend", "ollama", "--model", "llama3.2", "hi", "--json")
    assert result.exit_code == 1
    [document] = [json.loads(line) for line in result.stdout.splitlines()]
    assert document["error"]["kind"] == "turn_failed"
    assert "not stored" in document["error"]["message"]


# --------------------------------------------------------------------- 7. no tracebacks


def test_record_errors_are_memo_shell_errors() -> None:
    assert issubclass(RecordError, MemoShellError)


def _replace_record(data_dir: Path, memory_id: str, data: bytes) -> Path:
    path = Store(data_dir).path_for(memory_id)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("command", ["show", "pin"])
def test_show_and_pin_of_a_newer_format_record_is_a_sentence(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
    command: str,
) -> None:
    memory_id = add(run_cli, "from the future")
    path = Store(data_dir).path_for(memory_id)
    data = bytearray(path.read_bytes())
    data[8] = records.FORMAT_MAJOR + 1
    path.write_bytes(bytes(data))
    result = run_cli("mem", command, memory_id)
    assert result.exit_code == 1
    assert "upgrade memo-shell" in result.stderr


def test_a_non_utf8_argument_is_a_sentence(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("mem", "add", "-u", "\udcff")  # what Python makes of argv byte 0xff
    assert result.exit_code == 1
    assert "cannot be stored as UTF-8" in result.stderr


def test_a_symlinked_record_is_refused_not_followed(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
    tmp_path: Path,
) -> None:
    memory_id = add(run_cli, "real")
    path = Store(data_dir).path_for(memory_id)
    outside = tmp_path / "outside.txt"
    outside.write_text("not a record")
    path.unlink()
    path.symlink_to(outside)
    result = run_cli("mem", "show", memory_id)
    assert result.exit_code == 1
    assert "not a regular file" in result.stderr
    assert outside.read_text() == "not a record"


def test_a_fifo_in_place_of_the_change_log_or_snapshot_never_hangs(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
) -> None:
    add(run_cli, "findable memory about fifos")
    assert run_cli("reindex").exit_code == 0
    index = paths.index_dir(data_dir)
    for name in ("changes", "snapshot"):
        (index / name).unlink()
        os.mkfifo(index / name)
    result = run_cli("recall", "fifos", "--json")
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == 1
    assert stat.S_ISREG((index / "changes").stat().st_mode)


def test_a_snapshot_with_a_valid_checksum_but_wrong_arrays_is_rebuilt(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
) -> None:
    from memo_shell.index.files import read_snapshot, write_snapshot

    add(run_cli, "Alice flew to Lisbon")
    add(run_cli, "Bob stayed in Porto")
    assert run_cli("reindex").exit_code == 0
    path = paths.index_dir(data_dir) / "snapshot"
    header, arrays = read_snapshot(path)
    arrays = {name: array.copy() for name, array in arrays.items()}
    arrays["lex.b_docs"][:] = 10_000  # docs that do not exist, under a fresh checksum
    write_snapshot(path, header, arrays)
    for _ in range(2):
        result = run_cli("recall", "Lisbon", "--json")
        assert result.exit_code == 0, result.stderr
        assert [h["user"] for h in json.loads(result.stdout)] == ["Alice flew to Lisbon"]


def test_a_model_reply_with_a_lone_surrogate_is_not_stored_and_says_so(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
    fake_ollama,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from servers import ScriptedModel

    monkeypatch.setenv("MEMO_SHELL_OLLAMA_HOST", fake_ollama.url)
    fake_ollama.add(ScriptedModel("odd", reply="half \ud800 broken"))  # sent as "\ud800"
    result = run_cli("ask", "--backend", "ollama", "--model", "odd", "hello")
    assert result.exit_code == 1
    assert "not stored" in result.stderr
    assert "half \ufffd broken" in result.stdout  # shown, but never raw
    with memo_shell.open(data_dir, preload=False) as memories:
        assert memories.count() == 0


# --------------------------------------------------------------------- 8. privacy


def test_forget_reaches_quarantined_copies(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    memory_id = add(run_cli, "secret kept in a conflict copy")
    store = Store(data_dir)
    path = store.path_for(memory_id)
    quarantine = paths.quarantine_dir(data_dir)
    quarantine.mkdir()
    (quarantine / path.name).write_bytes(path.read_bytes())  # a second copy
    (quarantine / "Notes (conflict).memo").write_bytes(path.read_bytes())  # renamed copy
    (quarantine / "unrelated.bin").write_bytes(b"someone else's debris")
    assert run_cli("mem", "forget", memory_id, "--yes").exit_code == 0
    left = sorted(p.name for p in quarantine.iterdir())
    assert left == ["unrelated.bin"]


def test_a_cli_forget_before_any_snapshot_leaves_no_id_in_the_change_log(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
) -> None:
    memory_id = add(run_cli, "forget me entirely")
    add(run_cli, "keep me")
    assert memory_id in (paths.index_dir(data_dir) / "changes").read_text()
    assert run_cli("mem", "forget", memory_id, "--yes").exit_code == 0
    for path in (paths.index_dir(data_dir)).iterdir():
        if path.is_file():
            assert memory_id.encode() not in path.read_bytes(), path.name


# --------------------------------------------------------------------- 9. smaller ones


def test_saving_the_theme_keeps_the_config_file_private(tmp_path: Path) -> None:
    from memo_shell.config import save_setting

    path = tmp_path / "config.toml"
    path.write_text('api_key = "sk-secret"\n')
    path.chmod(0o644)
    old = os.umask(0o022)
    try:
        save_setting(path, "theme", "nord")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert 'theme = "nord"' in path.read_text() and "sk-secret" in path.read_text()


def test_a_symlinked_shard_dir_is_refused(data_dir: Path, tmp_path: Path) -> None:
    store = Store(data_dir)
    memory = records.make_memory(user="inside", at=datetime(2031, 5, 6, tzinfo=UTC))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (store.memories_dir / "2031").symlink_to(elsewhere)
    with pytest.raises(StoreError, match="symbolic link"):
        store.write(memory)
    assert list(elsewhere.iterdir()) == []


def test_quarantine_never_chmods_a_hard_linked_file(data_dir: Path, tmp_path: Path) -> None:
    store = Store(data_dir)
    kept = records.make_memory(user="x")
    store.write(kept)
    outside = tmp_path / "outside-secret"
    outside.write_bytes(b"not a record")
    outside.chmod(0o644)
    victim = store.path_for(kept.id).with_name("01JD3M8Q0000000000000000AA.memo")
    os.link(outside, victim)
    store.quarantine(victim, "test")
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644


def test_an_unreadable_memory_is_skipped_with_a_note(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from memo_shell.disk import Disk

    kept = add(run_cli, "readable")
    locked = add(run_cli, "mode 000")
    real = Disk.read

    def read(self: Disk, path: Path, limit: int) -> bytes:
        if locked in path.name:  # what chmod 000 does for anyone but root
            raise PermissionError(13, "Permission denied", str(path))
        return real(self, path, limit)

    monkeypatch.setattr(Disk, "read", read)
    for args in (("mem", "list", "--json"), ("mem", "export")):
        result = run_cli(*args)
        assert result.exit_code == 0, result.stderr
        assert kept in result.stdout and locked not in result.stdout
        assert "skipped" in result.stderr and "permission denied" in result.stderr


def test_a_data_dir_under_a_missing_parent_is_an_error(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "no-such-parent" / "data"
    result = run_cli("mem", "list", data=typo)
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert not typo.parent.exists()
    assert run_cli("mem", "list", data=tmp_path / "fresh").exit_code == 0  # parent exists: fine


def test_export_dash_writes_stdout(
    run_cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add(run_cli, "exported to stdout")
    monkeypatch.chdir(tmp_path)
    result = run_cli("mem", "export", "-")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["user"] == "exported to stdout"
    assert not (tmp_path / "-").exists()


# --------------------------------------------------------------------- more of the same kind


def test_a_closed_pipe_ends_the_output_quietly(data_dir: Path, tmp_path: Path) -> None:
    """`memo-shell mem export | head -1`: a filter's reader went away; no error, no trace."""
    import subprocess
    import sys

    source = write_jsonl(
        tmp_path / "in.jsonl", [{"user": f"line {i} " + "x" * 200} for i in range(400)]
    )
    cli = [sys.executable, "-m", "memo_shell", "--data-dir", str(data_dir)]
    subprocess.run([*cli, "mem", "import", str(source)], check=True, capture_output=True)
    for args in (["mem", "export"], ["mem", "list"], ["mem", "export", "--json"]):
        producer = subprocess.Popen([*cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert producer.stdout is not None and producer.stderr is not None
        producer.stdout.readline()
        producer.stdout.close()  # like `head -1` exiting
        stderr = producer.stderr.read().decode()
        producer.wait(timeout=60)
        assert "Traceback" not in stderr and "Error" not in stderr, (args, stderr)


def test_quarantine_never_replaces_a_quarantined_file(data_dir: Path) -> None:
    store = Store(data_dir)
    shard = store.path_for(records.make_memory(user="x").id).parent
    shard.mkdir(parents=True, exist_ok=True)
    quarantine = paths.quarantine_dir(data_dir)
    quarantine.mkdir(parents=True, exist_ok=True)
    (quarantine / "junk.bin").write_bytes(b"first, maybe the last copy of something")
    (shard / "junk.bin").write_bytes(b"second")
    moved = store.quarantine(shard / "junk.bin", "test")
    assert moved is not None and moved.moved_to.name == "junk.bin.1"
    assert (paths.quarantine_dir(data_dir) / "junk.bin").read_bytes().startswith(b"first")
    assert not (shard / "junk.bin").exists()


def test_reindex_on_a_full_disk_is_a_sentence(
    run_cli,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    from memo_shell.index import files

    add(run_cli, "something to index")

    def full(*_args: object, **_kw: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "atomic_write", full)
    result = run_cli("reindex")
    assert result.exit_code == 1
    assert "the disk is full" in result.stderr
    json_result = run_cli("reindex", "--json")
    [document] = [json.loads(line) for line in json_result.stdout.splitlines()]
    assert document["error"]["kind"] == "os"


def test_a_reload_in_a_read_only_store_is_a_notice_not_a_thread_traceback(
    run_cli,  # type: ignore[no-untyped-def]
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno
    import threading
    import time

    from memo_shell.index import changelog_sync, lifecycle, persistence

    add(run_cli, "Lisbon in May")
    crashed: list[object] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(args.exc_value))
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()
        assert run_cli("reindex").exit_code == 0  # another process starts a new generation

        def read_only(*_args: object, **_kw: object) -> None:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        for module in (lifecycle, changelog_sync, persistence):  # the data dir became read-only
            monkeypatch.setattr(module, "locked", read_only)
        assert [h.memory.user for h in memories.recall("Lisbon")] == ["Lisbon in May"]
        index = memories.index
        deadline = time.monotonic() + 10
        while not crashed and time.monotonic() < deadline:  # until the reload is done
            if index._log_gen == index._log.generation() and not index._reloading:
                break
            time.sleep(0.05)
        assert crashed == []
        assert [h.memory.user for h in memories.recall("Lisbon")] == ["Lisbon in May"]


def test_export_into_a_pipe_or_through_a_symlink_keeps_them(
    run_cli,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    import threading

    add(run_cli, "exported")
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    assert run_cli("mem", "export", str(link)).exit_code == 0
    assert link.is_symlink() and json.loads(real.read_text())["user"] == "exported"

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert run_cli("mem", "export", str(fifo)).exit_code == 0
    reader.join(10)
    assert stat.S_ISFIFO(fifo.lstat().st_mode), "the pipe was replaced by a file"
    assert json.loads(received[0])["user"] == "exported"


def test_a_fifo_in_place_of_the_quarantine_log_never_hangs(run_cli, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    good = add(run_cli, "intact")
    bad = add(run_cli, "torn")
    path = Store(data_dir).path_for(bad)
    path.write_bytes(path.read_bytes()[:25])
    paths.quarantine_dir(data_dir).mkdir()
    os.mkfifo(paths.quarantine_dir(data_dir) / "log.jsonl")
    result = run_cli("mem", "list", "--json")
    assert result.exit_code == 0
    assert [m["id"] for m in json.loads(result.stdout)] == [good]
    assert (paths.quarantine_dir(data_dir) / path.name).exists()


def test_without_hard_links_a_new_record_still_never_replaces_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FAT, some network and FUSE mounts refuse link(): a checked rename stands in."""
    import errno

    def no_links(*_args: object, **_kw: object) -> None:
        raise OSError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "link", no_links)
    store = Store(tmp_path)
    kept = records.make_memory(user="first")
    store.write(kept)
    with pytest.raises(AlreadyExists):
        store.write(kept.with_changes(user="second"))
    assert store.read(kept.id) == kept
    assert store.scan().temps == []
