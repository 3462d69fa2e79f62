"""Privacy: private permissions, no network but the model server, and forgetting that forgets.

Issue 6, item 6. Everything here uses the real CLI in child processes where the property is
about a process (its umask, its sockets), and greps every byte of the data directory where the
property is about the disk. The network test runs a real turn (``memo-shell ask`` through the
real ``ollama`` client against the loopback Ollama-protocol server) twice: once with an audit hook
(``sys.addaudithook``: every ``socket.connect`` and ``getaddrinfo`` the child makes is logged),
and once more, where the kernel allows it, inside a fresh network namespace that has nothing but
a loopback interface, so a connection anywhere else could not even be attempted silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import memo_shell
from memo_shell import records
from memo_shell.paths import device_dir, index_dir, quarantine_dir
from memo_shell.store import Store

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "memo_shell"]


def _files_containing(root: Path, needle: str) -> list[str]:
    """Every file under the data dir ``root`` and this device's own dir for it (index,
    quarantine) whose bytes contain ``needle`` (any case), as paths relative to either."""
    wanted = needle.lower().encode()
    return sorted(
        str(path.relative_to(base))
        for base in (root, device_dir(root))
        for path in base.rglob("*")
        if path.is_file() and wanted in path.read_bytes().lower()
    )


class HashEmbedder:
    """A deterministic local embedder, so the index keeps cached vectors for the test to find."""

    id = "sha-8"

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [[(b - 127.5) / 128 for b in hashlib.sha256(t.encode()).digest()[:8]] for t in texts]


# ---------------------------------------------------------------------------------------------
# permissions


def _mkdirs_private(directory: Path) -> None:
    """What a careful sync tool would do (``mkdir(parents=True)`` gives parents 0777 - umask)."""
    for level in reversed([directory, *directory.parents]):
        if not level.exists():
            level.mkdir(mode=0o700)


def _loose_modes(root: Path) -> list[str]:
    """Paths under ``root`` (itself included) that group or others could use."""
    loose = []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            loose.append(f"{path.relative_to(root)} {stat.filemode(mode)}")
    return loose


def test_everything_memo_shell_creates_is_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    """With the common umask 022 every file would be 0644 and every dir 0755 unless the code
    asks for 0600/0700 itself: add, import, recall (index), reindex, a quarantined file (it
    arrived world-readable), forget, and cached vectors are all checked."""
    data_dir = tmp_path / "data"
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"user": "imported secret about the garden"}) + "\n")

    def cli(*commands: list[str]) -> None:
        """Run CLI commands in one child interpreter whose umask is 022."""
        script = (
            "import sys, json\nfrom memo_shell.cli.main import cli\n"
            "for args in json.loads(sys.argv[1]):\n"
            "    cli.main(args, prog_name='memo-shell', standalone_mode=False)\n"
        )
        argv = json.dumps([["--data-dir", str(data_dir), *c] for c in commands])
        done = subprocess.run(
            [sys.executable, "-c", script, argv],
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=lambda: os.umask(0o022),
        )
        assert done.returncode == 0, done.stderr

    cli(["mem", "add", "--user", "typed secret about the garden"], ["mem", "import", str(source)])
    planted = Store(data_dir).path_for("01J00000000000000000000000")
    _mkdirs_private(planted.parent)
    planted.write_bytes(b"not a record, and world-readable")
    planted.chmod(0o644)
    # recall builds the index; mem list meets (and quarantines) the planted file
    cli(["recall", "garden"], ["reindex"], ["mem", "list"])
    assert (quarantine_dir(data_dir) / planted.name).exists()
    old = os.umask(0o022)
    try:
        with memo_shell.open(data_dir, embedder=HashEmbedder()) as memories:
            memories.forget(memories.ids()[0])
            memories.index.wait_embedded(10)
    finally:
        os.umask(old)
    assert any(p.name.startswith("vectors") for p in index_dir(data_dir).iterdir())
    assert _loose_modes(data_dir) == []


@pytest.mark.parametrize("mode", [0o755, 0o750, 0o711])
def test_the_cli_warns_when_others_can_reach_the_data_dir(
    run_cli: Callable[..., Any], data_dir: Path, mode: int
) -> None:
    assert run_cli("mem", "add", "--user", "hello").stderr == ""
    data_dir.chmod(mode)
    try:
        for args in (["mem", "list"], ["recall", "hello"]):
            result = run_cli(*args)
            assert result.exit_code == 0
            assert f"warning: {data_dir} is readable by other users" in result.stderr
            assert f"chmod 700 {data_dir}" in result.stderr
    finally:
        data_dir.chmod(0o700)
    assert "warning" not in run_cli("mem", "list").stderr


# ---------------------------------------------------------------------------------------------
# the network

#: Installed as ``sitecustomize`` in the child: logs every connection attempt and name lookup.
AUDIT_HOOK = textwrap.dedent(
    """
    import json, os, sys

    _LOG = os.environ.get("MEMO_SHELL_AUDIT_LOG")

    def _record(event, args):
        if event == "socket.connect":
            sock, address = args[0], args[1]
            entry = {"event": "connect", "family": int(sock.family),
                     "address": address if isinstance(address, str) else list(address)[:2]}
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
            host = args[0]
            entry = {"event": "lookup", "host": host.decode() if isinstance(host, bytes) else host}
        elif event == "socket.sendto":
            entry = {"event": "sendto", "address": repr(args[1])}
        else:
            return
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry, default=str) + "\\n")

    if _LOG:
        sys.addaudithook(_record)
    """
)

#: Runs where the test wants (here, or in a new network namespace): starts the loopback model
#: server, runs memo-shell commands with the audit hook, and reports.
DRIVER = textwrap.dedent(
    """
    import errno, json, os, socket, subprocess, sys
    sys.path.insert(0, sys.argv[1])  # the tests directory: the loopback servers
    from servers import FakeOllama, ScriptedModel

    data_dir, hook_dir, log_dir = sys.argv[2], sys.argv[3], sys.argv[4]

    def memo(log_name, *args, **env):
        environment = {**os.environ, "PYTHONPATH": hook_dir + os.pathsep + sys.argv[5],
                       "MEMO_SHELL_AUDIT_LOG": os.path.join(log_dir, log_name), **env}
        done = subprocess.run([sys.executable, "-m", "memo_shell", "--data-dir", data_dir,
                               *args], capture_output=True, text=True, env=environment,
                              timeout=60)
        return {"rc": done.returncode, "out": done.stdout, "err": done.stderr}

    report = {}
    with FakeOllama([ScriptedModel("llama3.2:latest", reply="Your cat is Miso.")]) as server:
        report["port"] = server.port
        report["setup"] = memo("mem.jsonl", "mem", "add", "--user", "my cat is called Miso")
        report["recall"] = memo("mem.jsonl", "recall", "cat", "--json")
        report["ask"] = memo("ask.jsonl", "ask", "--backend", "ollama", "--model", "llama3.2",
                             "--json", "--session", "later", "what is my cat called?",
                             MEMO_SHELL_OLLAMA_HOST=server.url)
        report["chats"] = len(server.posted("/api/chat"))
    try:  # is the outside world reachable from here at all? (TEST-NET-1, never routed)
        socket.create_connection(("192.0.2.1", 80), timeout=0.5).close()
        report["outside"] = "connected"
    except OSError as exc:
        report["outside"] = errno.errorcode.get(exc.errno or 0, str(exc))
    print(json.dumps(report))
    """
)


def _namespace_prefix() -> list[str] | None:
    """``unshare`` into new user + network namespaces with only ``lo`` up, if this kernel and
    sandbox allow it; None otherwise."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if not unshare or not ip:
        return None
    probe = subprocess.run(
        [unshare, "-rn", ip, "link", "set", "lo", "up"], capture_output=True, timeout=10
    )
    if probe.returncode != 0:
        return None
    return [unshare, "-rn", "sh", "-c", f'{ip} link set lo up && exec "$0" "$@"']


@pytest.fixture
def audited(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(AUDIT_HOOK)
    log_dir = tmp_path / "audit"
    log_dir.mkdir()
    yield hook_dir, log_dir


def _audit(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("sandbox", ["audit hook", "network namespace + audit hook"])
def test_a_turn_talks_to_the_model_server_and_nothing_else(
    tmp_path: Path, audited: tuple[Path, Path], sandbox: str
) -> None:
    hook_dir, log_dir = audited
    prefix: list[str] | None = []
    if sandbox.startswith("network namespace"):
        prefix = _namespace_prefix()
        if prefix is None:
            pytest.skip("no unprivileged network namespaces here (unshare -rn failed)")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    done = subprocess.run(
        [
            *prefix,
            sys.executable,
            str(driver),
            str(TESTS),
            str(tmp_path / "data"),
            str(hook_dir),
            str(log_dir),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for step in ("setup", "recall", "ask"):
        assert report[step]["rc"] == 0, report[step]["err"]
    answer = json.loads(report["ask"]["out"])
    assert answer["answer"] == "Your cat is Miso." and len(answer["recalled"]) == 1
    assert report["chats"] == 1

    # managing memories never touches the network; a turn touches only the model server
    assert _audit(log_dir / "mem.jsonl") == []
    events = _audit(log_dir / "ask.jsonl")
    connects = [e for e in events if e["event"] == "connect"]
    assert connects, "the audit hook saw no connection at all: it is not working"
    assert {(tuple(e["address"]), e["family"]) for e in connects} == {
        (("127.0.0.1", report["port"]), 2)
    }, events
    assert {e["host"] for e in events if e["event"] == "lookup"} <= {"127.0.0.1"}, events
    assert [e for e in events if e["event"] == "sendto"] == []
    if prefix:
        assert report["outside"] in {"ENETUNREACH", "EHOSTUNREACH"}, report["outside"]


# ---------------------------------------------------------------------------------------------
# forgetting

MARKER = "zqxmarkerqz"


def test_a_forgotten_memory_leaves_no_trace_on_disk(data_dir: Path) -> None:
    """The marker is in the text, the session name, a tag and the metadata; the memory is
    recalled, embedded and persisted in the index; after forget + close no byte of the data
    directory may still hold it (nor its cached vector)."""
    embedder = HashEmbedder()
    with memo_shell.open(data_dir, embedder=embedder) as memories:
        for i in range(20):
            memories.add(f"filler note {i} about the garden", session="filler")
        memory_id = memories.add(
            f"my {MARKER} secret: the safe code is 4711",
            f"{MARKER.capitalize()} noted.",
            session=f"session-{MARKER}",
            meta={"source": MARKER},
            tags=[MARKER],
        )
        assert [h.memory.id for h in memories.recall(MARKER)][:1] == [memory_id]
        memories.index.wait_embedded(10)
        memories.reindex()  # the snapshot and vectors on disk now hold it
        assert "index/snapshot" in _files_containing(data_dir, MARKER)  # the grep works
        text = memories.get(memory_id).text
        memories.forget(memory_id)
    vector = bytes(memoryview(__import__("array").array("f", embedder.embed([text])[0])).cast("B"))
    assert _files_containing(data_dir, MARKER) == []
    for path in index_dir(data_dir).iterdir():
        data = path.read_bytes()
        assert memory_id.encode() not in data, f"{path.name} still names the forgotten memory"
        assert vector not in data, f"{path.name} still holds the forgotten memory's vector"


def _forget_in_another_process(data_dir: Path, *args: str) -> None:
    """``memo-shell mem forget ARGS --yes`` as a separate process, as a second terminal would."""
    done = subprocess.run(
        [*CLI, "--data-dir", str(data_dir), "mem", "forget", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def _seed_marker(memories: memo_shell.Memories) -> str:
    """20 fillers and one memory carrying MARKER everywhere, persisted in the index on disk."""
    for i in range(20):
        memories.add(f"filler note {i} about the garden", session="filler")
    memory_id = memories.add(
        f"my {MARKER} secret: the safe code is 4711",
        session=f"session-{MARKER}",
        tags=[MARKER],
    )
    memories.index.wait_embedded(10)
    memories.reindex()
    assert "index/snapshot" in _files_containing(memories.data_dir, MARKER)
    return memory_id


def test_an_open_store_scrubs_the_index_soon_after_a_forget(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TUI can stay open for days: a forget must not wait for it to close to leave disk."""
    from memo_shell.index import persistence

    monkeypatch.setattr(persistence, "SCRUB_AFTER_SECONDS", 0.2)
    with memo_shell.open(data_dir) as memories:
        memory_id = _seed_marker(memories)
        memories.forget(memory_id)
        deadline = time.monotonic() + 15
        while _files_containing(data_dir, MARKER) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _files_containing(data_dir, MARKER) == []  # while the store is still open
        assert all(
            memory_id.encode() not in p.read_bytes() for p in data_dir.rglob("*") if p.is_file()
        )
        assert len(memories.recall("garden filler note", k=30)) == 20  # the rest still recalled


def test_a_one_off_cli_forget_scrubs_the_index_and_every_embedders_vectors(data_dir: Path) -> None:
    """``mem forget ID`` never loads the index for its own sake and has no embedder configured;
    it must still leave no trace in the snapshot or in another model's cached vectors, while the
    other memories' vectors stay (no re-embedding)."""
    from memo_shell.index.files import read_snapshot

    with memo_shell.open(data_dir, embedder=HashEmbedder()) as memories:
        memory_id = _seed_marker(memories)
    [vectors] = index_dir(data_dir).glob("vectors-*")
    assert memory_id in read_snapshot(vectors)[0]["ids"]
    _forget_in_another_process(data_dir, memory_id, "--yes")
    assert _files_containing(data_dir, MARKER) == []
    assert _files_containing(data_dir, memory_id) == []
    header, arrays = read_snapshot(vectors)
    assert len(header["ids"]) == len(arrays["vectors"]) == 20
    with memo_shell.open(data_dir, embedder=HashEmbedder()) as memories:
        memories.wait_ready()
        assert memories.index.stats()["vectors"] == 20


def test_a_stale_process_never_brings_a_forgotten_memory_back(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app with many unsaved changes stays open while ``mem forget`` runs elsewhere: it must
    neither show the memory again nor write it back on close, and must lose none of its own."""
    from memo_shell.index import lifecycle

    monkeypatch.setattr(lifecycle, "SAVE_AFTER_CHANGES", 20)
    with memo_shell.open(data_dir) as app:
        memory_id = _seed_marker(app)
        app.add_many(
            records.make_memory(user=f"late filler {i} about the garden") for i in range(30)
        )
        assert app.recall(MARKER)[0].memory.id == memory_id
        _forget_in_another_process(data_dir, memory_id, "--yes")
        assert _files_containing(data_dir, MARKER) == []
        assert [h.memory.id for h in app.recall(MARKER)] == []
    assert _files_containing(data_dir, MARKER) == []
    with memo_shell.open(data_dir) as memories:
        assert len(memories.recall("garden filler", k=60)) == 50


def test_forget_all_leaves_no_memory_text_anywhere(data_dir: Path) -> None:
    """Records, the index (snapshot, change log), cached vectors, the quarantine (a damaged
    file holding memory text), a record dragged into another date folder and a sync tool's
    half-copied record all go; only empty lock files stay."""
    markers = [f"wipemark{i}q" for i in range(5)]
    with memo_shell.open(data_dir, embedder=HashEmbedder()) as memories:
        ids = [memories.add(f"about {m}", f"noted {m}", session=m, tags=[m]) for m in markers]
        memories.recall(markers[0])
        memories.index.wait_embedded(10)
        memories.reindex()
    damaged = Store(data_dir).path_for("01J00000000000000000000001")
    _mkdirs_private(damaged.parent)
    damaged.write_bytes(b"MEMO torn record mentioning " + markers[0].encode())
    with memo_shell.open(data_dir) as memories:
        memories.wait_ready()  # the damaged file is quarantined, text and all
    assert _files_containing(data_dir, markers[0]) != []
    record = Store(data_dir).path_for(ids[1])
    elsewhere = data_dir / "memories" / "2020" / "01" / "01"
    _mkdirs_private(elsewhere)
    os.rename(record, elsewhere / record.name)
    (record.parent / f".syncthing.{ids[2]}.memo.tmp").write_bytes(
        Store(data_dir).path_for(ids[2]).read_bytes()[:-5]
    )
    _forget_in_another_process(data_dir, "--all", "--yes")
    for marker in markers:
        assert _files_containing(data_dir, marker) == [], marker
    leftovers = [p for p in data_dir.rglob("*") if p.is_file()]
    assert all(p.stat().st_size == 0 for p in leftovers), leftovers


def test_an_open_app_does_not_write_forgotten_memories_back(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TUI is open (with unsaved index changes) while ``mem forget --all`` runs in another
    terminal; when the TUI closes, nothing of the forgotten memories may reappear on disk."""
    from memo_shell.index import lifecycle

    monkeypatch.setattr(lifecycle, "SAVE_AFTER_CHANGES", 20)  # close() saves past this many changes
    with memo_shell.open(data_dir) as app:
        app.wait_ready()
        app.add_many(records.make_memory(user=f"stalemark{i}q diary entry") for i in range(40))
        _forget_in_another_process(data_dir, "--all", "--yes")
        assert _files_containing(data_dir, "stalemark") == []
    assert _files_containing(data_dir, "stalemark") == []
