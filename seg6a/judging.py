"""The judging policy against the embedded one, and the evidence a certificate needs.

Every value of ``validation_policy_6A.v1.yaml`` judges and none generates (SPEC sections 4
and 5). An overlay may change them, but never silently:

- a value changed towards a stricter verdict is an *override*, recorded and accepted;
- a value changed towards a looser verdict (or one whose effect has no direction, such as
  the bootstrap method) is refused unless the command carries ``--waive REASON``; then it
  is a *waiver*, recorded on every verdict it touches and counted wherever the decision is
  shown (``PASS_BPLUS (2 waivers)``);
- owners, metric names and the set of gates and components are the reference plan's:
  changing them is a contract error.

A certificate also needs its evidence: every required seed, at a scale of at least
``certification.min_scale`` (scales are ordered by the embedded presets' parties, so an
overlay of ``scales.yaml`` cannot make a small population count as a large one).

Examples
--------
>>> embedded = {"bootstrap": {"n_resamples": 999}, "min_support": {"flows": 5000}}
>>> user = {"bootstrap": {"n_resamples": 1999}, "min_support": {"flows": 0}}
>>> [(c["key"], c["effect"]) for c in changes(embedded, user)]
[('bootstrap.n_resamples', 'tightens'), ('min_support.flows', 'loosens')]
"""
import fnmatch
from dataclasses import dataclass

from .errors import ConfigError
from .policies import JUDGING_POLICY, canonical_hash, embedded_document

# Which way a value loosens the verdict: "higher" / "lower" (the direction that loosens),
# "threshold" (by the component's comparator), "seeds" (dropping a required seed),
# "scale" (a smaller minimum scale), "gating" (an extension gating fewer decisions),
# "changed" (any change: no direction is stricter).
# Every leaf of the policy matches exactly one rule here or in FIXED (a test checks it).
RULES = (
    ("gates.*.components.*.comparator", "changed"),
    ("gates.*.components.*.B", "threshold"),
    ("gates.*.components.*.Bplus", "threshold"),
    ("gating.*", "gating"),
    ("bootstrap.confidence_level", "lower"),
    ("bootstrap.n_resamples", "lower"),
    ("bootstrap.method", "changed"),
    ("bootstrap.clusters", "changed"),
    ("min_support.*", "lower"),
    ("linkage_checks.ip_links.max_devices_per_ip", "higher"),
    ("role_distribution_checks.ip_roles.max_risky_fraction", "higher"),
    ("role_distribution_checks.propagation.max_odds_ratio", "higher"),
    ("downstream_probe.flows_per_party", "lower"),
    ("downstream_probe.max_flows", "lower"),
    ("certification.required_seeds", "seeds"),
    ("certification.min_scale", "scale"),
)
# An extension gate gates, strictest last: no decision, PASS_BPLUS only, PASS_B and
# PASS_BPLUS (as the reference plan's gates always do).
GATING_ORDER = ("none", "Bplus", "B")
FIXED = ("version", "gates.*.owner_state", "gates.*.metric_name")

CI_GATES = ("T3_IP_PRIOR_ALIGNMENT", "T4_DEVICE_IP_COVERAGE", "T7_RISK_PROPAGATION_EFFECT",
            "T10_DOWNSTREAM_COMPAT_6B", "L1_LABEL_LEAKAGE")
# The verdicts (gate ids, S5 check ids) each key touches; a gate's own keys touch that gate.
# Every waiver is also listed at the top of the certification summary and S5's report.
TOUCHES = (
    ("bootstrap.*", CI_GATES),
    ("min_support.holders_per_type", ("T2_KMAX_TAIL_SANITY", "T8_DISTRIBUTION_ALIGNMENT_JSD")),
    ("min_support.ips_per_region", ("T3_IP_PRIOR_ALIGNMENT", "T8_DISTRIBUTION_ALIGNMENT_JSD")),
    ("min_support.devices", ("T4_DEVICE_IP_COVERAGE",)),
    ("min_support.risky_owners", ("T7_RISK_PROPAGATION_EFFECT",)),
    ("min_support.flows", ("T10_DOWNSTREAM_COMPAT_6B",)),
    ("min_support.risky_entities", ("L1_LABEL_LEAKAGE",)),
    ("gating.*", ("L1_LABEL_LEAKAGE",)),
    ("downstream_probe.*", ("T10_DOWNSTREAM_COMPAT_6B",)),
    ("role_distribution_checks.propagation.*", ("T7_RISK_PROPAGATION_EFFECT",)),
    ("role_distribution_checks.ip_roles.*", ("ROLES.ip.max_risky_fraction",)),
    ("linkage_checks.*", ("LINKAGE.max_devices_per_ip",)),
    ("certification.*", ("T9_CROSS_SEED_STABILITY",)),
)


def _leaves(doc, path=""):
    """``{dotted key: value}`` of a document's leaves (lists are leaves)."""
    if not isinstance(doc, dict):
        return {path: doc}
    out = {}
    for key, value in doc.items():
        out.update(_leaves(value, f"{path}.{key}" if path else str(key)))
    return out


def rule_of(key):
    """The rule (``RULES``) of a judging key, ``"fixed"`` for ``FIXED`` keys, else None."""
    if any(fnmatch.fnmatchcase(key, pattern) for pattern in FIXED):
        return "fixed"
    return next((rule for pattern, rule in RULES if fnmatch.fnmatchcase(key, pattern)), None)


def fixed_problems(embedded, user):
    """``[(key, message)]``: where ``user`` changes what the reference plan fixes (the set of
    gates and of their components, owners, metric names, the version)."""
    problems = []
    gates, user_gates = embedded["gates"], user["gates"]
    for gate_id in gates:
        if gate_id not in user_gates:
            problems.append((f"gates.{gate_id}", f"gate {gate_id} is missing; the set of gates "
                             "is fixed by the reference plan"))
            continue
        names, user_names = set(gates[gate_id]["components"]), set(
            user_gates[gate_id]["components"])
        for name in sorted(names - user_names):
            problems.append((f"gates.{gate_id}.components.{name}",
                             f"component {name} of {gate_id} is missing; the components of a "
                             "gate are fixed by the reference plan"))
        for name in sorted(user_names - names):
            problems.append((f"gates.{gate_id}.components.{name}",
                             f"{gate_id} has no component {name} in the reference plan "
                             f"(components: {', '.join(gates[gate_id]['components'])})"))
    for gate_id in user_gates:
        if gate_id not in gates:
            problems.append((f"gates.{gate_id}", f"unknown gate {gate_id}"))
    embedded_leaves, user_leaves = _leaves(embedded), _leaves(user)
    for key, value in embedded_leaves.items():
        if rule_of(key) == "fixed" and key in user_leaves and user_leaves[key] != value:
            problems.append((key, f"is fixed by the reference plan: {value!r}, not "
                                  f"{user_leaves[key]!r}"))
    return [(key, f"violates its contract: {message}") for key, message in problems]


def _scale_parties(name):
    return embedded_document("scales.yaml")["scales"][name]["n_parties"]


def _loosens(rule, key, embedded_value, value, embedded_doc):
    if rule == "changed":
        return True
    if rule == "threshold":
        comparator = _component(embedded_doc, key)["comparator"]
        return value > embedded_value if comparator == "le" else value < embedded_value
    if rule == "higher":
        return value > embedded_value
    if rule == "lower":
        return value < embedded_value
    if rule == "seeds":
        return not set(value) >= set(embedded_value)
    if rule == "scale":
        return _scale_parties(value) < _scale_parties(embedded_value)
    if rule == "gating":
        return GATING_ORDER.index(value) < GATING_ORDER.index(embedded_value)
    raise ValueError(f"no rule for judging key {key}")


def _component(doc, key):
    _, gate_id, _, name, _ = key.split(".")
    return doc["gates"][gate_id]["components"][name]


def changes(embedded, user):
    """Every judging value ``user`` changes against ``embedded``: ``[{key, embedded, value,
    effect}]`` in key order, ``effect`` being ``"loosens"`` or ``"tightens"``.

    Both documents have the same keys (the contract requires every key and fixes the gates
    and components); fixed keys are ``fixed_problems``' concern.
    """
    embedded_leaves, user_leaves = _leaves(embedded), _leaves(user)
    out = []
    for key in sorted(embedded_leaves):
        rule = rule_of(key)
        value, before = user_leaves.get(key), embedded_leaves[key]
        if rule in (None, "fixed") or key not in user_leaves or value == before:
            continue
        effect = "loosens" if _loosens(rule, key, before, value, embedded) else "tightens"
        out.append({"key": key, "embedded": before, "value": value, "effect": effect})
    return out


def touched(key):
    """The verdicts (gate ids, S5 check ids) a judging key touches."""
    if key.startswith("gates."):
        return (key.split(".")[1],)
    return next((verdicts for pattern, verdicts in TOUCHES
                 if fnmatch.fnmatchcase(key, pattern)), ())


@dataclass(frozen=True)
class Judging:
    """The judging policy of a run and how it differs from the embedded one.

    Attributes
    ----------
    policy : dict
        The validation policy in force.
    validation_hash : str
        Its canonical hash: it keys the bootstrap resampling and nothing else.
    waivers : list of dict
        ``{key, embedded, value, reason}`` per loosened value (accepted by ``--waive``).
    overrides : list of dict
        ``{key, embedded, value}`` per tightened value.
    """

    policy: dict
    validation_hash: str
    waivers: list
    overrides: list

    def waivers_of(self, verdict):
        """The waivers touching a verdict (a gate id or an S5 check id)."""
        return [w for w in self.waivers if verdict in touched(w["key"])]

    def overrides_of(self, verdict):
        """The overrides touching a verdict."""
        return [o for o in self.overrides if verdict in touched(o["key"])]


def judging_of(config, waive=None):
    """The ``Judging`` of a loaded config; refuses a loosening overlay without ``waive``.

    Parameters
    ----------
    config : seg6a.policies.Config
    waive : str, optional
        The reason every loosened value is accepted for (``--waive REASON``).

    Raises
    ------
    seg6a.errors.ConfigError
        When the overlay loosens a judging value and ``waive`` is not given, naming each
        key with its embedded and new value.
    """
    policy = config[JUDGING_POLICY]
    found = changes(embedded_document(JUDGING_POLICY), policy)
    loosened = [c for c in found if c["effect"] == "loosens"]
    if loosened and not (isinstance(waive, str) and waive.strip()):
        listed = "; ".join(f"{c['key']}: {c['embedded']!r} -> {c['value']!r}" for c in loosened)
        raise ConfigError(f"loosens the embedded judging policy ({listed}); no silent "
                          "waivers: pass --waive REASON to record them on the verdicts",
                          file=config.sources.get(JUDGING_POLICY, JUDGING_POLICY))
    return Judging(
        policy=policy, validation_hash=canonical_hash(policy),
        waivers=[{"key": c["key"], "embedded": c["embedded"], "value": c["value"],
                  "reason": waive.strip()} for c in loosened],
        overrides=[{"key": c["key"], "embedded": c["embedded"], "value": c["value"]}
                   for c in found if c["effect"] == "tightens"])


def evidence(policy, seeds, scale):
    """What a certificate has of the evidence the policy requires.

    Parameters
    ----------
    policy : dict
        The validation policy.
    seeds : sequence of int
        The seeds judged.
    scale : dict
        The run's scale, ``{"name": ..., "n_parties": ...}`` (S0's receipt).

    Returns
    -------
    dict
        ``complete``, ``required_seeds``, ``missing_seeds``, ``scale``, ``n_parties``,
        ``min_scale`` and ``min_parties`` (the embedded preset's population).

    Examples
    --------
    >>> policy = {"certification": {"required_seeds": [42, 7], "min_scale": "small"}}
    >>> found = evidence(policy, [7, 1], {"name": "tiny", "n_parties": 20000})
    >>> found["complete"], found["missing_seeds"], found["min_parties"]
    (False, [42], 200000)
    """
    required = list(policy["certification"]["required_seeds"])
    min_scale = policy["certification"]["min_scale"]
    min_parties = _scale_parties(min_scale)
    missing = [seed for seed in required if seed not in seeds]
    return {"complete": not missing and scale["n_parties"] >= min_parties,
            "required_seeds": required, "missing_seeds": missing, "scale": scale["name"],
            "n_parties": scale["n_parties"], "min_scale": min_scale,
            "min_parties": min_parties}


def completing_command(summary, run_id=None, out=None, config=None):
    """The ``seg6a certify`` command that would complete a certificate's evidence.

    The seeds judged plus the missing ones; the run's scale if it is large enough (then into
    the same run, whose seeds republish identically), else ``min_scale`` in a new run.
    """
    found = summary["evidence"]
    seeds = list(summary["seeds"]) + [s for s in found["missing_seeds"]
                                      if s not in summary["seeds"]]
    words = ["seg6a", "certify", "--seeds", ",".join(map(str, seeds))]
    if found["n_parties"] >= found["min_parties"]:
        words += ["--scale", found["scale"]]
        if run_id is not None:
            words += ["--run-id", run_id]
        if out is not None:
            words += ["--out", str(out)]
    else:
        words += ["--scale", found["min_scale"]]
    if config is not None:
        words += ["--config", str(config)]
    return " ".join(words)


def shown(decision, waivers):
    """A decision as displayed: with the number of waivers behind it.

    >>> shown("PASS_BPLUS", []), shown("PASS_BPLUS", [{}, {}]), shown("PASS", [{}])
    ('PASS_BPLUS', 'PASS_BPLUS (2 waivers)', 'PASS (1 waiver)')
    """
    if not waivers:
        return decision
    return f"{decision} ({len(waivers)} waiver{'s' if len(waivers) != 1 else ''})"
