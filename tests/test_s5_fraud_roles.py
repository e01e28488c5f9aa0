"""S5 fraud roles at `tiny`: taxonomy mapping, calibration, uplift along the graph, clamps,
and the fail-closed validation bundle."""

import numpy as np
import pytest
import yaml

import seg6a
from configs import embedded, overlay
from seg6a.cli import main
from seg6a.errors import ParameterError
from seg6a.gates.metrics import risky_odds_ratio
from seg6a.kernels.csr import count_flagged
from seg6a.kernels.uplift import expected_prevalence
from seg6a.states import s5_fraud_roles as s5

PROPAGATION = "risk_propagation_coeffs_6A.v1.yaml"
VALIDATION = "validation_policy_6A.v1.yaml"


@pytest.fixture(scope="module")
def tiny():
    return seg6a.simulate(42, scale="tiny")


def test_substeps_are_the_specified_ones(tiny):
    assert [e["substep"] for e in tiny.perf if e["state"] == "S5"] == [
        "load_contracts_inputs", "assign_party_roles", "assign_account_roles",
        "assign_merchant_roles", "assign_device_roles", "assign_ip_roles", "validation_checks",
        "bundle_publish"]


def test_one_mapped_row_per_entity(tiny):
    taxonomy = tiny.sealed.config[s5.TAXONOMY]
    sizes = {"party": tiny.parties.n_parties, "account": tiny.accounts.owner_party_id.size,
             "merchant": tiny.sealed.world.merchants.num_rows,
             "device": tiny.devices.n_devices, "ip": tiny.devices.n_ips}
    for kind in s5.KINDS:
        table = tiny.table(s5.DATASETS[kind])
        assert table.column_names == [f"{kind}_id", "raw_role", "canonical_role_family",
                                      "is_risky", "risk_logit"]
        assert table.column(f"{kind}_id").to_pylist() == list(range(sizes[kind]))
        spec = {r["raw_role"]: r for r in taxonomy["entity_kinds"][kind]}
        pairs = set(zip(table.column("raw_role").to_pylist(),
                        table.column("canonical_role_family").to_pylist(),
                        table.column("is_risky").to_pylist()))
        for raw_role, family, is_risky in pairs:
            assert (family, is_risky) == (spec[raw_role]["family"], spec[raw_role]["is_risky"])


def test_calibration_meets_the_target_in_expectation(tiny):
    propagation = tiny.sealed.config[PROPAGATION]
    clamp = propagation["logit_clamp"]
    for kind, roles in tiny.fraud.roles.items():
        counts = np.bincount(roles.code, minlength=roles.shift.size).astype(np.float64)
        np.testing.assert_array_equal(
            roles.logit_of_code, np.clip(roles.base_logit + roles.shift, clamp["min"], clamp["max"]))
        expected = expected_prevalence(roles.base_logit, roles.shift, counts, clamp["min"],
                                       clamp["max"])
        target = roles.target[roles.role_is_risky].sum()
        assert abs(expected - target) <= propagation["calibration"]["prevalence_tolerance"]
        realised = roles.is_risky.mean()
        assert abs(realised - target) <= 5 * np.sqrt(target * (1 - target) / roles.role.size), kind


def test_risk_travels_along_graph_edges(tiny):
    roles, devices = tiny.fraud.roles, tiny.devices
    # Devices used by a risky party, and IPs serving risky devices, are riskier.
    used_by_risky = count_flagged(devices.device_party_ptr, devices.device_party_ids,
                                  roles["party"].is_risky) > 0
    device_risky = roles["device"].is_risky
    assert device_risky[used_by_risky].mean() > 3 * device_risky[~used_by_risky].mean()
    serves_risky = count_flagged(devices.ip_device_ptr, devices.ip_device_ids, device_risky) > 0
    ip_risky = roles["ip"].is_risky
    assert ip_risky[serves_risky].mean() > 1.5 * ip_risky[~serves_risky].mean()
    # Risky ip types carry their shift: VPN and hosting IPs are riskier than home lines.
    vpn = devices.ip_type == devices.ip_types.index("VPN_PROXY")
    home = devices.ip_type == devices.ip_types.index("RESIDENTIAL_BROADBAND")
    assert ip_risky[vpn].mean() > 2 * ip_risky[home].mean()


def test_clamp_bounds_every_logit(tiny):
    clamp = tiny.sealed.config[PROPAGATION]["logit_clamp"]
    for kind in s5.KINDS:
        logits = tiny.table(s5.DATASETS[kind]).column("risk_logit").to_numpy()
        assert logits.min() >= np.float32(clamp["min"]) and logits.max() <= np.float32(clamp["max"])


def odds_ratios(result):
    party_risky = result.fraud.roles["party"].is_risky
    return (risky_odds_ratio(result.fraud.roles["account"].is_risky,
                             party_risky[result.accounts.owner_party_id]),
            risky_odds_ratio(result.fraud.roles["device"].is_risky,
                             party_risky[result.devices.primary_party_id]))


def test_raising_a_coefficient_raises_the_odds_ratio(tmp_path):
    ratios = []
    for beta in (0.3, 1.3, 2.3):
        doc = embedded(PROPAGATION)
        doc["party_to_account"]["beta_risky_owner"] = beta
        doc["party_to_device"]["beta_risky_party"] = beta
        folder = overlay(tmp_path / f"beta{beta}", PROPAGATION, doc)
        ratios.append(odds_ratios(seg6a.simulate(42, scale="tiny", config=folder)))
    or_account, or_device = zip(*ratios)
    assert or_account[0] < or_account[1] < or_account[2]
    assert or_device[0] < or_device[1] < or_device[2]


def test_a_tight_clamp_caps_the_logits_and_the_separation(tiny, tmp_path):
    doc = embedded(PROPAGATION)
    doc["logit_clamp"]["max"] = -2.0
    clamped = seg6a.simulate(42, scale="tiny", config=overlay(tmp_path, PROPAGATION, doc))
    for kind in s5.KINDS:
        assert clamped.fraud.roles[kind].risk_logit.max() <= -2.0
    assert odds_ratios(clamped)[0] < odds_ratios(tiny)[0]


def test_an_unreachable_target_is_a_parameter_error(tmp_path):
    doc = embedded(PROPAGATION)
    doc["logit_clamp"]["max"] = -4.0  # sigmoid(-4) = 0.018 < party target 0.048
    with pytest.raises(ParameterError, match="party risky prevalence"):
        seg6a.simulate(42, scale="tiny", config=overlay(tmp_path, PROPAGATION, doc))


def test_report_passes_and_the_flag_is_published(tiny, tmp_path):
    report = tiny.fraud.report
    assert report["overall_status"] == "PASS" and report["failures"] == []
    ids = {c["check_id"] for c in report["checks"]}
    for gate in ("T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"):
        assert any(i.startswith(gate + "_") for i in ids), gate
    run_dir = tiny.write(tmp_path / "run")
    assert len(list(run_dir.rglob(s5.PASSED_FLAG))) == 1
    assert len(list(run_dir.rglob(s5.REPORT))) == 1


def test_a_failing_check_holds_the_run_and_names_its_owner(tmp_path, capsys):
    doc = embedded(VALIDATION)
    doc["gates"]["T4_DEVICE_IP_COVERAGE"]["components"]["linked_device_fraction"].update(
        B=0.99, Bplus=0.99)
    folder = overlay(tmp_path / "cfg", VALIDATION, doc)
    code = main(["run", "--seed", "42", "--scale", "tiny", "--out", str(tmp_path / "runs"),
                 "--run-id", "held", "--config", str(folder)])
    err = capsys.readouterr().err
    assert code == 3
    assert "T4_DEVICE_IP_COVERAGE failed (threshold): owner S4, rerun --from S4" in err
    run_dir = tmp_path / "runs" / "held"
    assert not list(run_dir.rglob(s5.PASSED_FLAG))
    report = yaml.safe_load(next(run_dir.rglob(s5.REPORT)).read_text())
    assert report["overall_status"] == "FAIL"
    assert report["failures"] == [{"check_id": "T4_DEVICE_IP_COVERAGE", "component": None,
                                   "owner_state": "S4", "reason": "threshold",
                                   "rerun": "--from S4"}]
    assert report["overrides"] and not report["waivers"]  # a tightening needs no --waive


def test_evidence_counters_match_the_tables(tiny):
    counters = tiny.fraud.counters
    roles = tiny.fraud.roles
    for kind in s5.KINDS:
        assert counters[f"{kind}_risky"] == int(roles[kind].is_risky.sum())
    owner_risky = roles["party"].is_risky[tiny.accounts.owner_party_id]
    assert counters["accounts_of_risky_owners"] == int(owner_risky.sum())
    assert counters["risky_accounts_of_risky_owners"] == int(
        (owner_risky & roles["account"].is_risky).sum())
