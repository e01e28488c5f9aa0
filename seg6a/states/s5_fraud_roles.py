"""S5 — fraud posture: a role for every party, account, merchant, device and IP.

Each entity gets a covariate code from the upstream graph and the roles already drawn:

- party: uses a shared device; reaches a high-sharing IP (risky parties cluster on edges);
- account: its owner is risky;
- merchant: its merchant category code and size class;
- device: any party using it is risky (so risk crosses household edges);
- IP: risky devices it serves (capped), high sharing, its ip_type.

Its log-odds are ``clamp(base + shift[code])`` with shifts from
``risk_propagation_coeffs_6A.v1.yaml``; ``base`` is solved by bisection (the expected
prevalence rises with it) so that the expected prevalence of risky roles equals the
taxonomy's target despite the uplift.
A PRF draw against ``sigmoid(logit)`` decides risky or clean, a second picks the raw role
in proportion to the taxonomy's prevalences. Then the validation bundle checks structure
and, fail-closed at the B thresholds, the realism metrics of T1-T8 from the same arrays
that are published; ``_passed.flag`` is written only when every check passes.
"""
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter

import numpy as np
import pyarrow as pa

from ..errors import ParameterError
from ..gates import board, diagnostics, metrics
from ..gates import data as gate_data
from ..gates import stats as gate_stats
from ..kernels.csr import count_flagged, transpose
from ..kernels.sample import normalised_cdf
from ..kernels.uplift import draw_roles, expected_prevalence
from ..engine import LOCAL, join, spans
from ..rng import Substreams
from ..tables import Dataset, block_offsets_for, dictionary_column, encode_part

STATE = "S5"
TAXONOMY = "fraud_role_taxonomy_6A.v1.yaml"
PROPAGATION = "risk_propagation_coeffs_6A.v1.yaml"
VALIDATION_POLICY = "validation_policy_6A.v1.yaml"
KINDS = ("party", "account", "merchant", "device", "ip")
DATASETS = {kind: f"s5_{kind}_fraud_roles_6A" for kind in KINDS}
REPORT = "s5_validation_report_6A.json"
PASSED_FLAG = "_passed.flag"
MAX_RISKY_NEIGHBOURS = 15  # IP covariate: risky devices served, counted up to this
CODE = np.int16  # covariate codes as the blocks keep them (a few hundred at most)


class Roles:
    """The roles of one entity kind, kept per canonical block; the per-entity arrays (entity
    ids are row indices) are joined from the blocks on first use.

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
    is_risky : bool array
        Per entity.
    risk_logit : float64 array
        Per entity, ``logit_of_code[code]``.
    blocks : list of (role, code)
        Per canonical block, the handles on the engine of its entities' role and covariate
        codes.
    n_entities : int
    """

    def __init__(self, kind, blocks, shift, logit_of_code, raw_roles, families, role_is_risky,
                 target, base_logit, n_entities, engine=LOCAL):
        self.kind = kind
        self.blocks = blocks  # handles on the engine
        self.n_entities = n_entities
        self._engine = engine
        self.shift = shift
        self.logit_of_code = logit_of_code
        self.raw_roles = raw_roles
        self.families = families
        self.role_is_risky = role_is_risky
        self.target = target
        self.base_logit = base_logit

    @cached_property
    def role(self):
        return join(self._engine.gather([role for role, _ in self.blocks]))

    @cached_property
    def code(self):
        return join(self._engine.gather([code for _, code in self.blocks])).astype(np.int64)

    @cached_property
    def is_risky(self):
        return self.role_is_risky[self.role]

    @cached_property
    def risk_logit(self):
        return self.logit_of_code[self.code]


@dataclass(frozen=True)
class FraudPosture:
    """S5's outcome: the roles per kind, the validation report, the uplift evidence, the
    gateboard records (T1-T10 of this seed, computed from the tables as published) and the
    gates' substreams (``seg6a.gates.board.Streams``)."""

    roles: dict
    report: dict
    counters: dict
    gates: list
    gate_streams: object

    @property
    def passed(self):
        return self.report["overall_status"] == "PASS"


def _bisect(increasing, lower, upper, xtol):
    """The root, within ``xtol``, of an increasing function bracketed by
    ``increasing(lower) < 0 < increasing(upper)``.

    >>> round(_bisect(lambda x: x * x - 2.0, 0.0, 2.0, 1e-12), 9)
    1.414213562
    """
    while upper - lower > xtol:
        middle = 0.5 * (lower + upper)
        if middle in (lower, upper):  # the bracket is down to adjacent floats
            break
        if increasing(middle) < 0.0:
            lower = middle
        else:
            upper = middle
    return 0.5 * (lower + upper)


def calibrate_base(kind, shift, counts, target, low, high, xtol, tolerance):
    """The base log-odds whose expected prevalence over the code counts equals ``target``."""
    def gap(base):
        return expected_prevalence(base, shift, counts, low, high) - target

    lower, upper = low - shift.max() - 1.0, high - shift.min() + 1.0
    if not gap(lower) < 0.0 < gap(upper):
        raise ParameterError(
            f"S5: the {kind} risky prevalence {target:g} cannot be met within "
            f"logit_clamp [{low:g}, {high:g}] of {PROPAGATION}")
    base = _bisect(gap, lower, upper, xtol)
    if abs(gap(base)) > tolerance:
        raise ParameterError(f"S5: calibration of the {kind} base log-odds missed its target "
                             f"{target:g} by {abs(gap(base)):.3g}")
    return base


@dataclass(frozen=True)
class Calibration:
    """One entity kind's calibrated role law: what a block needs to draw its roles."""

    kind: str
    shift: np.ndarray
    logit_of_code: np.ndarray
    base_logit: float
    n_entities: int
    draw: dict  # the arguments of ``draw_roles`` after ``(key, id_start, code)``


def calibrate(kind, rng, code_counts, shift, taxonomy, propagation):
    """Calibrate the roles of one entity kind on its code counts (summed over blocks) and
    note its draws (two per entity) in the audit."""
    spec = taxonomy["entity_kinds"][kind]
    role_is_risky = np.array([r["is_risky"] for r in spec])
    target = np.array([r["target_prevalence"] for r in spec], dtype=np.float64)
    clamp, calibration = propagation["logit_clamp"], propagation["calibration"]
    base = calibrate_base(kind, shift, code_counts.astype(np.float64),
                          float(target[role_is_risky].sum()), clamp["min"], clamp["max"],
                          calibration["xtol"], calibration["prevalence_tolerance"])
    logit_of_code = np.clip(base + shift, clamp["min"], clamp["max"])
    risky = np.flatnonzero(role_is_risky).astype(np.int16)
    clean = np.flatnonzero(~role_is_risky).astype(np.int16)
    label = f"s5.role.{kind}"
    rng.record(label, int(code_counts.sum()), 2)
    return Calibration(kind, shift, logit_of_code, base, int(code_counts.sum()), dict(
        key=rng.key(label), logit_of_code=logit_of_code, risky_roles=risky,
        risky_cdf=normalised_cdf(target[risky][None, :]), clean_roles=clean,
        clean_cdf=normalised_cdf(target[clean][None, :])))


def roles_block(id_start, code, *, calibration):
    """Role codes of the entities ``id_start ..`` (of one block) with covariate codes
    ``code``."""
    d = calibration.draw
    return draw_roles(d["key"], int(id_start), code.astype(np.int64), d["logit_of_code"],
                      d["risky_roles"], d["risky_cdf"], d["clean_roles"], d["clean_cdf"])


def roles_of(calibration, taxonomy, families_vocab, blocks, engine):
    """The ``Roles`` of one kind from its blocks' role and covariate codes (handles)."""
    spec = taxonomy["entity_kinds"][calibration.kind]
    families = tuple(r["family"] for r in spec)
    assert set(families) <= set(families_vocab)  # the taxonomy contract checks this
    return Roles(calibration.kind, blocks, calibration.shift, calibration.logit_of_code,
                 tuple(r["raw_role"] for r in spec), families,
                 np.array([r["is_risky"] for r in spec]),
                 np.array([r["target_prevalence"] for r in spec], dtype=np.float64),
                 calibration.base_logit, calibration.n_entities, engine)


# --- the blocks ---------------------------------------------------------------------------
# A canonical block's parties, accounts, devices and IPs are its own: a device's parties,
# an account's owner and an IP's devices all lie in the block. So every covariate is
# computed per block, with block-local ids; only the code counts are summed.


def _device_party(devices, party_lo):
    """S4's ``device -> parties`` of one block, with block-local party ids."""
    return devices.device_party_ptr, devices.device_party_ids - party_lo


def party_codes_block(party_lo, n_parties, devices, *, high_sharing_devices):
    """Party covariate codes of one block (S4's ``DeviceBlock``): uses a shared device (1),
    reaches a high-sharing IP (2); and their counts."""
    high_sharing = np.diff(devices.ip_device_ptr) >= high_sharing_devices
    device_party_ptr, device_party_ids = _device_party(devices, party_lo)
    device_shared = np.diff(device_party_ptr) > 1
    device_high = count_flagged(devices.device_ip_ptr, devices.device_ip_ids, high_sharing) > 0
    party_device = transpose(device_party_ptr, device_party_ids, n_parties)
    code = ((count_flagged(*party_device, device_shared) > 0)
            + 2 * (count_flagged(*party_device, device_high) > 0)).astype(CODE)
    return code, np.bincount(code, minlength=4)


def _is_risky(role, calibration):
    return np.isin(role, calibration.draw["risky_roles"])


def party_roles_block(party_lo, coded, accounts, devices, *, calibration):
    """Party roles of one block (its ``party_codes_block``); and the codes of its accounts
    (S2's ``AccountBlock``: risky owner) and devices (used by a risky party), with their
    counts."""
    role = roles_block(party_lo, coded[0], calibration=calibration)
    party_risky = _is_risky(role, calibration)
    account_code = party_risky[accounts.owner - party_lo].astype(CODE)
    device_code = (count_flagged(*_device_party(devices, party_lo), party_risky) > 0
                   ).astype(CODE)
    return (role, account_code, np.bincount(account_code, minlength=2), device_code,
            np.bincount(device_code, minlength=2))


def device_roles_block(device_lo, code, devices, *, calibration, high_sharing_devices,
                       n_types):
    """Device roles of one block; and the codes of its IPs (risky devices served, capped;
    high sharing; ip_type), with their counts."""
    role = roles_block(device_lo, code, calibration=calibration)
    ip_device = devices.ip_device_ptr, devices.ip_device_ids
    neighbours = np.minimum(count_flagged(*ip_device, _is_risky(role, calibration)),
                            MAX_RISKY_NEIGHBOURS)
    high_sharing = np.diff(ip_device[0]) >= high_sharing_devices
    ip_code = ((neighbours * 2 + high_sharing) * n_types + devices.ip_type).astype(CODE)
    return role, ip_code, np.bincount(ip_code,
                                      minlength=(MAX_RISKY_NEIGHBOURS + 1) * 2 * n_types)


def evidence_block(party, account, account_code, device, ip, devices, *, risky_roles):
    """The uplift evidence of one block: its risky parties, accounts, devices and IPs;
    accounts of risky owners and how many of them are risky; devices of risky primary
    parties and how many of them are risky."""
    party_risky = risky_roles["party"][party]
    owner_risky = account_code == 1  # an account's covariate: its owner is risky
    account_risky = risky_roles["account"][account]
    # the block's devices are in owner order: each party's flag over the devices it owns
    primary_risky = np.repeat(party_risky, devices.owned)
    device_risky = risky_roles["device"][device]
    return np.array([party_risky.sum(), account_risky.sum(), device_risky.sum(),
                     risky_roles["ip"][ip].sum(), owner_risky.sum(),
                     (owner_risky & account_risky).sum(), primary_risky.sum(),
                     (primary_risky & device_risky).sum()], dtype=np.int64)


def run(sealed, parties, accounts, devices, upstream, perf, engine=LOCAL):
    """Assign fraud roles and validate. Returns ``(FraudPosture, [Dataset], Substreams)``.

    ``upstream`` holds the S1-S4 datasets (``seg6a.tables.Dataset``), which the validation
    reads exactly as they are published, block by block.
    """
    rng = Substreams(STATE, sealed.manifest_fingerprint, sealed.parameter_hashes[STATE], sealed.seed)
    with perf.substep(STATE, "load_contracts_inputs"):
        taxonomy = sealed.config[TAXONOMY]
        propagation = sealed.config[PROPAGATION]
        families_vocab = tuple(taxonomy["families"])
        to_ip = propagation["to_ip"]
        merchants = sealed.world.merchants
        blocks = block_offsets_for(parties.n_parties, sealed.scale.block_size)
        offsets = {
            "party": blocks,
            "account": accounts.account_block_ptr,
            "merchant": np.array([0, merchants.num_rows], dtype=np.int64),
            "device": devices.device_block_ptr,
            "ip": devices.ip_block_ptr,
        }

    party_lo, party_hi = spans(offsets["party"])
    account_lo = spans(offsets["account"])[0]
    device_lo, ip_lo = spans(offsets["device"])[0], spans(offsets["ip"])[0]
    high_sharing_devices = to_ip["high_sharing_devices_per_ip"]
    law = dict(rng=rng, taxonomy=taxonomy, propagation=propagation)
    roles = {}

    def finish(kind, calibration, role_handles, code_handles):
        roles[kind] = roles_of(calibration, taxonomy, families_vocab,
                               list(zip(role_handles, code_handles)), engine)

    with perf.substep(STATE, "assign_party_roles") as event:
        graph = propagation["party_graph"]
        coded = engine.map(party_codes_block, party_lo,
                           [hi - lo for lo, hi in zip(party_lo, party_hi)], devices.blocks,
                           high_sharing_devices=high_sharing_devices, gather=False)
        shift = np.array([0.0, graph["beta_shared_device"], graph["beta_high_sharing_ip"],
                          graph["beta_shared_device"] + graph["beta_high_sharing_ip"]])
        calibration = calibrate("party", code_counts=sum(engine.map(itemgetter(1), coded)),
                                shift=shift, **law)
        drawn = engine.map(party_roles_block, party_lo, coded, accounts.blocks, devices.blocks,
                           calibration=calibration, gather=False)
        finish("party", calibration, engine.pick(drawn, 0), engine.pick(coded, 0))
        account_counts, device_counts = zip(*engine.map(itemgetter(2, 4), drawn))
        event["rows"] = parties.n_parties

    with perf.substep(STATE, "assign_account_roles") as event:
        shift = np.array([0.0, propagation["party_to_account"]["beta_risky_owner"]])
        calibration = calibrate("account", code_counts=sum(account_counts), shift=shift, **law)
        account_code = engine.pick(drawn, 1)
        finish("account", calibration, engine.map(roles_block, account_lo, account_code,
                                                  calibration=calibration, gather=False),
               account_code)
        event["rows"] = int(offsets["account"][-1])

    with perf.substep(STATE, "assign_merchant_roles") as event:
        to_merchant = propagation["to_merchant"]
        mcc = merchants.column("mcc").to_numpy()
        mccs, mcc_code = np.unique(mcc, return_inverse=True)
        sizes, size_code = np.unique(np.asarray(merchants.column("size_class").to_pylist()),
                                     return_inverse=True)
        mcc_shift = np.array([to_merchant["beta_mcc"].get(f"{int(m):04d}", 0.0) for m in mccs])
        size_shift = np.array([to_merchant["beta_size_class"].get(str(s), 0.0) for s in sizes])
        merchant_code = mcc_code.astype(np.int64) * len(sizes) + size_code
        shift = (mcc_shift[:, None] + size_shift[None, :]).ravel()
        calibration = calibrate("merchant", code_counts=np.bincount(
            merchant_code, minlength=shift.shape[0]), shift=shift, **law)
        # The merchants are global and few: drawn here, held like a block's result.
        finish("merchant", calibration, [roles_block(0, merchant_code, calibration=calibration)],
               [merchant_code])
        event["rows"] = merchants.num_rows

    with perf.substep(STATE, "assign_device_roles") as event:
        shift = np.array([0.0, propagation["party_to_device"]["beta_risky_party"]])
        calibration = calibrate("device", code_counts=sum(device_counts), shift=shift, **law)
        device_code = engine.pick(drawn, 3)
        drawn = engine.map(device_roles_block, device_lo, device_code, devices.blocks,
                           calibration=calibration, high_sharing_devices=high_sharing_devices,
                           n_types=len(devices.ip_types), gather=False)
        finish("device", calibration, engine.pick(drawn, 0), device_code)
        event["rows"] = devices.n_devices

    with perf.substep(STATE, "assign_ip_roles") as event:
        per_neighbour = np.arange(MAX_RISKY_NEIGHBOURS + 1) * to_ip["beta_per_risky_device"]
        per_sharing = np.array([0.0, to_ip["beta_high_sharing"]])
        per_type = np.array([to_ip["beta_ip_type"][t] for t in devices.ip_types])
        shift = (per_neighbour[:, None, None] + per_sharing[None, :, None]
                 + per_type[None, None, :]).ravel()
        calibration = calibrate("ip", code_counts=sum(engine.map(itemgetter(2), drawn)),
                                shift=shift, **law)
        ip_code = engine.pick(drawn, 1)
        finish("ip", calibration, engine.map(roles_block, ip_lo, ip_code,
                                             calibration=calibration, gather=False), ip_code)
        event["rows"] = devices.n_ips

    with perf.substep(STATE, "validation_checks") as event:
        # Counted while the gates are judged here (on Dask, no round trip of its own).
        evidence = evidence_handles(roles, devices, engine)
        ph = sealed.parameter_hashes[STATE]
        datasets = [Dataset(DATASETS[kind], STATE,
                            role_parts(roles[kind], offsets[kind], families_vocab, engine),
                            np.diff(offsets[kind]), ph, engine) for kind in KINDS]
        gate_datasets = [d for d in upstream + datasets if d.name in gate_data.DATASETS]
        gate_records, report, streams = judge(sealed, gate_stats.blocks_of(gate_datasets),
                                              gate_stats.bases_of(gate_datasets), engine)
        event["rows"] = len(report["checks"])

    with perf.substep(STATE, "bundle_publish") as event:
        counters = uplift_evidence(roles, engine.gather(evidence))
        event["rows"] = sum(d.num_rows for d in datasets)
    return FraudPosture(roles, report, counters, gate_records, streams), datasets, rng


def judge(sealed, blocks, bases, engine=LOCAL):
    """The gateboard and the validation report of a seed's published parts.

    Parameters
    ----------
    sealed : seg6a.states.s0_gate.Sealed
        The run's config (its judging policy judges) and hashes.
    blocks, bases : list of dict
        Per canonical block, its parts and first ids (``seg6a.gates.stats.measure_run``).

    Returns
    -------
    (list of dict, dict, seg6a.gates.board.Streams)
        The board, S5's validation report and the gates' substreams (for the RNG audit).
    """
    n_clusters = int(sealed.config[VALIDATION_POLICY]["bootstrap"]["clusters"])
    measured = gate_stats.measure_run(blocks, sealed.world.merchants.num_rows, n_clusters,
                                      engine, bases)
    streams = board.Streams.of(sealed.manifest_fingerprint, sealed.parameter_hashes[STATE],
                               sealed.judging.validation_hash, sealed.seed)
    records = board.evaluate(measured, sealed.config, sealed.seed, streams, sealed.judging)
    report = validate(sealed, records, measured.stats)
    # Beside the verdict, never in it: the realised country rates against their targets.
    report["diagnostics"] = [diagnostics.record(
        diagnostics.country_modulation(measured.stats, sealed.config, sealed.world),
        sealed.seed)]
    return records, report, streams


def role_parts(roles, offsets, families_vocab, engine):
    """Handles of the published parts of one kind's roles, a part per block: ``<kind>_id,
    raw_role, canonical_role_family, is_risky, risk_logit``."""
    family_code = np.array([families_vocab.index(f) for f in roles.families], dtype=np.int16)
    role, code = zip(*roles.blocks)
    return engine.map(role_part, role, code, offsets[:-1], kind=roles.kind,
                      raw_roles=roles.raw_roles, family_code=family_code,
                      families_vocab=families_vocab, role_is_risky=roles.role_is_risky,
                      logit_of_code=roles.logit_of_code, gather=False)


def role_part(role, code, id_lo, *, kind, raw_roles, family_code, families_vocab,
               role_is_risky, logit_of_code):
    """The roles of the entities ``id_lo ..`` of one block, as a published part."""
    return encode_part({
        f"{kind}_id": pa.array(np.arange(id_lo, id_lo + role.shape[0], dtype=np.int64)),
        "raw_role": dictionary_column(role, raw_roles),
        "canonical_role_family": dictionary_column(family_code[role], families_vocab),
        "is_risky": pa.array(role_is_risky[role]),
        "risk_logit": pa.array(logit_of_code[code].astype(np.float32)),
    })


_EVIDENCE_KINDS = ("party", "account", "device", "ip")


def evidence_handles(roles, devices, engine):
    """Handles of each block's ``evidence_block`` counts (``uplift_evidence`` adds them)."""
    (party, _), (account, account_code), (device, _), (ip, _) = (
        zip(*roles[kind].blocks) for kind in _EVIDENCE_KINDS)
    return engine.map(evidence_block, party, account, account_code, device, ip,
                      devices.blocks, risky_roles={
                          kind: roles[kind].role_is_risky for kind in _EVIDENCE_KINDS},
                      gather=False)


def uplift_evidence(roles, per_block):
    """Counters showing the uplift at work, from the blocks' ``evidence_block`` counts:
    prevalence, base log-odds, and risky rates by signal."""
    summed = sum(per_block)
    risky = dict(zip(_EVIDENCE_KINDS, summed[:4].tolist()),
                 merchant=int(np.count_nonzero(roles["merchant"].is_risky)))
    counters = {}
    for kind, r in roles.items():
        counters[f"{kind}_base_logit"] = round(float(r.base_logit), 6)
        counters[f"{kind}_risky"] = risky[kind]
        counters[f"{kind}_entities"] = r.n_entities
    counters.update(zip(("accounts_of_risky_owners", "risky_accounts_of_risky_owners",
                         "devices_of_risky_primaries", "risky_devices_of_risky_primaries"),
                        summed[4:].tolist()))
    return counters


# --- validation -------------------------------------------------------------------------

# Gates whose B verdict S5 promotes to a fail-closed check (T9 needs several seeds; an
# extension only where its policy gating counts B).
FAIL_CLOSED_GATES = tuple(g for g in board.GATES if g != "T9_CROSS_SEED_STABILITY")


def _check(check_id, kind, owner_state, passed, value, threshold, reason, waivers):
    return {"check_id": check_id, "kind": kind, "owner_state": owner_state,
            "status": "PASS" if passed else "FAIL", "value": value, "threshold": threshold,
            "reason": None if passed else reason, "waivers": waivers}


def validate(sealed, gate_records, stats):
    """The S5 validation report: structural checks, the policy's linkage and role ceilings,
    and every gate's B verdict (CI-judged for rate gates), all fail-closed, from the
    statistics of the published tables (``seg6a.gates.stats``). Each failure names the
    component that failed and the state whose rerun can fix it."""
    policy = sealed.config[VALIDATION_POLICY]
    judging = sealed.judging
    checks = []
    sizes = dict(zip(("party", "account", "device", "ip"), stats["entities"].tolist()),
                 merchant=sealed.world.merchants.num_rows)
    for kind in KINDS:
        _, rows, nulls = stats[f"risky.{kind}"].tolist()
        checks.append(_check(f"STRUCT.{kind}.one_row_per_entity", "structural", STATE,
                             stats.flags[f"one_row.{kind}"], rows, sizes[kind], "keys", []))
        checks.append(_check(f"STRUCT.{kind}.no_nulls", "structural", STATE, nulls == 0, nulls, 0,
                             "nulls", []))
    top = float(max(metrics.largest(stats["devices_per_ip"].sum(axis=0)), 0))
    ceiling = policy["linkage_checks"]["ip_links"]["max_devices_per_ip"]
    check_id = "LINKAGE.max_devices_per_ip"
    checks.append(_check(check_id, "realism", "S4", top <= ceiling, top, ceiling, "threshold",
                         judging.waivers_of(check_id)))
    risky, n_ips, _ = stats["risky.ip"].tolist()
    risky_ips = risky / n_ips if n_ips else float("nan")
    limit = policy["role_distribution_checks"]["ip_roles"]["max_risky_fraction"]
    check_id = "ROLES.ip.max_risky_fraction"
    checks.append(_check(check_id, "realism", STATE, risky_ips <= limit, risky_ips, limit,
                         "threshold", judging.waivers_of(check_id)))
    failures = [{"check_id": c["check_id"], "component": None, "owner_state": c["owner_state"],
                 "reason": c["reason"], "rerun": f"--from {c['owner_state']}"}
                for c in checks if c["status"] == "FAIL"]
    for gate in gate_records:
        if gate["test_id"] not in FAIL_CLOSED_GATES or not board.counts_toward(
                policy, gate["test_id"], "B"):
            continue
        failing = board.failing_components(gate, "B")
        owner = board.earliest([c["owner_state"] for _, c in failing]) or gate["owner_state"]
        checks.append(_check(gate["test_id"], "realism", owner, gate["pass_B"], gate["value"],
                             gate["threshold_B"], gate["reason"], gate["waivers"]))
        for name, component in failing:
            rerun, _ = board.remedy(gate["test_id"], component)
            failures.append({"check_id": gate["test_id"], "component": name,
                             "owner_state": component["owner_state"],
                             "reason": component["reason"], "rerun": rerun})
    return {
        "state": STATE,
        "seed": sealed.seed,
        "parameter_hash": sealed.parameter_hashes[STATE],
        "manifest_fingerprint": sealed.manifest_fingerprint,
        "validation_hash": judging.validation_hash,
        "band": "B",
        "overall_status": "FAIL" if failures else "PASS",
        "checks": checks,
        "failures": failures,
        "waivers": judging.waivers,
        "overrides": judging.overrides,
    }
