"""State receipts and the rerun matrix (SPEC section 7).

Each state's receipt records its cumulative parameter hash, the manifest fingerprint, the
SHA-256 of its inputs and outputs and the PRF and seg6a versions. A ``--from STATE`` rerun
keeps the states before ``STATE`` only if their receipts match the current config and world
and every file they list is on disk with its recorded hash. Because parameter hashes are
cumulative (S1 in S2 in ... in S5), the rerun matrix follows: a change to S2's priors makes
S2..S5 stale, a change to S4's makes S4..S5 stale, a change to S5's only S5.
"""
import json

from ..errors import IncompleteRunError, StaleStateError
from . import layout
from .publish import sha256_hex

STATES = ("S1", "S2", "S3", "S4", "S5")
# What a rerun that computes other bytes under unchanged parameters can do.
NEW_RUN_ID = ("a run keeps the bytes it published under unchanged parameters, so only a new "
              "run id can hold these (nothing was changed)")


def receipt_path(run_dir, seed, state):
    return layout.receipts_dir(run_dir, seed) / f"{state.lower()}_receipt_6A.json"


def load(run_dir, seed, state):
    """The receipt of ``state`` for ``seed``, or None if there is none."""
    path = receipt_path(run_dir, seed, state)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def seeds(run_dir):
    """The seeds of a run folder that have a receipt of S5 (a complete seed), sorted."""
    folder = layout.receipts_dir(run_dir, 0).parent
    found = [int(path.parent.name.split("=", 1)[1])
             for path in folder.glob(f"seed=*/{receipt_path(run_dir, 0, 'S5').name}")]
    return sorted(found)


def check_upstream(run_dir, sealed, from_state, committed):
    """Raise ``StaleStateError`` naming the first state before ``from_state`` that cannot be
    kept (``IncompleteRunError`` if its data is not the committed data)."""
    check_states(run_dir, sealed, STATES[:STATES.index(from_state)], committed)


def check_states(run_dir, sealed, states, committed):
    """Raise ``StaleStateError`` naming the first of ``states`` whose receipt does not match
    the current config and world, or whose datasets differ from it; ``IncompleteRunError``
    when its datasets are not the ones the run's manifest (``committed``) lists.

    Only the datasets (Parquet parts) are checked: S5's verdict files are what a rejudge or
    a rerun recomputes.
    """
    for state in states:
        receipt = load(run_dir, sealed.seed, state)
        path = receipt_path(run_dir, sealed.seed, state)
        if receipt is None:
            raise StaleStateError(state, f"no receipt for seed {sealed.seed}", file=path)
        if receipt["manifest_fingerprint"] != sealed.manifest_fingerprint:
            raise StaleStateError(state, "the upstream world changed since it was published",
                                  file=path)
        if receipt["parameter_hash"] != sealed.parameter_hashes[state]:
            raise StaleStateError(
                state, f"its policies changed since it was published (parameter_hash "
                f"{receipt['parameter_hash'][:12]}... in the receipt, "
                f"{sealed.parameter_hashes[state][:12]}... now)", file=path)
        for relative, digest in receipt["outputs"].items():
            if not relative.endswith(".parquet"):
                continue
            if committed.get(relative, {}).get("sha256") != digest:
                raise IncompleteRunError(run_dir, f"{state}'s output {relative} is not "
                                         "committed")
            published = run_dir / relative
            if not published.exists():
                raise StaleStateError(state, f"its output {relative} is missing", file=path)
            if sha256_hex(published.read_bytes()) != digest:
                raise StaleStateError(
                    state, f"its output {relative} does not match its receipt (changed after "
                    "publish)", file=published)


def check_recomputed(run_dir, seed, from_state, outputs):
    """The kept states, recomputed in memory, must give exactly the bytes their receipts list."""
    for state in STATES[:STATES.index(from_state)]:
        receipt = load(run_dir, seed, state)
        if receipt["outputs"] != outputs.get(state, {}):
            # Its parameters are unchanged (check_upstream), so are its paths: rerunning it
            # would meet its old bytes there, which a run never replaces.
            raise StaleStateError(state, "recomputing it gives other bytes than its receipt "
                                  "lists (the code or the engine changed)",
                                  file=receipt_path(run_dir, seed, state),
                                  remedy=NEW_RUN_ID)
