"""Integer allocation of a total over weighted slots."""
import numpy as np

from ._jit import njit


@njit
def largest_remainder(total, weights, tie_values):
    """Split the integer ``total`` over slots in proportion to ``weights``.

    Each slot gets ``floor(total * w / sum(w))``; the units left over go one each to the
    slots with the largest remainders, ties broken by the larger ``tie_values`` (e.g. a PRF
    value) and then by the smaller index. The result sums to ``total`` exactly. All weights
    zero (or no slots) with ``total > 0`` cannot be allocated: the result is all zeros and
    the caller must check the sum.

    ``total`` must be below 2**52: float64 quotas then sum to at most ``total`` plus a
    rounding error below one unit, so the floors never exceed the total. The weights must
    be finite with a finite sum, and ``tie_values`` float64.
    """
    if total >= 2**52:
        raise ValueError("largest_remainder: total must be below 2**52")
    n = weights.shape[0]
    out = np.zeros(n, dtype=np.int64)
    weight_sum = 0.0
    for i in range(n):
        weight_sum += weights[i]
    if not np.isfinite(weight_sum):
        raise ValueError("largest_remainder: weights must be finite with a finite sum")
    if n == 0 or total <= 0 or weight_sum <= 0.0:
        return out
    remainders = np.empty(n, dtype=np.float64)
    assigned = 0
    for i in range(n):
        quota = total * (weights[i] / weight_sum)
        base = np.int64(np.floor(quota))
        out[i] = base
        remainders[i] = quota - base
        assigned += base
    left = total - assigned
    if left > 0:
        order = _rank(-remainders, -tie_values)
        for r in range(left):
            out[order[r % n]] += 1
    return out


@njit
def _rank(primary, secondary):
    """Indices sorted by (primary, secondary, index), all ascending."""
    # Two stable passes: sort by the minor key, then by the major key.
    by_secondary = np.argsort(secondary, kind="mergesort")
    by_primary = np.argsort(primary[by_secondary], kind="mergesort")
    return by_secondary[by_primary]
