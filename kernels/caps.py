"""Hard caps on per-entity counts, enforced after allocation (``hard_global_postmerge``)."""
import numpy as np

from ._jit import njit
from .allocate import rank


@njit
def enforce_cap(counts, cap, rank_keys):
    """Cap every count at ``cap``; move the overflow to entities with headroom.

    Overflow units (``sum(max(counts - cap, 0))``) go one at a time to the entities that
    already have a count (``1 <= count < cap``: holders keep being the only holders), in
    ascending ``rank_keys`` order (a PRF value; ties by index), cycling through them until
    the overflow is placed. Units that find no headroom anywhere are dropped.

    Parameters
    ----------
    counts : int64 array
        Allocated counts per entity (not modified).
    cap : int
        The hard maximum per entity (``k_max``), >= 1.
    rank_keys : float64 array
        Deterministic rank of each entity for receiving overflow.

    Returns
    -------
    capped : int64 array
        Counts with ``capped <= cap`` everywhere.
    overflow, redistributed, dropped : int
        Units above the cap, units moved to other entities, units dropped;
        ``overflow == redistributed + dropped``.
    """
    n = counts.shape[0]
    capped = counts.copy()
    overflow = 0
    for i in range(n):
        if capped[i] > cap:
            overflow += capped[i] - cap
            capped[i] = cap
    if overflow == 0:
        return capped, 0, 0, 0
    order = rank(rank_keys, np.zeros(n))  # ascending keys, ties by index
    left = overflow
    while left > 0:
        placed = 0
        for r in range(n):
            i = order[r]
            if 1 <= capped[i] < cap:
                capped[i] += 1
                placed += 1
                left -= 1
                if left == 0:
                    break
        if placed == 0:
            break
    return capped, overflow, overflow - left, left
