"""Test helper: the files of a run folder by content hash."""
import hashlib
from pathlib import Path

from seg6a.runs.commit import LOCK, MANIFEST


def files_of(run_dir, measurements=True):
    """Path -> sha256 of a run's files; ``measurements=False`` leaves out ``reports/`` (timings
    differ from run to run) and the manifest, which lists them."""
    run_dir = Path(run_dir)
    out = {}
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir).as_posix()
        if not path.is_file() or relative == LOCK:
            continue
        if not measurements and (relative.startswith("reports/") or relative == MANIFEST):
            continue
        out[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out
