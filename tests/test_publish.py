"""Publish is atomic and idempotent; run ids are safe folder names (SPEC section 7)."""
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seg6a.errors import InputError, ParameterError, PublishConflictError
from seg6a.runs import store
from seg6a.runs.layout import check_run_id
from seg6a.runs.publish import parquet_bytes, publish_bytes
from seg6a.tables import decode_part, dictionary_column, encode_part, part_columns

OLD_NS = 1_000_000_000 * 1_000_000_000  # 2001-09-09, far from "now"


def _leftovers(folder, keep):
    """Every entry of ``folder`` except the published names in ``keep``."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_publish_writes_new_file_and_creates_parents(tmp_path):
    path = tmp_path / "a" / "b" / "data.bin"
    assert publish_bytes(path, b"hello") is True
    assert path.read_bytes() == b"hello"
    assert _leftovers(path.parent, {"data.bin"}) == []


def test_published_file_gets_the_mode_open_would_give(tmp_path):
    path = tmp_path / "data.bin"
    publish_bytes(path, b"hello")
    (tmp_path / "plain.bin").write_bytes(b"hello")  # open() honours the umask
    assert path.stat().st_mode & 0o777 == (tmp_path / "plain.bin").stat().st_mode & 0o777


def test_publish_same_bytes_is_a_noop(tmp_path):
    path = tmp_path / "data.bin"
    assert publish_bytes(path, b"payload") is True
    # Push the mtime into the past so that any rewrite would be visible.
    os.utime(path, ns=(OLD_NS, OLD_NS))
    inode = path.stat().st_ino
    assert publish_bytes(path, b"payload") is False
    stat = path.stat()
    assert stat.st_mtime_ns == OLD_NS
    assert stat.st_ino == inode
    assert path.read_bytes() == b"payload"
    assert _leftovers(tmp_path, {"data.bin"}) == []


@pytest.mark.parametrize("other", [b"payloaX", b"payload and more", b""])
def test_publish_different_bytes_raises_and_keeps_original(tmp_path, other):
    path = tmp_path / "data.bin"
    publish_bytes(path, b"payload")
    os.utime(path, ns=(OLD_NS, OLD_NS))
    with pytest.raises(PublishConflictError) as info:
        publish_bytes(path, other)
    assert str(path) in str(info.value)
    assert info.value.file == path
    # A conflict is bad input for the CLI (exit 2).
    assert isinstance(info.value, InputError)
    assert path.read_bytes() == b"payload"
    assert path.stat().st_mtime_ns == OLD_NS
    assert _leftovers(tmp_path, {"data.bin"}) == []


def test_failed_replace_leaves_no_temporary_and_no_published_name(tmp_path, monkeypatch):
    """A crash between write and rename never leaves a file under the published name."""
    def broken_replace(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(store.os, "replace", broken_replace)
    path = tmp_path / "data.bin"
    with pytest.raises(OSError, match="simulated crash"):
        publish_bytes(path, b"payload")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def _party_like_table(n=5000, seed=3):
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "party_id": pa.array(np.arange(n, dtype=np.int64)),
            "party_type": dictionary_column(
                rng.integers(0, 3, n).astype(np.int16), ("RETAIL", "BUSINESS", "OTHER")
            ),
            "segment_id": dictionary_column(
                rng.integers(0, 4, n).astype(np.int16), ("S0", "S1", "S2", "S3")
            ),
            "score": pa.array(rng.random(n)),
        }
    )


def test_parquet_bytes_is_deterministic():
    table = _party_like_table()
    first = parquet_bytes(table)
    assert parquet_bytes(table) == first
    # An equal table built separately serialises to the same bytes.
    assert parquet_bytes(_party_like_table()) == first
    assert parquet_bytes(_party_like_table(seed=4)) != first


def test_parquet_bytes_keeps_dictionary_columns(tmp_path):
    table = _party_like_table()
    path = tmp_path / "part-00000.parquet"
    publish_bytes(path, parquet_bytes(table))
    back = pq.read_table(path)
    assert pa.types.is_dictionary(back.schema.field("party_type").type)
    assert pa.types.is_dictionary(back.schema.field("segment_id").type)
    assert back.schema.field("party_id").type == pa.int64()
    assert back.schema.field("score").type == pa.float64()
    assert back.column("party_type").to_pylist() == table.column("party_type").to_pylist()
    assert back.column("party_id").to_pylist() == table.column("party_id").to_pylist()
    assert back.equals(table)


def test_parquet_bytes_dictionary_encodes_category_columns_only(tmp_path):
    """High-cardinality integer columns are written plain (SPEC section 8)."""
    table = _party_like_table()
    path = tmp_path / "part.parquet"
    path.write_bytes(parquet_bytes(table))
    row_group = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {
        row_group.column(i).path_in_schema: set(row_group.column(i).encodings)
        for i in range(row_group.num_columns)
    }
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert encodings["party_type"] & dictionary
    assert encodings["segment_id"] & dictionary
    assert not encodings["party_id"] & dictionary
    assert not encodings["score"] & dictionary


@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-2**40, 2**40)),
                          st.one_of(st.none(), st.integers(0, 2)),
                          st.one_of(st.none(), st.floats(allow_nan=False, width=32)),
                          st.one_of(st.none(), st.booleans())), max_size=50),
       st.lists(st.sampled_from(["ids", "code", "logit", "flag"]), unique=True))
def test_a_part_reads_back_as_its_table_and_its_footer_tells_types_and_nulls(rows, columns):
    ids, code, logit, flag = zip(*rows) if rows else ([], [], [], [])
    table = pa.table({
        "ids": pa.array(ids, pa.int64()),
        "code": pa.DictionaryArray.from_arrays(pa.array(code, pa.int16()),
                                               pa.array(["A", "B", "C"])),
        "logit": pa.array(logit, pa.float32()),
        "flag": pa.array(flag, pa.bool_()),
    })
    data = parquet_bytes(table)
    assert decode_part(data).equals(table)
    assert decode_part(data, columns + ["absent"]).equals(table.select(columns))
    # read from the footer, without decoding a column
    assert part_columns(data) == part_columns(table) == {
        f.name: (f.type, table.column(f.name).null_count) for f in table.schema}
    # as published: the same columns, declared never null
    columns = dict(zip(table.column_names, table.columns))
    if any(column.null_count for column in table.columns):
        with pytest.raises(pa.ArrowInvalid, match="non-nullable but contains nulls"):
            encode_part(columns)
    else:
        published = decode_part(encode_part(columns))
        assert not any(field.nullable for field in published.schema)
        assert published.cast(table.schema).equals(table)
        assert part_columns(encode_part(columns)) == part_columns(table)


def test_category_columns_carry_statistics_only_where_their_codes_are_in_order():
    vocabulary = ["A", "B", "C"]
    data = encode_part({"in_order": dictionary_column([0, 0, 2], vocabulary),
                        "mixed": dictionary_column([2, 0, 1], vocabulary),
                        "ids": pa.array([3, 1, 2])})
    row_group = pq.ParquetFile(pa.BufferReader(data)).metadata.row_group(0)
    statistics = {row_group.column(i).path_in_schema: row_group.column(i).statistics
                  for i in range(row_group.num_columns)}
    assert (statistics["in_order"].min, statistics["in_order"].max) == ("A", "C")
    assert statistics["mixed"] is None
    assert (statistics["ids"].min, statistics["ids"].max) == (1, 3)
    assert part_columns(data) == {"in_order": (pa.dictionary(pa.int64(), pa.string()), 0),
                                  "mixed": (pa.dictionary(pa.int64(), pa.string()), 0),
                                  "ids": (pa.int64(), 0)}


@pytest.mark.parametrize(
    "run_id", ["r1", "run-42", "2024-01-01_baseline.v2", "A", "a" * 128, "0abc"]
)
def test_check_run_id_accepts_normal_ids(run_id):
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize(
    "run_id",
    ["", "../x", "a/b", ".hidden", "a..b", "..", ".", "a\\b", "/abs", " x", "x y",
     "a" * 129, "-x", "a\nb", None, 5],
)
def test_check_run_id_rejects_unsafe_ids(run_id):
    with pytest.raises(ParameterError) as info:
        check_run_id(run_id)
    assert repr(run_id) in str(info.value)


def test_check_run_id_rejects_trailing_newline():
    with pytest.raises(ParameterError):
        check_run_id("ab\n")
