"""Country-conditioned modulation of the priors (reference plan P6.2).

A prior (a holding probability, a mean count) is global; countries differ around it. Each
``country_modulation`` entry of a priors file names a per-country indicator of the world
(``world/country_indicators.yaml``) and turns it into bounded deltas:

1. ``raw_c = t(x_c)`` with ``t`` the logit of the share for a probability and the log for a
   mean (``per``: of the ratio to a second indicator), centred on its population-weighted
   mean over the countries with a value; a country without a value gets ``raw_c = 0``.
2. ``delta_c = clip(elasticity * raw_c, -max_abs_delta, max_abs_delta)``.
3. Conservation: per prior, one shift ``s`` so that the mean of the modulated prior over
   the countries, weighted by the population it applies to (parties of its segment, accounts
   of its type), equals the global prior: ``expit(logit(p) + delta_c + s)`` for a
   probability (``s`` by ``scipy.optimize.brentq``), ``mean * exp(delta_c + s)`` for a mean
   (``s`` in closed form). So the full-surface counts stay those of the global priors.

Everything here is a pure function of the config, the world and the weights; the states
apply the tables, and the gateboard's diagnostic recomputes them from the published data.
"""
import numpy as np

PROBABILITY, MEAN = "probability", "mean"
# A share of 0 or 100 % has no finite logit; the indicators are whole percent at best.
_SHARE_FLOOR = 0.005


def _transform(values, kind):
    share = np.clip(np.asarray(values, dtype=np.float64) / 100.0, _SHARE_FLOOR,
                    1.0 - _SHARE_FLOOR)
    return np.log(share / (1.0 - share)) if kind == PROBABILITY else np.log(share)


def country_deltas(spec, indicators, population, kind):
    """The clipped deltas per country of one modulation entry.

    Parameters
    ----------
    spec : Mapping
        A ``country_modulation`` entry: ``indicator``, ``elasticity``, ``max_abs_delta``
        and optionally ``per`` (a second indicator; the raw value is of the ratio).
    indicators : Mapping of str to ndarray
        Indicator name -> percent per country (NaN where the world has no value).
    population : ndarray
        Population weight per country (centres the raw values).
    kind : {"probability", "mean"}
        Logit (probabilities) or log (means) scale.

    Returns
    -------
    delta : ndarray
        Per country; 0 for a country without a value.
    missing : ndarray of bool
        The countries without a value.

    Examples
    --------
    >>> import numpy as np
    >>> spec = {"indicator": "x", "elasticity": 1.0, "max_abs_delta": 0.5}
    >>> delta, missing = country_deltas(spec, {"x": np.array([50.0, 50.0, np.nan])},
    ...                                 np.ones(3), "probability")
    >>> delta.tolist(), missing.tolist()
    ([0.0, 0.0, 0.0], [False, False, True])
    """
    raw = _transform(indicators[spec["indicator"]], kind)
    if spec.get("per"):
        raw = raw - _transform(indicators[spec["per"]], kind)
    missing = ~np.isfinite(raw)
    weight = np.where(missing, 0.0, np.asarray(population, dtype=np.float64))
    if weight.sum() > 0:
        raw = raw - np.sum(weight * np.where(missing, 0.0, raw)) / weight.sum()
    raw = np.where(missing, 0.0, raw)
    bound = float(spec["max_abs_delta"])
    return np.clip(float(spec["elasticity"]) * raw, -bound, bound), missing


def _expit(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


def conserved_probability(p, delta, weights):
    """Per country ``expit(logit(p) + delta_c + s)``, ``s`` solving
    ``sum_c w_c * p_c = p * sum_c w_c``; ``p`` itself where there is nothing to modulate
    (``p`` of 0 or 1, no weight)."""
    from scipy.optimize import brentq

    weights = np.asarray(weights, dtype=np.float64)
    if not 0.0 < p < 1.0 or weights.sum() <= 0:
        return np.full(delta.shape, float(p))
    base = np.log(p / (1.0 - p)) + delta
    total = weights.sum()

    def excess(shift):
        return np.dot(weights, _expit(base + shift)) / total - p

    # The deltas are bounded, so the shift lies within the same bound of zero.
    bound = float(np.max(np.abs(delta), initial=0.0)) + 1.0
    shift = brentq(excess, -bound, bound, xtol=1e-14, rtol=1e-14) if bound > 1.0 else 0.0
    return _expit(base + shift)


def conserved_mean(mean, delta, weights):
    """Per country ``mean * exp(delta_c + s)``, ``s`` solving
    ``sum_c w_c * mean_c = mean * sum_c w_c`` (closed form)."""
    weights = np.asarray(weights, dtype=np.float64)
    if mean <= 0 or weights.sum() <= 0:
        return np.full(delta.shape, float(mean))
    factor = np.exp(delta)
    return mean * factor * weights.sum() / np.dot(weights, factor)


def modulated(base, groups, weights, entries, key, world, kind):
    """Per prior and country, the modulated prior; and what a receipt records of it.

    Parameters
    ----------
    base : array_like, shape (n_priors,)
        The global priors (probabilities, or means above a floor).
    groups : sequence of str
        Each prior's party type or instrument type: the entry whose ``key`` list holds it
        modulates the prior; a prior no entry names keeps its global value everywhere.
    weights : ndarray, shape (n_priors, n_countries)
        What each prior applies to per country (parties of its segment, accounts of its
        type): the weights of its conservation.
    entries : sequence of Mapping
        The priors file's ``country_modulation`` entries.
    key : {"party_types", "instrument_types"}
    world : seg6a.world.World
        Its ``indicators`` and ``country_weight`` (which centre the raw deltas).
    kind : {"probability", "mean"}

    Returns
    -------
    table : ndarray, shape (n_priors, n_countries)
    applied : list of dict
        Each entry with its ``delta_by_country`` and ``countries_without_indicator``.
    """
    base = np.asarray(base, dtype=np.float64)
    table = np.repeat(base[:, None], weights.shape[1], axis=1)
    conserve = conserved_probability if kind == PROBABILITY else conserved_mean
    applied = []
    for entry in entries:
        delta, missing = country_deltas(entry, world.indicators, world.country_weight, kind)
        for i in (i for i, group in enumerate(groups) if group in entry[key]):
            table[i] = conserve(base[i], delta, weights[i])
        applied.append({**entry, "delta_by_country": dict(zip(world.countries_vocab,
                                                              delta.round(6).tolist())),
                        "countries_without_indicator": [c for c, m in
                                                        zip(world.countries_vocab, missing) if m]})
    return table, applied


def country_segment_counts(country, segment, n_countries, n_segments):
    """Parties per (country, segment) code pair, shape ``(n_countries, n_segments)``."""
    flat = np.asarray(country, dtype=np.int64) * n_segments + segment
    return np.bincount(flat, minlength=n_countries * n_segments).reshape(n_countries,
                                                                        n_segments)
