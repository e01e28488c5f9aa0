"""S5's risk draw: a clamped log-odds uplift per covariate code, then a role per entity.

Covariates are small integer codes (e.g. "owner risky" for accounts; risky neighbours,
sharing and ip_type for IPs), so the uplift is a short table ``shift[code]`` and an entity's
log-odds is ``clamp(base + shift[code], low, high)``. The calibration of ``base`` works on
that table and the code counts, never on the entities.
"""
import math

import numpy as np

from ._jit import njit
from .prf import prf_unit
from .sample import CODE_DTYPE, invert_cdf


@njit
def clamped_logits(base, shift, low, high):
    """``min(max(base + shift, low), high)`` per code."""
    out = np.empty(shift.shape[0], dtype=np.float64)
    for c in range(shift.shape[0]):
        out[c] = min(max(base + shift[c], low), high)
    return out


@njit
def sigmoid(x):
    """Logistic function with the platform libm's ``exp`` (bit-stable across machines)."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


@njit
def expected_prevalence(base, shift, counts, low, high):
    """Mean risk probability over entities: ``sum_c counts[c] * sigmoid(logit[c]) / sum(counts)``."""
    logits = clamped_logits(base, shift, low, high)
    total = 0.0
    n = 0
    for c in range(shift.shape[0]):
        total += counts[c] * sigmoid(logits[c])
        n += counts[c]
    return total / n


@njit
def draw_roles(key, id_start, code, logit_of_code, risky_roles, risky_cdf, clean_roles,
               clean_cdf):
    """Role code per entity ``id_start + i``: risky with probability ``sigmoid(logit_of_code[code[i]])``
    (draw 0), then a role among the risky or the clean ones by inverse CDF (draw 1).

    ``risky_cdf`` / ``clean_cdf`` are one-row CDFs (``normalised_cdf``) over
    ``risky_roles`` / ``clean_roles``, the role codes of the taxonomy.
    """
    n = code.shape[0]
    probability = np.empty(logit_of_code.shape[0], dtype=np.float64)
    for c in range(logit_of_code.shape[0]):
        probability[c] = sigmoid(logit_of_code[c])
    out = np.empty(n, dtype=CODE_DTYPE)
    k = np.uint64(key)
    base = np.uint64(id_start)
    only_row = np.int16(0)  # typed like categorical_range's rows: one invert_cdf compile
    for i in range(n):
        entity = base + np.uint64(i)
        pick = prf_unit(k, entity, np.uint64(1))
        if prf_unit(k, entity, np.uint64(0)) < probability[code[i]]:
            out[i] = risky_roles[invert_cdf(risky_cdf, only_row, pick)]
        else:
            out[i] = clean_roles[invert_cdf(clean_cdf, only_row, pick)]
    return out
