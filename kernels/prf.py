"""The keyed, counter-based pseudo-random function (PRF) of seg6a.

Every random number of the pipeline is ``prf(key, entity_id, draw_index)``: a pure function
of a 64-bit substream key, the entity's dense id and the index of the draw for that entity.
No generator state exists, so a draw depends only on what it is for, never on the order in
which entities, blocks, threads or workers are processed.

Construction (``PRF_VERSION``): three rounds of the SplitMix64 finaliser ("Mix13" by
D. Stafford), absorbing the entity id and then the draw index through odd Weyl
multipliers::

    x = mix(key + entity_id * W1)
    x = mix(x ^ (draw_index * W2 + key_rotated))
    u64 = mix(x + W3)

Each absorbed word enters through a bijection, so distinct ``(entity_id, draw_index)``
pairs under one key never collide before the last round. Floats take the top 53 bits:
``u = (u64 >> 11) * 2**-53`` lies in ``[0, 1)``.

Keys are derived in Python (``seg6a.rng``) from SHA-256; changing this construction
changes every output byte and must change ``PRF_VERSION``.
"""
import numpy as np

from ._jit import njit

PRF_VERSION = "seg6a-prf-v1-splitmix64x3"

_W1 = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio Weyl increment
_W2 = np.uint64(0xD1B54A32D192ED03)
_W3 = np.uint64(0x8CB92BA72F3D8DD7)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ROT = np.uint64(29)
_ROT_BACK = np.uint64(35)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit
def mix64(z):
    """SplitMix64 finaliser of a uint64 (a bijection with full avalanche)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit
def prf_u64(key, entity_id, draw_index):
    """One uint64 for ``(key, entity_id, draw_index)``; all three are uint64 scalars."""
    rotated = (key << _ROT) | (key >> _ROT_BACK)
    x = mix64(key + entity_id * _W1)
    x = mix64(x ^ (draw_index * _W2 + rotated))
    return mix64(x + _W3)


@njit
def prf_unit(key, entity_id, draw_index):
    """One float64 in ``[0, 1)`` for ``(key, entity_id, draw_index)``."""
    return np.float64(prf_u64(key, entity_id, draw_index) >> _S11) * _TO_UNIT


@njit
def u64_range(key, id_start, count, draw_index):
    """uint64 draws for entity ids ``id_start .. id_start + count - 1``."""
    out = np.empty(count, dtype=np.uint64)
    k = np.uint64(key)
    d = np.uint64(draw_index)
    base = np.uint64(id_start)
    for i in range(count):
        out[i] = prf_u64(k, base + np.uint64(i), d)
    return out


@njit
def uniform_range(key, id_start, count, draw_index):
    """float64 draws in ``[0, 1)`` for entity ids ``id_start .. id_start + count - 1``."""
    out = np.empty(count, dtype=np.float64)
    k = np.uint64(key)
    d = np.uint64(draw_index)
    base = np.uint64(id_start)
    for i in range(count):
        out[i] = prf_unit(k, base + np.uint64(i), d)
    return out


@njit
def uniform_ids(key, entity_ids, draw_index):
    """float64 draws in ``[0, 1)`` for an explicit array of entity ids."""
    n = entity_ids.shape[0]
    out = np.empty(n, dtype=np.float64)
    k = np.uint64(key)
    d = np.uint64(draw_index)
    for i in range(n):
        out[i] = prf_unit(k, np.uint64(entity_ids[i]), d)
    return out
