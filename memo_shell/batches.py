"""Import in durable batches, the store writing batch N+1 while the index takes batch N.

The two stages are about equal in cost at scale (file creation is system calls, which release
the GIL; indexing is Python), so running them side by side nearly halves an import. The
promises stay those of one batch at a time:

- a batch is acknowledged (its ids added, ``progress`` called) only after its write returned,
  i.e. its files are durable, and after the index took it;
- an error in either stage stops the import and is raised as it was; every batch acknowledged
  before it stays, and so does the batch the index was taking (its files are durable, as they
  were when index and store ran one after the other); the batch written ahead, which nobody was
  told about, is withdrawn (its files removed);
- an error in the input itself (an invalid line, Ctrl-C while reading) first finishes the batch
  already written, as the one-stage import had finished it before reading on;
- the writer thread is gone when this returns or raises.

Part of ``memo_shell.api.Memories`` (``add_many``), kept apart to keep that module small.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Collection, Iterable, Iterator

from memo_shell.records import Memory
from memo_shell.store import Store

#: What the index stage is handed: the memories actually written, in input order.
IndexBatch = Callable[[list[Memory]], None]


def _batches(
    memories: Iterable[Memory], skip: Collection[str], size: int
) -> Iterator[list[Memory]]:
    batch: list[Memory] = []
    for memory in memories:
        if memory.id in skip:
            continue  # forgotten here or on another device: an import does not undo that
        batch.append(memory)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def add_in_batches(
    store: Store,
    index: IndexBatch,
    memories: Iterable[Memory],
    *,
    size: int,
    ids: list[str],
    progress: Callable[[int], None] | None = None,
    present: list[str] | None = None,
) -> list[str]:
    """Write ``memories`` (``size`` a batch) and index what was written; extend ``ids`` with
    each batch's new ids as it is acknowledged, and ``present`` with the ids already stored
    (or repeated in the input). Returns ``ids``."""

    def acknowledge(batch: list[Memory], written_ids: list[str]) -> None:
        written = set(written_ids)
        fresh: list[Memory] = []
        for memory in batch:
            if memory.id in written:
                written.discard(memory.id)  # a second line with the same id is present
                fresh.append(memory)
            elif present is not None:
                present.append(memory.id)
        index(fresh)
        ids.extend(m.id for m in fresh)
        if progress is not None:
            progress(len(batch))

    source = _batches(memories, store.tombstones.ids(), size)
    # the batch being written (or written, not yet acknowledged), and its write
    ahead: tuple[list[Memory], concurrent.futures.Future[list[str]]] | None = None
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="memo-shell-import") as pool:
        try:
            while True:
                try:
                    batch = next(source, None)
                except BaseException:
                    if ahead is not None:  # the input failed: finish what was written first
                        done, write = ahead
                        ahead = None
                        acknowledge(done, write.result())
                    raise
                if batch is None:
                    break
                if ahead is None:
                    ahead = (batch, pool.submit(store.write_batch, batch))
                    continue
                done, write = ahead
                ahead = None
                written = write.result()  # a failed write left nothing: raised as it is
                ahead = (batch, pool.submit(store.write_batch, batch))
                acknowledge(done, written)  # indexed while the next batch is written
            if ahead is not None:
                done, write = ahead
                ahead = None
                acknowledge(done, write.result())
        except BaseException:
            if ahead is not None:
                _withdraw(store, ahead[1])
            raise
    return ids


def _withdraw(store: Store, write: concurrent.futures.Future[list[str]]) -> None:
    """Wait for a write nobody will be told about, and remove what it wrote."""
    try:
        written = write.result()
    except BaseException:
        return  # it failed: a failed batch leaves nothing behind
    store.withdraw_batch(written)
