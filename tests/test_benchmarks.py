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
