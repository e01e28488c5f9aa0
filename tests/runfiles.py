"""Test helper: the files of a run folder by content hash."""
import hashlib
from pathlib import Path


def files_of(run_dir, measurements=True):
    """Path -> sha256 of a run's files; ``measurements=False`` leaves out ``reports/``."""
    run_dir = Path(run_dir)
    return {p.relative_to(run_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()
            and (measurements or not p.relative_to(run_dir).as_posix().startswith("reports/"))}
