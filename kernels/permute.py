"""Keyed bijections of ``[0, n)``: a balanced Feistel network with cycle walking.

``feistel_index(key, n, x)`` is a pseudo-random permutation of ``[0, n)`` for any ``n >= 1``,
evaluated pointwise: nothing of size ``n`` is stored, so a block can map its own indices
without the rest of the domain. The network works on the smallest even bit width ``2h``
with ``4**h >= n`` (at least 2 bits); four rounds with the PRF as round function
(Luby-Rackoff) permute ``[0, 4**h)``, and cycle walking (apply again while the value lies
outside ``[0, n)``) restricts it to ``[0, n)``. Because ``4**h < 4n``, the expected number
of walks is below 4. Changing this construction changes outputs and ``PRF_VERSION``.
"""
import numpy as np

from ._jit import njit
from .prf import prf_u64

FEISTEL_ROUNDS = 4


@njit
def half_width(n):
    """Bits ``h`` of each Feistel half: the smallest ``h >= 1`` with ``4**h >= n``."""
    h = 1
    while (np.int64(1) << (2 * h)) < n:
        h += 1
    return h


@njit
def _feistel(key, h, x):
    mask = (np.uint64(1) << np.uint64(h)) - np.uint64(1)
    left = np.uint64(x) >> np.uint64(h)
    right = np.uint64(x) & mask
    for r in range(FEISTEL_ROUNDS):
        left, right = right, left ^ (prf_u64(key, right, np.uint64(r)) & mask)
    return np.int64((left << np.uint64(h)) | right)


@njit
def round_table(key, n):
    """The round function of the permutation of ``[0, n)`` keyed by ``key``, tabulated:
    ``table[r, right] = prf_u64(key, right, r) & mask`` for every round ``r`` and half
    ``right`` in ``[0, 2**h)``. A permutation evaluated at many points (a whole group)
    reads it instead of calling the PRF four times a walk: the same values, the same
    images (``feistel_at``), for ``4 * 2**h <= 8 * sqrt(n)`` PRF calls."""
    h = half_width(n)
    size = np.int64(1) << h
    mask = np.uint64(size - 1)
    table = np.empty((FEISTEL_ROUNDS, size), dtype=np.uint64)
    for r in range(FEISTEL_ROUNDS):
        for right in range(size):
            table[r, right] = prf_u64(key, np.uint64(right), np.uint64(r)) & mask
    return table


@njit
def _feistel_tabled(table, h, x):
    mask = np.uint64(table.shape[1] - 1)
    left = np.uint64(x) >> np.uint64(h)
    right = np.uint64(x) & mask
    for r in range(FEISTEL_ROUNDS):
        left, right = right, left ^ table[r, right]
    return np.int64((left << np.uint64(h)) | right)


@njit
def feistel_at(table, n, x):
    """``feistel_index(key, n, x)`` from ``round_table(key, n)``."""
    h = half_width(n)
    y = _feistel_tabled(table, h, x)
    while y >= n:
        y = _feistel_tabled(table, h, y)
    return y


@njit
def feistel_index(key, n, x):
    """The image of ``x`` in ``[0, n)`` under the permutation keyed by ``key`` (uint64)."""
    h = half_width(n)
    y = _feistel(key, h, x)
    while y >= n:
        y = _feistel(key, h, y)
    return y


@njit
def permutation(key, n):
    """The whole permutation: ``out[x] = feistel_index(key, n, x)`` for ``x`` in ``[0, n)``."""
    out = np.empty(n, dtype=np.int64)
    table = round_table(np.uint64(key), n)
    for x in range(n):
        out[x] = feistel_at(table, n, x)
    return out
