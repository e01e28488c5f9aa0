"""Country-conditioned modulation: bounded deltas, conservation, and what a run realises."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import seg6a
from seg6a.errors import ConfigError
from seg6a.policies import embedded_file
from seg6a.modulation import (MEAN, PROBABILITY, conserved_mean, conserved_probability,
                              country_deltas, modulated)
from seg6a.world import load_world



def write(folder, name, text):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)

SPEC = {"indicator": "x", "elasticity": 1.0, "max_abs_delta": 0.75}


def test_deltas_are_centred_clipped_and_zero_without_a_value():
    x = np.array([10.0, 50.0, 90.0, np.nan])
    delta, missing = country_deltas(SPEC, {"x": x}, np.array([1.0, 1.0, 1.0, 5.0]),
                                    PROBABILITY)
    assert missing.tolist() == [False, False, False, True]
    # logit(0.1) = -2.197 and logit(0.9) = 2.197 around a centre of 0: both clipped.
    assert np.allclose(delta, [-0.75, 0.0, 0.75, 0.0], rtol=0, atol=1e-12)
    log_delta, _ = country_deltas({**SPEC, "max_abs_delta": 3.0}, {"x": x[:3]},
                                  np.ones(3), MEAN)
    centre = np.log([0.1, 0.5, 0.9]).mean()
    assert np.allclose(log_delta, np.log([0.1, 0.5, 0.9]) - centre)


def test_a_ratio_indicator_uses_both_columns():
    values = {"x": np.array([20.0, 40.0]), "y": np.array([40.0, 40.0])}
    delta, _ = country_deltas({**SPEC, "per": "y", "max_abs_delta": 3.0}, values,
                              np.ones(2), MEAN)
    assert np.allclose(delta, [-np.log(2) / 2, np.log(2) / 2])


weights = st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e6)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(p=st.floats(1e-4, 1 - 1e-4), data=st.data(), w=weights)
def test_conserved_probability_keeps_the_weighted_mean_and_the_order(p, data, w):
    w = np.array(w)
    delta = np.array(data.draw(st.lists(st.floats(-1.5, 1.5), min_size=len(w),
                                        max_size=len(w))))
    out = conserved_probability(p, delta, w)
    assert np.all((out > 0) & (out < 1))
    if w.sum() > 0:
        assert np.dot(w, out) / w.sum() == pytest.approx(p, rel=1e-9, abs=1e-12)
    order = np.argsort(delta, kind="stable")
    assert np.all(np.diff(out[order]) >= -1e-15)


@settings(max_examples=200, deadline=None)
@given(mean=st.floats(1e-3, 20.0), data=st.data(), w=weights)
def test_conserved_mean_keeps_the_weighted_mean(mean, data, w):
    w = np.array(w)
    delta = np.array(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=len(w),
                                        max_size=len(w))))
    out = conserved_mean(mean, delta, w)
    if w.sum() > 0:
        assert np.dot(w, out) / w.sum() == pytest.approx(mean, rel=1e-9)
        ratio = out / np.exp(delta)  # one shift for all countries
        assert np.allclose(ratio, ratio[0])
    else:
        assert np.all(out == mean)


def test_certain_and_impossible_probabilities_stay_put():
    delta = np.array([-1.0, 1.0])
    assert conserved_probability(1.0, delta, np.ones(2)).tolist() == [1.0, 1.0]
    assert conserved_probability(0.0, delta, np.ones(2)).tolist() == [0.0, 0.0]


def test_only_the_named_groups_are_modulated_and_the_receipt_names_the_gaps():
    world = load_world()
    n = len(world.countries_vocab)
    entry = {"indicator": "account_ownership_pct", "elasticity": 0.5, "max_abs_delta": 1.5,
             "party_types": ["RETAIL"]}
    table, applied = modulated([0.5, 0.5], ["RETAIL", "BUSINESS"], np.ones((2, n)), [entry],
                               "party_types", world, PROBABILITY)
    assert np.ptp(table[0]) > 0.2 and np.all(table[1] == 0.5)
    assert applied[0]["countries_without_indicator"] == []
    assert set(applied[0]["delta_by_country"]) == set(world.countries_vocab)
    assert max(abs(d) for d in applied[0]["delta_by_country"].values()) <= 1.5


@pytest.fixture(scope="module")
def small_board(tmp_path_factory):
    return seg6a.simulate(42, scale="small", out=tmp_path_factory.mktemp("runs"))


def _d1(result):
    """The country-modulation diagnostic of S5's validation report."""
    return next(r for r in result.fraud.report["diagnostics"]
                if r["test_id"] == "D1_COUNTRY_MODULATION")


def test_a_run_realises_its_country_targets_and_keeps_the_global_rates(small_board):
    d1 = _d1(small_board)
    assert d1["pass_B"] is None and d1["reason"] == "diagnostic"
    parts = d1["components"]
    assert {"S2.holding.RETAIL.CURRENT", "S3.instruments.WALLET_TOKEN",
            "S4.devices.RETAIL"} <= set(parts)
    for name, part in parts.items():
        # The global rate is the prior's: conservation.
        assert abs(part["global_error"]) < 0.005, name
        assert part["countries_judged"] >= 20, name
    for name in ("S2.holding.RETAIL.CURRENT", "S2.holding.RETAIL.SAVINGS",
                 "S3.instruments.DEBIT_CARD", "S3.instruments.WALLET_TOKEN",
                 "S4.devices.RETAIL"):
        assert parts[name]["spearman_vs_indicator"] > 0.85, name
        assert parts[name]["value"] < 0.06, name  # realised vs target, largest country error
    current = parts["S2.holding.RETAIL.CURRENT"]["countries"]
    assert current["EG"][1] < current["DE"][1] - 0.1  # [target, realised, parties]


def test_the_diagnostic_publishes_floats_at_six_decimals(small_board):
    # Its targets go through exp and log, an ulp apart between NumPy's SIMD code and libm:
    # unrounded, the report's bytes would depend on the CPU.
    def floats(value):
        if isinstance(value, dict):
            return [f for v in value.values() for f in floats(v)]
        if isinstance(value, list):
            return [f for v in value for f in floats(v)]
        return [value] if isinstance(value, float) else []

    found = floats(_d1(small_board))
    assert len(found) > 100
    assert all(round(f, 6) == f for f in found), [f for f in found if round(f, 6) != f][:5]


def test_without_modulation_every_country_gets_the_global_priors(tmp_path):
    cfg = tmp_path / "cfg"
    text = (embedded_file("priors", "account_per_party_priors_6A.v1.yaml")
            .read_text())
    start = text.index("country_modulation:")
    end = text.index("rules:")
    write(cfg, "priors/account_per_party_priors_6A.v1.yaml", text[:start] + text[end:])
    result = seg6a.simulate(42, scale="tiny", config=cfg, out=tmp_path / "runs")
    current = _d1(result)["components"]
    assert not any(name.startswith("S2.") for name in current)
    assert result.accounts.country_modulation == []


def test_a_modulation_naming_an_unknown_indicator_is_refused(tmp_path):
    cfg = tmp_path / "cfg"
    text = (embedded_file("priors", "device_ip_priors_6A.v1.yaml").read_text()
            .replace("indicator: internet_users_pct", "indicator: internet_pct"))
    write(cfg, "priors/device_ip_priors_6A.v1.yaml", text)
    with pytest.raises(ConfigError, match="internet_pct is not in the world's indicators") as info:
        seg6a.simulate(42, scale="tiny", config=cfg, out=tmp_path / "runs")
    assert info.value.key == "country_modulation[0].indicator"


def test_a_prior_modulated_twice_is_refused(tmp_path):
    cfg = tmp_path / "cfg"
    text = embedded_file("priors", "instrument_priors_6A.v1.yaml").read_text()
    text = text.replace("instrument_types: [WALLET_TOKEN]", "instrument_types: [DEBIT_CARD]")
    write(cfg, "priors/instrument_priors_6A.v1.yaml", text)
    with pytest.raises(ConfigError, match="modulated twice"):
        seg6a.simulate(42, scale="tiny", config=cfg, out=tmp_path / "runs")


def test_a_user_world_without_indicators_is_told_how_to_fix_it(tmp_path):
    world = tmp_path / "cfg" / "world"
    write(world.parent, "world/countries.csv",
          embedded_file("world", "countries.csv").read_text())
    write(world.parent, "world/merchant_catalogue.yaml",
          embedded_file("world", "merchant_catalogue.yaml").read_text())
    with pytest.raises(ConfigError, match="no country_indicators.yaml; add one"):
        seg6a.simulate(42, scale="tiny", config=world.parent, out=tmp_path / "runs")
