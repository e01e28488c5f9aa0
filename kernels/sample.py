"""Samplers over id ranges, all by inversion of one PRF uniform per entity.

Inversion keeps one draw per entity and draw index, so the number of PRF values consumed is
known in advance (the RNG audit counts them) and a block can be computed alone.
"""
import math

import numpy as np

from ._jit import njit
from .prf import prf_unit

CODE_DTYPE = np.int16  # category codes; vocabularies come from config


@njit
def normalised_cdf(weights):
    """Row-wise cumulative distribution of non-negative weights (2-D, one row per law).

    The last entry of each row is exactly 1.0, so a uniform in ``[0, 1)`` always finds a
    category, and a zero-weight category is never chosen. Every row needs a positive sum
    (config checks make every mix sum to 1).
    """
    n_rows, n_cats = weights.shape
    cdf = np.empty((n_rows, n_cats), dtype=np.float64)
    for r in range(n_rows):
        acc = 0.0
        for j in range(n_cats):
            acc += weights[r, j]
            cdf[r, j] = acc
        for j in range(n_cats):
            cdf[r, j] = cdf[r, j] / acc
        cdf[r, n_cats - 1] = 1.0
    return cdf


@njit
def invert_cdf(cdf, row, u):
    n_cats = cdf.shape[1]
    for j in range(n_cats):
        if u < cdf[row, j]:
            return j
    return n_cats - 1


@njit
def categorical_range(key, id_start, draw_index, cdf, rows):
    """Category codes for ids ``id_start .. id_start + len(rows) - 1``.

    ``cdf`` is a 2-D table of laws (see ``normalised_cdf``); entity ``i`` draws from law
    ``rows[i]``.
    """
    n = rows.shape[0]
    out = np.empty(n, dtype=CODE_DTYPE)
    k = np.uint64(key)
    d = np.uint64(draw_index)
    base = np.uint64(id_start)
    for i in range(n):
        u = prf_unit(k, base + np.uint64(i), d)
        out[i] = invert_cdf(cdf, rows[i], u)
    return out


@njit
def exponential_ids(key, entity_ids, draw_index):
    """Exp(1) draws ``-log1p(-u)`` for an explicit array of entity ids.

    ``math.log1p`` here is the platform libm's, called per element; NumPy's ``np.log1p``
    may dispatch to CPU-specific SIMD code whose last bit differs between machines.
    """
    n = entity_ids.shape[0]
    out = np.empty(n, dtype=np.float64)
    k = np.uint64(key)
    d = np.uint64(draw_index)
    for i in range(n):
        out[i] = -math.log1p(-prf_unit(k, np.uint64(entity_ids[i]), d))
    return out


@njit
def poisson_inverse(lam, u):
    """Smallest k with ``P(X <= k) > u`` for ``X ~ Poisson(lam)``, ``0 <= lam <= 700``."""
    if lam <= 0.0:
        return 0
    return poisson_walk(lam, math.exp(-lam), u)


@njit
def poisson_walk(lam, p0, u):
    """``poisson_inverse`` given ``p0 = exp(-lam)``, ``lam > 0`` (a mean shared by many draws
    needs one exp)."""
    p = p0
    cdf = p
    k = 0
    # Past the mode the terms shrink; stop when they vanish in double precision so a
    # u rounding to just below 1 cannot loop for ever.
    while u >= cdf:
        k += 1
        p *= lam / k
        cdf += p
        if p < 1e-300 and k > lam:
            break
    return k


@njit
def poisson_range(key, id_start, draw_index, lam):
    """Poisson counts with per-entity means ``lam`` for ids ``id_start ..``.

    Runs of equal means (a constant, or entities laid out by the cell that sets the mean)
    share one ``exp(-lam)``: the same values as ``poisson_inverse`` of each.
    """
    n = lam.shape[0]
    out = np.empty(n, dtype=np.int64)
    k = np.uint64(key)
    d = np.uint64(draw_index)
    base = np.uint64(id_start)
    last, p0 = 0.0, 1.0
    for i in range(n):
        if lam[i] <= 0.0:
            out[i] = 0
            continue
        if lam[i] != last:
            last, p0 = lam[i], math.exp(-lam[i])
        out[i] = poisson_walk(lam[i], p0, prf_unit(k, base + np.uint64(i), d))
    return out


@njit
def geometric_inverse(p, u):
    """Failures before the first success, ``P(X = k) = (1 - p)**k p``, ``1e-15 <= p <= 1``.

    Below ``p ~ 4e-18`` the count no longer fits in int64.
    """
    if p >= 1.0:
        return 0
    return np.int64(math.floor(math.log1p(-u) / math.log1p(-p)))


@njit
def geometric_range(key, id_start, draw_index, p):
    """Geometric counts with per-entity success probabilities ``p`` for ids ``id_start ..``."""
    n = p.shape[0]
    out = np.empty(n, dtype=np.int64)
    k = np.uint64(key)
    d = np.uint64(draw_index)
    base = np.uint64(id_start)
    for i in range(n):
        out[i] = geometric_inverse(p[i], prf_unit(k, base + np.uint64(i), d))
    return out


@njit
def bounded_pareto_inverse(alpha, low, high, u):
    """Integer quantile ``floor(x)`` of a Pareto law of index ``alpha`` truncated to ``[low, high]``.

    ``x = low * (1 - u * (1 - (low / high)**alpha))**(-1 / alpha)`` is the inverse CDF of
    the continuous bounded Pareto; its floor lies in ``[low, high]`` for ``u`` in ``[0, 1)``.
    The tail is heavy but ends at ``high`` by construction, not by clipping a draw.
    """
    if high <= low:
        return np.int64(low)
    scale = 1.0 - math.pow(low / high, alpha)
    x = low * math.pow(1.0 - u * scale, -1.0 / alpha)
    return min(np.int64(math.floor(x)), np.int64(high))


@njit
def capped_poisson_counts(key, id_start, row_type, row_cell, excess, floor, cap):
    """A count matrix of floors plus Poisson excess, capped: ``(counts, clipped)``.

    Row ``r`` (entity ``id_start + r``) of type ``t = row_type[r]`` in cell
    ``c = row_cell[r]`` gets in column ``j`` ``min(floor[t, j] + X, cap[t, j])`` (int16),
    ``X ~ Poisson(excess[t, j, c])`` drawn as ``poisson_range`` draws it (draw index
    ``j``); ``clipped[j]`` sums what the caps removed. Each mean's ``exp`` is taken once.
    """
    n, n_cols = row_type.shape[0], floor.shape[1]
    n_types, n_cells = excess.shape[0], excess.shape[2]
    p0 = np.empty(excess.shape, dtype=np.float64)
    for t in range(n_types):
        for j in range(n_cols):
            for c in range(n_cells):
                p0[t, j, c] = math.exp(-excess[t, j, c])
    counts = np.zeros((n, n_cols), dtype=np.int16)
    clipped = np.zeros(n_cols, dtype=np.int64)
    k = np.uint64(key)
    base = np.uint64(id_start)
    for r in range(n):
        t, c = row_type[r], row_cell[r]
        for j in range(n_cols):
            lam = excess[t, j, c]
            wanted = floor[t, j]
            if lam > 0.0:
                wanted += poisson_walk(lam, p0[t, j, c], prf_unit(k, base + np.uint64(r),
                                                                   np.uint64(j)))
            kept = min(wanted, cap[t, j])
            counts[r, j] = kept
            clipped[j] += wanted - kept
    return counts, clipped
