"""Certification over several seeds: T9, pooled verdicts and one decision (SPEC section 6)."""
from .board import GATES, cross_seed_stability

PASS_BPLUS, PASS_B, HOLD = "PASS_BPLUS", "PASS_B", "HOLD_REMEDIATE"
# The earliest state to rerun from when a gate owned by "ALL" fails.
_RERUN_FROM = {"ALL": "S2"}


def pooled(policy, boards):
    """Per gate over all seeds: passes only where every seed passes; shows the worst value."""
    out = []
    for gate_id in GATES:
        if gate_id == "T9_CROSS_SEED_STABILITY":
            continue
        per_seed = [next(r for r in board if r["test_id"] == gate_id) for board in boards]
        spec = next(iter(policy["gates"][gate_id]["components"].values()))
        values = [r["value"] for r in per_seed if r["value"] is not None]
        worst = None
        if len(values) == len(per_seed):
            worst = max(values) if spec["comparator"] == "le" else min(values)
        out.append({
            "test_id": gate_id, "seed": "pooled", "value": worst,
            "pass_B": all(r["pass_B"] for r in per_seed),
            "pass_Bplus": all(r["pass_Bplus"] for r in per_seed),
            "owner_state": per_seed[0]["owner_state"],
            "failing_seeds": [r["seed"] for r in per_seed if not r["pass_Bplus"]],
        })
    return out


def decide(policy, boards):
    """The certification summary of several seeds' boards.

    ``PASS_BPLUS`` when every gate passes B+ on every seed (and T9 across them),
    ``PASS_B`` when every gate passes B, ``HOLD_REMEDIATE`` otherwise (missing evidence
    included), with each failure routed to its owner state and the rerun it calls for.
    """
    t9 = cross_seed_stability(policy, boards)
    seeds = [board[0]["seed"] for board in boards]
    verdicts = [r for board in boards for r in board if r["test_id"] != "T9_CROSS_SEED_STABILITY"]
    verdicts.append(t9)
    complete = len(boards) > 0 and all(len(board) == len(GATES) for board in boards)
    if complete and all(r["pass_Bplus"] for r in verdicts):
        decision = PASS_BPLUS
    elif complete and all(r["pass_B"] for r in verdicts):
        decision = PASS_B
    else:
        decision = HOLD
    failing_band = "pass_B" if decision == HOLD else "pass_Bplus"
    failures = []
    for r in verdicts:
        if not r[failing_band]:
            owner = r["owner_state"]
            failures.append({"test_id": r["test_id"], "seed": r["seed"], "owner_state": owner,
                             "reason": r["reason"],
                             "rerun": f"--from {_RERUN_FROM.get(owner, owner)}"})
    return {
        "decision": decision,
        "seeds": seeds,
        "T9": t9,
        "pooled": pooled(policy, boards),
        "per_seed": boards,
        "failures": failures,
    }
