"""The examples run as a user would run them, from a fresh process."""
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_and_shows_the_gates(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for text in ("20,000 parties", "T1_KMAX_HARD_INVARIANT", "T10_DOWNSTREAM_COMPAT_6B",
                 "owner_family", "MULE_NETWORK"):
        assert text in done.stdout
    assert list(tmp_path.iterdir()) == []  # it cleans up after itself
