"""Diagnostics beside the gateboard (in S5's validation report): records that show, and
never judge.

``D1_COUNTRY_MODULATION`` shows the realised per-country rates of every country-modulated
prior (``seg6a.modulation``) against their targets, from the published tables: the share of
a party type holding an account type (S2), instruments of a type per account (S3), devices
owned per party (S4). The targets are recomputed here from the config, the world and the
published population, with the same functions the states use; a prior's target for a
count is the expectation of the capped draw (``floor + Poisson``, at most the cap). Each
component reports the largest error over the countries with at least ``MIN_SUPPORT``
entities, Spearman's correlation of the realised rates with the indicator, and the global
realised rate against the global prior.
"""
import numpy as np

from ..modulation import PROBABILITY, MEAN
from ..states.s1_parties import segment_weights
from ..states.s2_accounts import holding_tables
from ..states.s3_instruments import count_tables, excess_tables
from ..states.s4_devices import device_excess_table

D1 = "D1_COUNTRY_MODULATION"
PARTY_PRIORS = "party_priors_6A.v1.yaml"
ACCOUNT_PRIORS = "account_per_party_priors_6A.v1.yaml"
INSTRUMENT_PRIORS = "instrument_priors_6A.v1.yaml"
DEVICE_IP_PRIORS = "device_ip_priors_6A.v1.yaml"
# Countries with fewer entities than this are listed but left out of the largest error and
# the correlation: their rates are mostly sampling noise at small scales.
MIN_SUPPORT = 500


def capped_mean(floor, lam, cap):
    """``E[min(floor + X, cap)]`` for ``X ~ Poisson(lam)`` (elementwise)."""
    from scipy.stats import poisson

    floor, lam, cap = np.broadcast_arrays(np.asarray(floor, float), np.asarray(lam, float),
                                          np.asarray(cap, float))
    out = np.minimum(floor, cap).astype(np.float64)
    # E[min(X, m)] = sum_{k<m} P(X > k), m = cap - floor.
    for k in range(int(np.max(cap - floor, initial=0))):
        out += np.where(cap - floor > k, poisson.sf(k, lam), 0.0)
    return out


def _component(name, owner, entry, target, realised, support, countries, world, global_prior):
    from scipy.stats import spearmanr

    indicator = world.indicators.get(entry["indicator"])
    if indicator is None:
        indicator = np.full(len(countries), np.nan)
    if entry.get("per") and entry["per"] in world.indicators:
        indicator = indicator / world.indicators[entry["per"]]
    # country_modulation checked that the world's countries are the board's, in order.
    judged = (support >= MIN_SUPPORT) & np.isfinite(indicator)
    errors = np.abs(realised - target)[judged]
    rho = (float(spearmanr(realised[judged], indicator[judged]).statistic)
           if np.count_nonzero(judged) >= 3 and np.ptp(realised[judged]) > 0 else None)
    total = float(support.sum())
    global_realised = float(np.dot(realised, support) / total) if total else None
    return {
        "name": name, "value": shown(errors.max()) if errors.size else None,
        "owner_state": owner, "indicator": entry["indicator"], "per": entry.get("per"),
        "spearman_vs_indicator": shown(rho),
        "global_prior": shown(global_prior), "global_realised": shown(global_realised),
        "global_error": None if global_realised is None else shown(global_realised
                                                                   - global_prior),
        "countries_judged": int(np.count_nonzero(judged)),
        "countries": {iso: [shown(t), shown(r), int(n)]
                      for iso, t, r, n in zip(countries, target, realised, support)},
    }


def shown(value):
    """A diagnostic's float as published: 6 decimals. The targets come through ``exp`` and
    ``log``, which NumPy computes with SIMD code on some CPUs and with libm on others, an ulp
    apart; the last digits would make the report's bytes depend on the machine."""
    return None if value is None else round(float(value), 6)


def _rate(numerator, denominator):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def country_modulation(stats, config, world):
    """The components of ``D1_COUNTRY_MODULATION`` (see the module docstring)."""
    vocab = stats.vocabularies
    countries, segments = list(vocab["countries"]), list(vocab["segments"])
    if not countries or list(world.countries_vocab) != countries:
        return []
    party_priors = config[PARTY_PRIORS]
    party_types = tuple(party_priors["party_types"])
    known_segments, segment_owner, _ = segment_weights(party_priors)
    if list(known_segments) != segments:
        return []
    population = stats["country.parties"]  # (countries, segments)
    components = []

    # S2: the share of a party type holding an account type, per country.
    accounts = config[ACCOUNT_PRIORS]
    entries = accounts.get("country_modulation", ())
    rules = list(accounts["rules"])
    holding, _, _ = holding_tables(rules, segments, party_types, population, world, entries)
    account_types = list(vocab["account_types"])
    for r, rule in enumerate(rules):
        entry = next((e for e in entries if rule["party_type"] in e["party_types"]), None)
        if entry is None or rule["account_type"] not in account_types:
            continue
        of_type = segment_owner == party_types.index(rule["party_type"])
        parties = population[:, of_type].sum(axis=1)
        target = _rate((population[:, of_type] * holding[r][:, of_type]).sum(axis=1), parties)
        holders = stats["country.holders"][account_types.index(rule["account_type"])]
        realised = _rate(holders[:, of_type].sum(axis=1), parties)
        prior = sum(rule["holding_probability"].get(s, 0.0) * population[:, j].sum()
                    for j, s in enumerate(segments) if of_type[j]) / max(parties.sum(), 1)
        components.append(_component(
            f"S2.holding.{rule['party_type']}.{rule['account_type']}", "S2", entry,
            np.nan_to_num(target), np.nan_to_num(realised), parties, countries, world,
            float(prior)))

    # S3: instruments of a type per account allowing it, per country.
    instruments = config[INSTRUMENT_PRIORS]
    base_types = list(vocab["base_account_types"])
    instrument_types = list(vocab["instrument_types"])
    if base_types == list(accounts["account_types"]) and \
            instrument_types == list(instruments["instrument_types"]):
        by_account = stats["country.accounts"]  # (account types, countries)
        excess, _ = excess_tables(instruments, tuple(base_types), by_account, world)
        mean, floor, cap = count_tables(instruments, tuple(base_types))
        for entry in instruments.get("country_modulation", ()):
            for name in entry["instrument_types"]:
                t = instrument_types.index(name)
                allowed = cap[:, t] > 0
                n = by_account[allowed].sum(axis=0)
                expected = capped_mean(floor[allowed, t][:, None], excess[allowed, t],
                                       cap[allowed, t][:, None])
                target = _rate((by_account[allowed] * expected).sum(axis=0), n)
                realised = _rate(stats["country.instruments"][allowed, t].sum(axis=0), n)
                prior = float(np.dot(by_account[allowed].sum(axis=1),
                                     capped_mean(floor[allowed, t], mean[allowed, t] -
                                                 floor[allowed, t], cap[allowed, t]))
                              / max(n.sum(), 1))
                components.append(_component(f"S3.instruments.{name}", "S3", entry,
                                             np.nan_to_num(target), np.nan_to_num(realised),
                                             n, countries, world, prior))

    # S4: devices owned per party of a type, per country.
    devices = config[DEVICE_IP_PRIORS]
    excess, _ = device_excess_table(devices, party_types, segments, segment_owner,
                                    population, world)
    unmodulated, _ = device_excess_table({**devices, "country_modulation": []}, party_types,
                                         segments, segment_owner, population, world)
    for entry in devices.get("country_modulation", ()):
        for name in entry["party_types"]:
            spec = devices["devices_per_party"][name]
            of_type = segment_owner == party_types.index(name)
            parties = population[:, of_type].sum(axis=1)
            expected = capped_mean(spec["min_count"], excess[:, of_type], spec["max_count"])
            target = _rate((population[:, of_type] * expected).sum(axis=1), parties)
            realised = _rate(stats["country.devices"][:, of_type].sum(axis=1), parties)
            prior = float(np.sum(population[:, of_type] * capped_mean(
                spec["min_count"], unmodulated[:, of_type], spec["max_count"]))
                / max(parties.sum(), 1))
            components.append(_component(f"S4.devices.{name}", "S4", entry,
                                         np.nan_to_num(target), np.nan_to_num(realised),
                                         parties, countries, world, prior))
    return components


def record(components, seed):
    """The board record of ``D1_COUNTRY_MODULATION``: never judged (null pass fields); its
    value is the smallest Spearman correlation of a component with its indicator."""
    rhos = [c["spearman_vs_indicator"] for c in components
            if c["spearman_vs_indicator"] is not None]
    return {
        "test_id": D1, "metric_name": "min_spearman_vs_indicator",
        "value": min(rhos) if rhos else None, "comparator": None, "threshold_B": None,
        "threshold_Bplus": None, "pass_B": None, "pass_Bplus": None, "ci_low": None,
        "ci_high": None, "seed": seed, "support": len(components), "method": "diagnostic",
        "owner_state": "S2", "reason": "diagnostic",
        "components": {c["name"]: {k: v for k, v in c.items() if k != "name"}
                       for c in components},
    }
