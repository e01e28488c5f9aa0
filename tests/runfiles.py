"""Test helper: the files of a run folder by content hash."""
import hashlib

from seg6a.runs.commit import LOCK, MANIFEST
from seg6a.runs.store import listing, location


def files_of(run_dir, measurements=True):
    """Path -> sha256 of a run's files; ``measurements=False`` leaves out ``reports/`` (timings
    differ from run to run) and the manifest, which lists them."""
    run_dir = location(run_dir)  # a folder or an object store URL
    out = {}
    for relative in sorted(listing(run_dir)):
        if relative == LOCK:
            continue
        if not measurements and (relative.startswith("reports/") or relative == MANIFEST):
            continue
        out[relative] = hashlib.sha256((run_dir / relative).read_bytes()).hexdigest()
    return out
