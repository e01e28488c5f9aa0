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
