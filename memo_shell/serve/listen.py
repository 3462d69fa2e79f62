"""Listening sockets and uvicorn, shared by ``memo-shell serve`` and ``memo-shell mcp --http``.

We bind the socket ourselves and hand it to uvicorn: ``--port 0`` then gets a free port we
can announce (tests and scripts read it from stderr), and a port already in use is reported
as one sentence before any server machinery starts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import signal
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from memo_shell.errors import MemoShellError

if TYPE_CHECKING:
    from starlette.types import ASGIApp

#: Host names that always mean this machine (a name could otherwise resolve anywhere).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class ListenError(MemoShellError):
    """The address cannot be used (not allowed, malformed, or in use)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the loopback names; never for 0.0.0.0 or a LAN address."""
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: the OS picks a free one)."""
    address = host.strip().strip("[]")
    if address.lower() in LOOPBACK_NAMES:
        address = "127.0.0.1"
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name: let the resolver decide below
    try:
        sock = socket.create_server((address, port), family=family, backlog=128)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket, path: str = "") -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Run ``app`` on ``sock`` until SIGINT/SIGTERM, then shut down gracefully and return."""
    import uvicorn
    from uvicorn.server import HANDLED_SIGNALS

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises the signal once it has shut down, which would end the process
            # before the caller's cleanup (closing the memory store) and exit non-zero: a
            # Ctrl-C or a service manager's SIGTERM is the normal way to stop a server.
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        # Slow clients must not hold the proxy: headers must arrive within this many seconds.
        timeout_keep_alive=5,
    )
    Server(config).run(sockets=[sock])
