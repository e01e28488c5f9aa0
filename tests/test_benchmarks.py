"""The asv suite stays runnable: `asv check` imports and validates every benchmark."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("asv") is None and subprocess.run(
    [sys.executable, "-m", "asv", "--version"], capture_output=True).returncode != 0,
    reason="asv is not installed (it is in the test extra)")
def test_asv_check_passes():
    done = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No problems found" in done.stdout + done.stderr


def test_state_benchmarks_run_at_tiny():
    # `asv check` only imports: a state whose signature changed would fail on the dashboard.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_states import States
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    bench = States()
    bench.setup("tiny")
    timed = [name for name in dir(bench) if name.startswith("time_")]
    assert len(timed) == 6
    for name in timed:
        getattr(bench, name)("tiny")


def test_gate_tracks_are_shortfalls_where_a_larger_number_is_worse():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from bench_states import Gates, shortfall
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    # a lift (ge) falling from 4 to 3 and a JSD (le) rising both read as larger shortfalls
    lift = {"comparator": "ge", "threshold_Bplus": 2.0}
    jsd = {"comparator": "le", "threshold_Bplus": 0.05}
    assert shortfall({**lift, "value": 3.0}) > shortfall({**lift, "value": 4.0})
    assert shortfall({**jsd, "value": 0.04}) > shortfall({**jsd, "value": 0.03})
    assert shortfall({**lift, "value": 1.5}) > 0 > shortfall({**lift, "value": 2.5})
    tracks = [n for n in vars(Gates) if n.startswith("track_")]
    assert len(tracks) == 7
    assert all("lower is better" in getattr(Gates, n).unit for n in tracks)
