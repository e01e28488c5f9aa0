"""The label-leakage audit ``L1_LABEL_LEAKAGE`` (SPEC section 5): labels must come from the
model, not from the layout.

For each entity kind, the AUC of ``is_risky`` against features that carry no intended
signal: the entity id's rank within its stratum (country, party type and segment for
parties; the owner's for accounts and devices; region and ip_type for IPs), its canonical
block and its position within the block (a dataset's part files are its canonical blocks,
so the part file is the block). An AUC of 0.5 means the feature says nothing of the label.
Beside them, one intended covariate per kind must carry signal: a shared device (parties),
a risky owner (accounts, devices), the devices an IP serves (IPs).

The audit is measured block by block, like the other gates' statistics. A feature is
quantized to ``QUANTA`` values on [0, 1) (a count: its value, up to ``QUANTA - 1``), and the
AUC is Mann-Whitney's ``U / (n1 n0)`` of the quantized feature, ties counting half
(``binned_auc``), from histograms that add up over blocks. Pass one (``pass_one``) histograms
the features a block knows alone and counts its entities per stratum; pass two
(``rank_histograms``) ranks each entity in the run's stratum from the counts of the blocks
before its own, from what pass one held of it: two bytes. ``scipy.stats.mannwhitneyu``
computes the same U but needs every value in one place, which a run measured on Dask does
not have; the tests hold the two equal. The CI is the gates' cluster bootstrap over
per-cluster histograms of ``CI_BINS`` bins, widened to hold the exact value.
"""
from dataclasses import dataclass

import numpy as np

from ..engine import BlockResult
from ..kernels.csr import count_flagged
from ..kernels.histograms import label_histograms
from .data import increasing, owned

KINDS = ("party", "account", "device", "ip")
ARTEFACTS = ("id_rank_in_stratum", "canonical_block", "position_in_block")
SIGNALS = {"party": "shares_a_device", "account": "risky_owner", "device": "risky_owner",
           "ip": "devices_served"}
QUANTA = 4096
CI_BINS = 64


@dataclass
class Inputs:
    """One block's audit inputs for one entity kind, in the block's id order.

    ``stratum`` codes are >= 0 (0 for an entity whose stratum is unknown), ``cluster`` is
    the entity's resampling cluster (its owner's for accounts and devices, as T7's),
    ``signal`` the intended covariate as an integer, ``base`` the global id of the block's
    first entity.
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


def inputs(data, block_clusters):
    """``{kind: Inputs or None}`` of a ``seg6a.gates.data.GateData`` and the
    ``seg6a.gates.stats.BlockClusters`` of it; None for a kind whose role table is not one
    row per entity in id order (the structural checks report it)."""
    n_parties = data.n_parties
    party_stratum, n_party_strata = _stratum(
        [(data.party_country, len(data.countries)), (data.party_type, len(data.party_types)),
         (data.party_segment, len(data.segments))])
    party_risky = _risky(data, "party", n_parties)
    users = np.bincount(data.party_device_ids, minlength=data.n_devices)
    # a party shares a device when one of its links is to a device of several users
    shares = (count_flagged(data.party_device_ptr, data.party_device_ids, users > 1)
              > 0).astype(np.int64)
    base = data.bases
    out = {"party": None if party_risky is None else Inputs(
        party_stratum, n_party_strata, party_risky, block_clusters.party, shares,
        base["party"])}
    for kind, owner in (("account", data.account_owner), ("device", data.device_primary)):
        risky = _risky(data, kind, owner.size)
        owner_risky = np.zeros(owner.size, dtype=np.int64) if party_risky is None else \
            owned(owner, party_risky.astype(np.int64), n_parties)
        out[kind] = None if risky is None else Inputs(
            owned(owner, party_stratum, n_parties), n_party_strata, risky,
            block_clusters.of_owners(owner), owner_risky, base[kind])
    ip_stratum, n_ip_strata = _stratum([(data.ip_region, len(data.regions)),
                                        (data.ip_type, len(data.ip_types))])
    ip_risky = _risky(data, "ip", data.n_ips)
    out["ip"] = None if ip_risky is None else Inputs(
        ip_stratum, n_ip_strata, ip_risky, block_clusters.ip,
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


def block_places(ids, starts, quanta):
    """Each id's canonical block and its place in it, in ``[0, quanta)``, from ``starts``:
    the first id of each canonical block, then the end of the last.

    >>> [a.tolist() for a in block_places(np.array([0, 11, 15]), np.array([0, 10, 14, 18]), 4)]
    [[0, 1, 2], [0, 1, 1]]
    """
    block = np.clip(np.searchsorted(starts, ids, side="right") - 1, 0, starts.size - 2)
    size = np.maximum(starts[block + 1] - starts[block], 1)
    return block, np.minimum((ids - starts[block]) * quanta // size, quanta - 1)


def range_places(lo, hi, first_ids, quanta):
    """``block_places`` of the ids ``lo .. hi - 1``, the end of the last canonical block
    being ``hi``, block by block (a tenth of the time of ``block_places`` over a part).

    >>> [a.tolist() for a in range_places(8, 12, np.array([0, 10]), 2)]
    [[0, 0, 1, 1], [1, 1, 0, 1]]
    """
    starts = np.append(first_ids[first_ids < hi], hi)
    blocks, places = [], []
    for b in range(max(np.searchsorted(starts, lo, side="right") - 1, 0), starts.size - 1):
        a, z = max(starts[b], lo), starts[b + 1]
        size = max(starts[b + 1] - starts[b], 1)
        blocks.append(np.full(z - a, b, dtype=np.int64))
        # below quanta: the places of a block are 0 .. size - 1
        place = np.arange(a - starts[b], z - starts[b], dtype=np.int64)
        place *= quanta
        place //= size
        places.append(place)
    if len(blocks) == 1:  # a part of one canonical block: nothing to join
        return blocks[0], places[0]
    return (np.concatenate(blocks), np.concatenate(places)) if blocks else \
        (np.zeros(0, np.int64), np.zeros(0, np.int64))


@dataclass
class Held(BlockResult):
    """What pass two needs of one block's entities of one kind: each entity's ``cell``
    (resampling cluster * 2 + clean) in stratum order (ids ascending within a stratum), and
    the entities per stratum."""

    cells: np.ndarray
    strata: np.ndarray


def label_cells(cluster, risky, n_clusters):
    """``cluster * 2 + clean`` of each entity, the cells of ``label_histograms``: two bytes
    each for the clusters of the policy.

    >>> label_cells(np.array([0, 3]), np.array([True, False]), 4).tolist()
    [0, 7]
    """
    dtype = np.int16 if 2 * n_clusters <= 1 << 15 else np.int64
    return (cluster * 2 + ~risky).astype(dtype)


def pass_one(data, first_ids, block_clusters):
    """Pass one over a block's ``GateData``: ``(arrays, held)``.

    ``arrays`` add up over blocks (``seg6a.gates.stats.Stats``): per kind its entities per
    stratum (``leakage.strata.<kind>``) and the histograms of the features that need nothing
    of other blocks (``leakage.<kind>.<feature>.exact`` and ``.per_cluster``, as
    ``rank_histograms``'s). ``held`` is per kind the ``Held`` of pass two. ``first_ids`` gives
    per kind the first id of each of the run's canonical blocks, ``block_clusters`` the
    ``seg6a.gates.stats.BlockClusters`` of the block.
    """
    arrays, held = {}, {}
    n_clusters = block_clusters.n_clusters
    for kind, found in inputs(data, block_clusters).items():
        if found is None:
            continue
        cells = label_cells(found.cluster, found.risky, n_clusters)
        first = np.asarray(first_ids[kind], dtype=np.int64)
        block, place = range_places(found.base, found.base + found.risky.size, first, QUANTA)
        for feature, values, counts in (("canonical_block", block * QUANTA // first.size, False),
                                        ("position_in_block", place, False),
                                        (SIGNALS[kind], found.signal, True)):
            exact, per_cluster = label_histograms(cells, values, QUANTA, CI_BINS, n_clusters,
                                                  counts)
            arrays[f"leakage.{kind}.{feature}.exact"] = exact
            arrays[f"leakage.{kind}.{feature}.per_cluster"] = per_cluster
        strata = np.bincount(found.stratum, minlength=found.n_strata)
        arrays[f"leakage.strata.{kind}"] = strata
        # numpy's stable sort of 16-bit keys is a radix sort
        keys = found.stratum.astype(np.uint16) if found.n_strata <= 1 << 16 else found.stratum
        order = np.argsort(keys, kind="stable")
        held[kind] = Held(cells[order], strata)
    return arrays, held


def ranks_in_strata(strata, before):
    """The ranks in the run's strata of a block's entities in stratum order (``strata``: the
    block's entities per stratum): the entities of its stratum in the blocks before
    (``before``) plus those before it in its own block.

    >>> ranks_in_strata(np.array([1, 3]), np.array([5, 2])).tolist()
    [5, 2, 3, 4]
    """
    offsets = np.cumsum(strata) - strata
    return np.repeat(before - offsets, strata) + np.arange(strata.sum())


def rank_histograms(held, before, totals, n_clusters):
    """Pass two for one block's entities of one kind: the histograms ``(exact,
    per_cluster)`` (``seg6a.kernels.histograms.label_histograms``) of
    ``id_rank_in_stratum``, each entity's rank in its stratum over that stratum's entities
    in the run (``totals``)."""
    stratum = np.repeat(np.arange(held.strata.size), held.strata)
    quantized = ranks_in_strata(held.strata, before) * QUANTA // np.maximum(totals[stratum], 1)
    return label_histograms(held.cells, quantized, QUANTA, CI_BINS, n_clusters, False)


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
