"""Integer allocation of a total over weighted slots."""
import math

import numpy as np

from ._jit import njit
from .permute import feistel_at, round_table
from .prf import prf_u64


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
    out, remainders, left = _floors(total, weights)
    n = out.shape[0]
    if left <= 0:
        return out
    # (Loops, not array expressions: each NumPy array expression in a kernel costs a large
    # share of a second of compile time.)
    if left >= n:  # only with degenerate weights; cycle through the full ranking
        primary = np.empty(n, dtype=np.float64)
        secondary = np.empty(n, dtype=np.float64)
        for i in range(n):
            primary[i] = -remainders[i]
            secondary[i] = -tie_values[i]
        order = rank(primary, secondary)
        for r in range(left):
            out[order[r % n]] += 1
        return out
    # The units go to the `left` largest remainders: those above the left-th largest value,
    # then among the ones equal to it by (tie desc, index asc). Selection is O(n); only
    # the (usually tiny) set of equal remainders is sorted.
    threshold = _select(remainders.copy(), n - left)
    given, n_equal = 0, 0
    for i in range(n):
        if remainders[i] > threshold:
            out[i] += 1
            given += 1
        elif remainders[i] == threshold:
            n_equal += 1
    equal = np.empty(n_equal, dtype=np.int64)
    primary = np.empty(n_equal, dtype=np.float64)
    secondary = np.empty(n_equal, dtype=np.float64)
    e = 0
    for i in range(n):
        if remainders[i] == threshold:
            equal[e] = i
            primary[e] = -tie_values[i]
            secondary[e] = i
            e += 1
    order = rank(primary, secondary)
    for r in range(left - given):
        out[equal[order[r]]] += 1
    return out


@njit
def _floors(total, weights):
    """``(floors, remainders, units left)`` of ``total * w / sum(w)``; checks the inputs."""
    if total >= 2**52:
        raise ValueError("largest_remainder: total must be below 2**52")
    n = weights.shape[0]
    out = np.zeros(n, dtype=np.int64)
    remainders = np.zeros(n, dtype=np.float64)
    weight_sum = 0.0
    for i in range(n):
        weight_sum += weights[i]
    if not math.isfinite(weight_sum):
        raise ValueError("largest_remainder: weights must be finite with a finite sum")
    if n == 0 or total <= 0 or weight_sum <= 0.0:
        return out, remainders, np.int64(0)
    assigned = 0
    for i in range(n):
        quota = total * (weights[i] / weight_sum)
        base = np.int64(math.floor(quota))
        out[i] = base
        remainders[i] = quota - base
        assigned += base
    return out, remainders, total - assigned


@njit
def largest_remainder_law(total, law):
    """``largest_remainder(total, law, zeros)`` for a short law (a mix over a few categories).

    The same result, found by repeated selection in O(len(law)**2) without a sort: the
    per-group kernels that call it compile in a fraction of the time (a sort inlined into
    every kernel that calls it costs seconds of LLVM time each).
    """
    out, remainders, left = _floors(total, law)
    n = out.shape[0]
    if left <= 0:
        return out
    # Slots by (remainder desc, index asc), as many as needed (cycling when left >= n).
    ranked = np.zeros(n, dtype=np.bool_)
    order = np.empty(min(left, n), dtype=np.int64)
    for r in range(order.shape[0]):
        best = -1
        for i in range(n):
            if not ranked[i] and (best < 0 or remainders[i] > remainders[best]):
                best = i
        ranked[best] = True
        order[r] = best
    for r in range(left):
        out[order[r % n]] += 1
    return out


@njit
def _select(values, k):
    """The k-th smallest value (0-based) by quickselect, in place; a small loop that compiles
    in a fraction of the time of ``np.partition``."""
    lo, hi = 0, values.shape[0] - 1
    while lo < hi:
        pivot = values[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return values[k]
    return values[k]


@njit
def rank(primary, secondary):
    """Indices sorted by (primary, secondary, index), all ascending.

    A bottom-up merge sort of the indices: a few loops that compile in well under a second,
    where NumPy's argsort costs seconds of compile time in every kernel that inlines it.
    """
    n = primary.shape[0]
    order = np.arange(n)
    buffer = np.empty(n, dtype=np.int64)
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid, hi = min(lo + width, n), min(lo + 2 * width, n)
            i, j = lo, mid
            for k in range(lo, hi):
                if i < mid and (j >= hi or not _before(primary, secondary, order[j], order[i])):
                    buffer[k] = order[i]
                    i += 1
                else:
                    buffer[k] = order[j]
                    j += 1
        order, buffer = buffer, order
        width *= 2
    return order


@njit
def _before(primary, secondary, a, b):
    """Whether index ``a`` sorts strictly before ``b`` by (primary, secondary, index)."""
    if primary[a] != primary[b]:
        return primary[a] < primary[b]
    if secondary[a] != secondary[b]:
        return secondary[a] < secondary[b]
    return a < b


@njit
def assign_by_quota(key, group_ptr, members, group_law, laws):
    """Category of each member such that every group meets its law's quotas exactly.

    Group ``g`` holds ``members[group_ptr[g]:group_ptr[g+1]]``; its category counts are the
    largest-remainder split of its size over ``laws[group_law[g]]``. Categories are dealt
    out in a keyed random order: member ``j`` of the group takes the category whose
    cumulative quota first exceeds ``feistel_index(prf_u64(key, g, 0), n, j)``. A group is
    computed alone, in O(size), with no sort. Returns codes indexed like ``members``' values.
    """
    n_out = 0
    for i in range(members.shape[0]):
        n_out = max(n_out, members[i] + 1)
    out = np.empty(n_out, dtype=np.int16)
    for i in range(n_out):
        out[i] = -1
    k = np.uint64(key)
    for g in range(group_ptr.shape[0] - 1):
        _deal_group(k, g, group_ptr, members, laws[group_law[g]], out)
    return out


@njit
def _deal_group(key, g, group_ptr, members, law, out):
    n = group_ptr[g + 1] - group_ptr[g]
    if n == 0:
        return
    quota = largest_remainder_law(n, law)
    order = round_table(prf_u64(key, np.uint64(g), np.uint64(0)), n)  # the whole group's
    for j in range(n):
        position = feistel_at(order, n, j)
        # The category whose cumulative quota first exceeds the position (a short scan).
        category, cumulative = 0, quota[0]
        while cumulative <= position:
            category += 1
            cumulative += quota[category]
        out[members[group_ptr[g] + j]] = category
