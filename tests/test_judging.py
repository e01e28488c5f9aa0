"""Certificates that cannot be gamed (SPEC sections 5 and 6): a PASS needs its evidence, a
loosened judging value needs a recorded waiver, judging never moves the data, failures name a
state that can fix them, and every value on a board is one a reader can trust."""
import copy
import inspect
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import seg6a
from configs import embedded, overlay
from runfiles import files_of
from seg6a import judging
from seg6a.cli import build_parser, main
from seg6a.gates import board, bootstrap_ci, certification
from seg6a.gates.tables import format_board
from seg6a.policies import load_config, parameter_hashes, resolve_scale
from seg6a.states import s0_gate, s5_fraud_roles

VALIDATION = "validation_policy_6A.v1.yaml"
T5_P99 = "gates.T5_IP_REUSE_TAIL_BOUNDS.components.p99"
RECORD_FIELDS = ("test_id", "metric_name", "value", "threshold_B", "threshold_Bplus", "pass_B",
                 "pass_Bplus", "ci_low", "ci_high", "seed")


def edited(edits):
    """The embedded judging policy with ``{dotted key: value}`` set (``None`` deletes)."""
    doc = embedded(VALIDATION)
    for key, value in edits.items():
        *path, last = key.split(".")
        node = doc
        for part in path:
            node = node[part]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return doc


def policy_folder(tmp_path, edits, name="cfg"):
    return overlay(tmp_path / name, VALIDATION, edited(edits))


def parquet_digests(run_dir):
    return {path: digest for path, digest in files_of(run_dir).items()
            if path.endswith(".parquet")}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return seg6a.simulate(42, scale="tiny", out=root, run_id="tiny42")


# --- 1. required evidence -----------------------------------------------------------------


def test_a_certificate_without_the_required_seeds_and_scale_is_held(tmp_path, capsys):
    root = tmp_path / "runs"
    code = main(["certify", "--seeds", "1,2", "--scale", "tiny", "--out", str(root),
                 "--run-id", "c"])
    out, err = capsys.readouterr()
    assert code == 3 and out.strip() == "HOLD_REMEDIATE"
    summary = json.loads(next((root / "c").rglob("realism_gate_summary_6A.json")).read_text())
    assert summary["decision"] == "HOLD_REMEDIATE"
    assert summary["reason"] == "incomplete_evidence"
    assert summary["missing_seeds"] == [42, 7, 101, 202]
    assert (summary["scale"], summary["min_scale"]) == ("tiny", "small")
    # the message says which certify command completes the evidence, and no --from
    assert "seg6a certify --seeds 1,2,42,7,101,202 --scale small" in err
    assert "--from" not in err


def test_evidence_needs_every_required_seed_at_min_scale():
    policy = embedded(VALIDATION)
    small = {"name": "small", "n_parties": 200_000}
    complete = judging.evidence(policy, [42, 7, 101, 202, 5], small)  # an extra seed is fine
    assert complete["complete"] and complete["missing_seeds"] == []
    missing = judging.evidence(policy, [42, 7, 101], small)
    assert not missing["complete"] and missing["missing_seeds"] == [202]
    too_small = judging.evidence(policy, [42, 7, 101, 202], {"name": "tiny", "n_parties": 20_000})
    assert not too_small["complete"] and too_small["missing_seeds"] == []


def test_incomplete_evidence_holds_even_when_every_gate_passes(tiny):
    policy = embedded(VALIDATION)
    passing = [dict(r, pass_B=True, pass_Bplus=True) for r in tiny.fraud.gates
               if r["test_id"] != board.GATES[8]]
    boards = []
    for seed in (42, 7):
        records = [dict(r, seed=seed) for r in passing]
        t9 = next(r for r in tiny.fraud.gates if r["test_id"] == board.GATES[8])
        records.insert(8, dict(t9, seed=seed))
        boards.append(records)
    judged = s0_gate.run(0, "tiny").judging
    scale = {"name": "full", "n_parties": 3_700_000}
    held = certification.decide(policy, boards, judging.evidence(policy, [42, 7], scale), judged)
    assert held["decision"] == "HOLD_REMEDIATE" and held["reason"] == "incomplete_evidence"
    assert held["missing_seeds"] == [101, 202]
    summary = dict(held, seeds=[42, 7])
    # at a large enough scale the missing seeds go into the same run
    assert judging.completing_command(summary, run_id="r", out="runs") == \
        "seg6a certify --seeds 42,7,101,202 --scale full --run-id r --out runs"


def test_certify_defaults_to_the_reference_surface():
    assert build_parser().parse_args(["certify"]).scale == "full"
    assert inspect.signature(seg6a.certify).parameters["scale"].default == "full"


# --- 2. no silent waivers -----------------------------------------------------------------

LOOSENINGS = {
    f"{T5_P99}.B": 100_000,
    f"{T5_P99}.Bplus": 120,  # as loose as B, no looser: B+ may never be
    "gates.T6_ROLE_MAPPING_COVERAGE.components.coverage.comparator": "le",
    "gates.T9_CROSS_SEED_STABILITY.components.max_cv.B": 0.5,
    "min_support.holders_per_type": 0,
    "min_support.ips_per_region": 0,
    "min_support.devices": 0,
    "min_support.risky_owners": 0,
    "min_support.flows": 0,
    "bootstrap.confidence_level": 0.5,
    "bootstrap.n_resamples": 99,
    "bootstrap.method": "basic",
    "bootstrap.clusters": 20,
    "linkage_checks.ip_links.max_devices_per_ip": 5000,
    "role_distribution_checks.ip_roles.max_risky_fraction": 0.9,
    "role_distribution_checks.propagation.max_odds_ratio": 1000.0,
    "downstream_probe.flows_per_party": 0.1,
    "downstream_probe.max_flows": 10,
    "certification.required_seeds": [42, 7],
    "certification.min_scale": "tiny",
}
TIGHTENINGS = {
    f"{T5_P99}.Bplus": 60,
    "gates.T7_RISK_PROPAGATION_EFFECT.components.OR_account.B": 1.6,
    "min_support.flows": 6000,
    "bootstrap.confidence_level": 0.99,
    "bootstrap.n_resamples": 1999,
    "linkage_checks.ip_links.max_devices_per_ip": 250,
    "role_distribution_checks.propagation.max_odds_ratio": 15.0,
    "downstream_probe.max_flows": 2_000_000,
    "certification.required_seeds": [42, 7, 101, 202, 1],
    "certification.min_scale": "full",
}


def test_every_judging_key_has_a_rule():
    leaves = judging._leaves(embedded(VALIDATION))
    assert [key for key in leaves if judging.rule_of(key) is None] == []
    for key in list(LOOSENINGS) + list(TIGHTENINGS):
        assert key in leaves


@pytest.mark.parametrize("key", sorted(LOOSENINGS))
def test_a_loosened_judging_value_is_refused_unless_waived(key, tmp_path, capsys):
    value = LOOSENINGS[key]
    folder = policy_folder(tmp_path, {key: value})
    embedded_value = judging._leaves(embedded(VALIDATION))[key]
    assert main(["config", "validate", "--config", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{key}: {embedded_value!r} -> {value!r}" in err and "--waive" in err
    assert main(["config", "validate", "--config", str(folder), "--waive", "a test"]) == 0
    assert f"waiver: {key} {embedded_value!r} -> {value!r} (a test)" in capsys.readouterr().out
    found = s0_gate.run(0, "tiny", folder, waive="a test").judging
    assert found.waivers == [{"key": key, "embedded": embedded_value, "value": value,
                              "reason": "a test"}]
    assert found.overrides == []


@pytest.mark.parametrize("key", sorted(TIGHTENINGS))
def test_a_tightened_judging_value_needs_no_flag_and_is_recorded(key, tmp_path, capsys):
    folder = policy_folder(tmp_path, {key: TIGHTENINGS[key]})
    assert main(["config", "validate", "--config", str(folder)]) == 0
    assert f"override: {key}" in capsys.readouterr().out
    found = s0_gate.run(0, "tiny", folder).judging
    assert [o["key"] for o in found.overrides] == [key] and found.waivers == []


def test_a_blank_waiver_reason_is_no_waiver(tmp_path):
    folder = policy_folder(tmp_path, {"min_support.flows": 0})
    with pytest.raises(seg6a.errors.ConfigError, match="min_support.flows: 5000 -> 0"):
        s0_gate.run(0, "tiny", folder, waive="  ")


@pytest.mark.parametrize("edits, message", [
    ({"gates.T3_IP_PRIOR_ALIGNMENT.owner_state": "S1"}, "is fixed by the reference plan"),
    ({"gates.T7_RISK_PROPAGATION_EFFECT.metric_name": "or"}, "is fixed by the reference plan"),
    ({"gates.T7_RISK_PROPAGATION_EFFECT.components.OR_device": None},
     "component OR_device of T7_RISK_PROPAGATION_EFFECT is missing"),
    ({"gates.T8_DISTRIBUTION_ALIGNMENT_JSD.components.mean_jsd":
      {"comparator": "le", "B": 1, "Bplus": 1}}, "has no component mean_jsd"),
    ({"gates.T5_IP_REUSE_TAIL_BOUNDS": None}, "'T5_IP_REUSE_TAIL_BOUNDS' is a required property"),
])
def test_owners_and_the_set_of_gates_are_a_contract(edits, message, tmp_path, capsys):
    folder = policy_folder(tmp_path, edits)
    for command in (["config", "validate", "--config", str(folder), "--waive", "no"],
                    ["run", "--seed", "42", "--scale", "tiny", "--out", str(tmp_path / "runs"),
                     "--config", str(folder), "--waive", "no", "--quiet"]):
        assert main(command) == 2  # a contract error, never a crash, even with --waive
        err = capsys.readouterr().err
        assert message in err and "violates its contract" in err
    assert not (tmp_path / "runs").exists()


def test_run_and_certify_refuse_a_loosening_before_anything_runs(tmp_path, capsys):
    folder = policy_folder(tmp_path, {f"{T5_P99}.B": 100_000, f"{T5_P99}.Bplus": 100_000})
    root = tmp_path / "runs"
    for command in ("run", "certify"):
        seeds = ["--seed", "42"] if command == "run" else ["--seeds", "42"]
        assert main([command, *seeds, "--scale", "tiny", "--out", str(root),
                     "--config", str(folder), "--quiet"]) == 2
        assert f"{T5_P99}.B: 120 -> 100000" in capsys.readouterr().err
    assert not root.exists()
    with pytest.raises(seg6a.errors.ConfigError, match="no silent waivers"):
        seg6a.simulate(42, scale="tiny", config=folder)


def test_waivers_are_carried_by_the_verdicts_they_touch(tmp_path, capsys):
    edits = {f"{T5_P99}.B": 100_000, "min_support.flows": 0,
             "certification.required_seeds": [42, 7], "certification.min_scale": "tiny"}
    folder = policy_folder(tmp_path, edits)
    root = tmp_path / "runs"
    code = main(["certify", "--scale", "tiny", "--out", str(root), "--run-id", "w",
                 "--config", str(folder), "--waive", "exploring T5", "--quiet"])
    out = capsys.readouterr().out.strip()
    summary = json.loads(next((root / "w").rglob("realism_gate_summary_6A.json")).read_text())
    assert code == 0 and summary["reason"] is None
    assert out == summary["decision_shown"] == f"{summary['decision']} (4 waivers)"
    assert sorted(w["key"] for w in summary["waivers"]) == sorted(edits)
    assert {w["reason"] for w in summary["waivers"]} == {"exploring T5"}
    for records in summary["per_seed"]:
        waived = {r["test_id"]: sorted(w["key"] for w in r["waivers"]) for r in records}
        assert waived["T5_IP_REUSE_TAIL_BOUNDS"] == [f"{T5_P99}.B"]
        assert waived["T10_DOWNSTREAM_COMPAT_6B"] == ["min_support.flows"]
        assert waived["T9_CROSS_SEED_STABILITY"] == ["certification.min_scale",
                                                     "certification.required_seeds"]
        assert waived["T4_DEVICE_IP_COVERAGE"] == []
    assert "B+ (1 waiver)" in format_board(summary["per_seed"][0])
    assert main(["gates", str(root / "w")]) == 0
    printed = capsys.readouterr().out
    assert f"certification: {summary['decision']} (4 waivers)" in printed
    assert "waiver: min_support.flows (exploring T5)" in printed
    report = json.loads(next((root / "w").rglob(s5_fraud_roles.REPORT)).read_text())
    assert len(report["waivers"]) == 4


# --- 3. judging apart from generating -----------------------------------------------------


def test_the_judging_policy_enters_no_parameter_hash(tmp_path):
    base = load_config()
    tightened = load_config(policy_folder(tmp_path, TIGHTENINGS))
    assert parameter_hashes(tightened, resolve_scale(tightened, "tiny")) == parameter_hashes(
        base, resolve_scale(base, "tiny"))
    sealed = [s0_gate.run(42, "tiny", config) for config in (base, tightened)]
    assert sealed[0].parameter_hashes == sealed[1].parameter_hashes
    assert sealed[0].manifest_fingerprint == sealed[1].manifest_fingerprint
    assert sealed[0].judging.validation_hash != sealed[1].judging.validation_hash


def test_a_tightening_leaves_every_dataset_byte_and_rejudge_matches_a_fresh_run(tiny, tmp_path,
                                                                                 capsys):
    tight = policy_folder(tmp_path, {"min_support.flows": 6000,
                                     "gates.T7_RISK_PROPAGATION_EFFECT.components.OR_account."
                                     "Bplus": 2.2})
    root = tmp_path / "runs"
    fresh = seg6a.simulate(42, scale="tiny", config=tight, out=root, run_id="fresh")
    assert parquet_digests(fresh.run_dir) == parquet_digests(tiny.run_dir)
    assert len(parquet_digests(tiny.run_dir)) == 16

    # the same run judged anew under the tightened policy, from its Parquet
    import shutil
    judged = shutil.copytree(tiny.run_dir, root / "judged")
    before = parquet_digests(judged)
    assert main(["gates", str(judged), "--rejudge", "--config", str(tight)]) == 0
    assert parquet_digests(judged) == before
    board_path = "layer3/6A/validation/seed=42/realism_gate_6A.json"
    assert (judged / board_path).read_bytes() == (fresh.run_dir / board_path).read_bytes()
    records = json.loads((judged / board_path).read_text())
    assert {r["validation_hash"] for r in records} == {fresh.sealed.judging.validation_hash}
    assert [o["key"] for o in records[6]["overrides"]] == [
        "gates.T7_RISK_PROPAGATION_EFFECT.components.OR_account.Bplus"]
    s5_receipt = next(judged.rglob("s5_receipt_6A.json"))
    assert json.loads(s5_receipt.read_text())["validation_hash"] == \
        fresh.sealed.judging.validation_hash
    # every file but the perf measurements is the fresh run's (the verdict, S5's receipt, the
    # gates' rows of the RNG audit included)
    assert files_of(judged, measurements=False) == files_of(fresh.run_dir, measurements=False)
    # and a rerun --from S5 under the new policy reproduces the same bytes
    capsys.readouterr()
    assert main(["run", "--seed", "42", "--scale", "tiny", "--out", str(root), "--run-id",
                 "judged", "--from", "S5", "--config", str(tight), "--quiet"]) == 0
    assert files_of(judged, measurements=False) == files_of(fresh.run_dir, measurements=False)


def test_rejudge_withdraws_a_flag_and_refuses_a_generative_change(tiny, tmp_path, capsys):
    import shutil

    run_dir = shutil.copytree(tiny.run_dir, tmp_path / "run")
    strict = policy_folder(tmp_path, {
        "gates.T4_DEVICE_IP_COVERAGE.components.linked_device_fraction.B": 0.99,
        "gates.T4_DEVICE_IP_COVERAGE.components.linked_device_fraction.Bplus": 0.99})
    assert list(run_dir.rglob(s5_fraud_roles.PASSED_FLAG))
    assert main(["gates", str(run_dir), "--rejudge", "--config", str(strict)]) == 3
    assert not list(run_dir.rglob(s5_fraud_roles.PASSED_FLAG))
    report = json.loads(next(run_dir.rglob(s5_fraud_roles.REPORT)).read_text())
    assert [f["check_id"] for f in report["failures"]] == ["T4_DEVICE_IP_COVERAGE"]
    # without --config the run's own (now strict) policy judges: the same verdict
    assert main(["gates", str(run_dir), "--rejudge"]) == 3
    # judged back under the embedded policy (an empty overlay), the run earns its flag again
    (tmp_path / "embedded").mkdir()
    assert main(["gates", str(run_dir), "--rejudge", "--config", str(tmp_path / "embedded")]) == 0
    assert list(run_dir.rglob(s5_fraud_roles.PASSED_FLAG))
    assert files_of(run_dir, measurements=False) == files_of(tiny.run_dir, measurements=False)

    doc = embedded("device_ip_priors_6A.v1.yaml", "priors")
    doc["linkage"]["coverage_target"] = 0.5
    other = overlay(tmp_path / "gen", "device_ip_priors_6A.v1.yaml", doc)
    capsys.readouterr()
    assert main(["gates", str(run_dir), "--rejudge", "--config", str(other)]) == 2
    assert "S4 is stale" in capsys.readouterr().err
    assert main(["gates", str(run_dir), "--config", str(strict)]) == 2
    assert "add --rejudge" in capsys.readouterr().err


# --- 4. the right owner -------------------------------------------------------------------


def test_each_failing_component_is_routed_to_the_state_that_produces_it(tiny, tmp_path):
    import shutil

    run_dir = shutil.copytree(tiny.run_dir, tmp_path / "run")
    strict = policy_folder(tmp_path, {
        "gates.T8_DISTRIBUTION_ALIGNMENT_JSD.components.max_jsd.B": 0.0,
        "gates.T8_DISTRIBUTION_ALIGNMENT_JSD.components.max_jsd.Bplus": 0.0})
    rejudged = seg6a.api.rejudge(run_dir, config=strict)
    t8 = next(r for r in rejudged.boards[42] if r["test_id"] == "T8_DISTRIBUTION_ALIGNMENT_JSD")
    owners = {name.split(".")[0]: c["owner_state"] for name, c in t8["components"].items()}
    assert owners == {"role_mix": "S5", "ip_type_mix": "S4", "accounts_per_holder": "S2"}
    assert t8["owner_state"] == "S2"  # the earliest failing owner: the state to rerun from
    failures = rejudged.reports[42]["failures"]
    reruns = {f["component"].split(".")[0]: f["rerun"] for f in failures
              if f["check_id"] == "T8_DISTRIBUTION_ALIGNMENT_JSD"}
    assert reruns == {"role_mix": "--from S5", "ip_type_mix": "--from S4",
                      "accounts_per_holder": "--from S2"}


def test_t9_is_owned_by_its_least_stable_metric(tiny):
    def board_with(seed, scale):
        records = copy.deepcopy(tiny.fraud.gates)
        for r in records:
            r["seed"] = seed
        metrics = records[8]["stability_metrics"]
        metrics["T5.p99"] *= scale  # T5's p99 varies across seeds; nothing else does
        return records

    policy = embedded(VALIDATION)
    t9 = board.cross_seed_stability(policy, [board_with(1, 1.0), board_with(2, 3.0)])
    assert t9["worst_metric"] == "T5.p99" and t9["owner_state"] == "S4"
    assert not t9["pass_B"]
    assert board.remedy(t9["test_id"], t9) == ("--from S4", "rerun --from S4")
    short = dict(t9, reason="insufficient_support")
    assert board.remedy(t9["test_id"], short)[0] is None  # more seeds, not a rerun


def test_a_contract_violation_is_owned_by_the_dataset_that_breaks_it():
    assert board.violation_owner(["s3_instrument_base_6A.account_id: 1 dangling"]) == "S3"
    assert board.violation_owner(["s4_ip_base_6A: x", "s2_account_base_6A: y"]) == "S2"
    assert board.violation_owner([]) == "S5"


# --- 5. gate values a reader can trust ----------------------------------------------------


def _ci_records(records):
    for r in records:
        for part in [r, *(r.get("components") or {}).values()]:
            if part["ci_low"] is not None:
                yield part


def test_every_ci_holds_its_value(tiny):
    checked = list(_ci_records(tiny.fraud.gates))
    assert len(checked) >= 5  # T3, T4, T7 (and two components), T10
    for part in checked:
        assert part["ci_low"] <= part["value"] <= part["ci_high"]


def test_pooled_values_use_each_components_comparator(tiny):
    boards = []
    for seed, lift in ((42, 2.95), (7, 5.25)):
        records = copy.deepcopy(tiny.fraud.gates)
        for r in records:
            r["seed"] = seed
        component = records[9]["components"]["fraud_label_lift"]
        component.update(value=lift, ci_low=lift - 0.5, ci_high=lift + 0.5)
        records[9]["value"] = lift
        boards.append(records)
    pooled = {r["test_id"]: r for r in certification.pooled(boards)}
    t10 = pooled["T10_DOWNSTREAM_COMPAT_6B"]
    lift = t10["components"]["fraud_label_lift"]
    assert lift["value"] == 2.95 and lift["worst_seed"] == 42  # a lift: the smallest is worst
    assert (lift["ci_low"], lift["ci_high"]) == (2.45, 3.45)
    assert t10["components"]["contract_violations"]["value"] == 0
    for record in pooled.values():
        assert all(field in record for field in RECORD_FIELDS), record["test_id"]
        assert record["seed"] == "pooled"
    for part in _ci_records(pooled.values()):
        assert part["ci_low"] <= part["value"] <= part["ci_high"]


def test_t9_of_a_single_run_is_neither_passed_nor_failed(tiny, capsys):
    frame = tiny.gates.to_dataframe()
    assert np.isnan(frame.loc["T9_CROSS_SEED_STABILITY", "pass_Bplus"])
    failing = frame[frame.pass_Bplus == 0]
    assert "T9_CROSS_SEED_STABILITY" not in failing.index
    assert main(["gates", str(tiny.run_dir)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines()
                if line.startswith("T9_CROSS_SEED_STABILITY"))
    assert " n/a " in line and "FAIL" not in line


def test_a_summary_carries_every_field_of_a_record(tiny):
    boards = []
    for seed in (42, 7):
        records = copy.deepcopy(tiny.fraud.gates)
        for r in records:
            r["seed"] = seed
        boards.append(records)
    policy = embedded(VALIDATION)
    summary = certification.decide(
        policy, boards, judging.evidence(policy, [42, 7], {"name": "tiny", "n_parties": 20000}),
        tiny.sealed.judging)
    for record in summary["pooled"] + [summary["T9"]]:
        assert all(field in record for field in RECORD_FIELDS), record["test_id"]


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)),
                min_size=1, max_size=12))
def test_the_t3_interval_holds_the_largest_error_of_any_shares_in_the_cell_intervals(cells):
    # each cell: an interval [low, high], a share inside it (by t) and a prior
    low = np.array([min(a, b) for a, b, _, _ in cells])
    high = np.array([max(a, b) for a, b, _, _ in cells])
    share = low + np.array([t for _, _, t, _ in cells]) * (high - low)
    prior = np.array([p for _, _, _, p in cells])
    lowest, highest = board.abs_error_interval(low, high, prior)
    error = float(np.max(np.abs(share - prior)))
    assert lowest - 1e-12 <= error <= highest + 1e-12
    # and its ends are reached: by the shares nearest to and farthest from each prior
    nearest = np.clip(prior, low, high)
    assert float(np.max(np.abs(nearest - prior))) == pytest.approx(lowest, abs=1e-12)


def test_bootstrap_ci_of_several_statistics_is_each_ones_interval():
    rng = np.random.default_rng(5)
    trials = rng.integers(20, 80, 60)
    clusters = np.stack([rng.binomial(trials, 0.3), rng.binomial(trials, 0.6), trials],
                        axis=1).astype(float)

    def both(summed):
        return np.stack([summed[..., 0] / summed[..., 2], summed[..., 1] / summed[..., 2]],
                        axis=-1)

    low, high = bootstrap_ci(clusters, both, seed=3, n_resamples=299)
    for i in range(2):
        alone = bootstrap_ci(clusters, lambda s, i=i: s[..., i] / s[..., 2], seed=3,
                             n_resamples=299)
        assert (low[i], high[i]) == pytest.approx(alone, rel=1e-12)
