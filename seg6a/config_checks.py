"""Self-consistency checks of the config files that JSON Schema cannot express.

A schema says what each file may contain; these checks say whether what it contains agrees
with itself (shares that sum to 1, mix keys drawn from the file's own vocabularies, ordered
bounds) and with the other files and the world's regions (SPEC section 11: a contradiction
is bad input, reported with the file and the key, never repaired or defaulted).

Every problem names a key path: dotted keys with ``[i]`` for list indices, e.g.
``rules[3].holding_probability.R_MASS``. Paths point at the offending key, or at the key
that should exist when something is missing.

Examples
--------
>>> check_document("scales.yaml", {"version": "v1", "default_scale": "huge",
...                                "block_size": 8, "scales": {"tiny": {"n_parties": 10}}})
[('default_scale', 'default_scale huge is not in scales (tiny)')]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence

__all__ = ["check_document", "check_across"]

Problem = tuple[str, str]
FileProblem = tuple[str, str, str]

# Shares are written with two or three decimals in YAML; 1e-6 absorbs float rounding of
# their sum but no real slip of a digit.
SUM_TOLERANCE = 1e-6

SCALES = "scales.yaml"
PARTY_PRIORS = "party_priors_6A.v1.yaml"
ACCOUNT_PRIORS = "account_per_party_priors_6A.v1.yaml"
INSTRUMENT_PRIORS = "instrument_priors_6A.v1.yaml"
DEVICE_IP_PRIORS = "device_ip_priors_6A.v1.yaml"
ROLE_TAXONOMY = "fraud_role_taxonomy_6A.v1.yaml"
RISK_PROPAGATION = "risk_propagation_coeffs_6A.v1.yaml"
VALIDATION_POLICY = "validation_policy_6A.v1.yaml"
PERF_BUDGET = "perf_budget_6A.v1.yaml"
MERCHANT_CATALOGUE = "merchant_catalogue.yaml"
COUNTRY_INDICATORS = "country_indicators.yaml"

# The only family a non-risky role may belong to, and the only one whose roles are not risky.
CLEAN_FAMILY = "CLEAN"


# --- small helpers ---------------------------------------------------------------------


def key_path(*parts: str | int | None) -> str:
    """Join key path parts: strings with dots, integers as ``[i]``; ``None`` and "" skipped.

    >>> key_path("rules", 3, "holding_probability", "R_MASS")
    'rules[3].holding_probability.R_MASS'
    """
    path = ""
    for part in parts:
        if part is None or part == "":
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _fmt(value: float) -> str:
    # Ten significant digits hide float noise (0.30000000000000004) but show any real slip.
    return f"{value:.10g}"


def _keys(path: str, mapping: Mapping[str, object]) -> Iterator[tuple[str, str]]:
    """(path of each key, key) of a mapping."""
    return ((key_path(path, key), key) for key in mapping)


def _items(path: str, items: Sequence, field: str | None = None) -> Iterator[tuple[str, object]]:
    """(path of each list item or of its ``field``, item or its ``field``) of a list."""
    for index, item in enumerate(items):
        if field is None:
            yield key_path(path, index), item
        else:
            yield key_path(path, index, field), item[field]


def _not_in(
    entries: Iterable[tuple[str, object]], vocabulary: Collection, vocabulary_name: str, what: str
) -> list[Problem]:
    """Entries whose value is not in the vocabulary."""
    return [
        (path, f"{what} {value} is not in {vocabulary_name}")
        for path, value in entries
        if value not in vocabulary
    ]


def _duplicates(entries: Iterable[tuple[str, object]], what: str) -> list[Problem]:
    """Second and later occurrences of a value, each at its own path."""
    seen: set = set()
    problems = []
    for path, value in entries:
        if value in seen:
            problems.append((path, f"duplicate {what} {value}"))
        seen.add(value)
    return problems


MODULATED = {ACCOUNT_PRIORS: "party_types", INSTRUMENT_PRIORS: "instrument_types",
             DEVICE_IP_PRIORS: "party_types"}


def _modulation_problems(doc: Mapping, key: str, vocabulary: Collection[str],
                         vocabulary_name: str, what: str) -> list[Problem]:
    """``country_modulation`` entries naming what is not in the vocabulary, or what an
    earlier entry already modulates (one delta per prior)."""
    names = [(key_path("country_modulation", i, key, j), name)
             for i, entry in enumerate(doc.get("country_modulation", ()))
             for j, name in enumerate(entry[key])]
    return (_not_in(names, vocabulary, vocabulary_name, what)
            + [(path, message + " (modulated twice)")
               for path, message in _duplicates(names, what)])


def _vocabulary_problems(doc: Mapping, name: str, what: str) -> list[Problem]:
    return _duplicates(_items(name, doc[name]), what)


def _keyed_problems(
    mapping: Mapping[str, object],
    path: str,
    vocabulary: Collection[str],
    vocabulary_name: str,
    what: str,
    complete: bool,
) -> list[Problem]:
    """Keys outside the vocabulary and, when the mapping must be complete, missing keys."""
    problems = _not_in(_keys(path, mapping), vocabulary, vocabulary_name, what)
    if complete:
        problems += [
            (key_path(path, entry), f"{what} {entry} of {vocabulary_name} is missing from {path}")
            for entry in vocabulary
            if entry not in mapping
        ]
    return problems


def _sum_problems(values: Iterable[float], path: str, what: str = "shares") -> list[Problem]:
    total = math.fsum(values)
    if abs(total - 1.0) > SUM_TOLERANCE:
        return [(path, f"{what} sum to {_fmt(total)}, expected 1")]
    return []


def _mix_problems(
    mix: Mapping[str, float],
    path: str,
    vocabulary: Collection[str],
    vocabulary_name: str,
    what: str,
    complete: bool,
) -> list[Problem]:
    """A mix sums to 1 and is keyed by (all, when ``complete``) vocabulary entries."""
    return _sum_problems(mix.values(), path) + _keyed_problems(
        mix, path, vocabulary, vocabulary_name, what, complete
    )


def _order_problems(
    path: str, low_name: str, low: float, high_name: str, high: float
) -> list[Problem]:
    """``low <= high``; the problem is reported at ``path``."""
    if low > high:
        return [(path, f"{low_name} {_fmt(low)} exceeds {high_name} {_fmt(high)}")]
    return []


def _at_least(path: str, name: str, value: float, minimum: float) -> list[Problem]:
    if value < minimum:
        return [(path, f"{name} is {_fmt(value)}, expected >= {_fmt(minimum)}")]
    return []


def _numeric_leaves(node: object, path: str = "") -> Iterator[tuple[str, float]]:
    """(path, value) of every number in a nested document; booleans are not numbers."""
    if isinstance(node, Mapping):
        for key, child in node.items():
            yield from _numeric_leaves(child, key_path(path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _numeric_leaves(child, key_path(path, index))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


# --- one document ----------------------------------------------------------------------


def _check_scales(doc: Mapping) -> list[Problem]:
    if doc["default_scale"] in doc["scales"]:
        return []
    known = ", ".join(doc["scales"])
    return [("default_scale", f"default_scale {doc['default_scale']} is not in scales ({known})")]


def _check_party_priors(doc: Mapping) -> list[Problem]:
    party_types = doc["party_types"]
    problems = _vocabulary_problems(doc, "party_types", "party type")
    # A region mix may leave a party type out (share 0); only the sum and the keys matter.
    type_mix = doc["party_type_mix"]
    mixes = {"party_type_mix.default": type_mix["default"]}
    mixes.update(
        (key_path("party_type_mix.by_region", region), mix)
        for region, mix in type_mix.get("by_region", {}).items()
    )
    for path, mix in mixes.items():
        problems += _mix_problems(mix, path, party_types, "party_types", "party type", False)

    segments = doc["segments"]
    problems += _keyed_problems(segments, "segments", party_types, "party_types", "party type",
                                complete=True)
    # S1 writes segment_id alone, so an id must identify its party type.
    owner_of: dict[str, str] = {}
    for party_type, mix in segments.items():
        path = key_path("segments", party_type)
        problems += _sum_problems(mix.values(), path)
        for segment in mix:
            if segment in owner_of:
                problems.append((key_path(path, segment),
                                 f"segment {segment} is also a segment of {owner_of[segment]}, "
                                 "expected unique across party types"))
            owner_of.setdefault(segment, party_type)
    return problems


def _check_account_priors(doc: Mapping) -> list[Problem]:
    account_types = doc["account_types"]
    problems = _vocabulary_problems(doc, "account_types", "account type")
    rules = doc["rules"]
    problems += _not_in(_items("rules", rules, "account_type"), account_types, "account_types",
                        "account type")
    problems += _duplicates(
        ((key_path("rules", i), f"({r['party_type']}, {r['account_type']})")
         for i, r in enumerate(rules)),
        "rule for",
    )
    for index, rule in enumerate(rules):
        path = key_path("rules", index)
        k_max = rule["k_max"]
        mean = rule["mean_accounts_per_holder"]
        problems += _at_least(key_path(path, "k_max"), "k_max", k_max, 1)
        mean_path = key_path(path, "mean_accounts_per_holder")
        # A holder holds at least one account and at most k_max, so must its mean.
        problems += _at_least(mean_path, "mean_accounts_per_holder", mean, 1)
        if k_max >= 1:
            problems += _order_problems(mean_path, "mean_accounts_per_holder", mean, "k_max",
                                        k_max)
    return problems


def _check_instrument_priors(doc: Mapping) -> list[Problem]:
    instrument_types = doc["instrument_types"]
    schemes = doc["schemes"]
    problems = _vocabulary_problems(doc, "instrument_types", "instrument type")
    problems += _vocabulary_problems(doc, "schemes", "scheme")
    problems += _vocabulary_problems(doc, "schemeless_instrument_types", "instrument type")
    problems += _not_in(_items("schemeless_instrument_types", doc["schemeless_instrument_types"]),
                        instrument_types, "instrument_types", "instrument type")
    for region, mix in doc["scheme_mix_by_region"].items():
        problems += _mix_problems(mix, key_path("scheme_mix_by_region", region), schemes,
                                  "schemes", "scheme", complete=True)

    rules = doc["rules"]
    # "Exactly one rule per account type" is split: duplicates are visible here, missing
    # and unknown account types only against account_per_party_priors (check_across).
    problems += _duplicates(_items("rules", rules, "account_type"), "rule for account type")
    for index, rule in enumerate(rules):
        path = key_path("rules", index, "instruments")
        instruments = rule["instruments"]
        problems += _not_in(_items(path, instruments, "instrument_type"), instrument_types,
                            "instrument_types", "instrument type")
        problems += _duplicates(_items(path, instruments, "instrument_type"), "instrument type")
        for position, instrument in enumerate(instruments):
            item_path = key_path(path, position)
            floor = instrument["floor"]
            mean = instrument["mean_count"]
            hard_max = instrument["hard_max_per_account"]
            problems += _at_least(key_path(item_path, "floor"), "floor", floor, 0)
            problems += _at_least(key_path(item_path, "hard_max_per_account"),
                                  "hard_max_per_account", hard_max, 1)
            problems += _order_problems(key_path(item_path, "floor"), "floor", floor,
                                        "mean_count", mean)
            problems += _order_problems(key_path(item_path, "mean_count"), "mean_count", mean,
                                        "hard_max_per_account", hard_max)
    problems += _modulation_problems(doc, "instrument_types", instrument_types,
                                     "instrument_types", "instrument type")
    return problems


def _check_device_ip_priors(doc: Mapping) -> list[Problem]:
    device_types = doc["device_types"]
    os_families = doc["os_families"]
    ip_types = doc["ip_types"]
    problems = []
    for name, what in (("device_types", "device type"), ("os_families", "os family"),
                       ("ip_types", "ip type"), ("asn_classes", "asn class")):
        problems += _vocabulary_problems(doc, name, what)

    for party_type, devices in doc["devices_per_party"].items():
        path = key_path("devices_per_party", party_type)
        problems += _order_problems(key_path(path, "min_count"), "min_count",
                                    devices["min_count"], "mean_count", devices["mean_count"])
        problems += _order_problems(key_path(path, "mean_count"), "mean_count",
                                    devices["mean_count"], "max_count", devices["max_count"])
        problems += _mix_problems(devices["device_type_mix"], key_path(path, "device_type_mix"),
                                  device_types, "device_types", "device type", complete=True)

    # Every device type can be drawn, so every one needs an OS mix.
    os_mixes = doc["os_mix_by_device_type"]
    problems += _keyed_problems(os_mixes, "os_mix_by_device_type", device_types, "device_types",
                                "device type", complete=True)
    for device_type, mix in os_mixes.items():
        problems += _mix_problems(mix, key_path("os_mix_by_device_type", device_type),
                                  os_families, "os_families", "os family", complete=True)

    problems += _at_least("sharing.max_parties_per_device", "max_parties_per_device",
                          doc["sharing"]["max_parties_per_device"], 2)

    asn_classes = doc["asn_class_by_ip_type"]
    problems += _keyed_problems(asn_classes, "asn_class_by_ip_type", ip_types, "ip_types",
                                "ip type", complete=True)
    problems += _not_in(((key_path("asn_class_by_ip_type", k), v) for k, v in asn_classes.items()),
                        doc["asn_classes"], "asn_classes", "asn class")

    for region, mix in doc["ip_type_mix"].items():
        problems += _mix_problems(mix, key_path("ip_type_mix", region), ip_types, "ip_types",
                                  "ip type", complete=True)
    return problems + _linkage_problems(doc["linkage"], ip_types)


def _linkage_problems(linkage: Mapping, ip_types: Collection[str]) -> list[Problem]:
    problems = []
    coverage = linkage["coverage_target"]
    if not 0 < coverage <= 1:
        problems.append(("linkage.coverage_target",
                         f"coverage_target is {_fmt(coverage)}, expected in (0, 1]"))
    links = linkage["ip_links_per_linked_device"]
    problems += _order_problems("linkage.ip_links_per_linked_device.mean_count", "mean_count",
                                links["mean_count"], "max_count", links["max_count"])
    laws = linkage["capacity_law"]
    problems += _keyed_problems(laws, "linkage.capacity_law", ip_types, "ip_types", "ip type",
                                complete=True)
    # Devices per IP <= max_devices_per_ip holds by construction only if no capacity exceeds it.
    max_devices = linkage["max_devices_per_ip"]
    for ip_type, law in laws.items():
        path = key_path("linkage.capacity_law", ip_type)
        problems += _order_problems(key_path(path, "min"), "min", law["min"], "max", law["max"])
        problems += _order_problems(key_path(path, "max"), "max", law["max"],
                                    "linkage.max_devices_per_ip", max_devices)
    return problems


def _check_role_taxonomy(doc: Mapping) -> list[Problem]:
    families = doc["families"]
    problems = _vocabulary_problems(doc, "families", "family")
    for kind, roles in doc["entity_kinds"].items():
        path = key_path("entity_kinds", kind)
        problems += _duplicates(_items(path, roles, "raw_role"), "raw role")
        problems += _not_in(_items(path, roles, "family"), families, "families", "family")
        problems += _sum_problems((role["target_prevalence"] for role in roles), path,
                                  "target_prevalence values")
        # The calibration solves for risky prevalence against a clean remainder, so every
        # kind needs a clean role, and risk must follow the family exactly.
        if all(role["is_risky"] for role in roles):
            problems.append((path, f"no non-risky role for {kind}, expected at least one"))
        for index, role in enumerate(roles):
            is_clean = role["family"] == CLEAN_FAMILY
            if role["is_risky"] == is_clean:
                expected = "false" if is_clean else "true"
                problems.append((key_path(path, index, "is_risky"),
                                 f"raw role {role['raw_role']} of family {role['family']} has "
                                 f"is_risky {str(role['is_risky']).lower()}, expected {expected} "
                                 f"(only family {CLEAN_FAMILY} is not risky)"))
    return problems


def _check_risk_propagation(doc: Mapping) -> list[Problem]:
    clamp = doc["logit_clamp"]
    problems = []
    if not clamp["min"] < clamp["max"]:
        problems.append(("logit_clamp",
                         f"min {_fmt(clamp['min'])} is not below max {_fmt(clamp['max'])}"))
    return problems


def _check_validation_policy(doc: Mapping) -> list[Problem]:
    problems = []
    for gate_id, gate in doc["gates"].items():
        for name, component in gate["components"].items():
            problems += _bplus_problems(key_path("gates", gate_id, "components", name, "Bplus"),
                                        component)
    seeds = doc["certification"]["required_seeds"]
    problems += _duplicates(_items("certification.required_seeds", seeds), "seed")
    for path, seed in _items("certification.required_seeds", seeds):
        problems += _at_least(path, "seed", seed, 0)
    return problems


def _bplus_problems(path: str, component: Mapping) -> list[Problem]:
    """B+ is the stricter band: never looser than B on the component's passing side."""
    comparator, b, bplus = component["comparator"], component["B"], component["Bplus"]
    looser = bplus > b if comparator == "le" else bplus < b
    if not looser:
        return []
    expected = "<=" if comparator == "le" else ">="
    return [(path, f"Bplus {_fmt(bplus)} is looser than B {_fmt(b)} for comparator "
                   f"{comparator}, expected Bplus {expected} B")]


def _check_perf_budget(doc: Mapping) -> list[Problem]:
    # Budget scale names are checked against scales.yaml in check_across.
    return [(path, f"{_fmt(value)} is not positive, expected > 0")
            for path, value in _numeric_leaves(doc) if value <= 0]


def _check_merchant_catalogue(doc: Mapping) -> list[Problem]:
    return (_sum_problems(doc["mcc_mix"].values(), "mcc_mix")
            + _sum_problems(doc["size_class_mix"].values(), "size_class_mix"))


def _check_country_indicators(doc: Mapping) -> list[Problem]:
    columns = doc["columns"]
    return [(key_path("values", iso, name),
             f"{name} is not one of the declared columns ({', '.join(columns)})")
            for iso, row in doc["values"].items() for name in row if name not in columns]


_DOCUMENT_CHECKS: dict[str, Callable[[Mapping], list[Problem]]] = {
    SCALES: _check_scales,
    PARTY_PRIORS: _check_party_priors,
    ACCOUNT_PRIORS: _check_account_priors,
    INSTRUMENT_PRIORS: _check_instrument_priors,
    DEVICE_IP_PRIORS: _check_device_ip_priors,
    ROLE_TAXONOMY: _check_role_taxonomy,
    RISK_PROPAGATION: _check_risk_propagation,
    VALIDATION_POLICY: _check_validation_policy,
    PERF_BUDGET: _check_perf_budget,
    MERCHANT_CATALOGUE: _check_merchant_catalogue,
    COUNTRY_INDICATORS: _check_country_indicators,
}


def check_document(file_name: str, doc: dict) -> list[tuple[str, str]]:
    """Contradictions inside one already-schema-valid document: (key_path, message) pairs.

    Parameters
    ----------
    file_name : str
        Base name of the YAML file, e.g. ``"party_priors_6A.v1.yaml"``.
    doc : dict
        The parsed document, already valid against its JSON Schema in
        ``config/contracts/``.

    Returns
    -------
    list of (str, str)
        One ``(key_path, message)`` per problem, in document order; empty when the
        document agrees with itself.

    Raises
    ------
    ValueError
        If ``file_name`` is not a known config file.

    Examples
    --------
    >>> doc = {"version": "v1", "mcc_mix": {"5411": 0.6, "5812": 0.35},
    ...        "size_class_mix": {"MICRO": 1.0}}
    >>> check_document("merchant_catalogue.yaml", doc)
    [('mcc_mix', 'shares sum to 0.95, expected 1')]
    """
    try:
        check = _DOCUMENT_CHECKS[file_name]
    except KeyError:
        known = ", ".join(sorted(_DOCUMENT_CHECKS))
        message = f"no checks for config file {file_name!r}; known files: {known}"
        raise ValueError(message) from None
    return check(doc)


# --- across documents ------------------------------------------------------------------


def _in_file(file_name: str, problems: Iterable[Problem]) -> list[FileProblem]:
    return [(file_name, path, message) for path, message in problems]


def _region_problems(docs: Mapping[str, Mapping], regions: Collection[str]) -> list[FileProblem]:
    # ip_type_mix and scheme mixes must cover every region (a missing region is an error,
    # never a fallback); party_type_mix.by_region may omit regions, which use its default.
    keyed = (
        (DEVICE_IP_PRIORS, "ip_type_mix", lambda d: d["ip_type_mix"], True),
        (INSTRUMENT_PRIORS, "scheme_mix_by_region", lambda d: d["scheme_mix_by_region"], True),
        (PARTY_PRIORS, "party_type_mix.by_region",
         lambda d: d["party_type_mix"].get("by_region", {}), False),
    )
    # Sorted so that the report does not depend on the iteration order of a set.
    regions = sorted(regions)
    problems = []
    for file_name, path, get, complete in keyed:
        if file_name in docs:
            problems += _in_file(file_name, _keyed_problems(
                get(docs[file_name]), path, regions, "the world's regions", "region", complete))
    return problems


def _indicator_problems(docs: Mapping[str, Mapping],
                        indicators: Collection[str]) -> list[FileProblem]:
    known = sorted(indicators)
    shown = (", ".join(known) if known else
             "none: the world has no country_indicators.yaml; add one (seg6a config export "
             "writes the embedded one) or remove country_modulation")
    return [(file_name, key_path("country_modulation", i, field),
             f"indicator {entry[field]} is not in the world's indicators ({shown})")
            for file_name in MODULATED if file_name in docs
            for i, entry in enumerate(docs[file_name].get("country_modulation", ()))
            for field in ("indicator", "per") if field in entry and entry[field] not in known]


def _account_party_problems(docs: Mapping[str, Mapping]) -> list[FileProblem]:
    segments = docs[PARTY_PRIORS]["segments"]
    rules = docs[ACCOUNT_PRIORS]["rules"]
    problems = _not_in(_items("rules", rules, "party_type"), docs[PARTY_PRIORS]["party_types"],
                       "party_priors party_types", "party type")
    for index, rule in enumerate(rules):
        party_type = rule["party_type"]
        if party_type in segments:
            # A zero gate per segment: every segment of the type needs one, and only those.
            problems += _keyed_problems(
                rule["holding_probability"], key_path("rules", index, "holding_probability"),
                list(segments[party_type]), f"party_priors segments.{party_type}", "segment",
                complete=True)
    problems += _modulation_problems(docs[ACCOUNT_PRIORS], "party_types",
                                     docs[PARTY_PRIORS]["party_types"],
                                     "party_priors party_types", "party type")
    return _in_file(ACCOUNT_PRIORS, problems)


def _device_party_problems(docs: Mapping[str, Mapping]) -> list[FileProblem]:
    devices = docs[DEVICE_IP_PRIORS]
    segments = [s for by_type in docs[PARTY_PRIORS]["segments"].values() for s in by_type]
    problems = _keyed_problems(
        devices["devices_per_party"], "devices_per_party", docs[PARTY_PRIORS]["party_types"],
        "party_priors party_types", "party type", complete=True)
    problems += _keyed_problems(
        devices.get("segment_mean_multiplier", {}), "segment_mean_multiplier", segments,
        "party_priors segments", "segment", complete=False)
    problems += _modulation_problems(devices, "party_types", docs[PARTY_PRIORS]["party_types"],
                                     "party_priors party_types", "party type")
    return _in_file(DEVICE_IP_PRIORS, problems)


def _account_type_problems(docs: Mapping[str, Mapping]) -> list[FileProblem]:
    account_types = docs[ACCOUNT_PRIORS]["account_types"]
    rules = docs[INSTRUMENT_PRIORS]["rules"]
    problems = _not_in(_items("rules", rules, "account_type"), account_types,
                       "account_per_party_priors account_types", "account type")
    covered = {rule["account_type"] for rule in rules}
    problems += [("rules", f"no rule for account type {account_type} of "
                           "account_per_party_priors, expected exactly one")
                 for account_type in account_types if account_type not in covered]
    return _in_file(INSTRUMENT_PRIORS, problems)


def _ip_type_problems(docs: Mapping[str, Mapping]) -> list[FileProblem]:
    return _in_file(RISK_PROPAGATION, _keyed_problems(
        docs[RISK_PROPAGATION]["to_ip"]["beta_ip_type"], "to_ip.beta_ip_type",
        docs[DEVICE_IP_PRIORS]["ip_types"], "device_ip_priors ip_types", "ip type",
        complete=True))


def _scale_problems(docs: Mapping[str, Mapping]) -> list[FileProblem]:
    return _in_file(PERF_BUDGET, _keyed_problems(
        docs[PERF_BUDGET]["budgets"], "budgets", docs[SCALES]["scales"], "scales.yaml scales",
        "scale", complete=False))


# Each cross check with the documents it cannot run without; an absent document is itself
# reported, and only the checks that need it are skipped.
_ACROSS_CHECKS: tuple[tuple[tuple[str, ...], Callable[[Mapping], list[FileProblem]]], ...] = (
    ((PARTY_PRIORS, ACCOUNT_PRIORS), _account_party_problems),
    ((PARTY_PRIORS, DEVICE_IP_PRIORS), _device_party_problems),
    ((ACCOUNT_PRIORS, INSTRUMENT_PRIORS), _account_type_problems),
    ((DEVICE_IP_PRIORS, RISK_PROPAGATION), _ip_type_problems),
    ((SCALES, PERF_BUDGET), _scale_problems),
)
_ACROSS_FILES = (SCALES, PARTY_PRIORS, ACCOUNT_PRIORS, INSTRUMENT_PRIORS, DEVICE_IP_PRIORS,
                 ROLE_TAXONOMY, RISK_PROPAGATION, VALIDATION_POLICY, PERF_BUDGET)


def check_across(
    docs: Mapping[str, dict], regions: Collection[str],
    indicators: Collection[str] | None = None,
) -> list[tuple[str, str, str]]:
    """Contradictions between documents and with the world's region ids and indicators.

    Parameters
    ----------
    docs : Mapping of str to dict
        Parsed documents by YAML base name: every config file except
        ``merchant_catalogue.yaml``, each already schema-valid.
    regions : Collection of str
        The ``region_id`` values of the upstream world.
    indicators : Collection of str, optional
        The world's indicator columns (``country_indicators.yaml``), which the priors'
        ``country_modulation`` entries must name; not checked when None.

    Returns
    -------
    list of (str, str, str)
        One ``(file_name, key_path, message)`` per problem; empty when the documents agree.
        A document missing from ``docs`` is reported with an empty key path, and the checks
        that need it are skipped.

    Examples
    --------
    >>> docs = {"device_ip_priors_6A.v1.yaml": {"ip_type_mix": {"EUROPE": {}}}}
    >>> for name, path, message in check_across(docs, ["EUROPE", "AFRICA"]):
    ...     if path.startswith("ip_type_mix"):
    ...         print(path, "|", message)
    ip_type_mix.AFRICA | region AFRICA of the world's regions is missing from ip_type_mix
    """
    problems = [(name, "", "document is missing") for name in _ACROSS_FILES if name not in docs]
    problems += _region_problems(docs, regions)
    if indicators is not None:
        problems += _indicator_problems(docs, indicators)
    for needed, check in _ACROSS_CHECKS:
        if all(name in docs for name in needed):
            problems += check(docs)
    return problems
