"""Reading and analysing many record files in worker processes (a large ``reindex`` or build).

A build of a million memories spends nine tenths of its time reading files and analysing each
memory (``memo_shell.index.analysis``), both independent of every other memory. Worker
processes do that in chunks; the caller applies the results in scan order, so the index is the
one an inline build makes, bit for bit.

Workers only *read*: they have no side effects on the store. A file a worker could not read or
decode as the record its name promises (damaged, foreign, too large, gone, unreadable) comes
back as ``None``, and the caller reads that id again through its own path, which quarantines,
reports or skips it exactly as an inline build does.

Workers are fresh interpreters (``python -m memo_shell.index.build``) talking pickles over
their stdin and stdout, not ``multiprocessing``: a plain fork would copy the index's threads'
locks in whatever state they were, and ``spawn``/``forkserver`` re-run the caller's main
module in every worker (a script without a ``__main__`` guard would start builds recursively).
They are killed when the build ends, however it ends (an exception, Ctrl-C, a close); one that
dies early makes the caller finish the build inline.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from memo_shell import records
from memo_shell.disk import Disk
from memo_shell.index import filewatch
from memo_shell.index.analysis import Analysis, analyse
from memo_shell.records import Memory

#: Builds of fewer files stay in one process: starting workers costs about a second.
POOL_THRESHOLD = 20_000
#: More workers than this gain little: the caller applies every result, in one thread.
MAX_WORKERS = 4
#: Files per task: large enough to amortise a round trip, small enough to keep all busy.
CHUNK = 500
#: Tasks in flight per worker: bounds the results waiting in memory when the caller lags.
AHEAD = 3

#: One file's outcome: its analysis and signature, or None (read it again the usual way).
Result = tuple[Analysis, filewatch.Signature | None] | None


def worker_count() -> int:
    """Workers for this machine: the CPUs this process may run on, at most ``MAX_WORKERS``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def analyse_chunk(memories: Sequence[Memory]) -> list[Analysis]:
    """Analyse memories the caller has in hand (an import's batch); the worker's other task."""
    return [analyse(memory) for memory in memories]


def read_chunk(pairs: Sequence[tuple[str, str]]) -> list[Result]:
    """Read and analyse the record at each (id, path); the worker's task."""
    disk = Disk()
    out: list[Result] = []
    for memory_id, path in pairs:
        # the signature before the read, as the inline build takes it: a file changed in
        # between is read again at the next rescan, never missed
        sig = filewatch.signature(path)
        try:
            memory = records.decode(disk.read(Path(path), records.MAX_FILE_BYTES))
        except Exception:  # the caller's own read reports it (and quarantines what is bad)
            out.append(None)
            continue
        out.append((analyse(memory), sig) if memory.id == memory_id else None)
    return out


class WorkerFailed(RuntimeError):
    """A worker exited or answered garbage: the caller finishes the build inline."""


class Ticket:
    """A batch handed to ``Workers.submit``: which worker answers each chunk, and how many."""

    __slots__ = ("chunks", "workers")

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.chunks: list[tuple[int, int]] = []


class Workers:
    """``n`` worker processes, each fed by a thread (so the caller only ever blocks reading)."""

    def __init__(self, n: int) -> None:
        self._turn = 0  # the worker the next submitted chunk goes to
        self._outstanding: collections.deque[Ticket] = collections.deque()
        env = dict(os.environ)
        # the workers import the same memo_shell as this process (a checkout, a venv)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._queues: list[queue.SimpleQueue[bytes | None]] = []
        self._feeders: list[threading.Thread] = []
        try:
            for _ in range(n):
                proc = subprocess.Popen(
                    [sys.executable, "-m", __name__],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    env=env,
                )
                self._procs.append(proc)
                tasks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
                self._queues.append(tasks)
                feeder = threading.Thread(
                    target=_feed, args=(proc, tasks), name="memo-build-feed", daemon=True
                )
                feeder.start()
                self._feeders.append(feeder)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, pairs: Sequence[tuple[str, str]]) -> Iterator[list[Result]]:
        """``read_chunk`` of each chunk of ``pairs``, in order (see ``run``)."""
        return self.run("read", pairs, CHUNK)

    def analyse(self, memories: Sequence[Memory]) -> list[Analysis]:
        """``analyse`` of each memory, in order, shared out evenly between the workers."""
        return self.collect(self.submit(memories))

    def submit(self, memories: Sequence[Memory]) -> Ticket:
        """Start analysing ``memories``; ``collect`` the ticket for the results. Tickets are
        answered in the order they were submitted; one never collected is skipped over."""
        n = len(self._procs)
        size = -(-len(memories) // n)
        ticket = Ticket(self)
        for i in range(0, len(memories), size):
            chunk = memories[i : i + size]
            w = self._turn % n
            self._turn += 1
            self._queues[w].put(_frame(("analyse", chunk)))
            ticket.chunks.append((w, len(chunk)))
        self._outstanding.append(ticket)
        return ticket

    def collect(self, ticket: Ticket) -> list[Analysis]:
        """The results of a ticket, in order (WorkerFailed if they can no longer come)."""
        if ticket.workers is not self or ticket not in self._outstanding:
            raise WorkerFailed("these workers no longer hold that batch")
        while self._outstanding:
            earlier = self._outstanding.popleft()
            out: list[Analysis] = []
            for w, n in earlier.chunks:
                results = self._receive(w)
                if len(results) != n:
                    raise WorkerFailed("an index worker answered for other items")
                out.extend(results)
            if earlier is ticket:
                return out
        raise WorkerFailed("lost track of a batch")  # not reached: the ticket was queued

    def run(self, job: str, items: Sequence[Any], size: int) -> Iterator[list[Any]]:
        """Each chunk's results, in order, with at most ``AHEAD`` chunks per worker in flight."""
        n = len(self._procs)
        chunks = [items[i : i + size] for i in range(0, len(items), size)]

        def send(i: int) -> None:  # chunk i goes to worker i % n, and its answer comes from there
            self._queues[i % n].put(_frame((job, chunks[i])))

        sent = min(len(chunks), n * AHEAD)
        for i in range(sent):
            send(i)
        for i in range(len(chunks)):
            results = self._receive(i % n)
            if len(results) != len(chunks[i]):
                raise WorkerFailed("an index worker answered for other items")
            if sent < len(chunks):
                send(sent)
                sent += 1
            yield results

    @property
    def alive(self) -> bool:
        return all(proc.poll() is None for proc in self._procs)

    def _receive(self, w: int) -> list[Any]:
        stdout = self._procs[w].stdout
        assert stdout is not None
        try:
            results = _unframe(stdout.fileno())
        except Exception as exc:  # EOF (it died), or a torn pickle
            raise WorkerFailed(f"an index worker stopped ({exc!r})") from exc
        if not isinstance(results, list):
            raise WorkerFailed("an index worker answered garbage")
        return results

    def close(self) -> None:
        """Stop every worker and wait for it: none outlives the build."""
        self._outstanding.clear()
        for tasks in self._queues:
            tasks.put(None)
        for proc in self._procs:
            with contextlib.suppress(OSError):
                proc.kill()
        for proc in self._procs:
            with contextlib.suppress(Exception):
                proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
        for feeder in self._feeders:
            feeder.join(5.0)


def _feed(proc: subprocess.Popen[bytes], tasks: queue.SimpleQueue[bytes | None]) -> None:
    """Write tasks to one worker's stdin until told to stop (None) or the worker is gone."""
    stdin = proc.stdin
    assert stdin is not None
    while (task := tasks.get()) is not None:
        try:
            _write_all(stdin.fileno(), task)
        except (OSError, ValueError):  # the worker died (or was killed): nothing to feed
            return


#: Each message: this mark, the pickle's length (8 bytes, little-endian), the pickle. Read and
#: written with plain system calls: a torn or shifted stream is noticed, never misread.
_MARK = b"MSB1"


def _frame(obj: object) -> bytes:
    data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
    return _MARK + len(data).to_bytes(8, "little") + data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes:
    parts: list[bytes] = []
    while n:
        part = os.read(fd, min(n, 1 << 20))
        if not part:
            raise EOFError("the other end closed the pipe")
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


def _unframe(fd: int) -> Any:
    head = _read_exactly(fd, 12)
    if head[:4] != _MARK:
        raise ValueError("not a message from memo-shell's index workers")
    return pickle.loads(_read_exactly(fd, int.from_bytes(head[4:], "little")))


_JOBS: dict[str, Callable[[Any], list[Any]]] = {"read": read_chunk, "analyse": analyse_chunk}


def serve() -> None:
    """The worker: read tasks ((job, items), pickled) until EOF, answer each in turn."""
    answers = os.dup(1)
    os.dup2(2, 1)  # nothing else (a print, a C library) may write into the answers
    sys.stdout = sys.stderr
    while True:
        try:
            job, items = _unframe(0)
        except EOFError:
            return
        _write_all(answers, _frame(_JOBS[job](items)))


if __name__ == "__main__":
    serve()
