"""The label-leakage audit (SPEC section 5, ``L1_LABEL_LEAKAGE``; issue 22, first slice).

A model trained on seg6a must learn fraud from the intended covariates, not from how the
data was laid out. For each entity kind this measures the AUC of ``is_risky`` against
features that carry no intended signal: the entity id's rank within its stratum, the
canonical block, and the position within the block (a dataset's part files are its
canonical blocks, so the part file is the block). An AUC of 0.5 means the feature says
nothing about the label. Beside them, the intended covariates (a risky owner, a shared
device, a much-shared IP) must carry signal.

The AUC is Mann-Whitney's ``U / (n1 n0)`` (``scipy.stats.mannwhitneyu``); its CI is the
cluster bootstrap of the gates (``bootstrap_ci``) over per-cluster histograms of the
feature's quantiles, whose AUC adds up over clusters. The interval is widened to hold the
exact value where the binning moves it.

This slice computes the audit from a run's tables; it is not on the gateboard yet.
"""
import numpy as np
import pyarrow.compute as pc

from .board import bootstrap_ci

N_BINS = 100
B, BPLUS, SIGNAL = 0.02, 0.01, 0.55


def _codes(table, column):
    array = table.column(column).combine_chunks()
    if hasattr(array, "indices"):
        return array.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return pc.dictionary_encode(array).combine_chunks().indices.to_numpy().astype(np.int64)


def rank_in_stratum(ids, stratum):
    """Each id's rank among the ids of its stratum, over the stratum's size: in [0, 1)."""
    order = np.lexsort((ids, stratum))
    sorted_stratum = stratum[order]
    starts = np.flatnonzero(np.r_[True, sorted_stratum[1:] != sorted_stratum[:-1]])
    sizes = np.diff(np.r_[starts, sorted_stratum.size])
    first = np.repeat(starts, sizes)
    rank = np.empty(ids.size, dtype=np.float64)
    rank[order] = (np.arange(ids.size) - first) / np.repeat(sizes, sizes)
    return rank


def _position(index, offsets):
    """``(block, position in block)`` of row ``index`` of a dataset whose blocks start at
    ``offsets``, both scaled to [0, 1)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    block = np.searchsorted(offsets, index, side="right") - 1
    size = np.maximum(np.diff(offsets)[block], 1)
    n_blocks = max(offsets.size - 1, 1)
    return block / n_blocks, (index - offsets[block]) / size


def features(tables, offsets):
    """Per entity kind: ``(is_risky, cluster key, {feature: values})``, artefact features
    and intended covariates (names starting ``signal.``).

    Parameters
    ----------
    tables : dict
        Dataset name -> ``pyarrow.Table`` (a run's tables).
    offsets : dict
        Dataset name -> its canonical block offsets (rows).
    """
    parties = tables["s1_party_base_6A"]
    party_id = parties.column("party_id").to_numpy()
    stratum = (_codes(parties, "country_iso") * 64 + _codes(parties, "party_type")) * 64 \
        + _codes(parties, "segment_id")
    party_stratum = np.empty(party_id.size, dtype=np.int64)
    party_stratum[party_id] = stratum
    risky = {kind: np.empty(tables[f"s5_{kind}_fraud_roles_6A"].num_rows, dtype=bool)
             for kind in ("party", "account", "device", "ip")}
    for kind, values in risky.items():
        roles = tables[f"s5_{kind}_fraud_roles_6A"]
        values[roles.column(f"{kind}_id").to_numpy()] = \
            roles.column("is_risky").to_numpy(zero_copy_only=False)
    out = {}

    def layout(name, ids, strata):
        block, position = _position(np.arange(ids.size), offsets[name])
        return {"id_rank_in_stratum": rank_in_stratum(ids, strata), "canonical_block": block,
                "position_in_block": position}

    links = tables["s4_device_party_links_6A"]
    users = np.bincount(links.column("device_id").to_numpy(), minlength=risky["device"].size)
    shares_a_device = np.zeros(party_id.size, dtype=np.float64)
    party_of_link = links.column("party_id").to_numpy()
    shares_a_device[party_of_link[users[links.column("device_id").to_numpy()] > 1]] = 1.0
    out["party"] = (risky["party"], party_id,
                    {**layout("s1_party_base_6A", party_id, stratum),
                     "signal.shares_a_device": shares_a_device[party_id]})
    for kind, name, owner_column in (("account", "s2_account_base_6A", "owner_party_id"),
                                     ("device", "s4_device_base_6A", "primary_party_id")):
        table = tables[name]
        ids = table.column(f"{kind}_id").to_numpy()
        owner = table.column(owner_column).to_numpy()
        found = {**layout(name, ids, party_stratum[owner]),
                 "signal.risky_owner": risky["party"][owner].astype(np.float64)}
        out[kind] = (risky[kind][ids], owner, found)
    ips = tables["s4_ip_base_6A"]
    ip_id = ips.column("ip_id").to_numpy()
    served = np.bincount(tables["s4_device_ip_links_6A"].column("ip_id").to_numpy(),
                         minlength=ip_id.size)
    out["ip"] = (risky["ip"][ip_id], ip_id,
                 {**layout("s4_ip_base_6A", ip_id,
                           _codes(ips, "region_id") * 64 + _codes(ips, "ip_type")),
                  "signal.devices_served": served[ip_id].astype(np.float64)})
    return out


def auc(values, risky):
    """Mann-Whitney's ``U / (n1 n0)``: the chance that a risky entity's value exceeds a
    clean one's (ties count half).

    >>> auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True]))
    1.0
    """
    from scipy.stats import mannwhitneyu

    n1, n0 = int(risky.sum()), int((~risky).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float(mannwhitneyu(values[risky], values[~risky]).statistic) / (n1 * n0)


def _binned_auc(summed):
    """AUC of summed ``(..., 2, bins)`` histograms (risky, clean): the binned Mann-Whitney."""
    risky, clean = summed[..., 0, :], summed[..., 1, :]
    below = np.cumsum(clean, axis=-1) - clean
    u = np.sum(risky * (below + 0.5 * clean), axis=-1)
    return u / (risky.sum(axis=-1) * clean.sum(axis=-1))


def _bins(values):
    """Quantile bins of a feature (fewer where it has fewer distinct values)."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, N_BINS + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right"), edges.size + 1


def audit(tables, offsets, *, n_clusters=200, seed=0, n_resamples=999, min_risky=20):
    """The audit's components: one per (entity kind, feature).

    Returns
    -------
    list of dict
        ``kind, feature, value`` (the AUC), ``ci_low, ci_high``, ``n_risky, n_clean``,
        ``signal`` (an intended covariate), ``pass_B, pass_Bplus`` (artefacts: |AUC - 0.5|
        within 0.02 / 0.01 with the whole CI; signals: the whole CI above 0.55), ``reason``.
    """
    rows = []
    for kind, (risky, cluster_of, found) in features(tables, offsets).items():
        cluster = (np.asarray(cluster_of, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
                   >> np.uint64(40)) % np.uint64(n_clusters)
        cluster = cluster.astype(np.int64)
        for name, values in found.items():
            value = auc(values, risky)
            binned, n_bins = _bins(values)
            hist = np.zeros((n_clusters, 2, n_bins))
            np.add.at(hist, (cluster, (~risky).astype(np.int64), binned), 1.0)
            low, high = bootstrap_ci(hist.reshape(n_clusters, -1),
                                     lambda s, n=n_bins: _binned_auc(
                                         s.reshape(s.shape[:-1] + (2, n))),
                                     seed=seed, n_resamples=n_resamples)
            if np.isfinite(value) and np.isfinite(low):
                low, high = min(low, value), max(high, value)
            signal = name.startswith("signal.")
            enough = int(risky.sum()) >= min_risky
            if signal:
                passed_b = passed_bplus = enough and low > SIGNAL
            else:
                passed_b = enough and 0.5 - B <= low and high <= 0.5 + B
                passed_bplus = enough and 0.5 - BPLUS <= low and high <= 0.5 + BPLUS
            rows.append({"kind": kind, "feature": name, "value": value, "ci_low": float(low),
                         "ci_high": float(high), "n_risky": int(risky.sum()),
                         "n_clean": int((~risky).sum()), "signal": signal,
                         "pass_B": bool(passed_b), "pass_Bplus": bool(passed_bplus),
                         "reason": None if enough else "insufficient_support"})
    return rows
