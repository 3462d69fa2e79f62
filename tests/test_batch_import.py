"""Import's store side: a batch's records take their names without ever replacing a file
(renameat2 RENAME_NOREPLACE, or link + unlink where that is refused), and the pipelined import
(the store writes batch N+1 while the index takes batch N) keeps exactly the batches that
completed, leaves no debris and no thread, whatever stops it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from crashfs import det_memory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memo_shell
from memo_shell import api, disk
from memo_shell.disk import Disk
from memo_shell.errors import StoreError
from memo_shell.records import Memory, encode, make_memory
from memo_shell.store import TEMP_SUFFIX, Store

DAY = datetime(2024, 3, 1, 9, tzinfo=UTC)


class FallbackDisk(Disk):
    """A disk whose kernel or file system refuses RENAME_NOREPLACE: link + unlink instead."""

    def rename_noreplace(self, src: object, dst: object) -> bool:  # type: ignore[override]
        return False


DISKS = {"renameat2": Disk, "link+unlink": FallbackDisk}


def files(root: Path) -> dict[str, bytes]:
    """Every file under the memories tree, by name (temp files included)."""
    return {p.name: p.read_bytes() for p in (root / "memories").rglob("*") if p.is_file()}


def temps(root: Path) -> list[Path]:
    return [p for p in (root / "memories").rglob(f"*{TEMP_SUFFIX}")]


# ----------------------------------------------------------------- the disk's move


@pytest.mark.parametrize("kind", DISKS)
def test_rename_new_refuses_a_taken_name_and_keeps_both_files(tmp_path: Path, kind: str) -> None:
    src, dst = tmp_path / "temp", tmp_path / "record"
    src.write_bytes(b"new")
    dst.write_bytes(b"acknowledged")

    with pytest.raises(FileExistsError):
        DISKS[kind]().rename_new(src, dst)

    assert dst.read_bytes() == b"acknowledged"
    assert src.read_bytes() == b"new"  # the caller discards its temp file itself
    DISKS[kind]().rename_new(src, tmp_path / "free")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["free", "record"]


def test_a_refused_renameat2_falls_back_to_link_and_unlink_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EINVAL (a file system without the flag) or ENOSYS (an old kernel): link + unlink, and
    the refusal is remembered, so every later record does not pay for asking again."""
    asked = 0

    def refusing(*_args: object) -> int:
        nonlocal asked
        asked += 1
        ctypes.set_errno(errno.EINVAL)
        return -1

    monkeypatch.setattr(disk, "_renameat2", lambda: refusing)
    d = Disk()
    for name in ("a", "b"):
        (tmp_path / f".{name}.tmp").write_bytes(name.encode())
        d.rename_new(tmp_path / f".{name}.tmp", tmp_path / name)
    (tmp_path / ".c.tmp").write_bytes(b"c")
    with pytest.raises(FileExistsError):
        d.rename_new(tmp_path / ".c.tmp", tmp_path / "a")

    assert asked == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".c.tmp", "a", "b"]
    assert (tmp_path / "a").read_bytes() == b"a"


def test_another_renameat2_error_is_raised_not_papered_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(*_args: object) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(disk, "_renameat2", lambda: failing)
    (tmp_path / "src").write_bytes(b"x")
    with pytest.raises(OSError) as info:
        Disk().rename_new(tmp_path / "src", tmp_path / "dst")
    assert info.value.errno == errno.EIO
    assert not (tmp_path / "dst").exists()


# ----------------------------------------------------------------- batches never replace


def _memories(seed: int, count: int) -> list[Memory]:
    rng = random.Random(seed)
    return [det_memory(rng, DAY + timedelta(hours=rng.randrange(24 * 40))) for _ in range(count)]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from(sorted(DISKS)),
    seed=st.integers(0, 2**16),
    stored=st.integers(0, 6),
    picks=st.lists(st.integers(0, 11), min_size=1, max_size=24),
)
def test_a_batch_never_replaces_a_file_and_writes_each_new_id_once(
    kind: str, seed: int, stored: int, picks: list[int]
) -> None:
    """Batches with repeated ids and ids already stored (as different records): every stored
    file keeps its bytes, each new id is written once (its first line), nothing else is left."""
    pool = _memories(seed, 12)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Store(root, DISKS[kind]())
        # what is stored under the first ids: other versions, so a replacement would show
        before = [m.with_changes(assistant=f"stored {i}") for i, m in enumerate(pool[:stored])]
        store.write_batch(before)
        on_disk = files(root)
        batch = [pool[i] for i in picks]

        written = store.write_batch(batch)

        new = list(dict.fromkeys(m.id for m in batch if m not in pool[:stored]))
        new = [i for i in new if i not in {m.id for m in before}]
        assert written == new
        after = files(root)
        assert {k: after[k] for k in on_disk} == on_disk
        first = {m.id: m for m in reversed(batch)}
        assert after == on_disk | {f"{i}.memo": encode(first[i]) for i in new}


@pytest.mark.parametrize("kind", DISKS)
def test_a_record_made_meanwhile_by_another_process_is_kept(tmp_path: Path, kind: str) -> None:
    """The folder listing said the name was free; between it and the move another process
    made the file: the move refuses, the other file stays, the id is not reported written."""
    batch = _memories(7, 3)
    theirs = batch[1].with_changes(assistant="written by another process")
    root = tmp_path / "data"

    class Racing(DISKS[kind]):  # type: ignore[misc, valid-type]
        def sync_filesystem(self, path: Path) -> None:
            other = Store(root)
            if not other.path_for(theirs.id).exists():
                other.write(theirs)
            super().sync_filesystem(path)

    written = Store(root, Racing()).write_batch(batch)

    assert written == [batch[0].id, batch[2].id]
    assert Store(root).read(theirs.id) == theirs
    assert not temps(root)


# ----------------------------------------------------------------- the pipelined import


def _lines(count: int) -> list[Memory]:
    return [
        make_memory(user=f"line {i} about the pottery class", session="s") for i in range(count)
    ]


def _import_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("memo-shell-import")]


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(api, "BATCH_SIZE", 4)
    return 4


def test_the_next_batch_is_written_while_the_index_takes_this_one(
    tmp_path: Path, small_batches: int
) -> None:
    lines = _lines(3 * small_batches)
    with memo_shell.open(tmp_path / "data", preload=False) as mem:
        second_written = threading.Event()
        real_write, real_index = mem.store.write_batch, mem.index.add_many
        overlapped: list[bool] = []

        def write(batch: list[Memory]) -> list[str]:
            ids = real_write(batch)
            if batch[0].id == lines[small_batches].id:
                second_written.set()
            return ids

        def index(batch: list[Memory]) -> None:
            if batch and batch[0].id == lines[0].id:  # the first batch waits for the second
                overlapped.append(second_written.wait(10))
            real_index(batch)

        mem.store.write_batch = write  # type: ignore[method-assign]
        mem.index.add_many = index  # type: ignore[method-assign]
        assert mem.add_many(lines) == [m.id for m in lines]
        assert overlapped == [True]
        assert sorted(mem.ids()) == sorted(m.id for m in lines)
    assert not _import_threads()


@pytest.mark.parametrize("stage", ["write", "index", "input", "interrupt-index", "interrupt-write"])
def test_an_import_stopped_midway_keeps_exactly_the_completed_batches(
    tmp_path: Path, small_batches: int, stage: str
) -> None:
    """Batches 1 and 2 complete; what stops the import is in batch 3 (or, for the index, batch
    2, whose files stay as they always did; the batch written ahead of it is withdrawn)."""
    n = small_batches
    lines = _lines(5 * n)
    batch = [lines[i : i + n] for i in range(0, len(lines), n)]
    root = tmp_path / "data"
    added: list[str] = []
    error: type[BaseException] = StoreError
    with memo_shell.open(root, preload=False) as mem:
        real_write, real_index = mem.store.write_batch, mem.index.add_many

        def write(memories: list[Memory]) -> list[str]:
            if memories[0].id == batch[2][0].id:
                if stage == "write":
                    raise StoreError("saving the imported memories failed: the disk is full")
                if stage == "interrupt-write":
                    raise KeyboardInterrupt
            return real_write(memories)

        def index(memories: list[Memory]) -> None:
            if memories and memories[0].id == batch[1][0].id:
                if stage == "index":
                    raise RuntimeError("the index broke")
                if stage == "interrupt-index":
                    raise KeyboardInterrupt
            real_index(memories)

        def source() -> Iterator[Memory]:
            for i, memory in enumerate(lines):
                if stage == "input" and i == 2 * n + 1:
                    raise ValueError("line 10 is not JSON")
                yield memory

        mem.store.write_batch = write  # type: ignore[method-assign]
        mem.index.add_many = index  # type: ignore[method-assign]
        error = {
            "index": RuntimeError,
            "input": ValueError,
            "interrupt-index": KeyboardInterrupt,
            "interrupt-write": KeyboardInterrupt,
        }.get(stage, StoreError)
        with pytest.raises(error):
            mem.add_many(source(), added=added)
        assert not _import_threads()

    acknowledged = batch[0] if stage in ("index", "interrupt-index") else batch[0] + batch[1]
    on_disk = batch[0] + batch[1]  # an index failure keeps its batch's files, as ever
    assert added == [m.id for m in acknowledged]
    assert sorted(files(root)) == sorted(f"{m.id}.memo" for m in on_disk)
    with memo_shell.open(root) as again:
        assert sorted(again.ids()) == sorted(m.id for m in on_disk)


def test_a_full_disk_midway_through_a_real_import_keeps_the_batches_before_it(
    tmp_path: Path, small_batches: int
) -> None:
    """The real store on a disk that fills up at the third batch's first file."""
    lines = _lines(5 * small_batches)
    creates = 0

    class FillingDisk(Disk):
        def open_new(self, path: str | os.PathLike[str]) -> int:
            nonlocal creates
            creates += 1
            if creates == 2 * small_batches + 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return super().open_new(path)

    root = tmp_path / "data"
    added: list[str] = []
    mem = memo_shell.Memories(root, disk=FillingDisk(), preload=False)
    with mem, pytest.raises(StoreError, match="disk is full"):
        mem.add_many(lines, added=added)
    assert added == [m.id for m in lines[: 2 * small_batches]]
    assert sorted(files(root)) == sorted(f"{i}.memo" for i in added)
    assert not _import_threads()
