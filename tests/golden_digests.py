"""Regenerate ``tests/golden/tiny_seed42.json``: the SHA-256 of every published file of seed
42 at ``tiny`` (perf measurements and the manifest listing them left out).

Run it only for an intended output change (a new PRF_VERSION, a changed prior or state), and
say why in the commit: ``python tests/golden_digests.py``.
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from runfiles import files_of  # noqa: E402
from seg6a.cli import main  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "tiny_seed42.json"


def regenerate():
    with tempfile.TemporaryDirectory() as root:
        code = main(["run", "--seed", "42", "--scale", "tiny", "--out", root, "--run-id",
                     "golden", "--quiet"])
        if code != 0:
            raise SystemExit(f"the run failed (exit {code})")
        files = files_of(Path(root) / "golden", measurements=False)
    GOLDEN.write_text(json.dumps({"seed": 42, "scale": "tiny", "files": files}, indent=2,
                                 sort_keys=True) + "\n")
    print(f"{GOLDEN}: {len(files)} files")


if __name__ == "__main__":
    regenerate()
