"""The keep-set of a runs root and pruning of every run outside it (SPEC section 7).

``ROOT/keep_set.json`` names the runs to keep: ``baseline``, ``candidate``, ``last_good``
(one run id each, or null) and ``witnesses`` (a list). A certification that freezes its run
records it as ``last_good`` (``record_last_good``). ``prune`` removes run folders that
it names nowhere, and nothing else: only folders whose name is a valid run id and that hold
a ``layer3`` tree count as runs.
"""
import json

from ..errors import InputError
from . import layout
from .publish import json_bytes, replace_bytes
from .store import location, remove_tree

KEEP_SET = "keep_set.json"
SINGLE_ROLES = ("baseline", "candidate", "last_good")
ROLES = SINGLE_ROLES + ("witness",)


def load(root):
    """The keep-set of ``root`` (an empty one if there is no file yet)."""
    path = location(root) / KEEP_SET
    empty = {role: None for role in SINGLE_ROLES} | {"witnesses": []}
    if not path.exists():
        return empty
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", file=path, line=exc.lineno) from None
    if not isinstance(content, dict) or not isinstance(content.get("witnesses", []), list):
        raise InputError("expected an object with baseline, candidate, last_good and a "
                         "witnesses list", file=path)
    return empty | content


def kept(keep_set):
    """Every run id the keep-set names."""
    ids = {keep_set[role] for role in SINGLE_ROLES if keep_set.get(role)}
    return ids | set(keep_set.get("witnesses", []))


def runs(root):
    """Run folders under ``root``: valid run ids holding a ``layer3`` tree, sorted."""
    found = []
    for child in sorted(location(root).iterdir()):
        if child.is_dir() and (child / layout.SEGMENT_ROOT[0]).is_dir():
            try:
                layout.check_run_id(child.name)
            except InputError:
                continue
            found.append(child.name)
    return found


def keep(root, run_id, role):
    """Record ``run_id`` in ``role`` (a witness is added to the list); returns the keep-set."""
    root = location(root)
    layout.check_run_id(run_id)
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if run_id not in runs(root):
        raise InputError(f"no run {run_id!r} under {root}")
    keep_set = load(root)
    if role == "witness":
        if run_id not in keep_set["witnesses"]:
            keep_set["witnesses"] = sorted(keep_set["witnesses"] + [run_id])
    else:
        keep_set[role] = run_id
        if role == "baseline":  # chosen by hand: a later freeze does not move it
            keep_set["baseline_pinned"] = True
    replace_bytes(root / KEEP_SET, json_bytes(keep_set))
    return keep_set


def record_last_good(root, run_id, decision):
    """A freeze: ``run_id`` becomes ``last_good`` with its ``decision`` (the posture a later
    certification must not step down from), and the previous ``last_good`` becomes the
    ``baseline`` unless a baseline was pinned (``keep --as baseline``). Returns the
    keep-set."""
    root = location(root)
    keep_set = load(root)
    previous = keep_set["last_good"]
    if previous and previous != run_id and not keep_set.get("baseline_pinned"):
        keep_set["baseline"] = previous
    keep_set["last_good"] = run_id
    keep_set["last_good_decision"] = decision
    replace_bytes(root / KEEP_SET, json_bytes(keep_set))
    return keep_set


def last_good_decision(root):
    """The decision frozen for the keep-set's ``last_good`` run (kept in the keep-set, so a
    rerun that retires the run's freeze does not erase the posture), or None."""
    keep_set = load(root)
    return keep_set.get("last_good_decision") if keep_set["last_good"] else None


def prune(root, dry_run=True):
    """Run folders outside the keep-set: listed, and removed unless ``dry_run``."""
    root = location(root)
    if not root.is_dir():
        raise InputError("is not a folder", file=root)
    keep_set = load(root)
    doomed = [run_id for run_id in runs(root) if run_id not in kept(keep_set)]
    if not dry_run:
        for run_id in doomed:
            remove_tree(root / run_id)
    return doomed
