"""Where things live inside a run folder (SPEC §7)."""
import re
import uuid

from ..errors import ParameterError
from .store import check_writable, location

SEGMENT_ROOT = ("layer3", "6A")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_run_id():
    """A fresh run id (random; run ids never enter the data)."""
    return uuid.uuid4().hex


def check_run_id(run_id):
    """Return ``run_id`` if it is a safe single folder name, else raise ParameterError.

    Examples
    --------
    >>> check_run_id("baseline-2026.11")
    'baseline-2026.11'
    >>> check_run_id("../elsewhere")
    Traceback (most recent call last):
    ...
    seg6a.errors.ParameterError: run id '../elsewhere' must be 1-128 letters, digits, '.', '_' or '-', start with a letter or digit, and contain no path separator or '..'
    """
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        raise ParameterError(
            f"run id {run_id!r} must be 1-128 letters, digits, '.', '_' or '-', start with a "
            "letter or digit, and contain no path separator or '..'"
        )
    return run_id


def check_output_folder(folder, flag="--out"):
    """Return ``folder`` (a path or URL, as a path object) if it is a folder that can be
    written (or can be made), else raise ParameterError: checked before any work, so a bad
    destination never costs a run."""
    return check_writable(location(folder), flag)


def partition_dir(run_dir, dataset, seed, parameter_hash, manifest_fingerprint):
    """``RUN/layer3/6A/<dataset>/seed=<seed>/parameter_hash=<ph>/manifest_fingerprint=<mf>``."""
    return location(run_dir).joinpath(
        *SEGMENT_ROOT,
        dataset,
        f"seed={seed}",
        f"parameter_hash={parameter_hash}",
        f"manifest_fingerprint={manifest_fingerprint}",
    )


S0_PARTITION = "s0_gate_receipt_6A"


def s0_partitions(run_dir, seed, parameter_hash="*"):
    """S0's partition folders of a seed (its receipt, sealed inputs and published config),
    sorted: one in a committed run, whose live version is one."""
    pattern = partition_dir(".", S0_PARTITION, seed, parameter_hash, "*").as_posix()
    return sorted(p.parent for p in location(run_dir).glob(f"{pattern}/s0_gate_receipt_6A.json"))


def part_name(block):
    """File name of one canonical block's part of a dataset.

    Zero-padded, so that sorted names are canonical row order:

    >>> part_name(7), part_name(12)
    ('part-00007.parquet', 'part-00012.parquet')
    """
    return f"part-{block:05d}.parquet"


def rng_dir(run_dir, seed):
    """``RUN/layer3/6A/rng/seed=<seed>``: the RNG audit and trace."""
    return location(run_dir).joinpath(*SEGMENT_ROOT, "rng", f"seed={seed}")


def receipts_dir(run_dir, seed):
    """``RUN/layer3/6A/receipts/seed=<seed>``: one receipt per state."""
    return location(run_dir).joinpath(*SEGMENT_ROOT, "receipts", f"seed={seed}")


def validation_dir(run_dir, seed=None):
    """``RUN/layer3/6A/validation[/seed=<seed>]``: gateboards, and the certification summary."""
    folder = location(run_dir).joinpath(*SEGMENT_ROOT, "validation")
    return folder if seed is None else folder / f"seed={seed}"


GATEBOARD = "realism_gate_6A.json"
CERTIFICATION_SUMMARY = "realism_gate_summary_6A.json"
FREEZE = "freeze_6A.json"
GATE_DELTA = "gate_delta_6A.json"


def gateboards(run_dir):
    """``[(seed, path)]`` of the published gateboards of a run, by seed."""
    paths = validation_dir(run_dir).glob(f"seed=*/{GATEBOARD}")
    return sorted((int(path.parent.name.split("=", 1)[1]), path) for path in paths)


def perf_dir(run_dir, seed, parameter_hash, manifest_fingerprint):
    """``RUN/reports/layer3/6A/perf/seed=/parameter_hash=/manifest_fingerprint=``: measurements."""
    return location(run_dir).joinpath("reports", *SEGMENT_ROOT, "perf", f"seed={seed}",
                                  f"parameter_hash={parameter_hash}",
                                  f"manifest_fingerprint={manifest_fingerprint}")
