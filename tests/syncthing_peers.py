"""Two (or more) real Syncthing peers on loopback, driven through their REST API.

Used by tests/test_sync_syncthing.py and bench/sync.py. Each peer gets its own home (keys made
by ``syncthing generate``), a GUI/REST address and a sync listen address on free 127.0.0.1
ports, an API key, and the memo-shell data dir shared as one folder. Discovery, relays, NAT
traversal, STUN, usage and crash reporting and upgrades are off: nothing leaves loopback.
Versioning is off, so forgotten memories are not kept in ``.stversions``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import httpx

FOLDER = "memo"
BINARY = shutil.which("syncthing")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Peer:
    name: str
    home: Path
    data_dir: Path
    gui_port: int
    listen_port: int
    api_key: str = field(default_factory=lambda: secrets.token_hex(16))
    device_id: str = ""
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gui_port}"

    def api(self, method: str, path: str, **params: str) -> object:
        response = httpx.request(
            method,
            self.url + path,
            params=params,
            headers={"X-API-Key": self.api_key},
            timeout=10.0,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def scan(self) -> None:
        self.api("POST", "/rest/db/scan", folder=FOLDER)

    def status(self) -> dict:  # type: ignore[type-arg]
        return self.api("GET", "/rest/db/status", folder=FOLDER)  # type: ignore[return-value]

    def completion(self, other: Peer) -> dict:  # type: ignore[type-arg]
        return self.api(  # type: ignore[return-value]
            "GET", "/rest/db/completion", folder=FOLDER, device=other.device_id
        )

    def pause(self, other: Peer) -> None:
        self.api("POST", "/rest/system/pause", device=other.device_id)

    def resume(self, other: Peer) -> None:
        self.api("POST", "/rest/system/resume", device=other.device_id)

    def connected(self, other: Peer) -> bool:
        connections = self.api("GET", "/rest/system/connections")["connections"]  # type: ignore[index]
        return bool(connections.get(other.device_id, {}).get("connected"))

    def bytes_sent(self) -> int:
        total = self.api("GET", "/rest/system/connections")["total"]  # type: ignore[index]
        return int(total["outBytesTotal"])


def _config(peer: Peer, others: list[Peer]) -> str:
    devices = [peer, *others]
    device_xml = "\n".join(
        f"""<device id="{d.device_id}" name="{d.name}" compression="metadata">
            <address>{"dynamic" if d is peer else f"tcp://127.0.0.1:{d.listen_port}"}</address>
            <paused>false</paused><autoAcceptFolders>false</autoAcceptFolders>
        </device>"""
        for d in devices
    )
    folder_devices = "".join(f'<device id="{d.device_id}"></device>' for d in devices)
    return f"""<configuration version="36">
    <folder id="{FOLDER}" label="memo-shell" path={quoteattr(str(peer.data_dir))}
            type="sendreceive" rescanIntervalS="5" fsWatcherEnabled="true" fsWatcherDelayS="1"
            ignorePerms="false" autoNormalize="true">
        {folder_devices}
        <versioning></versioning>
        <maxConflicts>10</maxConflicts>
        <markerName>.stfolder</markerName>
    </folder>
    {device_xml}
    <gui enabled="true" tls="false" debugging="false">
        <address>127.0.0.1:{peer.gui_port}</address>
        <apikey>{peer.api_key}</apikey>
        <insecureAdminAccess>false</insecureAdminAccess>
    </gui>
    <options>
        <listenAddress>tcp://127.0.0.1:{peer.listen_port}</listenAddress>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <relaysEnabled>false</relaysEnabled>
        <natEnabled>false</natEnabled>
        <startBrowser>false</startBrowser>
        <urAccepted>-1</urAccepted>
        <urSeen>3</urSeen>
        <crashReportingEnabled>false</crashReportingEnabled>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <stunKeepaliveStartS>0</stunKeepaliveStartS>
        <stunKeepaliveMinS>0</stunKeepaliveMinS>
        <stunServer></stunServer>
        <announceLANAddresses>false</announceLANAddresses>
        <setLowPriority>false</setLowPriority>
        <reconnectionIntervalS>1</reconnectionIntervalS>
        <progressUpdateIntervalS>-1</progressUpdateIntervalS>
    </options>
</configuration>
"""


def _env(peer: Peer) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(peer.home),
        "STNOUPGRADE": "1",
        "STNORESTART": "1",
        "STNODEFAULTFOLDER": "1",
    }


def make_peers(root: Path, names: tuple[str, ...] = ("a", "b")) -> list[Peer]:
    """Generate keys and configs for peers that all share one folder with each other."""
    assert BINARY is not None, "syncthing is not installed"
    peers = []
    for name in names:
        home = root / f"syncthing-{name}"
        data = root / f"data-{name}"
        data.mkdir(parents=True, mode=0o700)
        (data / ".stfolder").mkdir()  # the folder marker: this dir is meant to be shared
        peer = Peer(name, home, data, free_port(), free_port())
        subprocess.run(
            [BINARY, "generate", "--home", str(home), "--no-default-folder"],
            check=True,
            capture_output=True,
            env=_env(peer),
            timeout=60,
        )
        out = subprocess.run(
            [BINARY, "serve", "--home", str(home), "--device-id"],
            check=True,
            capture_output=True,
            env=_env(peer),
            timeout=60,
        )
        peer.device_id = out.stdout.decode().strip()
        peers.append(peer)
    for peer in peers:
        others = [p for p in peers if p is not peer]
        (peer.home / "config.xml").write_text(_config(peer, others), encoding="utf-8")
    return peers


def start(peer: Peer) -> None:
    peer.log = peer.home / "syncthing.log"
    with open(peer.log, "ab") as log:
        peer.process = subprocess.Popen(
            [
                BINARY or "syncthing",
                "serve",
                "--home",
                str(peer.home),
                "--no-browser",
                "--no-restart",
                "--no-upgrade",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(peer),
            start_new_session=True,  # its own process group, killed whole by stop()
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if peer.process.poll() is not None:
            raise RuntimeError(f"syncthing {peer.name} exited: {peer.log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            peer.api("GET", "/rest/system/ping")
            return
        time.sleep(0.1)
    raise TimeoutError(f"syncthing {peer.name} did not start")


def stop(peer: Peer) -> None:
    process, peer.process = peer.process, None
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def tree(data_dir: Path) -> dict[str, str]:
    """Every synced file under a data dir (relative path -> sha256), Syncthing's own excluded."""
    out = {}
    for path in sorted(data_dir.rglob("*")):
        rel = path.relative_to(data_dir)
        if rel.parts[0] in (".stfolder", ".stversions") or not path.is_file():
            continue
        if path.name.startswith((".syncthing.", "~syncthing~")):
            continue
        out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def settle(peers: list[Peer], timeout: float = 60.0) -> float:
    """Scan everywhere and wait until every peer holds the same files and is idle; returns the
    seconds it took. Raises TimeoutError (with both trees' differences) otherwise."""
    started = time.monotonic()
    deadline = started + timeout
    for peer in peers:
        peer.scan()
    stable = 0
    while time.monotonic() < deadline:
        trees = [tree(p.data_dir) for p in peers]
        idle = all((s := p.status())["state"] == "idle" and s["needTotalItems"] == 0 for p in peers)
        complete = all(
            a.completion(b)["completion"] == 100 for a in peers for b in peers if a is not b
        )
        if idle and complete and all(t == trees[0] for t in trees):
            stable += 1
            if stable >= 3:
                return time.monotonic() - started
        else:
            stable = 0
        time.sleep(0.2)
    trees = [tree(p.data_dir) for p in peers]
    only = {p.name: sorted(set(t) - set(trees[0])) for p, t in zip(peers, trees, strict=True)}
    raise TimeoutError(f"peers did not converge in {timeout}s: {only}")


def wait_connected(peers: list[Peer], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(a.connected(b) for a in peers for b in peers if a is not b):
            return
        time.sleep(0.2)
    raise TimeoutError("syncthing peers did not connect")
