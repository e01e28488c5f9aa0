"""Certification over several seeds: T9, pooled verdicts and one decision (SPEC section 6).

A certificate (``PASS_B``, ``PASS_BPLUS``, ``RETAIN_PASS_B``) needs its evidence, every
required seed at a large enough scale (``seg6a.judging.evidence``), every gate passing on
every seed and T9 across them (an extension gate such as L1 in the bands its policy
``gating`` names), no gate worse than the baseline's (``gate_delta``), and no
step down from the last frozen posture (a last good ``PASS_BPLUS`` makes a mere B a
``posture_regression``; a last good ``PASS_B`` makes it ``RETAIN_PASS_B``). Anything else is
``HOLD_REMEDIATE``, with a ``reason`` and each failing component routed to the state that
can fix it.
"""
from ..judging import shown
from .board import GATES, counts_toward, cross_seed_stability, earliest, failing_components
from .board import headline_of, remedy, stamp

PASS_BPLUS, PASS_B, RETAIN_PASS_B, HOLD = ("PASS_BPLUS", "PASS_B", "RETAIN_PASS_B",
                                           "HOLD_REMEDIATE")
ACCEPTED = (PASS_BPLUS, PASS_B, RETAIN_PASS_B)
INCOMPLETE_EVIDENCE, GATE_FAILURE = "incomplete_evidence", "gate_failure"
REGRESSION, POSTURE_REGRESSION = "regression_vs_baseline", "posture_regression"
T9 = "T9_CROSS_SEED_STABILITY"
T10_LIFT = ("T10_DOWNSTREAM_COMPAT_6B", "fraud_label_lift")


def _parts(record):
    """A record's components by name (a record without parts: its own, by its test id)."""
    return record.get("components") or {record["test_id"]: record}


def _pooled_component(name, per_seed):
    """One component over the seeds: the worst value by its own comparator (with that
    seed's CI, which holds it), passing only where every seed passes."""
    first = per_seed[0][1]
    unknown = [(seed, c) for seed, c in per_seed if c["value"] is None]
    if unknown:  # a seed whose value could not be computed is the worst
        worst_seed, worst = unknown[0]
    else:
        pick = max if first["comparator"] == "le" else min
        worst_seed, worst = pick(per_seed, key=lambda seed_component: seed_component[1]["value"])
    failing = [seed for seed, c in per_seed if not c["pass_Bplus"]]
    return {"name": name, "value": worst["value"], "comparator": first["comparator"],
            "threshold_B": first["threshold_B"], "threshold_Bplus": first["threshold_Bplus"],
            "ci_low": worst["ci_low"], "ci_high": worst["ci_high"],
            "pass_B": all(c["pass_B"] for _, c in per_seed),
            "pass_Bplus": all(c["pass_Bplus"] for _, c in per_seed),
            "owner_state": worst["owner_state"] if failing else first["owner_state"],
            "reason": next((c["reason"] for _, c in per_seed if c["reason"]), None),
            "worst_seed": worst_seed, "failing_seeds": failing}


def pooled(boards):
    """Per gate (but T9) over all seeds: each component's worst value by its own comparator,
    passing only where every seed passes; the record shows its headline component like a
    seed's board (every field of a gate record, with ``seed: "pooled"``)."""
    out = []
    for gate_id in GATES:
        if gate_id == T9:
            continue
        per_seed = [next(r for r in board if r["test_id"] == gate_id) for board in boards]
        names = list(_parts(per_seed[0]))
        components = [_pooled_component(name, [(r["seed"], _parts(r)[name]) for r in per_seed])
                      for name in names]
        headline = headline_of(components)
        failing = sorted({s for c in components for s in c["failing_seeds"]},
                         key=[r["seed"] for r in per_seed].index)
        record = {key: per_seed[0][key] for key in ("test_id", "metric_name", "method",
                                                    "validation_hash", "waivers", "overrides")
                  if key in per_seed[0]}
        record.update({
            "value": headline["value"], "comparator": headline["comparator"],
            "threshold_B": headline["threshold_B"], "threshold_Bplus": headline["threshold_Bplus"],
            "pass_B": all(c["pass_B"] for c in components),
            "pass_Bplus": all(c["pass_Bplus"] for c in components),
            "ci_low": headline["ci_low"], "ci_high": headline["ci_high"], "seed": "pooled",
            "support": min(r["support"] for r in per_seed),
            "owner_state": earliest([r["owner_state"] for r in per_seed if not r["pass_Bplus"]])
            or per_seed[0]["owner_state"],
            "reason": headline["reason"], "worst_seed": headline["worst_seed"],
            "failing_seeds": failing,
        })
        if len(components) > 1:
            record["components"] = {c["name"]: {k: v for k, v in c.items() if k != "name"}
                                    for c in components}
        out.append(record)
    return out


def failures(records, band):
    """Every component failing ``band`` ("B" or "Bplus"), with the remedy of each."""
    out = []
    for r in records:
        for name, component in failing_components(r, band):
            rerun, text = remedy(r["test_id"], component)
            out.append({"test_id": r["test_id"], "component": name, "seed": r["seed"],
                        "owner_state": component["owner_state"], "reason": component["reason"],
                        "rerun": rerun, "remedy": text})
    return out


def gate_delta(boards, t9, baseline_boards, baseline_t9):
    """Every gate component per seed against the baseline's (``gate_delta_6A.json``).

    A component regresses when the candidate is worse than the baseline beyond both CIs
    (its interval wholly on the worse side of the baseline's), for exact gates when it is
    worse at all, and T10's lift when it falls below the baseline's CI; a value that can no
    longer be computed regresses. Seeds the baseline lacks are not compared.
    """
    base = {board[0]["seed"]: {r["test_id"]: r for r in board} for board in baseline_boards}
    pairs = [(r["test_id"], r["seed"], r, base[board[0]["seed"]].get(r["test_id"]))
             for board in boards if board[0]["seed"] in base
             for r in board if r["test_id"] != T9]
    if t9 is not None and baseline_t9 is not None:
        pairs.append((T9, "pooled", t9, baseline_t9))
    rows = []
    for test_id, seed, record, old in pairs:
        if old is None:
            continue
        old_parts = _parts(old)
        for name, new in _parts(record).items():
            if name in old_parts:
                rows.append(_delta(test_id, name, seed, old_parts[name], new))
    return rows


def _delta(test_id, name, seed, old, new):
    le = new["comparator"] == "le"
    if new["value"] is None or old["value"] is None:
        delta, regressed = None, new["value"] is None and old["value"] is not None
    else:
        delta = new["value"] - old["value"]
        if (test_id, name) == T10_LIFT and old["ci_low"] is not None:
            regressed = new["value"] < old["ci_low"]
        elif new["ci_low"] is not None and old["ci_low"] is not None:
            regressed = new["ci_low"] > old["ci_high"] if le else new["ci_high"] < old["ci_low"]
        else:
            regressed = delta > 0 if le else delta < 0
    return {"test_id": test_id, "component": name, "seed": seed,
            "baseline": old["value"], "candidate": new["value"], "delta": delta,
            "baseline_ci": [old["ci_low"], old["ci_high"]],
            "candidate_ci": [new["ci_low"], new["ci_high"]],
            "comparator": new["comparator"], "owner_state": new["owner_state"],
            "regressed": bool(regressed)}


def decide(policy, boards, evidence, judging, baseline=None, last_good=None):
    """The certification summary of several seeds' boards.

    Parameters
    ----------
    policy : dict
        The validation policy in force.
    boards : list of list of dict
        Each seed's gateboard.
    evidence : dict
        ``seg6a.judging.evidence`` of the seeds and the run's scale.
    judging : seg6a.judging.Judging
        The policy's hash, waivers and overrides (recorded in the summary).
    baseline : (list of list of dict, dict or None), optional
        The baseline run's boards and T9: every gate is compared with them
        (``gate_delta``, in the summary as ``gate_delta``); any regression holds.
    last_good : str, optional
        The decision frozen for the keep-set's ``last_good`` run.

    Returns
    -------
    dict
        ``decision`` (``PASS_BPLUS`` when the evidence is complete, every gate passes B+ on
        every seed and T9 across them and nothing regressed; ``PASS_B`` when every gate
        passes B; ``RETAIN_PASS_B`` for that when the last good posture is B; else
        ``HOLD_REMEDIATE``), ``reason``, the evidence, T9, the pooled and per-seed records,
        the failures with their remedies, the regressions, the validation hash, waivers and
        overrides.
    """
    t9 = stamp([cross_seed_stability(policy, boards)], judging)[0]
    delta = gate_delta(boards, t9, *baseline) if baseline is not None else None
    seeds = [board[0]["seed"] for board in boards]
    verdicts = [r for board in boards for r in board if r["test_id"] != T9] + [t9]
    # What each band's decision counts (an extension may gate B+ only, or nothing).
    counted = {band: [r for r in verdicts if counts_toward(policy, r["test_id"], band)]
               for band in ("B", "Bplus")}
    complete = len(boards) > 0 and all(len(board) == len(GATES) for board in boards)
    passes_b = complete and all(r["pass_B"] for r in counted["B"])
    regressions = [row for row in delta or [] if row["regressed"]]
    if not evidence["complete"]:
        decision, reason = HOLD, INCOMPLETE_EVIDENCE
    elif not passes_b:
        decision, reason = HOLD, GATE_FAILURE
    elif regressions:
        decision, reason = HOLD, REGRESSION
    elif all(r["pass_Bplus"] for r in counted["Bplus"]):
        decision, reason = PASS_BPLUS, None
    elif last_good == PASS_BPLUS:
        decision, reason = HOLD, POSTURE_REGRESSION
    elif last_good in (PASS_B, RETAIN_PASS_B):
        decision, reason = RETAIN_PASS_B, None
    else:
        decision, reason = PASS_B, None
    band = "B" if reason in (INCOMPLETE_EVIDENCE, GATE_FAILURE) else "Bplus"
    found = failures(counted[band], band)
    for row in regressions:
        rerun, text = remedy(row["test_id"], {"reason": REGRESSION,
                                              "owner_state": row["owner_state"]})
        found.append({"test_id": row["test_id"], "component": row["component"],
                      "seed": row["seed"], "owner_state": row["owner_state"],
                      "reason": REGRESSION, "rerun": rerun,
                      "remedy": f"worse than the baseline ({row['baseline']:.4g} -> "
                      f"{row['candidate']:.4g}): {text}" if row["delta"] is not None else text})
    return {
        "decision": decision,
        "decision_shown": shown(decision, judging.waivers),
        "reason": reason,
        "seeds": seeds,
        "evidence": evidence,
        "missing_seeds": evidence["missing_seeds"],
        "scale": evidence["scale"],
        "min_scale": evidence["min_scale"],
        "T9": t9,
        "pooled": pooled(boards),
        "per_seed": boards,
        "failures": found,
        "regressions": regressions,
        "gate_delta": delta,
        "last_good_decision": last_good,
        "validation_hash": judging.validation_hash,
        "waivers": judging.waivers,
        "overrides": judging.overrides,
    }
