"""The reference plan's acceptance rows (SPEC section 6): freeze, the keep-set's last_good and
baseline, non-regression against the baseline, RETAIN_PASS_B and posture regression.

Certifications here run at `tiny` on two seeds, which needs a waiver of the evidence rule
and of L1's gating (every certificate below shows them)."""
import json
import shutil

import pytest
import yaml

from configs import embedded
from seg6a.cli import main
from seg6a.gates import certification
from seg6a.runs import keep
from seg6a.runs.commit import read_manifest

VALIDATION = "validation_policy_6A.v1.yaml"
DEVICE_PRIORS = "device_ip_priors_6A.v1.yaml"


def seg6a(*args):
    return main([str(a) for a in args])


def config(folder, bplus_or=None, devices=None):
    """A two-seed, tiny certification config; optionally T7's B+ tightened so that it
    passes only B, or RETAIL's devices per party changed (an S4 prior)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = embedded(VALIDATION)
    doc["certification"].update(required_seeds=[42, 7], min_scale="tiny")
    # L1's CIs are wider than its band at tiny: these certificates waive its gating too.
    doc["gating"]["L1_LABEL_LEAKAGE"] = "none"
    if bplus_or is not None:
        doc["gates"]["T7_RISK_PROPAGATION_EFFECT"]["components"]["OR_account"]["Bplus"] = bplus_or
    (folder / VALIDATION).write_text(yaml.safe_dump(doc))
    if devices is not None:
        priors = embedded(DEVICE_PRIORS, "priors")
        priors["devices_per_party"]["RETAIL"]["mean_count"] = devices
        (folder / DEVICE_PRIORS).write_text(yaml.safe_dump(priors))
    return folder


def certify(root, run_id, folder, *extra):
    return seg6a("certify", "--scale", "tiny", "--out", root, "--run-id", run_id, "--config",
                 folder, "--waive", "a tiny test", "--quiet", *extra)


def summary_of(root, run_id):
    return json.loads((root / run_id / "layer3/6A/validation/realism_gate_summary_6A.json")
                      .read_text())


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """Two accepted certifications into one root: ``one``, then ``two``."""
    root = tmp_path_factory.mktemp("runs")
    folder = config(tmp_path_factory.mktemp("cfg"))
    assert certify(root, "one", folder) == 0
    assert certify(root, "two", folder) == 0
    return root, folder


def test_an_accepted_certification_freezes_its_run(frozen):
    root, _ = frozen
    freeze = json.loads((root / "one/layer3/6A/validation/freeze_6A.json").read_text())
    summary = summary_of(root, "one")
    assert freeze["decision"] == summary["decision"] == "PASS_BPLUS"
    assert freeze["seeds"] == [42, 7] and freeze["scale"] == "tiny"
    assert freeze["validation_hash"] == summary["validation_hash"]
    assert freeze["seg6a_version"] and freeze["prf_version"] and freeze["policies"]
    assert sorted(w["key"] for w in freeze["waivers"]) == ["certification.min_scale",
                                                           "certification.required_seeds",
                                                           "gating.L1_LABEL_LEAKAGE"]
    manifest = read_manifest(root / "one")["files"]
    for seed in ("42", "7"):
        assert freeze["files"][seed]
        for path, digest in freeze["files"][seed].items():
            assert manifest[path]["sha256"] == digest
        assert (root / "one" / freeze["config"][seed] / "scales.yaml").is_file()
    assert seg6a("verify", root / "one") == 0


def test_the_keep_set_follows_the_freezes_and_prune_lists_the_rest(frozen, tmp_path):
    root, folder = frozen
    keep_set = keep.load(root)
    assert (keep_set["last_good"], keep_set["baseline"]) == ("two", "one")
    shutil.copytree(root, tmp_path / "runs")
    root = tmp_path / "runs"
    assert seg6a("run", "--seed", 42, "--scale", "tiny", "--out", root, "--run-id", "scratch",
                 "--quiet") == 0
    assert keep.prune(root) == ["scratch"]
    # a pinned baseline stays where it was put
    assert seg6a("runs", "keep", root, "one", "--as", "baseline") == 0
    assert certify(root, "three", folder) == 0
    keep_set = keep.load(root)
    assert (keep_set["last_good"], keep_set["baseline"]) == ("three", "one")
    assert keep.prune(root) == ["scratch", "two"]


def test_a_certify_against_its_baseline_writes_the_gate_delta(frozen, tmp_path, capsys):
    root, folder = frozen
    root = shutil.copytree(root, tmp_path / "runs")
    # the same config: nothing regresses (the keep-set's baseline, "one", is the default)
    assert certify(root, "same", folder) == 0
    delta = json.loads((root / "same/layer3/6A/validation/gate_delta_6A.json").read_text())
    assert delta["baseline"] == str(root / "one")
    assert delta["gates"] and not any(r["regressed"] for r in delta["gates"])
    assert all(r["delta"] == 0 for r in delta["gates"] if r["delta"] is not None)
    assert set(delta["perf"]) == {"42", "7"} and "S4" in delta["perf"]["42"]
    # a deliberate S4 prior change: its gates are worse than the baseline's, and the
    # decision is held naming each with its owner
    changed = config(tmp_path / "s4", devices=2.4)
    capsys.readouterr()
    assert certify(root, "changed", changed, "--baseline", root / "one") == 3
    summary = summary_of(root, "changed")
    assert summary["decision"] == "HOLD_REMEDIATE"
    assert summary["reason"] == "regression_vs_baseline"
    assert summary["regressions"]
    assert {r["owner_state"] for r in summary["regressions"]} <= {"S4", "S5"}
    assert any(f["reason"] == "regression_vs_baseline" and f["rerun"] == "--from S4"
               for f in summary["failures"])
    assert not (root / "changed/layer3/6A/validation/freeze_6A.json").exists()
    assert keep.load(root)["last_good"] == "same"  # a held run is never last_good
    assert seg6a("certify", "--scale", "tiny", "--out", root, "--config", folder, "--waive",
                 "t", "--baseline", tmp_path / "nothing", "--quiet") == 2


def test_a_baseline_at_another_scale_is_not_compared(frozen, tmp_path):
    # tails and CIs depend on the population: every exact gate would "regress"
    root, folder = frozen
    root = shutil.copytree(root, tmp_path / "runs")
    larger = shutil.copytree(folder, tmp_path / "larger")
    scales = embedded("scales.yaml", folder="")
    scales["scales"]["tiny"]["n_parties"] *= 2
    (larger / "scales.yaml").write_text(yaml.safe_dump(scales))
    assert certify(root, "double", larger, "--baseline", root / "one") == 2
    assert not (root / "double").exists()
    # the keep-set's baseline ("one"): certified, but not compared, and the summary says why
    assert certify(root, "double", larger) == 0
    summary = summary_of(root, "double")
    assert summary["baseline"] is None and not summary["regressions"]
    assert "not comparable" in summary["baseline_not_compared"]
    assert not (root / "double/layer3/6A/validation/gate_delta_6A.json").exists()


def test_retain_pass_b_and_posture_regression(tmp_path):
    only_b = config(tmp_path / "b", bplus_or=1000.0)  # a tightening: OR_account fails B+
    plus = config(tmp_path / "plus")
    root = tmp_path / "runs"
    assert certify(root, "b1", only_b) == 0
    assert summary_of(root, "b1")["decision"] == "PASS_B"
    assert certify(root, "b2", only_b) == 0  # last good is PASS_B: it is retained
    assert summary_of(root, "b2")["decision"] == "RETAIN_PASS_B"
    assert json.loads((root / "b2/layer3/6A/validation/freeze_6A.json").read_text())[
        "decision"] == "RETAIN_PASS_B"
    assert certify(root, "p1", plus) == 0
    assert summary_of(root, "p1")["decision"] == "PASS_BPLUS"
    assert certify(root, "b3", only_b) == 3  # last good is PASS_BPLUS: a step down
    held = summary_of(root, "b3")
    assert (held["decision"], held["reason"]) == ("HOLD_REMEDIATE", "posture_regression")
    assert keep.load(root)["last_good"] == "p1"


def test_decide_orders_the_reasons():
    """Evidence first, then the gates at B, then the baseline, then the posture."""
    policy = embedded(VALIDATION)
    policy["gating"]["L1_LABEL_LEAKAGE"] = "none"  # no power at tiny
    import seg6a as package

    result = package.simulate(42, scale="tiny")
    boards = []
    for seed in (42, 7):
        board = json.loads(json.dumps(result.fraud.gates))
        for r in board:
            r["seed"] = seed
        boards.append(board)
    judging = result.sealed.judging
    complete = {"complete": True, "missing_seeds": [], "scale": "tiny", "min_scale": "tiny"}
    assert certification.decide(policy, boards, complete, judging)["decision"] == "PASS_BPLUS"
    t9 = certification.cross_seed_stability(policy, boards)
    # a baseline whose T5 p99 (an exact gate) was 1: the candidate's is worse
    held = certification.decide(policy, boards, complete, judging, baseline=(
        [[dict(r, components={**r["components"], "p99": {**r["components"]["p99"],
                                                          "value": 1.0}})
          if r["test_id"] == "T5_IP_REUSE_TAIL_BOUNDS" else r for r in b] for b in boards],
        t9))
    assert held["reason"] == "regression_vs_baseline"
    assert {(r["test_id"], r["component"]) for r in held["regressions"]} == {
        ("T5_IP_REUSE_TAIL_BOUNDS", "p99")}
    same = certification.decide(policy, boards, complete, judging, baseline=(boards, t9))
    assert same["regressions"] == [] and same["decision"] == "PASS_BPLUS"
    for last_good, expected in (("PASS_BPLUS", "PASS_BPLUS"), ("PASS_B", "PASS_BPLUS")):
        assert certification.decide(policy, boards, complete, judging,
                                    last_good=last_good)["decision"] == expected


def test_a_rerun_that_changes_nothing_keeps_the_certificate(frozen, tmp_path):
    root, folder = frozen
    root = shutil.copytree(root, tmp_path / "runs")
    run_dir = root / "two"
    before = json.loads((run_dir / "layer3/6A/validation/freeze_6A.json").read_text())
    for seed in (42, 7):
        assert seg6a("run", "--seed", seed, "--scale", "tiny", "--out", root, "--run-id", "two",
                     "--from", "S5", "--config", folder, "--waive", "a tiny test",
                     "--quiet") == 0  # the same waiver: the boards are byte for byte
    assert json.loads((run_dir / "layer3/6A/validation/freeze_6A.json").read_text()) == before
    # a rerun that changes the data retires it, but the keep-set keeps the posture
    propagation = embedded("risk_propagation_coeffs_6A.v1.yaml")
    propagation["party_to_account"]["beta_risky_owner"] = 2.2
    changed = shutil.copytree(folder, tmp_path / "changed")
    (changed / "risk_propagation_coeffs_6A.v1.yaml").write_text(yaml.safe_dump(propagation))
    assert seg6a("run", "--seed", 42, "--scale", "tiny", "--out", root, "--run-id", "two",
                 "--from", "S5", "--config", changed, "--waive", "t", "--quiet") == 0
    assert not (run_dir / "layer3/6A/validation/freeze_6A.json").exists()
    assert keep.last_good_decision(root) == "PASS_BPLUS"


def test_a_rejudged_freeze_lists_the_new_bytes(frozen, tmp_path):
    root, folder = frozen
    root = shutil.copytree(root, tmp_path / "runs")
    run_dir = root / "one"
    tight = config(tmp_path / "tight", bplus_or=2.1)  # a tightening, still B+
    assert seg6a("gates", run_dir, "--rejudge", "--config", tight, "--waive",
                 "a tiny test") == 0
    freeze = json.loads((run_dir / "layer3/6A/validation/freeze_6A.json").read_text())
    manifest = read_manifest(run_dir)["files"]
    for seed, files in freeze["files"].items():
        for path, digest in files.items():
            assert manifest[path]["sha256"] == digest, path
    summary = summary_of(root, "one")
    assert summary["scale"] == "tiny" and summary["seeds"] == [42, 7]
