"""The 6B probe's flow sampler: transactions drawn along the 6A graph and labelled by roles."""
import numpy as np

from ._jit import njit
from .prf import prf_unit
from .uplift import sigmoid


@njit
def sample_flows(key, flow_ids, payer, party_account_ptr, account_instrument_ptr,
                 party_device_ptr, party_device_ids, device_ip_ptr, device_ip_ids, n_merchants):
    """Entities of the flows ``flow_ids`` whose payers are ``payer`` (draws 1-5 of
    ``prf(key, f, .)`` for flow ``f``; draw 0 chose the payer); -1 where there is none.

    A flow picks one of the payer's accounts, one of that account's instruments, one of the
    devices the payer uses, one of that device's IPs, and a merchant, each uniformly.
    Returns an ``(n, 6)`` int64 array of party, account, instrument, device, ip and merchant
    ids, in the id space of the relations given (a canonical block's own ids, or the run's).
    Choices are by rank of id (the ``j``-th smallest IP of the device), so the flows do not
    depend on the order of the link rows, which the 6B contract leaves free.
    """
    out = np.full((flow_ids.shape[0], 6), -1, dtype=np.int64)
    k = np.uint64(key)
    for f in range(flow_ids.shape[0]):
        flow = np.uint64(flow_ids[f])
        # Every draw is made for every flow, so the audit counts 6 per flow with draw 0.
        u1 = prf_unit(k, flow, np.uint64(1))
        u2 = prf_unit(k, flow, np.uint64(2))
        u3 = prf_unit(k, flow, np.uint64(3))
        u4 = prf_unit(k, flow, np.uint64(4))
        u5 = prf_unit(k, flow, np.uint64(5))
        p = payer[f]
        out[f, 0] = p
        n = party_account_ptr[p + 1] - party_account_ptr[p]
        a = party_account_ptr[p] + np.int64(u1 * n)
        out[f, 1] = a
        n = account_instrument_ptr[a + 1] - account_instrument_ptr[a]
        if n > 0:
            out[f, 2] = account_instrument_ptr[a] + np.int64(u2 * n)
        n = party_device_ptr[p + 1] - party_device_ptr[p]
        if n > 0:
            d = party_device_ids[party_device_ptr[p] + np.int64(u3 * n)]
            out[f, 3] = d
            n = device_ip_ptr[d + 1] - device_ip_ptr[d]
            if n > 0:
                out[f, 4] = _kth_smallest(device_ip_ids, device_ip_ptr[d], n, np.int64(u4 * n))
        out[f, 5] = np.int64(u5 * n_merchants)
    return out


@njit
def _kth_smallest(values, start, n, k):
    """The ``k``-th smallest (0-based) of ``values[start:start + n]``, for the few IPs of a
    device: counts, no sort."""
    for a in range(start, start + n):
        smaller, equal = 0, 0
        for b in range(start, start + n):
            if values[b] < values[a]:
                smaller += 1
            elif values[b] == values[a]:
                equal += 1
        if smaller <= k < smaller + equal:
            return values[a]
    return values[start]  # unreachable: some value holds rank k


@njit
def label_flows(key, flow_ids, flows, columns, risky, weights, base_logit):
    """Fraud label per flow by a fixed logistic probe over the roles of its entities.

    ``risky`` holds the is_risky flags of the role-bearing kinds end to end; row ``j`` of
    ``columns`` is ``(flow column, offset into risky)`` of kind ``j``, so the kind's entity
    of flow ``f`` is risky when ``risky[columns[j, 1] + flows[f, columns[j, 0]]]``, adding
    ``weights[j]`` to ``base_logit``. Returns ``(fraud, touches_risky)`` per flow; the label
    is ``prf(key, f, 6) < sigmoid(logit)`` for flow ``f = flow_ids[row]``.
    """
    n = flows.shape[0]
    fraud = np.zeros(n, dtype=np.bool_)
    touches = np.zeros(n, dtype=np.bool_)
    k = np.uint64(key)
    for f in range(n):
        logit = base_logit
        for j in range(columns.shape[0]):
            entity = flows[f, columns[j, 0]]
            if entity >= 0 and risky[columns[j, 1] + entity]:
                logit += weights[j]
                touches[f] = True
        fraud[f] = prf_unit(k, np.uint64(flow_ids[f]), np.uint64(6)) < sigmoid(logit)
    return fraud, touches
