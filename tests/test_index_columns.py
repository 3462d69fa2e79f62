"""The catalog's id and preview columns and the mapped snapshot: same answers as plain Python
containers, through any sequence of adds, forgets, re-adds, snapshots and vacuums."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import memo_shell
from memo_shell import records
from memo_shell.index import files
from memo_shell.index.catalog import gather_texts
from memo_shell.index.data import IndexData
from memo_shell.paths import index_dir

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TEXTS = ["Caroline went to Lisbon", "café ☕ with Jon", "naïve résumé", "x" * 300, "", "日本語"]


def _memory(i: int, rng: random.Random) -> records.Memory:
    return records.make_memory(
        user=f"{rng.choice(TEXTS)} {i}",
        assistant="noted",
        session=f"s{rng.randrange(3)}",
        # not in id order: imports of old memories land after newer ones
        at=T0 + timedelta(minutes=rng.randrange(10_000)),
    )


def _check(data: IndexData, model: dict[str, records.Memory]) -> None:
    cat = data.catalog
    assert len(cat) == len(model)
    assert set(cat.doc_of) == set(model)
    for memory_id, memory in model.items():
        doc = cat.doc_of[memory_id]
        assert cat.ids[doc] == memory_id
        assert cat.meta(memory_id) is not None
        assert cat.previews[doc] == cat.meta(memory_id).preview  # type: ignore[union-attr]
        assert cat.previews[doc].startswith(" ".join(memory.user.split())[:100])
    live = {cat.ids[d] for d in range(cat.rows)} - {None}
    assert live == set(model)
    assert "01JD3M8Q6W5T2Z0K8X9YV4RB7C" not in cat.doc_of  # a valid id never added
    # the catch-up's comparison with the files: some gone from disk, one new there
    on_disk = [i for n, i in enumerate(sorted(model)) if n % 3] + ["01JD3M8Q6W5T2Z0K8X9YV4RB7C"]
    missing, gone = cat.diff_ids(on_disk)
    assert missing == [i for i in on_disk if i not in model]
    assert gone == sorted(set(model) - set(on_disk))
    assert cat.doc_of.get("not an id") is None and 42 not in cat.doc_of


ops = st.lists(
    st.tuples(st.sampled_from(["add", "add", "forget", "readd", "save", "vacuum"]), st.integers()),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(ops, st.integers(0, 2**16))
def test_columns_answer_like_a_dict_through_any_history(
    history: list[tuple[str, int]], seed: int
) -> None:
    rng = random.Random(seed)
    data = IndexData()
    model: dict[str, records.Memory] = {}
    made = 0
    for op, pick in history:
        if op == "add":
            memory = _memory(made, rng)
            made += 1
            data.add(memory)
            model[memory.id] = memory
        elif op in ("forget", "readd") and model:
            memory = model[sorted(model)[pick % len(model)]]
            data.remove(memory.id)
            del model[memory.id]
            if op == "readd":  # an edit is a remove and an add under the same id
                data.add(memory)
                model[memory.id] = memory
        elif op == "save":
            header, arrays = data.to_parts()
            data = IndexData.from_parts(header, arrays)
        elif op == "vacuum":
            data.vacuum()
        _check(data, model)


def test_a_forgotten_rows_id_and_preview_are_not_in_the_parts() -> None:
    rng = random.Random(3)
    data = IndexData()
    memories = [_memory(i, rng) for i in range(30)]
    for memory in memories:
        data.add(memory)
    header, arrays = data.to_parts()
    data = IndexData.from_parts(header, arrays)  # the forgotten one is in the base columns
    gone = memories[7]
    data.remove(gone.id)
    data.add(_memory(99, rng))  # and one added since
    _header, arrays = data.to_parts()  # not vacuumed: the row is still there, emptied
    everything = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays.values())
    assert gone.id.encode() not in everything
    assert f"{gone.user}".encode() not in everything


def test_gather_texts_keeps_or_drops_rows() -> None:
    texts = [b"ab", b"", b"cde", b"f", b"gh"]
    ptr = np.zeros(len(texts) + 1, np.int64)
    np.cumsum([len(t) for t in texts], out=ptr[1:])
    blob = np.frombuffer(b"".join(texts), np.uint8)
    keep = np.array([True, False, False, True, True])
    p, b = gather_texts(ptr, blob, keep)
    assert [b[p[i] : p[i + 1]].tobytes() for i in range(5)] == [b"ab", b"", b"", b"f", b"gh"]
    p, b = gather_texts(ptr, blob, keep, drop=True)
    assert [b[p[i] : p[i + 1]].tobytes() for i in range(3)] == [b"ab", b"f", b"gh"]
    p, b = gather_texts(ptr, blob, np.zeros(5, bool), drop=True)
    assert p.tolist() == [0] and len(b) == 0


@pytest.fixture
def mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every snapshot memory-mapped, however small."""
    monkeypatch.setattr(files, "MAP_BYTES", 0)


def test_a_mapped_snapshot_recalls_as_a_read_one(tmp_path: Path, mapped: None) -> None:
    data_dir = tmp_path / "data"
    with memo_shell.open(data_dir) as mem:
        ids = [
            mem.add(f"note {i} about Lisbon and pottery", session=f"s{i % 4}") for i in range(40)
        ]
        mem.reindex()
        expected = [h.memory.id for h in mem.recall("pottery Lisbon note 7")]
    _header, arrays = files.read_snapshot(index_dir(data_dir) / "snapshot")
    assert not arrays["lex.b_docs"].flags.writeable  # views of the mapping, not copies
    assert arrays.bounds["lex.b_docs"] == (0, 39)
    with memo_shell.open(data_dir) as mem:
        assert [h.memory.id for h in mem.recall("pottery Lisbon note 7")] == expected
        mem.forget(ids[7])  # changes on top of mapped (read-only) arrays
        mem.add("one more about pottery")
        assert ids[7] not in [h.memory.id for h in mem.recall("pottery Lisbon note 7")]
    with memo_shell.open(data_dir) as mem:
        assert mem.count() == 40
        assert ids[7] not in [h.memory.id for h in mem.recall("note 7")]


def test_scattered_reads_of_a_mapped_snapshot_use_pread_and_read_the_same(
    tmp_path: Path, mapped: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One memory's forward list and one preview are read with pread (a mapped page would map
    a whole page-cache folio), and give exactly what the mapping holds."""
    from memo_shell.index import postings

    monkeypatch.setattr(postings, "_PREAD_ABOVE", 0)
    data_dir = tmp_path / "data"
    with memo_shell.open(data_dir) as mem:
        for i in range(30):
            mem.add(f"Note {i} about Lisbon, pottery and café ☕ #{i}", session=f"s{i % 3}")
        mem.reindex()
    header, arrays = files.read_snapshot(index_dir(data_dir) / "snapshot")
    data = IndexData.from_parts(header["data"], arrays)
    source = arrays.source
    assert source is not None and data.lexical._source is source
    reads: list[tuple[int, int]] = []
    real_pread = files.os.pread

    def pread(fd: int, n: int, offset: int) -> bytes:
        reads.append((n, offset))
        return real_pread(fd, n, offset)

    monkeypatch.setattr(files.os, "pread", pread)
    inv = data.lexical
    for doc in range(data.n_docs):
        keys, weights = inv.forward(doc)
        lo, hi = int(inv._f_ptr[doc]), int(inv._f_ptr[doc + 1])
        assert keys.tolist() == inv._f_keys[lo:hi].tolist()
        assert weights.tolist() == inv._f_w[lo:hi].tolist()
        previews = data.catalog.previews
        lo, hi = int(previews.ptr[doc]), int(previews.ptr[doc + 1])
        assert previews[doc] == previews.blob[lo:hi].tobytes().decode()
    _rows, keys, weights = inv.forward_rows(np.arange(data.n_docs))
    assert keys.tolist() == inv._f_keys.tolist() and weights.tolist() == inv._f_w.tolist()
    assert reads  # the reads went through pread
    # arrays of another snapshot (or none) are sliced, not read from this file
    other = np.arange(10, dtype=np.int32)
    assert source.slice(other, 2, 5).tolist() == [2, 3, 4]


def test_snapshot_arrays_are_aligned_and_checked(tmp_path: Path, mapped: None) -> None:
    path = tmp_path / "snap"
    arrays = {
        "a": np.arange(5, dtype=np.int8),
        "b": np.arange(7, dtype=np.int64) - 3,
        "c": np.ones((2, 3), np.float32),
        "d": np.zeros(0, np.int32),
    }
    files.write_snapshot(path, {"x": "y" * 77}, arrays)
    meta, read = files.read_snapshot(path)
    assert meta == {"x": "y" * 77}
    for name, array in arrays.items():
        assert np.array_equal(read[name], array)
        assert read[name].ctypes.data % files.ALIGN == 0 or not read[name].nbytes
    assert read.bounds == {"a": (0, 4), "b": (-3, 3)}
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(files.SnapshotError, match="checksum"):
        files.read_snapshot(path)


@pytest.mark.parametrize("cut", [10, 30, 200])
def test_a_truncated_snapshot_is_refused(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "snap"
    files.write_snapshot(path, {"k": 1}, {"a": np.arange(100, dtype=np.int64)})
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(files.SnapshotError):
        files.read_snapshot(path)


def _resealed(head: dict, blob: bytes) -> bytes:  # type: ignore[type-arg]
    """A snapshot file around any header and body, with a valid checksum."""
    import struct
    import zlib

    import msgpack

    packed = msgpack.packb(head, use_bin_type=True)
    body = packed + blob
    return (
        struct.pack(
            ">8sHII", files.SNAPSHOT_MAGIC, files.SNAPSHOT_VERSION, len(packed), zlib.crc32(body)
        )
        + body
    )


layouts = st.dictionaries(
    st.sampled_from(["lex.b_docs", "cat.ids", "cat.created", "x"]),
    st.tuples(
        st.sampled_from(["<i4", "<f8", "|S26", "|O", "<U3", "bogus", "|b1"]),
        st.lists(st.integers(-2, 40), max_size=2),
        st.integers(-10, 300),
        st.integers(-10, 300),
    ).map(list),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(layouts, st.binary(max_size=300), st.booleans())
def test_a_hostile_snapshot_with_a_valid_checksum_fails_cleanly(
    layout: dict,
    blob: bytes,
    map_it: bool,  # type: ignore[type-arg]
) -> None:
    """Whatever a sealed snapshot claims, reading and loading it raises only what the loader
    turns into a rebuild (never a crash, a hang, or an object array)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snap"
        path.write_bytes(_resealed({"meta": {"catalog": {}}, "arrays": layout}, blob))
        old = files.MAP_BYTES
        files.MAP_BYTES = 0 if map_it else old
        try:
            header, arrays = files.read_snapshot(path)
            assert all(not a.dtype.hasobject for a in arrays.values())
            IndexData.from_parts(header, arrays)
        except (files.SnapshotError, ValueError, KeyError, TypeError, IndexError):
            pass
        finally:
            files.MAP_BYTES = old


_REAL = IndexData()
for _i, _m in enumerate(_memory(i, random.Random(i)) for i in range(12)):
    _REAL.add(_m)
_HEADER, _ARRAYS = _REAL.to_parts()


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(sorted(_ARRAYS)),
    st.sampled_from(["<i4", "<i8", "<f4", "<f8", "|S26", "|u1", "|b1"]),
    st.lists(st.integers(-(2**31), 2**31 - 1), max_size=30),
)
def test_a_snapshot_with_any_array_replaced_loads_or_is_rebuilt(
    name: str, dtype: str, values: list[int]
) -> None:
    """One array of a real snapshot swapped for arbitrary values, under a valid checksum: the
    load either refuses it (and the index is rebuilt from the files) or gives a catalog whose
    lookups work."""
    import tempfile

    arrays = dict(_ARRAYS)
    arrays[name] = np.array(values).astype(np.dtype(dtype))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "snap"
        files.write_snapshot(path, _HEADER, arrays)
        header, read = files.read_snapshot(path)
        try:
            data = IndexData.from_parts(header, read)
        except (ValueError, KeyError, TypeError, IndexError):
            return
        cat = data.catalog
        for doc in range(cat.rows):
            memory_id = cat.ids[doc]
            if memory_id is not None and cat.alive[doc]:
                cat.doc_of.get(memory_id)
            assert isinstance(cat.previews[doc], str)
        list(cat.doc_of)


_IDS = [records.id_from_parts(1_700_000_000_000 + i * 7_919, i) for i in range(12)]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["set", "pop", "setdefault", "save"]),
            st.sampled_from(_IDS),
            st.integers(0, 3),
        ),
        max_size=40,
    )
)
def test_the_signature_table_answers_like_a_dict(history: list[tuple[str, str, int]]) -> None:
    """Signatures (a saved table plus changes) through sets, pops, saves and loads."""
    import tempfile

    from memo_shell.index import signatures

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        table: signatures.Signatures = signatures.load(directory)  # none saved yet
        model: dict[str, tuple[int, int]] = {}
        for op, memory_id, value in history:
            sig = (10**18 + value, value)
            if op == "set":
                table[memory_id] = model[memory_id] = sig
            elif op == "pop":
                assert table.pop(memory_id, None) == model.pop(memory_id, None)
            elif op == "setdefault":
                assert table.setdefault(memory_id, sig) == model.setdefault(memory_id, sig)
            else:  # what persistence does: the table of the live memories, then a fresh load
                live = np.array(sorted(_IDS[::2]), dtype="S26")
                signatures.save(directory, *table.for_ids(live))
                table = signatures.load(directory)
                model = {i: s for i, s in model.items() if i.encode() in set(live.tolist())}
            assert dict(table) == model
            assert all(table.get(i) == model.get(i) for i in _IDS)
            assert len(table) == len(model)


@given(st.lists(st.integers(0, 253_402_300_799_999), max_size=70_000 // 1000))
def test_id_days_is_the_day_an_id_is_filed_under(millis: list[int]) -> None:
    from memo_shell.index.catalog import id_days

    ids = [records.id_from_parts(ms, ms % 977) for ms in millis]
    column = np.array([i.encode() for i in ids], dtype="S26")
    assert id_days(column).tolist() == [records.id_milliseconds(i) // 86_400_000 for i in ids]
