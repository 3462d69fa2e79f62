"""The records ``Memories`` read lately, each used only while its file is unchanged.

A file's signature is (inode, mtime ns, size). Every rewrite is a new file renamed into place,
so another process's pin, tag or forget (or a sync tool's replacement) changes it: one ``stat``
tells whether a cached record is still what the file says.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from memo_shell.records import Memory

#: What a record file looked like when it was read: (inode, mtime ns, size).
Signature = tuple[int, int, int]


def signature(path: Path) -> Signature | None:
    """The file's signature, or None if it is gone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class ReadCache:
    """At most ``size`` records by id, with the signature of the file each was read from;
    the oldest put is dropped first. Thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[Memory, Signature]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, memory_id: str, current: Signature) -> Memory | None:
        """The cached record if its file still has the ``current`` signature, else None."""
        with self._lock:
            cached = self._entries.get(memory_id)
        if cached is not None and cached[1] == current:
            return cached[0]
        return None

    def put(self, memory: Memory, read_from: Signature) -> None:
        with self._lock:
            self._entries[memory.id] = (memory, read_from)
            self._entries.move_to_end(memory.id)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def evict(self, memory_id: str) -> None:
        with self._lock:
            self._entries.pop(memory_id, None)

    def reset_after_fork(self) -> None:
        """In a forked child: a lock a parent thread held stays held forever; replace it."""
        self._lock = threading.Lock()
