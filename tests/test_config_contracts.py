"""Config contracts (SPEC sections 4 and 11).

Every embedded YAML file validates against its JSON Schema in ``config/contracts/`` and
agrees with itself and with the other files; one-change mutations of the embedded files are
caught, by the schema or by ``seg6a.config_checks``, at the key path that names the change.
"""

import copy
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from seg6a.config_checks import check_across, check_document

CONFIG = Path(__file__).resolve().parents[1] / "config"
CONTRACTS = CONFIG / "contracts"

YAML_FILES = (
    "scales.yaml",
    "priors/party_priors_6A.v1.yaml",
    "priors/account_per_party_priors_6A.v1.yaml",
    "priors/instrument_priors_6A.v1.yaml",
    "priors/device_ip_priors_6A.v1.yaml",
    "policy/fraud_role_taxonomy_6A.v1.yaml",
    "policy/risk_propagation_coeffs_6A.v1.yaml",
    "policy/validation_policy_6A.v1.yaml",
    "policy/perf_budget_6A.v1.yaml",
    "world/merchant_catalogue.yaml",
)
NAMES = tuple(Path(relative).name for relative in YAML_FILES)
WORLD_REGIONS = frozenset(
    {"NORTH_AMERICA", "LATAM", "EUROPE", "MIDDLE_EAST", "AFRICA", "ASIA_PACIFIC"}
)

SCALES = "scales.yaml"
PARTY = "party_priors_6A.v1.yaml"
ACCOUNT = "account_per_party_priors_6A.v1.yaml"
INSTRUMENT = "instrument_priors_6A.v1.yaml"
DEVICE_IP = "device_ip_priors_6A.v1.yaml"
TAXONOMY = "fraud_role_taxonomy_6A.v1.yaml"
RISK = "risk_propagation_coeffs_6A.v1.yaml"
POLICY = "validation_policy_6A.v1.yaml"
PERF = "perf_budget_6A.v1.yaml"
MERCHANTS = "merchant_catalogue.yaml"

DOCS = {
    Path(relative).name: yaml.safe_load((CONFIG / relative).read_text(encoding="utf-8"))
    for relative in YAML_FILES
}
# check_across takes every config file except the world's merchant catalogue.
ACROSS_DOCS = {name: doc for name, doc in DOCS.items() if name != MERCHANTS}


def schema_path(name):
    return CONTRACTS / f"{Path(name).stem}.schema.json"


def validator(name):
    return Draft202012Validator(json.loads(schema_path(name).read_text(encoding="utf-8")))


def dotted(parts):
    """A jsonschema error path in the key path notation of config_checks."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def schema_error_paths(name, doc):
    return {dotted(error.absolute_path) for error in validator(name).iter_errors(doc)}


def mutated(name, *changes):
    """A deep copy of an embedded document with ``changes`` applied in order."""
    doc = copy.deepcopy(DOCS[name])
    for change in changes:
        change(doc)
    return doc


def _parent(doc, keys):
    for key in keys:
        doc = doc[key]
    return doc


def set_(*keys, value):
    return lambda doc: _parent(doc, keys[:-1]).__setitem__(keys[-1], value)


def rename(*keys, to):
    def change(doc):
        parent = _parent(doc, keys[:-1])
        parent[to] = parent.pop(keys[-1])
    return change


def delete(*keys):
    return lambda doc: _parent(doc, keys[:-1]).pop(keys[-1])


# --- the embedded files are valid ------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_a_strict_draft_2020_12_schema(name):
    schema = json.loads(schema_path(name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["version"] == {"const": "v1"}


@pytest.mark.parametrize("name", NAMES)
def test_embedded_yaml_validates_against_its_schema(name):
    assert schema_error_paths(name, DOCS[name]) == set()


@pytest.mark.parametrize("name", NAMES)
def test_embedded_yaml_agrees_with_itself(name):
    assert check_document(name, DOCS[name]) == []


def test_embedded_yaml_files_agree_with_each_other_and_the_world():
    assert check_across(ACROSS_DOCS, WORLD_REGIONS) == []


# --- the schema catches structural mistakes --------------------------------------------


@pytest.mark.parametrize(
    ("name", "change", "expected_paths"),
    [
        pytest.param(ACCOUNT, rename("rules", 0, "k_max", to="kmax"), {"rules[0]"},
                     id="misspelt-rule-key"),
        pytest.param(DEVICE_IP, rename("linkage", "coverage_target", to="coverage_targt"),
                     {"linkage"}, id="misspelt-nested-key"),
        pytest.param(TAXONOMY, rename("families", to="familes"), {""}, id="misspelt-top-key"),
        pytest.param(POLICY, rename("gates", "T3_IP_PRIOR_ALIGNMENT", to="T3_IP_PRIOR_ALIGN"),
                     {"gates"}, id="misspelt-gate-id"),
        pytest.param(DEVICE_IP, set_("ip_type_mix", "AFRICA", "MOBILE_CGNAT", value=1.2),
                     {"ip_type_mix.AFRICA.MOBILE_CGNAT"}, id="ip-share-above-1"),
        pytest.param(ACCOUNT, set_("rules", 0, "holding_probability", "R_MASS", value=1.5),
                     {"rules[0].holding_probability.R_MASS"}, id="holding-probability-above-1"),
        pytest.param(TAXONOMY, set_("entity_kinds", "party", 0, "target_prevalence", value=1.2),
                     {"entity_kinds.party[0].target_prevalence"}, id="prevalence-above-1"),
        pytest.param(ACCOUNT, set_("rules", 0, "k_max", value=0), {"rules[0].k_max"},
                     id="k_max-0"),
        pytest.param(ACCOUNT, set_("constraints", "cap_enforcement_mode", value="soft"),
                     {"constraints.cap_enforcement_mode"}, id="cap-mode-not-hard"),
        pytest.param(ACCOUNT, set_("constraints", "max_allowed_kmax_violations", value=1),
                     {"constraints.max_allowed_kmax_violations"}, id="kmax-violations-allowed"),
        pytest.param(POLICY, set_("gates", "T1_KMAX_HARD_INVARIANT", "components",
                                  "max_accounts_above_kmax", "comparator", value="lt"),
                     {"gates.T1_KMAX_HARD_INVARIANT.components.max_accounts_above_kmax"
                      ".comparator"}, id="unknown-comparator"),
        pytest.param(POLICY, set_("gates", "T9_CROSS_SEED_STABILITY", "owner_state", value="S9"),
                     {"gates.T9_CROSS_SEED_STABILITY.owner_state"}, id="unknown-owner-state"),
        pytest.param(SCALES, set_("scales", "tiny", "n_parties", value=0),
                     {"scales.tiny.n_parties"}, id="n_parties-0"),
        pytest.param(SCALES, set_("block_size", value=2.5), {"block_size"},
                     id="block-size-not-integer"),
        pytest.param(MERCHANTS, rename("mcc_mix", "5411", to=5411), {"mcc_mix"},
                     id="unquoted-mcc"),
        pytest.param(PERF, set_("version", value="v2"), {"version"}, id="wrong-version"),
    ],
)
def test_schema_rejects_structural_mistakes(name, change, expected_paths):
    assert schema_error_paths(name, mutated(name, change)) == expected_paths


# --- check_document catches contradictions inside one file -----------------------------


@pytest.mark.parametrize(
    ("name", "change", "expected_paths", "fragment"),
    [
        pytest.param(PARTY, set_("party_type_mix", "by_region", "AFRICA", "RETAIL", value=0.83),
                     {"party_type_mix.by_region.AFRICA"}, "sum to 0.95, expected 1",
                     id="party-type-mix"),
        pytest.param(PARTY, set_("segments", "RETAIL", "R_MASS", value=0.50),
                     {"segments.RETAIL"}, "sum to 0.98", id="segments"),
        pytest.param(INSTRUMENT, set_("scheme_mix_by_region", "ASIA_PACIFIC", "UNIONPAY",
                                      value=0.30),
                     {"scheme_mix_by_region.ASIA_PACIFIC"}, "sum to 0.94", id="scheme-mix"),
        pytest.param(DEVICE_IP, set_("devices_per_party", "RETAIL", "device_type_mix", "TABLET",
                                     value=0.20),
                     {"devices_per_party.RETAIL.device_type_mix"}, "sum to 1.1",
                     id="device-type-mix"),
        pytest.param(DEVICE_IP, set_("os_mix_by_device_type", "LAPTOP", "LINUX", value=0.0),
                     {"os_mix_by_device_type.LAPTOP"}, "sum to 0.94", id="os-mix"),
        pytest.param(DEVICE_IP, set_("ip_type_mix", "EUROPE", "VPN_PROXY", value=0.05),
                     {"ip_type_mix.EUROPE"}, "sum to 1.01", id="ip-type-mix"),
        pytest.param(TAXONOMY, set_("entity_kinds", "ip", 0, "target_prevalence", value=0.95),
                     {"entity_kinds.ip"}, "sum to 1.02", id="role-prevalence"),
        pytest.param(MERCHANTS, set_("mcc_mix", "5411", value=0.10), {"mcc_mix"},
                     "sum to 0.96", id="mcc-mix"),
        pytest.param(MERCHANTS, set_("size_class_mix", "LARGE", value=0.0), {"size_class_mix"},
                     "sum to 0.97", id="size-class-mix"),
        pytest.param(PARTY, rename("party_type_mix", "default", "OTHER", to="OTHERS"),
                     {"party_type_mix.default.OTHERS"}, "OTHERS is not in party_types",
                     id="mix-key-outside-vocabulary"),
        pytest.param(DEVICE_IP, delete("ip_type_mix", "LATAM", "VPN_PROXY"),
                     {"ip_type_mix.LATAM", "ip_type_mix.LATAM.VPN_PROXY"},
                     "ip type VPN_PROXY of ip_types is missing", id="ip-type-missing-from-mix"),
        pytest.param(PARTY, rename("segments", "OTHER", "O_TRUST", to="R_SENIOR"),
                     {"segments.OTHER.R_SENIOR"}, "also a segment of RETAIL",
                     id="segment-id-shared"),
        pytest.param(ACCOUNT, set_("rules", 0, "mean_accounts_per_holder", value=4.5),
                     {"rules[0].mean_accounts_per_holder"},
                     "mean_accounts_per_holder 4.5 exceeds k_max 4", id="mean-above-k_max"),
        pytest.param(ACCOUNT, set_("rules", 1, "account_type", value="CURRENT"),
                     {"rules[1]"}, "duplicate rule for (RETAIL, CURRENT)", id="duplicate-rule"),
        pytest.param(ACCOUNT, set_("rules", 2, "account_type", value="CREDITCARD"),
                     {"rules[2].account_type"}, "CREDITCARD is not in account_types",
                     id="unknown-account-type"),
        pytest.param(INSTRUMENT, set_("rules", 0, "instruments", 0, "floor", value=2),
                     {"rules[0].instruments[0].floor"}, "floor 2 exceeds mean_count 1.08",
                     id="floor-above-mean"),
        pytest.param(INSTRUMENT, set_("rules", 0, "instruments", 1, "mean_count", value=5.0),
                     {"rules[0].instruments[1].mean_count"}, "exceeds hard_max_per_account 4",
                     id="mean-above-hard-max"),
        pytest.param(INSTRUMENT, set_("rules", 0, "instruments", 1, "instrument_type",
                                      value="DEBIT_CARD"),
                     {"rules[0].instruments[1].instrument_type"},
                     "duplicate instrument type DEBIT_CARD", id="instrument-type-twice"),
        pytest.param(DEVICE_IP, set_("devices_per_party", "BUSINESS", "mean_count", value=25.0),
                     {"devices_per_party.BUSINESS.mean_count"}, "exceeds max_count 20",
                     id="device-mean-above-max"),
        pytest.param(DEVICE_IP, set_("linkage", "capacity_law", "CORPORATE", "max", value=400),
                     {"linkage.capacity_law.CORPORATE.max"},
                     "exceeds linkage.max_devices_per_ip 300", id="capacity-above-cap"),
        pytest.param(DEVICE_IP, set_("asn_class_by_ip_type", "VPN_PROXY", value="TOR"),
                     {"asn_class_by_ip_type.VPN_PROXY"}, "TOR is not in asn_classes",
                     id="unknown-asn-class"),
        pytest.param(TAXONOMY, set_("entity_kinds", "party", 1, "family", value="MULE_NETWRK"),
                     {"entity_kinds.party[1].family"},
                     "family MULE_NETWRK is not in families", id="role-family-unknown"),
        pytest.param(TAXONOMY, set_("entity_kinds", "device", 2, "is_risky", value=False),
                     {"entity_kinds.device[2].is_risky"}, "expected true",
                     id="non-clean-role-not-risky"),
        pytest.param(TAXONOMY, set_("entity_kinds", "merchant", 0, "is_risky", value=True),
                     {"entity_kinds.merchant", "entity_kinds.merchant[0].is_risky"},
                     "no non-risky role for merchant", id="no-clean-role"),
        pytest.param(TAXONOMY, set_("entity_kinds", "account", 2, "raw_role",
                                    value="MULE_ACCOUNT"),
                     {"entity_kinds.account[2].raw_role"}, "duplicate raw role MULE_ACCOUNT",
                     id="raw-role-twice"),
        pytest.param(RISK, set_("logit_clamp", "max", value=-9.0), {"logit_clamp"},
                     "is not below max", id="empty-logit-clamp"),
        pytest.param(POLICY, set_("gates", "T3_IP_PRIOR_ALIGNMENT", "components",
                                  "max_abs_error_pp", "Bplus", value=20.0),
                     {"gates.T3_IP_PRIOR_ALIGNMENT.components.max_abs_error_pp.Bplus"},
                     "expected Bplus <= B", id="bplus-looser-le"),
        pytest.param(POLICY, set_("gates", "T7_RISK_PROPAGATION_EFFECT", "components",
                                  "OR_device", "Bplus", value=1.2),
                     {"gates.T7_RISK_PROPAGATION_EFFECT.components.OR_device.Bplus"},
                     "expected Bplus >= B", id="bplus-looser-ge"),
        pytest.param(SCALES, set_("default_scale", value="huge"), {"default_scale"},
                     "default_scale huge is not in scales", id="unknown-default-scale"),
    ],
)
def test_check_document_catches_contradictions(name, change, expected_paths, fragment):
    doc = mutated(name, change)
    # Each of these is structurally fine: only the self-consistency checks can catch it.
    assert schema_error_paths(name, doc) == set()
    problems = check_document(name, doc)
    assert {path for path, _ in problems} == expected_paths
    assert any(fragment in message for _, message in problems), problems


def test_check_document_names_k_max_below_1():
    problems = check_document(ACCOUNT, mutated(ACCOUNT, set_("rules", 4, "k_max", value=0)))
    assert [path for path, _ in problems] == ["rules[4].k_max"]
    assert "k_max" in problems[0][1]


def test_check_document_catches_duplicate_vocabulary_entries():
    doc = mutated(INSTRUMENT, lambda d: d["schemes"].append("VISA"))
    assert check_document(INSTRUMENT, doc) == [("schemes[7]", "duplicate scheme VISA")]


def test_check_document_refuses_an_unknown_file():
    with pytest.raises(ValueError, match="unknown.yaml"):
        check_document("unknown.yaml", {})


# --- check_across catches contradictions between files ---------------------------------


@pytest.mark.parametrize("region", sorted(WORLD_REGIONS))
def test_check_across_names_a_region_missing_from_ip_type_mix(region):
    docs = {**ACROSS_DOCS, DEVICE_IP: mutated(DEVICE_IP, delete("ip_type_mix", region))}
    problems = check_across(docs, WORLD_REGIONS)
    assert [(name, path) for name, path, _ in problems] == [
        (DEVICE_IP, f"ip_type_mix.{region}")
    ]
    message = problems[0][2]
    assert region in message and "ip_type_mix" in message


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        pytest.param(ACCOUNT, rename("rules", 0, "holding_probability", "R_MASS", to="R_MAS"),
                     {(ACCOUNT, "rules[0].holding_probability.R_MAS"),
                      (ACCOUNT, "rules[0].holding_probability.R_MASS")},
                     id="unknown-holding-segment"),
        pytest.param(ACCOUNT, delete("rules", 6, "holding_probability", "B_SME"),
                     {(ACCOUNT, "rules[6].holding_probability.B_SME")},
                     id="missing-holding-segment"),
        pytest.param(ACCOUNT, set_("rules", 10, "party_type", value="GOVERNMENT"),
                     {(ACCOUNT, "rules[10].party_type")}, id="unknown-rule-party-type"),
        pytest.param(INSTRUMENT, delete("scheme_mix_by_region", "LATAM"),
                     {(INSTRUMENT, "scheme_mix_by_region.LATAM")}, id="region-without-schemes"),
        pytest.param(INSTRUMENT, set_("scheme_mix_by_region", "ANTARCTICA",
                                      value={"VISA": 1.0}),
                     {(INSTRUMENT, "scheme_mix_by_region.ANTARCTICA")},
                     id="scheme-mix-for-unknown-region"),
        pytest.param(PARTY, rename("party_type_mix", "by_region", "LATAM", to="SOUTH_AMERICA"),
                     {(PARTY, "party_type_mix.by_region.SOUTH_AMERICA")},
                     id="party-mix-for-unknown-region"),
        pytest.param(INSTRUMENT, lambda d: d["rules"].pop(4), {(INSTRUMENT, "rules")},
                     id="account-type-without-instrument-rule"),
        pytest.param(INSTRUMENT, set_("rules", 4, "account_type", value="HOME_LOAN"),
                     {(INSTRUMENT, "rules[4].account_type"), (INSTRUMENT, "rules")},
                     id="instrument-rule-for-unknown-account-type"),
        pytest.param(DEVICE_IP, delete("devices_per_party", "OTHER"),
                     {(DEVICE_IP, "devices_per_party.OTHER")}, id="party-type-without-devices"),
        pytest.param(RISK, rename("to_ip", "beta_ip_type", "VPN_PROXY", to="VPN"),
                     {(RISK, "to_ip.beta_ip_type.VPN"), (RISK, "to_ip.beta_ip_type.VPN_PROXY")},
                     id="beta-ip-type-keys"),
        pytest.param(PERF, rename("budgets", "full", to="huge"), {(PERF, "budgets.huge")},
                     id="budget-for-unknown-scale"),
    ],
)
def test_check_across_catches_contradictions(name, change, expected):
    docs = {**ACROSS_DOCS, name: mutated(name, change)}
    assert {(file_name, path) for file_name, path, _ in check_across(docs, WORLD_REGIONS)} == (
        expected
    )


def test_check_across_reports_a_missing_document():
    docs = {name: doc for name, doc in ACROSS_DOCS.items() if name != DEVICE_IP}
    assert check_across(docs, WORLD_REGIONS) == [(DEVICE_IP, "", "document is missing")]
