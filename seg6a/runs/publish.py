"""Publish: the only writer of run outputs. Atomic and idempotent.

A file is written under a temporary name in its final folder, flushed and fsynced, then
moved over its published name with ``os.replace`` and the folder is fsynced, so a crash
never leaves a partial file under a published name. Publishing the same bytes again is a
no-op; publishing different bytes to an existing path raises and changes nothing.
"""
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import PublishConflictError

PARQUET_COMPRESSION = "zstd"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_FILE_MODE = 0o666 & ~_umask()


def publish_bytes(path, data, replace=False):
    """Publish ``data`` at ``path``; return True if written, False if already identical.

    With ``replace`` a different existing file is superseded atomically (the evidence of the
    states a ``--from`` rerun recomputes); otherwise it is a conflict.
    """
    path = Path(path)
    if path.exists():
        if _same_bytes(path, data):
            return False
        if not replace:
            raise PublishConflictError(
                "already holds different data; nothing was changed (use a new run id)", file=path
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp creates 0600; a published file gets what open() would give it.
            os.fchmod(handle.fileno(), _FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return True


def replace_bytes(path, data):
    """Atomically write a mutable metadata file (e.g. ``keep_set.json``), whatever it held."""
    return publish_bytes(path, data, replace=True)


def publish_all(files, replace=(), remove=()):
    """Publish ``{path: bytes}`` after checking every path first.

    A conflict at any path raises before anything is written, so a rejected publish
    changes nothing; identical files are skipped; paths in ``replace`` may be superseded;
    paths in ``remove`` (e.g. a ``_passed.flag`` a new verdict withdraws) are deleted after
    everything else is written. Returns the number of files written or removed.
    """
    replace = {Path(p) for p in replace}
    for path, data in files.items():
        path = Path(path)
        if path not in replace and path.exists() and not _same_bytes(path, data):
            raise PublishConflictError(
                "already holds different data; nothing was changed (use a new run id, "
                "--from STATE to rerun states, or `seg6a gates RUN --rejudge` to judge a run "
                "anew)", file=path
            )
    written = sum(publish_bytes(path, data, Path(path) in replace)
                  for path, data in files.items())
    removed = 0
    for path in map(Path, remove):
        if path.exists():
            path.unlink()
            _fsync_dir(path.parent)
            removed += 1
    return written + removed


def parquet_bytes(table):
    """Serialise a table to Parquet bytes: dictionaries for category columns only, delta
    encoding for integer columns, zstd.

    Dictionary encoding of high-cardinality integer columns is the largest write cost
    under pyarrow defaults (SPEC section 8), so only Arrow dictionary columns keep it; ids
    and counts are mostly ascending or small, which DELTA_BINARY_PACKED stores in a few bits
    (measured: 40% less encoding time and 2.7x smaller files than plain + zstd).
    """
    dictionary_columns = [
        field.name for field in table.schema if pa.types.is_dictionary(field.type)
    ]
    delta_columns = {field.name: "DELTA_BINARY_PACKED" for field in table.schema
                     if pa.types.is_integer(field.type)}
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression=PARQUET_COMPRESSION,
        use_dictionary=dictionary_columns,
        column_encoding=delta_columns or None,
        write_statistics=True,
    )
    return sink.getvalue()


def json_bytes(obj):
    """Canonical JSON bytes (sorted keys, two-space indent, trailing newline); NaN refused."""
    return (json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n").encode("utf-8")


def jsonl_bytes(rows):
    """One canonical JSON object per line."""
    return "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode("utf-8")


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _same_bytes(path, data):
    if path.stat().st_size != len(data):
        return False
    return path.read_bytes() == data


def _fsync_dir(folder):
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
