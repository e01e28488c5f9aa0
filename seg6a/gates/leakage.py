"""The label-leakage audit ``L1_LABEL_LEAKAGE`` (SPEC section 5): labels must come from the
model, not from the layout.

For each entity kind, the AUC of ``is_risky`` against features that carry no intended
signal: the entity id's rank within its stratum (country, party type and segment for
parties; the owner's for accounts and devices; region and ip_type for IPs), its canonical
block and its position within the block (a dataset's part files are its canonical blocks,
so the part file is the block). An AUC of 0.5 means the feature says nothing of the label.
Beside them, one intended covariate per kind must carry signal: a shared device (parties),
a risky owner (accounts, devices), the devices an IP serves (IPs).

The audit is measured block by block, like the other gates' statistics. Pass one counts
each block's entities per stratum (``strata_counts``, in the gates' ``Stats``); pass two
gives each entity its rank in the whole run's stratum from the counts of the blocks before
its own and adds up histograms (``histograms``). A feature is quantized to ``QUANTA``
values on [0, 1) (a count: its value, up to ``QUANTA - 1``), and the AUC is Mann-Whitney's
``U / (n1 n0)`` of the quantized feature, ties counting half. ``scipy.stats.mannwhitneyu``
computes the same U but needs every value in one place, which a run measured on Dask does
not have; the tests hold the two equal. The CI is the gates' cluster bootstrap over
per-cluster histograms of ``CI_BINS`` bins, widened to hold the exact value.
"""
from dataclasses import dataclass

import numpy as np

from ..engine import BlockResult
from .data import increasing

KINDS = ("party", "account", "device", "ip")
ARTEFACTS = ("id_rank_in_stratum", "canonical_block", "position_in_block")
SIGNALS = {"party": "shares_a_device", "account": "risky_owner", "device": "risky_owner",
           "ip": "devices_served"}
QUANTA = 4096
CI_BINS = 64


@dataclass
class Inputs(BlockResult):
    """One block's audit inputs for one entity kind, in the block's id order (held by the
    engine between the two passes).

    ``stratum`` codes are >= 0 (0 for an entity whose stratum is unknown), ``cluster`` is
    the global id whose resampling cluster the entity joins (its owner's for accounts and
    devices, as T7's), ``signal`` the intended covariate as an integer, ``base`` the global
    id of the block's first entity.
    """

    stratum: np.ndarray
    n_strata: int
    risky: np.ndarray
    cluster: np.ndarray
    signal: np.ndarray
    base: int


def _stratum(codes_and_sizes):
    """Mixed-radix stratum code of several category codes (-1, unknown, shifts to 0)."""
    code = np.zeros(codes_and_sizes[0][0].shape, dtype=np.int64)
    n = 1
    for codes, size in codes_and_sizes:
        code = code * (size + 1) + (codes.astype(np.int64) + 1)
        n *= size + 1
    return code, n


def _owned(owner, values, n_owners):
    """``values[owner]``, 0 where the owner does not resolve (the contract reports it)."""
    out = np.zeros(owner.shape, dtype=values.dtype)
    ok = (owner >= 0) & (owner < n_owners)
    out[ok] = values[owner[ok]]
    return out


def inputs(data):
    """``{kind: Inputs or None}`` of a ``seg6a.gates.data.GateData``; None for a kind whose
    role table is not one row per entity in id order (the structural checks report it)."""
    n_parties = data.n_parties
    party_stratum, n_party_strata = _stratum(
        [(data.party_country, len(data.countries)), (data.party_type, len(data.party_types)),
         (data.party_segment, len(data.segments))])
    party_risky = _risky(data, "party", n_parties)
    users = np.bincount(data.party_device_ids, minlength=data.n_devices)
    link_party = np.repeat(np.arange(n_parties), np.diff(data.party_device_ptr))
    shares = np.zeros(n_parties, dtype=np.int64)
    shares[link_party[users[data.party_device_ids] > 1]] = 1
    base = data.bases
    out = {"party": None if party_risky is None else Inputs(
        party_stratum, n_party_strata, party_risky,
        base["party"] + np.arange(n_parties, dtype=np.int64), shares, base["party"])}
    for kind, owner in (("account", data.account_owner), ("device", data.device_primary)):
        risky = _risky(data, kind, owner.size)
        owner_risky = np.zeros(owner.size, dtype=np.int64) if party_risky is None else \
            _owned(owner, party_risky.astype(np.int64), n_parties)
        out[kind] = None if risky is None else Inputs(
            _owned(owner, party_stratum, n_parties), n_party_strata, risky,
            base["party"] + owner, owner_risky, base[kind])
    ip_stratum, n_ip_strata = _stratum([(data.ip_region, len(data.regions)),
                                        (data.ip_type, len(data.ip_types))])
    ip_risky = _risky(data, "ip", data.n_ips)
    out["ip"] = None if ip_risky is None else Inputs(
        ip_stratum, n_ip_strata, ip_risky, base["ip"] + np.arange(data.n_ips, dtype=np.int64),
        np.diff(data.ip_device_ptr).astype(np.int64), base["ip"])
    return out


def _risky(data, kind, n):
    roles = data.roles.get(kind)
    first = data.bases[kind]
    if roles is None or roles.ids.size != n or (n and not (
            roles.ids[0] == first and roles.ids[-1] == first + n - 1
            and increasing(roles.ids))):
        return None
    return roles.is_risky


def strata_counts(found):
    """``{kind: entities per stratum}`` of a block's ``inputs`` (pass one)."""
    return {kind: np.bincount(i.stratum, minlength=i.n_strata)
            for kind, i in found.items() if i is not None}


def ranks_in_strata(stratum, before):
    """Each entity's rank in the run's stratum: the entities of its stratum in the blocks
    before (``before[stratum]``) plus those before it in its own block.

    >>> ranks_in_strata(np.array([1, 0, 1, 1]), np.array([5, 2])).tolist()
    [2, 5, 3, 4]
    """
    order = np.argsort(stratum, kind="stable")
    ordered = stratum[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if ordered.size else \
        np.zeros(0, dtype=np.int64)
    first = np.repeat(starts, np.diff(np.r_[starts, ordered.size]))
    rank = np.empty(stratum.size, dtype=np.int64)
    rank[order] = np.arange(stratum.size) - first + before[ordered]
    return rank


def _quantized(found, before, totals, starts):
    """``{artefact: integer values in [0, QUANTA)}`` of a block's entities of one kind."""
    ids = found.base + np.arange(found.risky.size, dtype=np.int64)
    block = np.searchsorted(starts, ids, side="right") - 1
    n_blocks = starts.size - 1
    size = np.maximum(starts[block + 1] - starts[block], 1)
    rank = ranks_in_strata(found.stratum, before)
    return {
        "id_rank_in_stratum": rank * QUANTA // np.maximum(totals[found.stratum], 1),
        "canonical_block": block * QUANTA // n_blocks,
        "position_in_block": (ids - starts[block]) * QUANTA // size,
    }


def histograms(found, clusters, before, totals, starts, n_clusters):
    """Pass two for one block: ``{(kind, feature): (exact, per_cluster)}`` with ``exact`` the
    counts ``(2, QUANTA)`` of the quantized feature (risky first) and ``per_cluster`` those
    ``(n_clusters, 2 * CI_BINS)`` of the bootstrap.

    Parameters
    ----------
    found : dict
        The block's ``inputs`` of the kinds to measure.
    clusters : dict
        Per kind, each entity's resampling cluster (``seg6a.gates.stats.clusters`` of its
        ``Inputs.cluster``).
    before, totals : dict
        Per kind, the entities per stratum in the blocks before this one, and in the run.
    starts : dict
        Per kind, the first id of each canonical block and, last, the number of entities.
    n_clusters : int
    """
    out = {}
    for kind, inp in found.items():
        cluster = clusters[kind]
        clean = (~inp.risky).astype(np.int64)
        quantized = _quantized(inp, before[kind], totals[kind], starts[kind])
        binned = {name: q * CI_BINS // QUANTA for name, q in quantized.items()}
        # a count is its own value, its tail merged into the last bin
        quantized[SIGNALS[kind]] = np.minimum(inp.signal, QUANTA - 1)
        binned[SIGNALS[kind]] = np.minimum(inp.signal, CI_BINS - 1)
        for name, q in quantized.items():
            exact = np.bincount(clean * QUANTA + q, minlength=2 * QUANTA).reshape(2, QUANTA)
            per_cluster = np.bincount((cluster * 2 + clean) * CI_BINS + binned[name],
                                      minlength=n_clusters * 2 * CI_BINS)
            out[(kind, name)] = (exact, per_cluster.reshape(n_clusters, 2 * CI_BINS))
    return out


def binned_auc(counts):
    """Mann-Whitney's ``U / (n1 n0)`` of histograms ``(..., 2, bins)`` (risky, clean): the
    chance that a risky entity's value exceeds a clean one's, ties counting half."""
    counts = np.asarray(counts, dtype=np.float64)
    risky, clean = counts[..., 0, :], counts[..., 1, :]
    below = np.cumsum(clean, axis=-1) - clean
    u = np.sum(risky * (below + 0.5 * clean), axis=-1)
    return u / (risky.sum(axis=-1) * clean.sum(axis=-1))


def is_signal(feature):
    return feature in SIGNALS.values()
