"""The gateboard: T1-T10 and the extension L1 of one seed as records, computed from the
published tables.

Gates judge the run's sufficient statistics (``seg6a.gates.stats``), which add up over the
canonical blocks, so a run is measured block by block.

Each gate yields one record (``test_id, metric_name, value, threshold_B, threshold_Bplus,
pass_B, pass_Bplus, ci_low, ci_high, seed, support, method, owner_state, reason``, the
``comparator``, and the judging policy's ``validation_hash``, ``waivers`` and ``overrides``
that touch it) and, where it has parts, ``components`` with the same fields per part. Each
component names the state that produces what it measures (``owner_state``); a failing
record names the earliest owner among its failing components, the state to rerun from.

Rate gates (T3, T4, T7, the T10 lift) carry a 95% cluster-bootstrap CI and pass only if the
CI lies wholly on the passing side; the others are exact. A CI always holds its value: an
interval that misses it (a skewed bootstrap distribution) is widened to it and marked
``ci_widened``, which only makes the judged bound stricter. Below the policy's minimum
support a gate fails with reason ``insufficient_support``, and a rate gate whose value
passes a band but whose CI does not with ``ci_too_wide`` (both want a larger scale); a
metric that cannot be computed fails with a reason.

``L1_LABEL_LEAKAGE`` (``seg6a.gates.leakage``) is recorded like the others; which decisions
it gates is the policy's ``gating`` flag (``counts_toward``).
"""
import copy
import functools
import threading
import warnings
from dataclasses import dataclass

import numpy as np

from .. import downstream
from ..engine import concurrently
from ..rng import Substreams
from . import leakage, metrics, stats as gate_stats

# The board's records: the reference plan's gates, then the extensions beyond it.
GATES = ("T1_KMAX_HARD_INVARIANT", "T2_KMAX_TAIL_SANITY", "T3_IP_PRIOR_ALIGNMENT",
         "T4_DEVICE_IP_COVERAGE", "T5_IP_REUSE_TAIL_BOUNDS", "T6_ROLE_MAPPING_COVERAGE",
         "T7_RISK_PROPAGATION_EFFECT", "T8_DISTRIBUTION_ALIGNMENT_JSD",
         "T9_CROSS_SEED_STABILITY", "T10_DOWNSTREAM_COMPAT_6B", "L1_LABEL_LEAKAGE")
# What each gate checks, in one line (the report and `seg6a gates` readers' key).
DESCRIPTIONS = {
    "T1_KMAX_HARD_INVARIANT": "no party holds more accounts of a type than its K_max",
    "T2_KMAX_TAIL_SANITY": "p99 and max of accounts per holder stay within K_max, per type",
    "T3_IP_PRIOR_ALIGNMENT": "each region's ip_type shares match the priors (pp)",
    "T4_DEVICE_IP_COVERAGE": "enough devices are linked to at least one IP",
    "T5_IP_REUSE_TAIL_BOUNDS": "devices per IP: a bounded tail (p99 and max)",
    "T6_ROLE_MAPPING_COVERAGE": "every role row maps to a canonical family",
    "T7_RISK_PROPAGATION_EFFECT": "a risky owner raises the odds that its accounts and "
                                  "devices are risky, below over-separability",
    "T8_DISTRIBUTION_ALIGNMENT_JSD": "role, ip_type and accounts-per-holder mixes match "
                                     "their targets (JSD, bits)",
    "T9_CROSS_SEED_STABILITY": "the stability metrics vary little across the witness seeds",
    "T10_DOWNSTREAM_COMPAT_6B": "6B can consume the entities (contract), and flows touching "
                                "risky entities carry more fraud labels (lift)",
    "L1_LABEL_LEAKAGE": "ids, blocks and places in blocks say nothing of the labels (AUC "
                        "near 0.5), while the intended covariates carry signal",
}
VALIDATION_POLICY = "validation_policy_6A.v1.yaml"
ACCOUNT_PRIORS = "account_per_party_priors_6A.v1.yaml"
DEVICE_IP_PRIORS = "device_ip_priors_6A.v1.yaml"
TAXONOMY = "fraud_role_taxonomy_6A.v1.yaml"
NOT_EVALUABLE = "not_evaluable_single_run"


_WARNINGS_LOCK = threading.Lock()


def bootstrap_ci(cluster_stats, statistic, *, seed=0, n_resamples=999, confidence_level=0.95,
                 method="percentile"):
    """Confidence interval of ``statistic`` by resampling clusters of sufficient statistics.

    A thin wrapper over ``scipy.stats.bootstrap``: the data are the cluster indices, and the
    vectorized statistic sums the resampled clusters' statistics before applying
    ``statistic``, so millions of rows are resampled as a few hundred clusters.

    Parameters
    ----------
    cluster_stats : array_like, shape (n_clusters, k)
        Per-cluster sufficient statistics (e.g. the four cells of a 2x2 table), which add
        up over clusters.
    statistic : callable
        Maps summed statistics of shape ``(..., k)`` to values of shape ``(...)``, or to
        ``(..., m)`` for ``m`` statistics at once.
    seed : int
        Seeds the resampling (``numpy.random.default_rng``), so the CI is deterministic.
    n_resamples : int
    confidence_level : float
        Two-sided.
    method : {"percentile", "basic", "BCa"}

    Returns
    -------
    (float, float) or (ndarray, ndarray)
        The interval (per statistic for ``m`` statistics); NaNs when it cannot be computed
        (fewer than two clusters, or a statistic undefined on the resamples).

    Examples
    --------
    >>> import numpy as np
    >>> clusters = np.array([[3, 10], [5, 10], [4, 10], [6, 10]])  # (successes, trials)
    >>> low, high = bootstrap_ci(clusters, lambda s: s[..., 0] / s[..., 1], seed=1)
    >>> bool(0.3 <= low <= 0.45 <= high <= 0.6)
    True
    """
    from scipy.stats import bootstrap  # lazily: importing scipy.stats takes ~0.55 s here

    data = np.asarray(cluster_stats, dtype=np.float64)
    if data.ndim != 2:
        return float("nan"), float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.shape(statistic(data.sum(axis=0)))
    several = len(shape) > 0
    if data.shape[0] < 2:
        if several:
            return np.full(shape, np.nan), np.full(shape, np.nan)
        return float("nan"), float("nan")

    n = data.shape[0]

    def resampled(index, axis=-1):
        # index: (..., m) cluster indices. Each resample's sum is its clusters' counts times
        # their statistics, exact for integer statistics whatever the order of the sum.
        flat = index.reshape(-1, index.shape[-1])
        counts = np.bincount((flat + n * np.arange(flat.shape[0])[:, None]).ravel(),
                             minlength=flat.shape[0] * n).reshape(flat.shape[0], n)
        summed = (counts.astype(np.float64) @ data).reshape(index.shape[:-1] + data.shape[1:])
        values = statistic(summed)
        # scipy wants several statistics on the first axis
        return np.moveaxis(values, -1, 0) if several else values

    # Degenerate resamples (an empty 2x2 cell) give NaN, reported as not computable. The
    # warnings filters are process-wide, and gates run on threads: catch_warnings blocks
    # that overlapped would restore each other's filters, so they take turns.
    with _WARNINGS_LOCK, np.errstate(divide="ignore", invalid="ignore"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interval = bootstrap((np.arange(data.shape[0]),), resampled, vectorized=True,
                             n_resamples=n_resamples, confidence_level=confidence_level,
                             method=method, rng=np.random.default_rng(seed)
                             ).confidence_interval
    if several:
        return np.asarray(interval.low, dtype=np.float64), np.asarray(interval.high,
                                                                     dtype=np.float64)
    return float(interval.low), float(interval.high)


def _passes(value, comparator, threshold):
    return value <= threshold if comparator == "le" else value >= threshold


def judge(name, value, spec, owner, *, ci=None, support_ok=True, ceiling=None):
    """One component's record: its value against B and B+ (on the CI for rate gates).

    ``owner`` is the state that produces what the component measures.
    """
    comparator = spec["comparator"]
    value = float(value) if value is not None else float("nan")
    low, high = ci if ci is not None else (float("nan"), float("nan"))
    widened = False
    if not (np.isnan(value) or np.isnan(low) or np.isnan(high)) and not low <= value <= high:
        low, high, widened = min(low, value), max(high, value), True
    record = {"name": name, "value": None if np.isnan(value) else value,
              "comparator": comparator, "threshold_B": spec["B"], "threshold_Bplus": spec["Bplus"],
              "ci_low": None if np.isnan(low) else low, "ci_high": None if np.isnan(high) else high,
              "pass_B": False, "pass_Bplus": False, "owner_state": owner, "reason": None}
    if widened:
        record["ci_widened"] = True
    if not support_ok:
        record["reason"] = "insufficient_support"
    elif np.isnan(value):
        record["reason"] = "not_computable"
    elif ci is not None and (np.isnan(low) or np.isnan(high)):
        record["reason"] = "ci_not_computable"
    else:
        # A rate gate is judged on the CI bound on the failing side.
        judged = value if ci is None else (low if comparator == "ge" else high)
        record["pass_B"] = bool(_passes(judged, comparator, spec["B"]))
        record["pass_Bplus"] = bool(_passes(judged, comparator, spec["Bplus"]))
        if ceiling is not None and (high if ci is not None else value) > ceiling:
            record["pass_B"] = record["pass_Bplus"] = False
            record["reason"] = "over_separable"
        elif not record["pass_B"]:
            # A value that passes with a CI that does not: the evidence is too thin.
            record["reason"] = "ci_too_wide" if ci is not None and _passes(
                value, comparator, spec["B"]) else "threshold"
        elif not record["pass_Bplus"]:
            record["reason"] = "ci_too_wide" if ci is not None and _passes(
                value, comparator, spec["Bplus"]) else "below_Bplus"
    return record


@dataclass
class Streams:
    """The gates' PRF substreams (state ``gates`` in the RNG audit): the bootstrap keyed by
    the validation hash, which judges, and the 6B probe's flows keyed by S5's parameter hash,
    as what they probe. So a judging change never re-draws the data, and a tightened
    threshold leaves the probe's flows as they were."""

    bootstrap: Substreams
    probe: Substreams
    state: str = "gates"

    @classmethod
    def of(cls, manifest_fingerprint, data_hash, validation_hash, seed):
        return cls(Substreams(cls.state, manifest_fingerprint, validation_hash, seed),
                   Substreams(cls.state, manifest_fingerprint, data_hash, seed))

    def branch(self):
        return Streams(self.bootstrap.branch(), self.probe.branch())

    def merge(self, branch):
        self.bootstrap.merge(branch.bootstrap)
        self.probe.merge(branch.probe)

    @property
    def trace(self):
        return self.bootstrap.trace + self.probe.trace

    def audit(self):
        return sorted(self.bootstrap.audit() + self.probe.audit(), key=lambda r: r["substream"])


class Context:
    """What every gate reads: the run's statistics, config, the seed and its bootstrap
    settings. Gates run concurrently, each on a ``copy`` with its own ledger of draws."""

    def __init__(self, measured, config, seed, streams):
        self.measured = measured
        self.stats = measured.stats
        self.config = config
        self.policy = config[VALIDATION_POLICY]
        self.seed = seed
        self.rng = streams  # Streams: the keys of the gates' draws, and their audit
        self.n_clusters = int(self.policy["bootstrap"]["clusters"])
        self.support = self.policy["min_support"]
        # per-rule histograms of accounts per holder, shared by T1, T2 and T8
        self.holdings = holdings_by_rule(self.stats, config[ACCOUNT_PRIORS]["rules"])

    def spec(self, gate_id, component):
        return self.policy["gates"][gate_id]["components"][component]

    def ci(self, gate_id, cluster_stats, statistic):
        boot = self.policy["bootstrap"]
        label = f"gates.bootstrap.{gate_id}"
        n_resamples = int(boot["n_resamples"])
        # numpy's generator, seeded from the judging key, draws the resampled cluster indices.
        self.rng.bootstrap.record(label, n_resamples, len(cluster_stats))
        return bootstrap_ci(cluster_stats, statistic, seed=int(self.rng.bootstrap.key(label)),
                            n_resamples=n_resamples,
                            confidence_level=float(boot["confidence_level"]), method=boot["method"])


# --- the gates ----------------------------------------------------------------------------


def holdings_by_rule(stats, rules):
    """``([(rule, histogram of accounts per holder of the rule's cell)], histogram of the
    cells no rule covers)``."""
    party_types = stats.vocabularies["party_types"]
    account_types = stats.vocabularies["account_types"]
    histograms = stats["holdings"]
    out, covered = [], np.zeros(histograms.shape[0], dtype=bool)
    for rule in rules:
        if rule["party_type"] not in party_types or rule["account_type"] not in account_types:
            out.append((rule, np.zeros(1, dtype=np.int64)))
            continue
        cell = (party_types.index(rule["party_type"]) * len(account_types)
                + account_types.index(rule["account_type"]))
        covered[cell] = True
        out.append((rule, histograms[cell]))
    return out, histograms[~covered].sum(axis=0)


def gate_t1(ctx):
    rules, orphans = ctx.holdings
    excess = max([metrics.accounts_above_kmax(h, r["k_max"]) for r, h in rules], default=0)
    # A holding no rule covers has no K_max: every account of it is above the cap.
    excess = max(excess, metrics.largest(orphans))
    spec = ctx.spec("T1_KMAX_HARD_INVARIANT", "max_accounts_above_kmax")
    support = int(sum(h.sum() for _, h in rules) + orphans.sum())
    return [judge("max_accounts_above_kmax", excess, spec, "S2")], support, "exact"


def gate_t2(ctx):
    rules, _ = ctx.holdings
    components = []
    for rule, histogram in rules:
        p99, top = metrics.holder_tail(histogram)
        enough = histogram.sum() >= ctx.support["holders_per_type"]
        cell = f"{rule['party_type']}.{rule['account_type']}"
        for part, value in (("p99_over_kmax", p99 - rule["k_max"]),
                            ("max_over_kmax", top - rule["k_max"])):
            components.append(judge(f"{cell}.{part}", value,
                                    ctx.spec("T2_KMAX_TAIL_SANITY", part), "S2",
                                    support_ok=enough))
    support = min((int(h.sum()) for _, h in rules), default=0)
    return components, support, "exact"


def _ip_mix(ctx):
    mixes = ctx.config[DEVICE_IP_PRIORS]["ip_type_mix"]
    vocabularies = ctx.stats.vocabularies
    return np.array([[mixes.get(region, {}).get(t, np.nan) for t in vocabularies["ip_types"]]
                     for region in vocabularies["regions"]])


def abs_error_interval(low, high, prior):
    """The interval of ``max |share - prior|`` over cells, from each cell's share interval
    ``[low, high]``: per cell, the distance from the prior to the interval (0 inside it) up
    to the farther end; over cells, the largest of each.

    >>> abs_error_interval(np.array([0.1, 0.5]), np.array([0.3, 0.6]),
    ...                         np.array([0.2, 0.4]))
    (0.09999999999999998, 0.19999999999999996)
    """
    below, above = np.abs(low - prior), np.abs(high - prior)
    nearest = np.where((low <= prior) & (prior <= high), 0.0, np.minimum(below, above))
    return float(np.max(nearest)), float(np.max(np.maximum(below, above)))


def gate_t3(ctx):
    """T3: the largest error, in percentage points, of a realised ip_type share against its
    prior over (region, ip_type). Its interval is the uncertainty of that value: the
    bootstrap CI of each cell's share, turned into an interval of the cell's absolute error,
    and the largest of each end over cells (``abs_error_interval``). The gate is judged
    on its upper end."""
    mix = _ip_mix(ctx)
    n_regions, n_types = mix.shape
    per_cluster = ctx.stats["ip_cells"]

    def shares(summed):
        counts = summed.reshape(summed.shape[:-1] + (n_regions, n_types))
        return (counts / counts.sum(axis=-1, keepdims=True)).reshape(summed.shape)

    prior = mix.ravel()
    value = float(np.max(np.abs(shares(per_cluster.sum(axis=0)) - prior))) * 100.0
    per_region = per_cluster.sum(axis=0).reshape(n_regions, n_types).sum(axis=1)
    support = int(per_region.min()) if per_region.size else 0
    low, high = ctx.ci("T3_IP_PRIOR_ALIGNMENT", per_cluster, shares)
    ci = tuple(100.0 * bound for bound in abs_error_interval(low, high, prior))
    return [judge("max_abs_error_pp", value, ctx.spec("T3_IP_PRIOR_ALIGNMENT", "max_abs_error_pp"),
                  "S4", ci=ci, support_ok=support >= ctx.support["ips_per_region"])], support, \
        "cluster_bootstrap"


def _fraction(summed):
    return summed[..., 0] / summed[..., 1]


def gate_t4(ctx):
    per_cluster = ctx.stats["linked_devices"]
    n_devices = int(ctx.stats["entities"][2])
    value = float(_fraction(per_cluster.sum(axis=0))) if n_devices else float("nan")
    ci = ctx.ci("T4_DEVICE_IP_COVERAGE", per_cluster, _fraction)
    spec = ctx.spec("T4_DEVICE_IP_COVERAGE", "linked_device_fraction")
    return [judge("linked_device_fraction", value, spec, "S4", ci=ci,
                  support_ok=n_devices >= ctx.support["devices"])], n_devices, \
        "cluster_bootstrap"


def gate_t5(ctx):
    p99, top = metrics.devices_per_ip_tail(ctx.stats["devices_per_ip"].sum(axis=0))
    return [judge("p99", p99, ctx.spec("T5_IP_REUSE_TAIL_BOUNDS", "p99"), "S4"),
            judge("max", top, ctx.spec("T5_IP_REUSE_TAIL_BOUNDS", "max"), "S4")], \
        int(ctx.stats["entities"][3]), "exact"


def _role_kinds(stats):
    return [name.split(".", 1)[1] for name in stats.arrays if name.startswith("roles.")]


def unmapped_roles(stats, taxonomy):
    """``(rows, unmapped)``: role rows, and rows whose raw role has no (or the wrong) family."""
    rows = unmapped = 0
    for kind in _role_kinds(stats):
        raw_roles, families = stats.vocabularies[f"roles.{kind}"]
        pairs = stats[f"roles.{kind}"]  # rows per (raw role, family); nulls last
        expected = {r["raw_role"]: r["family"] for r in taxonomy["entity_kinds"].get(kind, [])}
        mapped = sum(int(pairs[code, families.index(expected[name])])
                     for code, name in enumerate(raw_roles)
                     if expected.get(name) in families)
        rows += int(pairs.sum())
        unmapped += int(pairs.sum()) - mapped
    return rows, unmapped


def gate_t6(ctx):
    rows, unmapped = unmapped_roles(ctx.stats, ctx.config[TAXONOMY])
    coverage = (rows - unmapped) / rows if rows else float("nan")
    return [judge("coverage", coverage, ctx.spec("T6_ROLE_MAPPING_COVERAGE", "coverage"), "S5"),
            judge("unmapped", unmapped, ctx.spec("T6_ROLE_MAPPING_COVERAGE", "unmapped"), "S5")], \
        rows, "exact"


def _or_statistic(offset):
    def statistic(summed):
        a, b, c, d = (summed[..., offset + i] for i in range(4))
        return metrics.odds_ratio(a, b, c, d)
    return statistic


def gate_t7(ctx):
    ceiling = ctx.policy["role_distribution_checks"]["propagation"]["max_odds_ratio"]
    components, supports = [], []
    for name in ("OR_account", "OR_device"):
        per_cluster = ctx.stats[name]
        statistic = _or_statistic(0)
        value = statistic(per_cluster.sum(axis=0))
        risky_owners = int(ctx.stats[f"{name}.risky_owners"][0])
        supports.append(risky_owners)
        ci = ctx.ci(f"T7_RISK_PROPAGATION_EFFECT.{name}", per_cluster, statistic)
        components.append(judge(name, value, ctx.spec("T7_RISK_PROPAGATION_EFFECT", name), "S5",
                                ci=ci, support_ok=risky_owners >= ctx.support["risky_owners"],
                                ceiling=ceiling))
    return components, min(supports), "cluster_bootstrap"


def _ip_type_counts(stats):
    """IPs per (region, ip_type)."""
    n_types = len(stats.vocabularies["ip_types"])
    return stats["ip_cells"].sum(axis=0).astype(np.int64).reshape(-1, n_types)


# T8's distributions and the state that produces each.
T8_OWNERS = {"role_mix": "S5", "ip_type_mix": "S4", "accounts_per_holder": "S2"}


def divergences(ctx):
    """``{distribution: (jsd, support_ok)}`` of T8: role mixes, ip_type mixes, holder laws;
    each name starts with its family in ``T8_OWNERS``."""
    stats, out = ctx.stats, {}
    taxonomy = ctx.config[TAXONOMY]
    for kind in _role_kinds(stats):
        raw_roles, _ = stats.vocabularies[f"roles.{kind}"]
        per_code = stats[f"roles.{kind}"].sum(axis=1)  # the last counts null raw roles
        spec = taxonomy["entity_kinds"].get(kind, [])
        names = [r["raw_role"] for r in spec]
        # Null and unknown raw roles land in an extra category with target share 0.
        index = np.array([names.index(n) if n in names else len(names) for n in raw_roles]
                         + [len(names)])
        realised = np.bincount(index, weights=per_code, minlength=len(names) + 1)
        target = [r["target_prevalence"] for r in spec] + [0.0]
        out[f"role_mix.{kind}"] = (metrics.jsd(realised, target), per_code.sum() > 0)
    mix = _ip_mix(ctx)
    counts = _ip_type_counts(stats)
    for g, region in enumerate(stats.vocabularies["regions"]):
        out[f"ip_type_mix.{region}"] = (metrics.jsd(counts[g], mix[g]),
                                        counts[g].sum() >= ctx.support["ips_per_region"])
    rules, _ = ctx.holdings
    for rule, histogram in rules:
        k_max = rule["k_max"]
        # accounts per holder, cut to 1 .. k_max
        realised = np.zeros(k_max, dtype=np.int64)
        np.add.at(realised, np.clip(np.arange(histogram.size), 1, k_max) - 1, histogram)
        law = metrics.holder_law(rule["mean_accounts_per_holder"], k_max)
        out[f"accounts_per_holder.{rule['party_type']}.{rule['account_type']}"] = (
            metrics.jsd(realised, law), histogram.sum() >= ctx.support["holders_per_type"])
    return out


def gate_t8(ctx):
    spec = ctx.spec("T8_DISTRIBUTION_ALIGNMENT_JSD", "max_jsd")
    components = [judge(name, value, spec, T8_OWNERS[name.split(".", 1)[0]], support_ok=ok)
                  for name, (value, ok) in divergences(ctx).items()]
    return components, len(components), "exact"


def violation_owner(violations):
    """The earliest state whose dataset a 6B contract violation names (``s3_...`` -> S3)."""
    states = sorted({f"S{text[1]}" for text in violations
                     if len(text) > 2 and text[0] == "s" and text[1].isdigit()})
    return states[0] if states else "S5"


def gate_t10(ctx):
    """T10: the 6B contract, on the tables and, for its clause that ids carry no role
    information, on the probe's flows (``id_role_information``); and the probe's lift."""
    stats = ctx.stats
    violations = list(stats.violations)
    probe = ctx.policy["downstream_probe"]
    n_flows = max(int(ctx.support["flows"]), min(int(probe["max_flows"]), int(round(
        probe["flows_per_party"] * int(stats["entities"][0])))))
    contract_spec = ctx.spec("T10_DOWNSTREAM_COMPAT_6B", "contract_violations")
    spec = ctx.spec("T10_DOWNSTREAM_COMPAT_6B", "fraud_label_lift")
    if violations:
        contract = judge("contract_violations", len(violations), contract_spec,
                         violation_owner(violations))
        contract["detail"] = violations[:20]
        lift = judge("fraud_label_lift", None, spec, "S5")
        lift["reason"] = "contract_violated"
        return [lift, contract], 0, "cluster_bootstrap"
    probe_rng = ctx.rng.probe
    per_cluster, n_drawn, places = gate_stats.probe_sums(
        ctx.measured, probe_rng.key("gates.t10.flows"), n_flows, ctx.n_clusters)
    probe_rng.record("gates.t10.flows", n_flows, 7)

    def statistic(summed):
        return downstream.lift(summed[..., 0], summed[..., 1], summed[..., 2], summed[..., 3])

    value = statistic(per_cluster.sum(axis=0))
    ci = ctx.ci("T10_DOWNSTREAM_COMPAT_6B", per_cluster, statistic)
    lift = judge("fraud_label_lift", value, spec, "S5", ci=ci,
                 support_ok=n_drawn >= ctx.support["flows"])
    ids = id_role_information(ctx, places)
    violations += [f"ids carry role information: the probe's fraud labels against the place "
                   f"of the flows' {kind} ids in their blocks, AUC {c['auc']:.3f} "
                   f"[{c['auc_ci'][0]:.3f}, {c['auc_ci'][1]:.3f}]"
                   for kind, c in ids.items() if c["leaks"]]
    contract = judge("contract_violations", len(violations), contract_spec, "S5")
    contract["detail"] = violations[:20]
    contract["ids_carry_no_role_information"] = ids
    return [lift, contract], n_drawn, "cluster_bootstrap"


def _auc_and_ci(ctx, ci_key, per_cluster, exact=None):
    """An AUC (of the ``exact`` histograms, else of the per-cluster ones summed; NaN without
    both labels) and its bootstrap CI over the per-cluster histograms ``(n_clusters, 2 *
    leakage.CI_BINS)``, widened to hold the AUC: the interval that ``judge``, or the
    judging of |AUC - 0.5|, starts from."""
    def auc(summed):
        return leakage.binned_auc(summed.reshape(summed.shape[:-1] + (2, leakage.CI_BINS)))

    counts = per_cluster.sum(axis=0).reshape(2, leakage.CI_BINS) if exact is None else exact
    value = float(leakage.binned_auc(counts)) if counts.sum(axis=1).all() else float("nan")
    low, high = ctx.ci(ci_key, per_cluster, auc)
    if np.isfinite(value) and np.isfinite(low) and np.isfinite(high):
        low, high = min(low, value), max(high, value)
    return value, low, high


def id_role_information(ctx, places):
    """Per id column of the probe's flows: the AUC of the fraud label against the id's place
    in its canonical block (at ``leakage.CI_BINS`` places), its bootstrap CI, and whether it
    leaks: the whole CI outside ``0.5 +- downstream.ID_BAND``, a decisive rule, so that a
    contract violation is never noise."""
    out = {}
    for kind, per_cluster in places.items():
        value, low, high = _auc_and_ci(ctx, f"T10_DOWNSTREAM_COMPAT_6B.ids.{kind}", per_cluster)
        known = bool(np.isfinite(value) and np.isfinite(low) and np.isfinite(high))
        out[kind] = {"auc": value if known else None,
                     "auc_ci": [low, high] if known else [None, None],
                     "fraud_flows": int(per_cluster[:, :leakage.CI_BINS].sum()),
                     "leaks": known and (low > 0.5 + downstream.ID_BAND
                                         or high < 0.5 - downstream.ID_BAND)}
    return out


def gate_l1(ctx):
    """L1: per entity kind, the AUC of ``is_risky`` against each artefact feature (judged on
    |AUC - 0.5|, whose interval comes from the AUC's CI as T3's does) and against the
    intended covariate (judged on the AUC)."""
    sums = gate_stats.leakage_sums(ctx.measured, ctx.n_clusters)
    artefact = ctx.spec("L1_LABEL_LEAKAGE", "artefact_auc_deviation")
    signal = ctx.spec("L1_LABEL_LEAKAGE", "signal_auc")
    components, supports = [], []
    for kind in leakage.KINDS:
        for feature in (*leakage.ARTEFACTS, leakage.SIGNALS[kind]):
            name = f"{kind}.{feature}"
            if (kind, feature) not in sums:
                component = judge(name, None, signal if leakage.is_signal(feature) else artefact,
                                  "S5")
                components.append(component)
                continue
            exact, per_cluster = sums[(kind, feature)]
            n_risky, n_clean = (int(n) for n in exact.sum(axis=1))
            supports.append(min(n_risky, n_clean))
            value, low, high = _auc_and_ci(ctx, f"L1_LABEL_LEAKAGE.{name}", per_cluster, exact)
            enough = min(n_risky, n_clean) >= ctx.support["risky_entities"]
            if leakage.is_signal(feature):
                component = judge(name, value, signal, "S5", ci=(low, high), support_ok=enough)
            else:
                deviation = abs(value - 0.5)
                component = judge(name, deviation, artefact, "S5", support_ok=enough,
                                  ci=abs_error_interval(np.array([low]), np.array([high]),
                                                        np.array([0.5])))
            component.update(auc=None if np.isnan(value) else value,
                             auc_ci=[None if np.isnan(low) else low,
                                     None if np.isnan(high) else high],
                             n_risky=n_risky, n_clean=n_clean)
            components.append(component)
    return components, min(supports, default=0), "cluster_bootstrap"


def gating(policy, test_id):
    """Which decisions a gate gates (``seg6a.judging.GATING_ORDER``): "B" (PASS_B and
    PASS_BPLUS) for the reference plan's gates, the policy's ``gating`` for an extension."""
    return policy.get("gating", {}).get(test_id, "B")


def counts_toward(policy, test_id, band):
    """Whether a gate's verdict at ``band`` ("B" or "Bplus") counts toward the decision.

    >>> policy = {"gating": {"L1_LABEL_LEAKAGE": "Bplus"}}
    >>> counts_toward(policy, "L1_LABEL_LEAKAGE", "B"), counts_toward(policy, "T1", "B")
    (False, True)
    """
    how = gating(policy, test_id)
    return how == "B" or (how == "Bplus" and band == "Bplus")


_GATE_FUNCTIONS = {
    "T1_KMAX_HARD_INVARIANT": gate_t1, "T2_KMAX_TAIL_SANITY": gate_t2,
    "T3_IP_PRIOR_ALIGNMENT": gate_t3, "T4_DEVICE_IP_COVERAGE": gate_t4,
    "T5_IP_REUSE_TAIL_BOUNDS": gate_t5, "T6_ROLE_MAPPING_COVERAGE": gate_t6,
    "T7_RISK_PROPAGATION_EFFECT": gate_t7, "T8_DISTRIBUTION_ALIGNMENT_JSD": gate_t8,
    "T10_DOWNSTREAM_COMPAT_6B": gate_t10, "L1_LABEL_LEAKAGE": gate_l1,
}


# Owners in pipeline order: a failure owned by several states is fixed by rerunning from the
# earliest ("ALL", T9 without a computable metric, reruns every data state).
OWNER_ORDER = ("ALL", "S0", "S1", "S2", "S3", "S4", "S5")


def earliest(owners):
    """The earliest of some owner states (None for none)."""
    return min(owners, key=OWNER_ORDER.index, default=None)


def headline_of(components):
    """The component a record shows: the first failing one; else the worst, by its own
    comparator, of those judged like the first (e.g. the largest JSD of T8, the smallest
    odds ratio of T7)."""
    failing = [c for c in components if not c["pass_Bplus"]]
    if failing:
        return failing[0]
    first = components[0]
    judged_alike = ("comparator", "threshold_B", "threshold_Bplus")
    alike = [c for c in components if all(c[k] == first[k] for k in judged_alike)]
    return (max if first["comparator"] == "le" else min)(alike, key=lambda c: c["value"])


def record(gate_id, policy, components, seed, support, method):
    """The board record of a gate from its components (see ``headline_of`` for the value it
    shows). Its owner is the policy's, or, when it fails B+, the earliest owner among its
    failing components: the state a rerun must start from."""
    gate = policy["gates"][gate_id]
    if components:
        headline = headline_of(components)
    else:
        headline = {"value": None, "comparator": None, "threshold_B": None,
                    "threshold_Bplus": None, "ci_low": None, "ci_high": None,
                    "reason": "not_computable"}
    failing_owners = [c["owner_state"] for c in components if not c["pass_Bplus"]]
    out = {
        "test_id": gate_id,
        "metric_name": gate["metric_name"],
        "value": headline["value"],
        "comparator": headline["comparator"],
        "threshold_B": headline["threshold_B"],
        "threshold_Bplus": headline["threshold_Bplus"],
        "pass_B": bool(components) and all(c["pass_B"] for c in components),
        "pass_Bplus": bool(components) and all(c["pass_Bplus"] for c in components),
        "ci_low": headline["ci_low"],
        "ci_high": headline["ci_high"],
        "seed": seed,
        "support": support,
        "method": method,
        "owner_state": earliest(failing_owners) or gate["owner_state"],
        "reason": next((c["reason"] for c in components if c["reason"]), None)
        if components else headline["reason"],
    }
    if headline.get("ci_widened"):
        out["ci_widened"] = True
    if len(components) > 1:
        out["components"] = {c["name"]: {k: v for k, v in c.items() if k != "name"}
                             for c in components}
    elif components and components[0].get("detail"):
        out["detail"] = components[0]["detail"]
    return out


def stamp(records, judging):
    """Mark records with the judging policy they were judged by: its hash, and the waivers
    and overrides touching each (``seg6a.judging.Judging``)."""
    for r in records:
        r["validation_hash"] = judging.validation_hash
        r["waivers"] = judging.waivers_of(r["test_id"])
        r["overrides"] = judging.overrides_of(r["test_id"])
    return records


def failing_components(record, band):
    """``[(name, component)]`` of a record that fail ``band`` ("B" or "Bplus"); a record
    without parts is its own single component (name None). Not-evaluable ones never fail."""
    parts = record.get("components") or {None: record}
    return [(name, c) for name, c in parts.items() if c[f"pass_{band}"] is False]


def remedy(test_id, component):
    """What fixes a failing component: ``(rerun, text)``, ``rerun`` being the ``--from``
    state (None when no rerun can: too little support needs a larger scale or more seeds)."""
    if component["reason"] in ("insufficient_support", "ci_too_wide"):
        if test_id == "T9_CROSS_SEED_STABILITY":
            return None, "more seeds: certify with --seeds"
        return None, "more support: a larger --scale"
    owner = component["owner_state"]
    state = "S1" if owner == "ALL" else owner
    return f"--from {state}", f"rerun --from {state}"


# The owner of each stability metric of T9, by its name's first part (T8's: its worst
# component's, recorded per seed).
_STABILITY_OWNERS = {"T3": "S4", "T4": "S4", "T5": "S4", "T7": "S5", "prevalence": "S5"}


def stability_metrics(stats, records):
    """The per-seed values T9 compares across seeds (SPEC section 5).

    T3 enters through the realised ip_type shares it compares (its error is near zero by
    construction, so a coefficient of variation of the error would measure rounding noise).
    """
    by_id = {r["test_id"]: r for r in records}
    out = {}
    counts = _ip_type_counts(stats)
    for g, region in enumerate(stats.vocabularies["regions"]):
        for t, ip_type in enumerate(stats.vocabularies["ip_types"]):
            if counts[g].sum():
                out[f"T3.share.{region}.{ip_type}"] = float(counts[g, t] / counts[g].sum())
    out["T4.linked_device_fraction"] = by_id["T4_DEVICE_IP_COVERAGE"]["value"]
    out["T5.p99"] = by_id["T5_IP_REUSE_TAIL_BOUNDS"]["components"]["p99"]["value"]
    for name in ("OR_account", "OR_device"):
        out[f"T7.{name}"] = by_id["T7_RISK_PROPAGATION_EFFECT"]["components"][name]["value"]
    out["T8.max_jsd"] = by_id["T8_DISTRIBUTION_ALIGNMENT_JSD"]["value"]
    for kind in _role_kinds(stats):
        risky, rows, _ = stats[f"risky.{kind}"]
        out[f"prevalence.{kind}"] = float(risky / rows) if rows else None
    return out


def _t8_owner(records):
    """The owner of T8's headline component (its largest divergence, or first failure)."""
    t8 = next(r for r in records if r["test_id"] == "T8_DISTRIBUTION_ALIGNMENT_JSD")
    parts = t8.get("components") or {}
    headline = [c["owner_state"] for c in parts.values()
                if c["value"] == t8["value"] and c["value"] is not None]
    return headline[0] if headline else t8["owner_state"]


def evaluate(measured, config, seed, streams, judging):
    """The board of one seed: a record per gate, T9 marked not evaluable (single run).

    Parameters
    ----------
    measured : seg6a.gates.stats.Measured
        The statistics of the published tables (``seg6a.gates.stats.measure_run``).
    config : Mapping
        Config documents by file name (validation policy, priors, taxonomy).
    seed : int
    streams : Streams
        Keys of the bootstrap and of the 6B probe, and the audit of their draws.
    judging : seg6a.judging.Judging
        The validation policy's hash, waivers and overrides, stamped on every record.
    """
    ctx = Context(measured, config, seed, streams)
    gate_ids = [g for g in GATES if g != "T9_CROSS_SEED_STABILITY"]
    contexts = [copy.copy(ctx) for _ in gate_ids]
    for gate_ctx in contexts:
        gate_ctx.rng = streams.branch()

    def evaluate_gate(gate_id, gate_ctx):
        # Empty cells give NaN metrics, which judge() fails with a reason.
        with np.errstate(divide="ignore", invalid="ignore"):
            components, support, method = _GATE_FUNCTIONS[gate_id](gate_ctx)
        return record(gate_id, ctx.policy, components, seed, support, method)

    records = concurrently(*[functools.partial(evaluate_gate, gate_id, gate_ctx)
                             for gate_id, gate_ctx in zip(gate_ids, contexts)])
    for r in records:
        if r["test_id"] in ctx.policy.get("gating", {}):
            r["gating"] = gating(ctx.policy, r["test_id"])
    for gate_ctx in contexts:  # the audit lists draws in gate order, however they ran
        streams.merge(gate_ctx.rng)
    t9 = not_evaluable(ctx.policy, seed)
    # The seed's inputs to T9, which certification compares across seeds.
    t9["stability_metrics"] = stability_metrics(measured.stats, records)
    t9["stability_owners"] = {"T8.max_jsd": _t8_owner(records)}
    records.insert(GATES.index("T9_CROSS_SEED_STABILITY"), t9)
    return stamp(records, judging)


def _stability_owner(name, per_seed, values):
    """The state that produces a stability metric; for T8's, its worst seed's T8 owner."""
    prefix = name.split(".", 1)[0]
    if prefix in _STABILITY_OWNERS:
        return _STABILITY_OWNERS[prefix]
    owners = [t9.get("stability_owners", {}).get(name) for t9 in per_seed]
    finite = np.where(np.isfinite(values), values, -np.inf)
    return owners[int(np.argmax(finite))] or "ALL"


def cross_seed_stability(policy, boards):
    """T9 over several seeds' boards: the largest coefficient of variation (sample standard
    deviation over the absolute mean) of each stability metric across the seeds; owned by
    the state that produces its least stable metric."""
    seeds = [board[0]["seed"] for board in boards]
    per_seed = [next(r for r in board if r["test_id"] == "T9_CROSS_SEED_STABILITY")
                for board in boards]
    metrics_per_seed = [t9["stability_metrics"] for t9 in per_seed]
    names = sorted(set().union(*metrics_per_seed))
    cvs, values_of = {}, {}
    for name in names:
        values = np.array([m.get(name) if m.get(name) is not None else np.nan
                           for m in metrics_per_seed], dtype=np.float64)
        values_of[name] = values
        mean = np.mean(values)
        cvs[name] = float(np.std(values, ddof=1) / abs(mean)) if mean and len(values) > 1 \
            else float("nan")
    spec = policy["gates"]["T9_CROSS_SEED_STABILITY"]["components"]["max_cv"]
    computable = bool(cvs) and all(np.isfinite(v) for v in cvs.values())
    worst = max(cvs, key=cvs.get) if computable else None
    owner = _stability_owner(worst, per_seed, values_of[worst]) if worst else "ALL"
    component = judge("max_cv", cvs[worst] if computable else None, spec, owner,
                      support_ok=len(seeds) >= 2)
    out = record("T9_CROSS_SEED_STABILITY", policy, [component], "pooled", len(seeds),
                 "cross_seed_cv")
    out["owner_state"] = owner
    out["seeds"] = seeds
    out["worst_metric"] = worst
    out["coefficients_of_variation"] = {k: (v if np.isfinite(v) else None) for k, v in cvs.items()}
    return out


def not_evaluable(policy, seed):
    """T9 of a single run: computed only by certification over several seeds, so its pass
    fields are null (neither passed nor failed)."""
    spec = policy["gates"]["T9_CROSS_SEED_STABILITY"]["components"]["max_cv"]
    out = record("T9_CROSS_SEED_STABILITY", policy, [], seed, 0, "cross_seed_cv")
    out.update(comparator=spec["comparator"], threshold_B=spec["B"],
               threshold_Bplus=spec["Bplus"], pass_B=None, pass_Bplus=None,
               reason=NOT_EVALUABLE)
    return out
