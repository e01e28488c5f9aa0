"""Arrow output of states: datasets as tables split into canonical-block parts."""
from functools import cached_property

import numpy as np
import pyarrow as pa

from .engine import LOCAL


class Dataset:
    """One published dataset of a state, one part per canonical block.

    The parts stay where the engine built them (handles, see ``seg6a.engine``); ``table``
    joins them on first use.

    Attributes
    ----------
    name : str
        The seed's dataset name, e.g. ``s1_party_base_6A``.
    state : str
        The producing state, e.g. ``S1``.
    block_offsets : numpy.ndarray
        Row offsets of the canonical blocks: block ``b`` is rows
        ``block_offsets[b]:block_offsets[b+1]`` and is published as ``part-<b>.parquet``.
    parameter_hash : str
        The producing state's cumulative parameter hash (its partition in the path).
    part_handles : list
        Per block, the handle of its part (a ``pyarrow.Table``).
    engine : seg6a.engine.LocalEngine or DaskEngine
        Where the parts are.
    """

    def __init__(self, name, state, part_handles, part_rows, parameter_hash, engine=LOCAL):
        self.name = name
        self.state = state
        self.part_handles = list(part_handles)
        self.block_offsets = np.concatenate([[0], np.cumsum(part_rows)]).astype(np.int64)
        self.parameter_hash = parameter_hash
        self.engine = engine

    @classmethod
    def from_parts(cls, name, state, parts, parameter_hash):
        """A dataset from its canonical blocks' tables here, in block order."""
        return cls(name, state, parts, [part.num_rows for part in parts], parameter_hash)

    @property
    def num_rows(self):
        return int(self.block_offsets[-1])

    @cached_property
    def table(self):
        """All rows, in canonical id order (one chunk per block)."""
        return pa.concat_tables(self.engine.gather(self.part_handles))

    def parts(self):
        """Yield ``(block, table)`` for every canonical block."""
        yield from enumerate(self.engine.gather(self.part_handles))


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
