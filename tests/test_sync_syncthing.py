"""Two real Syncthing peers on loopback share one memo-shell data dir (issue 18's proof).

Each test starts two fresh peers (discovery, relays, NAT off; REST on free 127.0.0.1 ports; no
file versioning), keeps memo-shell open on both devices the whole time (as the app would be),
makes both sides change things, with the devices disconnected where the scenario needs them
apart (``/rest/system/pause``), lets Syncthing settle, and then checks, on both devices:

- both hold the same memories, record for record;
- no forgotten text in any file: data dirs, memo-shell's per-device dirs, Syncthing's homes;
- no conflict copies remain after the next memo-shell command;
- each device's live recall (the process that stayed open) equals a ``reindex``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import syncthing_peers as sp
from memory_workload import differences, fingerprint

import memo_shell
from memo_shell.conflicts import conflict_original
from memo_shell.paths import device_dir
from memo_shell.store import Store

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        sp.BINARY is None, reason="syncthing is not installed (apt install syncthing)"
    ),
]

WORDS = [
    "harbour",
    "violin",
    "pepper",
    "lantern",
    "orchid",
    "glacier",
    "walnut",
    "comet",
    "saffron",
    "quartz",
]


class Device:
    """One peer and the memo-shell process open on it."""

    def __init__(self, peer: sp.Peer) -> None:
        self.peer = peer
        self.data_dir = peer.data_dir
        self.live = memo_shell.open(peer.data_dir)
        self.live.recall("warm up")
        self.live.recall("warm up")  # a process that searches again watches the folders
        assert self.live.index._watcher is not None and self.live.index._watcher.started.wait(10)

    def command(self) -> None:
        """The next memo-shell command on this device (a one-off open, as `mem list` does)."""
        with memo_shell.open(self.data_dir) as memories:
            memories.wait_ready()

    def records(self) -> dict[str, object]:
        store = Store(self.data_dir)
        return {i: store.read(i) for i in store.iter_ids()}


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[tuple[Device, Device]]:
    peers = sp.make_peers(tmp_path)
    started: list[sp.Peer] = []
    opened: list[Device] = []
    try:
        for peer in peers:
            sp.start(peer)
            started.append(peer)
        sp.wait_connected(peers)
        opened = [Device(p) for p in peers]
        yield opened[0], opened[1]
    finally:
        for device in opened:
            device.live.close()
        for peer in started:
            sp.stop(peer)


def _apart(a: Device, b: Device) -> None:
    a.peer.pause(b.peer)
    b.peer.pause(a.peer)
    deadline = time.monotonic() + 30
    while a.peer.connected(b.peer) or b.peer.connected(a.peer):
        assert time.monotonic() < deadline, "peers did not disconnect"
        time.sleep(0.1)


def _together(a: Device, b: Device) -> None:
    a.peer.resume(b.peer)
    b.peer.resume(a.peer)
    sp.wait_connected([a.peer, b.peer])


def _seed(device: Device, n: int, tag: str) -> dict[str, str]:
    """n memories, each with a unique word; returns id -> that word."""
    out = {}
    for i in range(n):
        word = f"{tag}{i}zq"
        out[device.live.add(f"{word} {random.choice(WORDS)} note {i}", f"reply about {word}")] = (
            word
        )
    return out


def _conflicts(device: Device) -> list[str]:
    return [
        str(p.relative_to(device.data_dir))
        for p in device.data_dir.rglob("*")
        if p.is_file() and conflict_original(p.name) is not None
    ]


def _files_containing(roots: list[Path], needle: str) -> list[str]:
    wanted = needle.lower().encode()
    return [
        str(path)
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and wanted in path.read_bytes().lower()
    ]


def _until(condition, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def _converge(a: Device, b: Device, *, forgotten: list[str], words: list[str]) -> None:
    """Settle, run the next command on each device until nothing changes, and check it all."""
    peers = [a.peer, b.peer]
    sp.settle(peers)
    for device in (a, b):
        device.command()
    sp.settle(peers)
    assert _conflicts(a) == [] and _conflicts(b) == []
    records = a.records()
    assert records == b.records(), "the devices hold different memories"
    roots = [a.data_dir, b.data_dir, device_dir(a.data_dir), device_dir(b.data_dir)]
    roots += [a.peer.home, b.peer.home]
    for device in (a, b):  # the open processes scrub their indexes soon after forgetting
        assert _until(
            lambda d=device: all(  # type: ignore[misc]
                not _files_containing([device_dir(d.data_dir)], w) for w in forgotten
            )
        )
    for word in forgotten:
        assert _files_containing(roots, word) == [], f"forgotten {word!r} is still on disk"
    queries = [*words, *forgotten, *WORDS[:4]]
    for device in (a, b):
        with memo_shell.open(device.data_dir) as fresh:
            fresh.reindex()
            reference = fingerprint(fresh, queries)
        assert {i for hits in reference.values() for i, _s in hits} <= set(records)
        assert _until(
            lambda d=device, r=reference: differences(fingerprint(d.live, queries), r) == []
        ), differences(fingerprint(device.live, queries), reference)


def test_adds_on_both_sides_at_once(devices: tuple[Device, Device]) -> None:
    a, b = devices
    added: dict[str, dict[str, str]] = {}

    def add(device: Device, tag: str) -> None:
        added[tag] = _seed(device, 15, tag)

    threads = [threading.Thread(target=add, args=(d, t)) for d, t in ((a, "alpha"), (b, "beta"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    words = [*added["alpha"].values(), *added["beta"].values()]
    _converge(a, b, forgotten=[], words=words)
    assert len(a.records()) == 30
    hits = a.live.recall(added["beta"][sorted(added["beta"])[3]])
    assert hits and hits[0].memory.id == sorted(added["beta"])[3]


def test_forget_wins_over_a_concurrent_edit(devices: tuple[Device, Device]) -> None:
    a, b = devices
    seeded = _seed(a, 5, "fve")
    sp.settle([a.peer, b.peer])
    ids = sorted(seeded)
    _apart(a, b)
    a.live.forget(ids[0])
    a.live.forget(ids[1])
    b.live.pin(ids[0])  # B has not heard of the forget: it edits the memory
    b.live.set_tags(ids[1], ["kept-on-b"])
    b.peer.scan()
    a.peer.scan()
    _together(a, b)
    _converge(a, b, forgotten=[seeded[ids[0]], seeded[ids[1]]], words=list(seeded.values()))
    assert sorted(a.records()) == ids[2:]
    assert b.live.index.ids(pinned=True) == []


def test_edit_vs_edit_merges_both_sides(devices: tuple[Device, Device]) -> None:
    a, b = devices
    seeded = _seed(a, 4, "eve")
    sp.settle([a.peer, b.peer])
    ids = sorted(seeded)
    _apart(a, b)
    a.live.pin(ids[0])
    b.live.set_tags(ids[0], ["from-b"])
    a.live.set_tags(ids[1], ["from-a"])
    b.live.set_tags(ids[1], ["from-b"])
    a.peer.scan()
    b.peer.scan()
    _together(a, b)
    _converge(a, b, forgotten=[], words=list(seeded.values()))
    merged = a.records()
    assert merged[ids[0]].pinned and merged[ids[0]].tags == ("from-b",)  # type: ignore[attr-defined]
    assert set(merged[ids[1]].tags) == {"from-a", "from-b"}  # type: ignore[attr-defined]
    for device in (a, b):
        assert _until(lambda d=device: d.live.index.ids(pinned=True) == [ids[0]])  # type: ignore[misc]
    assert not (device_dir(a.data_dir) / "quarantine").exists()


def test_forget_all_reaches_the_other_device(devices: tuple[Device, Device], run_cli) -> None:  # type: ignore[no-untyped-def]
    a, b = devices
    seeded = {**_seed(a, 6, "alla"), **_seed(b, 6, "allb")}
    sp.settle([a.peer, b.peer])
    result = run_cli("mem", "forget", "--all", "--yes", data=a.data_dir)
    assert result.exit_code == 0, result.stderr
    _converge(a, b, forgotten=list(seeded.values()), words=[])
    assert a.records() == {} and b.live.ids() == []
    assert _until(lambda: b.live.index.ids() == [])


def test_a_device_offline_for_a_day_comes_back(devices: tuple[Device, Device]) -> None:
    a, b = devices
    seeded = _seed(a, 8, "day")
    sp.settle([a.peer, b.peer])
    ids = sorted(seeded)
    _apart(a, b)
    # a day apart: each device goes on with its life
    new_a = _seed(a, 5, "ona")
    new_b = _seed(b, 5, "onb")
    a.live.forget(ids[0])
    a.live.forget(ids[1])
    a.live.pin(ids[2])
    b.live.pin(ids[1])  # forgotten on A meanwhile
    b.live.set_tags(ids[2], ["b-day"])
    b.live.forget(ids[3])
    b.live.forget(next(iter(sorted(new_b))))
    a.peer.scan()
    b.peer.scan()
    _together(a, b)
    gone = [seeded[ids[0]], seeded[ids[1]], seeded[ids[3]], new_b[sorted(new_b)[0]]]
    words = [*seeded.values(), *new_a.values(), *new_b.values()]
    _converge(a, b, forgotten=gone, words=[w for w in words if w not in gone])
    records = a.records()
    assert len(records) == 8 - 3 + 5 + 5 - 1
    assert records[ids[2]].pinned and records[ids[2]].tags == ("b-day",)  # type: ignore[attr-defined]
