"""The realism metrics behind T1-T8, as plain functions of arrays.

The same functions serve S5's fail-closed validation and the gateboard; both feed them the
published data (or the identical in-memory arrays), never a state's own counters. A metric
that cannot be computed returns NaN, and callers turn NaN into a failure with a reason.
"""
import numpy as np


def odds_ratio(risky_exposed, clean_exposed, risky_unexposed, clean_unexposed):
    """Odds ratio of a 2x2 table: ``(a / b) / (c / d)``; NaN when any cell is empty.

    Parameters
    ----------
    risky_exposed, clean_exposed : int or array_like
        Risky and clean entities among the exposed (e.g. accounts of risky owners).
    risky_unexposed, clean_unexposed : int or array_like
        The same among the unexposed (accounts of clean owners).

    Examples
    --------
    >>> odds_ratio(30, 70, 10, 90)
    3.857142857142857
    >>> import math; math.isnan(odds_ratio(0, 10, 5, 5))
    True
    """
    a, b, c, d = (np.asarray(x, dtype=np.float64) for x in
                  (risky_exposed, clean_exposed, risky_unexposed, clean_unexposed))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (a * d) / (b * c)
    ratio = np.where((a > 0) & (b > 0) & (c > 0) & (d > 0), ratio, np.nan)
    return float(ratio) if ratio.ndim == 0 else ratio


def jsd(p, q):
    """Jensen-Shannon divergence in bits (base 2) of two distributions, in ``[0, 1]``.

    Inputs are non-negative weights, normalised here. This is the divergence, not the
    distance ``scipy.spatial.distance.jensenshannon`` returns (its square root).

    Examples
    --------
    >>> jsd([1, 0], [0, 1])
    1.0
    >>> jsd([0.5, 0.5], [0.5, 0.5])
    0.0
    """
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a):
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log2(a[nonzero] / m[nonzero])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def upper_quantile(histogram, q):
    """The ``inverted_cdf`` quantile (the smallest value with at least ``q`` of the mass at
    or below it) of the values counted by ``histogram`` (``histogram[v]`` values equal
    ``v``); NaN for no values.

    >>> upper_quantile([0, 3, 0, 1], 0.5), upper_quantile([0, 3, 0, 1], 0.99)
    (1.0, 3.0)
    """
    cumulative = np.cumsum(histogram)
    if cumulative.size == 0 or cumulative[-1] == 0:
        return float("nan")
    k = max(int(np.ceil(q * cumulative[-1])) - 1, 0)
    return float(np.searchsorted(cumulative, k, side="right"))


def largest(histogram):
    """The largest value counted by ``histogram`` (-1 for none)."""
    return int(np.flatnonzero(histogram)[-1]) if np.any(histogram) else -1


def accounts_above_kmax(histogram, k_max):
    """Largest excess of accounts over K_max over all parties of one (party type, account
    type), from the histogram of their accounts."""
    return max(largest(histogram) - k_max, 0)


def holder_tail(histogram):
    """``(p99, max)`` of accounts per holder (parties with at least one), from the histogram
    of accounts per party; NaN without holders."""
    held = np.asarray(histogram)[1:]
    if not np.any(held):
        return float("nan"), float("nan")
    return upper_quantile(held, 0.99) + 1.0, float(largest(held) + 1)


def holder_law(mean_per_holder, k_max):
    """Target law of accounts per holder: ``1 + Geometric`` with the prior's mean, cut at K_max.

    S2 gives each holder one account and splits the rest in proportion to exponential
    weights, which makes the extra accounts geometric; the cut renormalises at ``k_max``.
    Returns probabilities of ``1 .. k_max``.
    """
    extra = max(mean_per_holder - 1.0, 0.0)
    k = np.arange(k_max)
    if extra == 0.0:
        law = (k == 0).astype(np.float64)
    else:
        q = extra / (1.0 + extra)
        law = (1.0 - q) * q**k
    return law / law.sum()


def devices_per_ip_tail(histogram):
    """``(p99, max)`` of devices per IP, from the histogram of devices per IP (NaN without
    IPs)."""
    if not np.any(histogram):
        return float("nan"), float("nan")
    return upper_quantile(histogram, 0.99), float(largest(histogram))


def risky_odds_ratio(entity_risky, owner_risky):
    """OR of an entity being risky when its owner is risky versus clean (2x2 over entities)."""
    entity_risky = np.asarray(entity_risky, dtype=bool)
    owner_risky = np.asarray(owner_risky, dtype=bool)
    table = np.bincount(owner_risky * 2 + entity_risky, minlength=4)
    clean_unexposed, risky_unexposed, clean_exposed, risky_exposed = table
    return odds_ratio(risky_exposed, clean_exposed, risky_unexposed, clean_unexposed)
