"""Perf artifacts (SPEC section 8): written with the data, untouched by a no-op rerun,
budgets judged per scale, and `seg6a perf` prints them. Timings are never asserted here."""
import json
from pathlib import Path

from seg6a.cli import main
from seg6a.perf import STATES
from seg6a.gates.board import GATES

ARTIFACTS = ("perf_events_6A.jsonl", "perf_summary_6A.json", "perf_budget_check_6A.json")


def perf_folder(run_dir):
    folders = list((Path(run_dir) / "reports/layer3/6A/perf").glob("seed=42/*/*"))
    assert len(folders) == 1
    return folders[0]


def test_artifacts_are_written_with_the_run_and_kept_by_a_noop_rerun(tmp_path, capsys):
    args = ["run", "--seed", "42", "--scale", "tiny", "--out", str(tmp_path), "--run-id", "p"]
    assert main(args) == 0
    folder = perf_folder(tmp_path / "p")
    assert sorted(p.name for p in folder.iterdir()) == sorted(ARTIFACTS)
    events = [json.loads(line) for line in (folder / ARTIFACTS[0]).read_text().splitlines()]
    assert {e["state"] for e in events} >= set(STATES) | {"publish"}
    assert all(set(e) - {"counters"} == {"state", "substep", "seconds", "rows"} for e in events)
    # the states' work counters ride on their substeps' events
    assert {(e["state"], e["substep"]) for e in events if "counters" in e} >= {
        ("S2", "allocate_accounts"), ("S3", "plan_counts")}
    summary = json.loads((folder / ARTIFACTS[1]).read_text())
    assert summary["scale"] == "tiny" and summary["jit"]["mode"] in ("cold", "cache_load", "warm")
    assert summary["total_seconds"] >= summary["segment_seconds"] > 0
    check = json.loads((folder / ARTIFACTS[2]).read_text())
    assert {c["check"] for c in check["checks"]} == {f"state.{s}" for s in STATES} | {"segment"}
    assert check["status"] in ("PASS", "FAIL", "NOT_JUDGED_COLD")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert main(args) == 0  # identical data: nothing published, the measurements stay
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    capsys.readouterr()
    assert main(["perf", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    for state in STATES:
        assert f"\n{state} " in out
    assert "hotspots:" in out


def test_perf_and_gates_print_json(tmp_path, capsys):
    assert main(["run", "--seed", "42", "--scale", "tiny", "--out", str(tmp_path), "--run-id", "j",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["perf", str(tmp_path / "j"), "--json"]) == 0
    perf = json.loads(capsys.readouterr().out)
    assert perf["42"]["summary"]["scale"] == "tiny" and perf["42"]["budget_check"]["checks"]
    assert main(["gates", str(tmp_path / "j"), "--json"]) == 0
    boards = json.loads(capsys.readouterr().out)
    assert [r["test_id"][:3] for r in boards["42"]][:2] == ["T1_", "T2_"]
    assert [r["test_id"] for r in boards["42"]] == list(GATES)


def test_budgets_below_a_second_inform_and_judged_ones_show_their_margin():
    from seg6a.perf import budget_check, budget_rows

    summary = {"scale": "tiny", "jit": {"mode": "warm"}, "total_seconds": 1.2,
               "peak_rss_gib": 0.5,
               "state_seconds": {"S0": 0.212, "S1": 0.05, "S2": 0.1, "S3": 0.1, "S4": 0.1,
                                 "S5": 0.1}}
    budgets = {"budgets": {"tiny": {"segment_seconds": 1.5, "state_seconds": {
        "S0": 0.2, "S1": 0.1, "S2": 0.3, "S3": 0.25, "S4": 0.3, "S5": 0.3}}}}
    check = budget_check(summary, budgets)
    s0 = next(c for c in check["checks"] if c["check"] == "state.S0")
    assert not s0["pass"] and not s0["judged"]  # 0.212 s over 0.2 s: noise, not a failure
    assert check["status"] == "PASS"
    rows = dict((r[0], r[3]) for r in budget_rows(summary, check))
    assert rows["S0"] == "info" and rows["total"] == "ok, 0.300 s to spare"
    summary["total_seconds"] = 1.75
    check = budget_check(summary, budgets)
    assert check["status"] == "FAIL"
    assert dict((r[0], r[3]) for r in budget_rows(summary, check))["total"] == "OVER by 0.250 s"
