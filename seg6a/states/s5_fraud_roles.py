"""S5 — fraud posture: a role for every party, account, merchant, device and IP.

Each entity gets a covariate code from the upstream graph and the roles already drawn:

- party: uses a shared device; reaches a high-sharing IP (risky parties cluster on edges);
- account: its owner is risky;
- merchant: its merchant category code and size class;
- device: any party using it is risky (so risk crosses household edges);
- IP: risky devices it serves (capped), high sharing, its ip_type.

Its log-odds are ``clamp(base + shift[code])`` with shifts from
``risk_propagation_coeffs_6A.v1.yaml``; ``base`` is solved with ``scipy.optimize.brentq`` so
that the expected prevalence of risky roles equals the taxonomy's target despite the uplift.
A PRF draw against ``sigmoid(logit)`` decides risky or clean, a second picks the raw role
in proportion to the taxonomy's prevalences. Then the validation bundle checks structure
and, fail-closed at the B thresholds, the realism metrics of T1-T8 from the same arrays
that are published; ``_passed.flag`` is written only when every check passes.
"""
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.optimize import brentq

from ..errors import ParameterError
from ..gates import metrics
from ..kernels.csr import count_flagged, transpose
from ..kernels.sample import normalised_cdf
from ..kernels.uplift import draw_roles, expected_prevalence
from ..rng import Substreams
from ..tables import Dataset, block_offsets_for, dictionary_column

STATE = "S5"
TAXONOMY = "fraud_role_taxonomy_6A.v1.yaml"
PROPAGATION = "risk_propagation_coeffs_6A.v1.yaml"
VALIDATION_POLICY = "validation_policy_6A.v1.yaml"
ACCOUNT_PRIORS = "account_per_party_priors_6A.v1.yaml"
DEVICE_IP_PRIORS = "device_ip_priors_6A.v1.yaml"
KINDS = ("party", "account", "merchant", "device", "ip")
DATASETS = {kind: f"s5_{kind}_fraud_roles_6A" for kind in KINDS}
REPORT = "s5_validation_report_6A.json"
PASSED_FLAG = "_passed.flag"
MAX_RISKY_NEIGHBOURS = 15  # IP covariate: risky devices served, counted up to this


@dataclass(frozen=True)
class Roles:
    """The roles of one entity kind; entity ids are row indices.

    Attributes
    ----------
    kind : str
    role : int16 array
        Code into ``raw_roles`` per entity.
    code : int64 array
        Covariate code per entity; ``logit_of_code[code]`` is its clamped log-odds.
    shift : float64 array
        Uplift per code; ``logit_of_code = clip(base_logit + shift, clamp)``.
    logit_of_code : float64 array
    raw_roles, families : tuple of str
        The kind's raw roles and the canonical family of each.
    role_is_risky : bool array
        Per raw role.
    target : float64 array
        Target prevalence per raw role.
    base_logit : float
        The calibrated base log-odds.
    """

    kind: str
    role: np.ndarray
    code: np.ndarray
    shift: np.ndarray
    logit_of_code: np.ndarray
    raw_roles: tuple
    families: tuple
    role_is_risky: np.ndarray
    target: np.ndarray
    base_logit: float

    @property
    def is_risky(self):
        return self.role_is_risky[self.role]

    @property
    def risk_logit(self):
        return self.logit_of_code[self.code]


@dataclass(frozen=True)
class FraudPosture:
    """S5's outcome: the roles per kind, the validation report and the uplift evidence."""

    roles: dict
    report: dict
    counters: dict

    @property
    def passed(self):
        return self.report["overall_status"] == "PASS"


def calibrate_base(kind, shift, counts, target, low, high, xtol, tolerance):
    """The base log-odds whose expected prevalence over the code counts equals ``target``."""
    def gap(base):
        return expected_prevalence(base, shift, counts, low, high) - target

    lower, upper = low - shift.max() - 1.0, high - shift.min() + 1.0
    if not gap(lower) < 0.0 < gap(upper):
        raise ParameterError(
            f"S5: the {kind} risky prevalence {target:g} cannot be met within "
            f"logit_clamp [{low:g}, {high:g}] of {PROPAGATION}")
    base = brentq(gap, lower, upper, xtol=xtol)
    if abs(gap(base)) > tolerance:
        raise ParameterError(f"S5: calibration of the {kind} base log-odds missed its target "
                             f"{target:g} by {abs(gap(base)):.3g}")
    return base


def assign(kind, rng, code, shift, taxonomy, families_vocab, propagation):
    """Calibrate and draw the roles of one entity kind."""
    spec = taxonomy["entity_kinds"][kind]
    raw_roles = tuple(r["raw_role"] for r in spec)
    role_is_risky = np.array([r["is_risky"] for r in spec])
    target = np.array([r["target_prevalence"] for r in spec], dtype=np.float64)
    clamp, calibration = propagation["logit_clamp"], propagation["calibration"]
    counts = np.bincount(code, minlength=shift.shape[0]).astype(np.float64)
    base = calibrate_base(kind, shift, counts, float(target[role_is_risky].sum()), clamp["min"],
                          clamp["max"], calibration["xtol"], calibration["prevalence_tolerance"])
    logit_of_code = np.clip(base + shift, clamp["min"], clamp["max"])
    risky = np.flatnonzero(role_is_risky).astype(np.int16)
    clean = np.flatnonzero(~role_is_risky).astype(np.int16)
    label = f"s5.role.{kind}"
    role = draw_roles(rng.key(label), code, logit_of_code, risky,
                      normalised_cdf(target[risky][None, :]), clean,
                      normalised_cdf(target[clean][None, :]))
    rng.record(label, code.shape[0], 2)
    families = tuple(r["family"] for r in spec)
    assert set(families) <= set(families_vocab)  # the taxonomy contract checks this
    return Roles(kind, role, code, shift, logit_of_code, raw_roles, families, role_is_risky, target, base)


def run(sealed, parties, accounts, devices, perf):
    """Assign fraud roles and validate. Returns ``(FraudPosture, [Dataset], Substreams)``."""
    rng = Substreams(STATE, sealed.manifest_fingerprint, sealed.parameter_hashes[STATE], sealed.seed)
    with perf.substep(STATE, "load_contracts_inputs"):
        taxonomy = sealed.config[TAXONOMY]
        propagation = sealed.config[PROPAGATION]
        families_vocab = tuple(taxonomy["families"])
        to_ip = propagation["to_ip"]
        high_sharing = np.diff(devices.ip_device_ptr) >= to_ip["high_sharing_devices_per_ip"]
        merchants = sealed.world.merchants

    roles = {}
    with perf.substep(STATE, "assign_party_roles") as event:
        graph = propagation["party_graph"]
        device_shared = np.diff(devices.device_party_ptr) > 1
        device_high = count_flagged(devices.device_ip_ptr, devices.device_ip_ids, high_sharing) > 0
        party_device_ptr, party_device_ids = transpose(
            devices.device_party_ptr, devices.device_party_ids, parties.n_parties)
        uses_shared = count_flagged(party_device_ptr, party_device_ids, device_shared) > 0
        reaches_high = count_flagged(party_device_ptr, party_device_ids, device_high) > 0
        code = uses_shared.astype(np.int64) + 2 * reaches_high
        shift = np.array([0.0, graph["beta_shared_device"], graph["beta_high_sharing_ip"],
                          graph["beta_shared_device"] + graph["beta_high_sharing_ip"]])
        roles["party"] = assign("party", rng, code, shift, taxonomy, families_vocab, propagation)
        party_risky = roles["party"].is_risky
        event["rows"] = parties.n_parties

    with perf.substep(STATE, "assign_account_roles") as event:
        code = party_risky[accounts.owner_party_id].astype(np.int64)
        shift = np.array([0.0, propagation["party_to_account"]["beta_risky_owner"]])
        roles["account"] = assign("account", rng, code, shift, taxonomy, families_vocab,
                                  propagation)
        event["rows"] = code.shape[0]

    with perf.substep(STATE, "assign_merchant_roles") as event:
        to_merchant = propagation["to_merchant"]
        mcc = merchants.column("mcc").to_numpy()
        mccs, mcc_code = np.unique(mcc, return_inverse=True)
        sizes, size_code = np.unique(np.asarray(merchants.column("size_class").to_pylist()),
                                     return_inverse=True)
        mcc_shift = np.array([to_merchant["beta_mcc"].get(f"{int(m):04d}", 0.0) for m in mccs])
        size_shift = np.array([to_merchant["beta_size_class"].get(str(s), 0.0) for s in sizes])
        code = mcc_code.astype(np.int64) * len(sizes) + size_code
        shift = (mcc_shift[:, None] + size_shift[None, :]).ravel()
        roles["merchant"] = assign("merchant", rng, code, shift, taxonomy, families_vocab,
                                   propagation)
        event["rows"] = code.shape[0]

    with perf.substep(STATE, "assign_device_roles") as event:
        used_by_risky = count_flagged(devices.device_party_ptr, devices.device_party_ids,
                                      party_risky) > 0
        code = used_by_risky.astype(np.int64)
        shift = np.array([0.0, propagation["party_to_device"]["beta_risky_party"]])
        roles["device"] = assign("device", rng, code, shift, taxonomy, families_vocab,
                                 propagation)
        event["rows"] = code.shape[0]

    with perf.substep(STATE, "assign_ip_roles") as event:
        n_types = len(devices.ip_types)
        risky_devices = count_flagged(devices.ip_device_ptr, devices.ip_device_ids,
                                      roles["device"].is_risky)
        neighbours = np.minimum(risky_devices, MAX_RISKY_NEIGHBOURS)
        code = (neighbours * 2 + high_sharing) * n_types + devices.ip_type
        per_neighbour = np.arange(MAX_RISKY_NEIGHBOURS + 1) * to_ip["beta_per_risky_device"]
        per_sharing = np.array([0.0, to_ip["beta_high_sharing"]])
        per_type = np.array([to_ip["beta_ip_type"][t] for t in devices.ip_types])
        shift = (per_neighbour[:, None, None] + per_sharing[None, :, None]
                 + per_type[None, None, :]).ravel()
        roles["ip"] = assign("ip", rng, code.astype(np.int64), shift, taxonomy, families_vocab,
                             propagation)
        event["rows"] = code.shape[0]

    with perf.substep(STATE, "validation_checks") as event:
        tables = {kind: role_table(roles[kind], families_vocab) for kind in KINDS}
        report = validate(sealed, parties, accounts, devices, roles, tables)
        event["rows"] = len(report["checks"])

    with perf.substep(STATE, "bundle_publish") as event:
        blocks = block_offsets_for(parties.n_parties, sealed.scale.block_size)
        offsets = {
            "party": blocks,
            "account": accounts.party_account_ptr[blocks],
            "merchant": np.array([0, merchants.num_rows], dtype=np.int64),
            "device": devices.party_device_ptr[blocks],
            "ip": devices.ip_block_ptr,
        }
        ph = sealed.parameter_hashes[STATE]
        datasets = [Dataset(DATASETS[kind], STATE, tables[kind], offsets[kind], ph)
                    for kind in KINDS]
        counters = uplift_evidence(roles, accounts, devices)
        event["rows"] = sum(t.num_rows for t in tables.values())
    return FraudPosture(roles, report, counters), datasets, rng


def role_table(roles, families_vocab):
    """The published role table of one kind: ``<kind>_id, raw_role, canonical_role_family,
    is_risky, risk_logit``."""
    family_code = np.array([families_vocab.index(f) for f in roles.families], dtype=np.int16)
    return pa.table({
        f"{roles.kind}_id": pa.array(np.arange(roles.role.shape[0], dtype=np.int64)),
        "raw_role": dictionary_column(roles.role, roles.raw_roles),
        "canonical_role_family": dictionary_column(family_code[roles.role], families_vocab),
        "is_risky": pa.array(roles.is_risky),
        "risk_logit": pa.array(roles.risk_logit.astype(np.float32)),
    })


def uplift_evidence(roles, accounts, devices):
    """Counters showing the uplift at work: prevalence, base log-odds, and risky rates by signal."""
    counters = {}
    for kind, r in roles.items():
        counters[f"{kind}_base_logit"] = round(float(r.base_logit), 6)
        counters[f"{kind}_risky"] = int(np.count_nonzero(r.is_risky))
        counters[f"{kind}_entities"] = int(r.role.shape[0])
    party_risky = roles["party"].is_risky
    owner_risky = party_risky[accounts.owner_party_id]
    account_risky = roles["account"].is_risky
    counters["accounts_of_risky_owners"] = int(owner_risky.sum())
    counters["risky_accounts_of_risky_owners"] = int((owner_risky & account_risky).sum())
    primary_risky = party_risky[devices.primary_party_id]
    counters["devices_of_risky_primaries"] = int(primary_risky.sum())
    counters["risky_devices_of_risky_primaries"] = int(
        (primary_risky & roles["device"].is_risky).sum())
    return counters


# --- validation -------------------------------------------------------------------------


def _passes(value, comparator, threshold):
    if value is None or not np.isfinite(value):
        return False
    return value <= threshold if comparator == "le" else value >= threshold


class _Checks:
    """Collects check records; realism checks are judged at the B thresholds (fail-closed)."""

    def __init__(self, policy):
        self.policy = policy
        self.records = []

    def add(self, check_id, owner_state, value, comparator, threshold, kind="realism",
            support_ok=True, detail=None):
        value = None if value is None or not np.isfinite(value) else float(value)
        if not support_ok:
            status, reason = "FAIL", "insufficient_support"
        elif value is None:
            status, reason = "FAIL", "not_computable"
        else:
            ok = _passes(value, comparator, threshold)
            status, reason = ("PASS", None) if ok else ("FAIL", "threshold")
        self.records.append({
            "check_id": check_id, "kind": kind, "owner_state": owner_state, "status": status,
            "value": value, "comparator": comparator, "threshold": threshold, "reason": reason,
            "detail": detail,
        })

    def gate(self, gate_id, component, value, **kwargs):
        gate = self.policy["gates"][gate_id]
        spec = gate["components"][component]
        self.add(f"{gate_id}.{component}", gate["owner_state"], value, spec["comparator"],
                 spec["B"], **kwargs)


def validate(sealed, parties, accounts, devices, roles, tables):
    """The S5 validation report: structural checks and realism checks at the B thresholds."""
    policy = sealed.config[VALIDATION_POLICY]
    support = policy["min_support"]
    checks = _Checks(policy)

    # Structure: exactly one role row per entity, no nulls, every raw role mapped.
    n_entities = {"party": parties.n_parties, "account": accounts.owner_party_id.shape[0],
                  "merchant": sealed.world.merchants.num_rows, "device": devices.n_devices,
                  "ip": devices.n_ips}
    for kind, table in tables.items():
        ids = table.column(f"{kind}_id").to_numpy()
        one_row_each = ids.shape[0] == n_entities[kind] and np.array_equal(
            ids, np.arange(n_entities[kind]))
        checks.add(f"STRUCT.{kind}.one_row_per_entity", STATE, float(one_row_each), "ge", 1.0,
                   kind="structural")
        nulls = sum(column.null_count for column in table.columns)
        checks.add(f"STRUCT.{kind}.no_nulls", STATE, nulls, "le", 0, kind="structural")

    # T6: share of role rows with a canonical family, and unmapped rows.
    rows = sum(t.num_rows for t in tables.values())
    unmapped = sum(t.column("canonical_role_family").null_count for t in tables.values())
    checks.gate("T6_ROLE_MAPPING_COVERAGE", "coverage", (rows - unmapped) / rows if rows else None)
    checks.gate("T6_ROLE_MAPPING_COVERAGE", "unmapped", unmapped)

    # T1, T2: accounts per (party, account type) against K_max.
    excess, p99_over, max_over = 0, -np.inf, -np.inf
    holders_ok = True
    for r, rule in enumerate(accounts.rules):
        column = accounts.counts[:, r]
        excess = max(excess, metrics.accounts_above_kmax(column, rule["k_max"]))
        p99, top = metrics.holder_tail(column)
        holders_ok &= np.count_nonzero(column) >= support["holders_per_type"]
        p99_over, max_over = max(p99_over, p99 - rule["k_max"]), max(max_over, top - rule["k_max"])
    checks.gate("T1_KMAX_HARD_INVARIANT", "max_accounts_above_kmax", excess)
    checks.gate("T2_KMAX_TAIL_SANITY", "p99_over_kmax", p99_over, support_ok=holders_ok)
    checks.gate("T2_KMAX_TAIL_SANITY", "max_over_kmax", max_over, support_ok=holders_ok)

    # T3-T5 and the linkage ceiling, from the device graph.
    mix = _ip_mix(sealed, parties, devices)
    errors, per_region = metrics.ip_type_share_errors(devices.ip_region, devices.ip_type, mix)
    checks.gate("T3_IP_PRIOR_ALIGNMENT", "max_abs_error_pp", np.nanmax(errors),
                support_ok=bool(per_region.min() >= support["ips_per_region"]))
    checks.gate("T4_DEVICE_IP_COVERAGE", "linked_device_fraction",
                metrics.linked_fraction(devices.device_ip_ptr),
                support_ok=devices.n_devices >= support["devices"])
    p99, top = metrics.devices_per_ip_tail(devices.ip_device_ptr)
    checks.gate("T5_IP_REUSE_TAIL_BOUNDS", "p99", p99)
    checks.gate("T5_IP_REUSE_TAIL_BOUNDS", "max", top)
    checks.add("LINKAGE.max_devices_per_ip", "S4", top, "le",
               policy["linkage_checks"]["ip_links"]["max_devices_per_ip"])
    checks.add("ROLES.ip.max_risky_fraction", STATE, float(np.mean(roles["ip"].is_risky)), "le",
               policy["role_distribution_checks"]["ip_roles"]["max_risky_fraction"])

    # T7: the uplift shows in the odds ratios, and stays below the over-separability ceiling.
    party_risky = roles["party"].is_risky
    ceiling = policy["role_distribution_checks"]["propagation"]["max_odds_ratio"]
    enough_risky = int(party_risky.sum()) >= support["risky_owners"]
    for component, entity_risky, owner in (
            ("OR_account", roles["account"].is_risky, accounts.owner_party_id),
            ("OR_device", roles["device"].is_risky, devices.primary_party_id)):
        value = metrics.risky_odds_ratio(entity_risky, party_risky[owner])
        checks.gate("T7_RISK_PROPAGATION_EFFECT", component, value, support_ok=enough_risky)
        checks.add(f"T7_RISK_PROPAGATION_EFFECT.{component}_ceiling", STATE, value, "le", ceiling,
                   support_ok=enough_risky)

    # T8: role mix per kind, ip_type mix per region, accounts per holder per rule.
    divergences = {}
    for kind, r in roles.items():
        realised = np.bincount(r.role, minlength=len(r.raw_roles))
        divergences[f"role_mix.{kind}"] = metrics.jsd(realised, r.target)
    n_types = len(devices.ip_types)
    for g, region in enumerate(parties.regions):
        realised = np.bincount(devices.ip_type[devices.ip_region == g], minlength=n_types)
        divergences[f"ip_type_mix.{region}"] = metrics.jsd(realised, mix[g])
    for r, rule in enumerate(accounts.rules):
        column = accounts.counts[:, r]
        held = column[column > 0]
        realised = np.bincount(held, minlength=rule["k_max"] + 1)[1:rule["k_max"] + 1]
        law = metrics.holder_law(rule["mean_accounts_per_holder"], rule["k_max"])
        divergences[f"accounts_per_holder.{rule['party_type']}.{rule['account_type']}"] = (
            metrics.jsd(realised, law))
    worst = max(divergences, key=lambda k: -1 if np.isnan(divergences[k]) else divergences[k])
    any_nan = any(np.isnan(v) for v in divergences.values())
    checks.gate("T8_DISTRIBUTION_ALIGNMENT_JSD", "max_jsd",
                None if any_nan else divergences[worst], support_ok=holders_ok,
                detail={"worst": worst, "divergences": {k: round(float(v), 6)
                                                         for k, v in divergences.items()}})

    failures = [{"check_id": c["check_id"], "owner_state": c["owner_state"],
                 "reason": c["reason"], "rerun": f"--from {c['owner_state']}"}
                for c in checks.records if c["status"] == "FAIL"]
    return {
        "state": STATE,
        "seed": sealed.seed,
        "parameter_hash": sealed.parameter_hashes[STATE],
        "manifest_fingerprint": sealed.manifest_fingerprint,
        "band": "B",
        "overall_status": "FAIL" if failures else "PASS",
        "checks": checks.records,
        "failures": failures,
    }


def _ip_mix(sealed, parties, devices):
    mixes = sealed.config[DEVICE_IP_PRIORS]["ip_type_mix"]
    return np.array([[mixes[region][t] for t in devices.ip_types] for region in parties.regions])
