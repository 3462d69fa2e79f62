"""The app's side of the llama.cpp worker process (:mod:`memo_shell.backends.llama_worker`).

A :class:`Worker` is one child process. Requests go one at a time (llama.cpp contexts are
not thread-safe, and callers serialise on one thread anyway); ``stop`` may be sent from any
thread while a reply streams. When the child dies, reading raises :class:`WorkerCrashed`
with one sentence naming the cause (illegal instruction, segmentation fault, abort, killed)
and the fix; the next request starts a new child.

The child is started in its own session with pipes for all three streams: Ctrl+C in the
terminal reaches only the app (which stops the child itself), and nothing the child or
llama.cpp writes can reach, or garble, the terminal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from memo_shell.backends.llama_worker import read_frame, write_frame
from memo_shell.errors import BackendError

#: Seconds to wait for a child to start (Python, llama_cpp import) before calling it failed.
START_TIMEOUT_S = 60.0
#: Environment variable whose value the worker turns into a simulated crash (tests only).
FAULT_ENV = "MEMO_SHELL_LLAMA_FAULT"
REBUILD_HINT = (
    "rebuild llama-cpp-python without AMX: `make llama-cpp` in a source checkout, or see"
    ' "Installing by hand" in the README'
)


class WorkerCrashed(BackendError):
    """The model process died; the message says why and what to do."""


def crash_sentence(returncode: int | None, model: str, last_log: str = "") -> str:
    """One sentence for a child that exited with ``returncode`` while running ``model``."""
    detail = f" (llama.cpp said: {last_log})" if last_log else ""
    again = "; memo-shell restarts it on the next question"
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGILL:
            return (
                f"the model process running {model} crashed with an illegal instruction"
                f" (SIGILL): this llama.cpp build uses CPU instructions this machine cannot"
                f" run, often Intel AMX; {REBUILD_HINT}"
            )
        if sig == signal.SIGKILL:
            return (
                f"the model process running {model} was killed (SIGKILL), most often because"
                " the computer ran out of memory: close other programs, lower context_size"
                f" or choose a smaller model{again}"
            )
        names: dict[int, str] = {
            signal.SIGSEGV: "a segmentation fault (SIGSEGV)",
            signal.SIGBUS: "a bus error (SIGBUS)",
            signal.SIGABRT: "an abort (SIGABRT)",
            signal.SIGFPE: "an arithmetic error (SIGFPE)",
        }
        name = names.get(sig, f"signal {sig}")
        return (
            f"llama.cpp crashed with {name} while running {model}{detail}: the model file may"
            " be damaged or unsupported by this llama.cpp; try another model or upgrade"
            f" llama-cpp-python{again}"
        )
    status = "" if returncode is None else f" (status {returncode})"
    return f"the model process running {model} stopped unexpectedly{status}{detail}{again}"


def _child_env() -> dict[str, str]:
    """The environment for the child: this very memo_shell importable first, whatever the
    parent's sys.path tricks (benchmarks and tests insert paths at run time)."""
    env = dict(os.environ)
    # llama.cpp's OpenMP threads otherwise spin while idle (between replies, after each
    # token's graph), taking the cores the app needs to draw. Measured on a busy 2-core
    # machine (bench/turn.py): the same first-token time and tokens/s, or better. A user's own
    # setting wins.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


class Worker:
    """One llama.cpp child process (started on construction)."""

    def __init__(self) -> None:
        self._log: deque[str] = deque(maxlen=20)
        self._write_lock = threading.Lock()
        self.loaded: dict[tuple[str, int, bool], bool] = {}  # key -> is a chat model
        self.process = subprocess.Popen(
            [sys.executable, "-m", "memo_shell.backends.llama_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_env(),
            start_new_session=True,
            close_fds=True,
        )
        threading.Thread(target=self._drain_stderr, name="llama-stderr", daemon=True).start()
        timer = threading.Timer(START_TIMEOUT_S, self.kill)
        timer.start()
        try:
            hello = self.recv("llama.cpp")
        finally:
            timer.cancel()
        if not hello.get("ready"):
            self.kill()
            raise BackendError("the llama.cpp worker process did not start")

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def _drain_stderr(self) -> None:
        """Keep the child's last stderr lines (to explain a crash); never let its pipe fill."""
        stream = self.process.stderr
        assert stream is not None
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._log.append(line)

    def send(self, message: dict[str, Any]) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            with self._write_lock:
                write_frame(stdin, message)
        except (BrokenPipeError, OSError, ValueError):
            pass  # the child is gone: the next recv() reports why

    def stop(self, request_id: int) -> None:
        """Ask the child to stop generation ``request_id`` (any thread; harmless if done)."""
        if self.alive:
            self.send({"op": "stop", "id": request_id})

    def recv(self, model: str) -> dict[str, Any]:
        """The next message; WorkerCrashed if the child died (its exit explained)."""
        stdout = self.process.stdout
        assert stdout is not None
        try:
            message = read_frame(stdout)
        except (OSError, ValueError):
            message = None
        if message is None:
            try:
                code = self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
                code = self.process.returncode
            hint = next((line for line in reversed(self._log) if _is_reason(line)), "")
            raise WorkerCrashed(crash_sentence(code, model, hint))
        return message

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.process.kill()

    def close(self) -> None:
        """End the child: closing its stdin asks it to exit; a stuck one is killed."""
        with contextlib.suppress(OSError, ValueError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=2)
        for stream in (self.process.stdout, self.process.stderr):
            with contextlib.suppress(OSError, ValueError):
                if stream is not None:
                    stream.close()


def _is_reason(line: str) -> bool:
    lowered = line.lower()
    return any(word in lowered for word in ("error", "assert", "abort", "failed"))
