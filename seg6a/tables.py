"""Arrow output of states: datasets as tables split into canonical-block parts."""
from dataclasses import dataclass

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Dataset:
    """One published dataset of a state.

    Attributes
    ----------
    name : str
        The seed's dataset name, e.g. ``s1_party_base_6A``.
    state : str
        The producing state, e.g. ``S1``.
    table : pyarrow.Table
        All rows, in canonical id order.
    block_offsets : numpy.ndarray
        Row offsets of the canonical blocks: block ``b`` is rows
        ``block_offsets[b]:block_offsets[b+1]`` and is published as ``part-<b>.parquet``.
    parameter_hash : str
        The producing state's cumulative parameter hash (its partition in the path).
    """

    name: str
    state: str
    table: pa.Table
    block_offsets: np.ndarray
    parameter_hash: str

    @classmethod
    def from_parts(cls, name, state, parts, parameter_hash):
        """A dataset from its canonical blocks' tables, in block order (one chunk each)."""
        lengths = [part.num_rows for part in parts]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(name, state, pa.concat_tables(parts), offsets, parameter_hash)

    def parts(self):
        """Yield ``(block, table_slice)`` for every canonical block."""
        for block in range(len(self.block_offsets) - 1):
            start, stop = int(self.block_offsets[block]), int(self.block_offsets[block + 1])
            yield block, self.table.slice(start, stop - start)


def dictionary_column(codes, vocabulary):
    """An Arrow dictionary column from integer codes and their (config) vocabulary.

    Every part of a dataset carries the full vocabulary, so parts concatenate and readers
    see the same categories whatever the block.
    """
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(codes)), pa.array(list(vocabulary), type=pa.string())
    )


def block_offsets_for(n_rows, block_size):
    """Offsets of consecutive fixed-size blocks over ``n_rows`` ids (at least one block)."""
    n_blocks = max(1, -(-n_rows // block_size))
    offsets = np.minimum(np.arange(n_blocks + 1, dtype=np.int64) * block_size, n_rows)
    return offsets
