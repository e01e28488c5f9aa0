"""The run protocol (SPEC section 7): receipts, reruns --from a state, tampering, keep-set and
prune, and the RNG audit against the draws made (crashes and concurrency: test_run_folder)."""
import hashlib
import json
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

import seg6a
from runfiles import files_of
from seg6a.cli import main
from seg6a.kernels.prf import PRF_VERSION
from seg6a.runs import keep
from seg6a.runs.commit import MANIFEST
from seg6a.states import s1_parties, s2_accounts, s3_instruments, s4_devices, s5_fraud_roles

SEED = 42


def overlay(folder, relative, edit):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = yaml.safe_load(resources.files("seg6a.config").joinpath(relative).read_text())
    edit(doc)
    (folder / Path(relative).name).write_text(yaml.safe_dump(doc))
    return folder


def run(root, run_id, *extra):
    return main(["run", "--seed", str(SEED), "--scale", "tiny", "--out", str(root),
                 "--run-id", run_id, *extra])


@pytest.fixture()
def published(tmp_path):
    root = tmp_path / "runs"
    assert run(root, "r") == 0
    return root, root / "r"


def test_receipts_record_hashes_of_what_was_published(published):
    _, run_dir = published
    for state in ("S1", "S2", "S3", "S4", "S5"):
        receipt = json.loads((run_dir / f"layer3/6A/receipts/seed={SEED}/"
                              f"{state.lower()}_receipt_6A.json").read_text())
        assert receipt["prf_version"] == PRF_VERSION and receipt["seg6a_version"]
        assert receipt["outputs"]
        for relative, digest in receipt["outputs"].items():
            assert hashlib.sha256((run_dir / relative).read_bytes()).hexdigest() == digest
            assert f"parameter_hash={receipt['parameter_hash']}" in relative or "/seed=" in relative


def test_from_s5_after_an_s4_change_refuses_naming_s4(published, tmp_path, capsys):
    root, run_dir = published
    before = files_of(run_dir)
    config = overlay(tmp_path / "cfg", "priors/device_ip_priors_6A.v1.yaml",
                     lambda d: d["linkage"].update(coverage_target=0.8))
    capsys.readouterr()
    assert run(root, "r", "--from", "S5", "--config", str(config)) == 2
    err = capsys.readouterr().err
    assert "S4 is stale" in err and "--from S4" in err
    assert files_of(run_dir) == before


def test_from_s5_after_an_s5_change_reruns_only_s5(published, tmp_path):
    root, run_dir = published
    before = files_of(run_dir)
    old_s5 = json.loads((run_dir / f"layer3/6A/receipts/seed={SEED}/s5_receipt_6A.json")
                        .read_text())["parameter_hash"]
    config = overlay(tmp_path / "cfg", "policy/risk_propagation_coeffs_6A.v1.yaml",
                     lambda d: d["party_to_account"].update(beta_risky_owner=2.2))
    assert run(root, "r", "--from", "S5", "--config", str(config)) == 0
    after = files_of(run_dir)
    # Nothing published before changed, except the superseded evidence of the rerun state.
    superseded = {f"layer3/6A/receipts/seed={SEED}/s5_receipt_6A.json",
                  f"layer3/6A/rng/seed={SEED}/rng_audit_6A.json",
                  f"layer3/6A/rng/seed={SEED}/rng_trace_6A.jsonl",
                  f"layer3/6A/validation/seed={SEED}/realism_gate_6A.json", MANIFEST}
    for path, digest in before.items():
        if path in after and path not in superseded:
            assert after[path] == digest, path
    # The trace counts draws (unchanged); the receipt, the key fingerprints and the board change.
    changed = superseded - {f"layer3/6A/rng/seed={SEED}/rng_trace_6A.jsonl"}
    assert all(after[p] != before[p] for p in changed)
    new = [p for p in after if p not in before]
    assert any(p.startswith("layer3/6A/s5_party_fraud_roles_6A/") for p in new)
    assert not any(p.startswith(("layer3/6A/s1_", "layer3/6A/s2_", "layer3/6A/s3_",
                                 "layer3/6A/s4_")) for p in new)
    # One live version: the old S5 partitions (and S0's and the perf folder, under the segment
    # hash) left the run, and S5's receipt lists each with its hash.
    gone = {p: d for p, d in before.items() if p not in after}
    assert gone and all(f"parameter_hash={old_s5}" in p for p in gone)
    assert any("s5_validation_report_6A" in p and p.endswith("_passed.flag") for p in gone)
    receipt = json.loads((run_dir / f"layer3/6A/receipts/seed={SEED}/s5_receipt_6A.json")
                         .read_text())
    assert {e["path"]: e["sha256"] for e in receipt["superseded"]} == gone
    assert one_row_per_entity(run_dir, "s5_party_fraud_roles_6A", "party_id")
    assert main(["verify", str(run_dir)]) == 0
    # The same rerun again is a no-op.
    assert run(root, "r", "--from", "S5", "--config", str(config)) == 0
    assert files_of(run_dir) == after
    # A plain rerun with the original config conflicts: the evidence now is S5's new one.
    assert run(root, "r") == 2
    assert files_of(run_dir) == after


def one_row_per_entity(run_dir, dataset, key):
    """Whether the README's DuckDB read of a dataset gives each entity exactly once."""
    (rows, entities), = duckdb.sql(
        f"select count(*), count(distinct {key}) from read_parquet("
        f"'{run_dir}/layer3/6A/{dataset}/**/*.parquet', hive_partitioning=true)").fetchall()
    return rows == entities > 0


def test_a_plain_rerun_after_a_policy_change_publishes_nothing(published, tmp_path):
    root, run_dir = published
    before = files_of(run_dir)
    config = overlay(tmp_path / "cfg", "policy/risk_propagation_coeffs_6A.v1.yaml",
                     lambda d: d["party_to_account"].update(beta_risky_owner=2.2))
    assert run(root, "r", "--config", str(config)) == 2
    assert files_of(run_dir) == before


def test_tampering_is_detected_by_the_receipt(published, capsys):
    root, run_dir = published
    part = next((run_dir / "layer3/6A/s3_instrument_base_6A").rglob("part-*.parquet"))
    table = pq.read_table(part)
    pq.write_table(table.slice(1), part)
    before = files_of(run_dir)
    capsys.readouterr()
    assert run(root, "r", "--from", "S5") == 2
    err = capsys.readouterr().err
    assert "S3 is stale" in err and "does not match its receipt" in err
    assert files_of(run_dir) == before


def test_a_rerun_whose_code_changed_asks_for_a_new_run_id(published, monkeypatch, capsys):
    # Other code under unchanged parameters: S3 writes its columns in another order.
    root, run_dir = published
    before = files_of(run_dir)
    encode = s3_instruments.encode_part
    monkeypatch.setattr(s3_instruments, "encode_part",
                        lambda columns: encode(dict(reversed(columns.items()))))
    capsys.readouterr()
    # Kept, S3 is stale; rerun, S3 meets its published part.
    for state, named in (("S4", "S3 is stale"), ("S3", "s3_instrument_base_6A")):
        assert run(root, "r", "--from", state) == 2
        err = capsys.readouterr().err
        # Only a new run id helps: a --from rerun meets the old bytes at the same paths.
        assert named in err and "new run id" in err and "--from" not in err, err
        assert files_of(run_dir) == before
    assert run(root, "r2") == 0


def test_from_needs_an_existing_run(tmp_path, capsys):
    assert run(tmp_path / "runs", "nothing", "--from", "S4") == 2
    err = capsys.readouterr().err
    assert f"run {tmp_path / 'runs' / 'nothing'} not found" in err
    assert not (tmp_path / "runs" / "nothing").exists()


def test_from_needs_the_seed_in_the_run(published, capsys):
    root, run_dir = published
    before = files_of(run_dir)
    capsys.readouterr()
    assert main(["run", "--seed", "8", "--scale", "tiny", "--out", str(root), "--run-id", "r",
                 "--from", "S2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "has no seed 8 (its seeds: 42)" in err and "run without --from" in err
    assert "--from S1" not in err
    assert files_of(run_dir) == before


def test_prune_keeps_the_keep_set_and_everything_else(tmp_path):
    root = tmp_path / "runs"
    for run_id in ("base", "cand", "old1", "old2"):
        assert run(root, run_id) == 0
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not a run")
    assert main(["runs", "keep", str(root), "base", "--as", "baseline"]) == 0
    assert main(["runs", "keep", str(root), "cand", "--as", "witness"]) == 0
    keep_set = json.loads((root / "keep_set.json").read_text())
    assert keep_set["baseline"] == "base" and keep_set["witnesses"] == ["cand"]
    kept_bytes = files_of(root / "base")
    assert keep.prune(root) == ["old1", "old2"]
    assert sorted(p.name for p in root.iterdir()) == [
        "base", "cand", "keep_set.json", "notes", "old1", "old2"]  # a dry run removes nothing
    assert main(["runs", "prune", str(root), "--yes"]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["base", "cand", "keep_set.json", "notes"]
    assert files_of(root / "base") == kept_bytes
    assert main(["runs", "keep", str(root), "gone", "--as", "candidate"]) == 2


def test_rng_audit_counts_the_draws_made(monkeypatch):
    made, seen = {}, set()

    def counting(module, name, draws):
        kernel = getattr(module, name)

        def wrapper(*args):
            out = kernel(*args)
            # Recomputing the same values is not a new draw: a call counts once per kernel,
            # key, scalar arguments and array contents.
            call = (name, *(a.tobytes() if np.ndim(a) else int(a) for a in args))
            if call not in seen:
                seen.add(call)
                key = int(args[0])
                made[key] = made.get(key, 0) + draws(args, out)
            return out
        monkeypatch.setattr(module, name, wrapper)

    for module in (s1_parties, s4_devices):
        counting(module, "categorical_range", lambda a, o: len(a[4]))
    for module in (s3_instruments, s4_devices):
        if hasattr(module, "uniform_range"):
            counting(module, "uniform_range", lambda a, o: a[2])
    for name in ("uniform_ids", "exponential_ids"):  # S2 draws for the parties that use them
        counting(s2_accounts, name, lambda a, o: len(a[1]))
    counting(s4_devices, "poisson_range", lambda a, o: len(a[3]))
    # one draw per (account, instrument type)
    counting(s3_instruments, "capped_poisson_counts", lambda a, o: o[0].size)
    counting(s3_instruments, "assign_by_quota", lambda a, o: len(a[2]))
    counting(s4_devices, "household_links", lambda a, o: 3 * len(a[2]))
    counting(s4_devices, "ips_per_group", lambda a, o: int(o[1].sum()))
    s4_assign = s4_devices.assign_links

    def assign(*args):
        out = s4_assign(*args)
        links, ips = int(args[4][-1]), int(args[5][-1])
        made[int(args[0])] = made.get(int(args[0]), 0) + links
        made[int(args[1])] = made.get(int(args[1]), 0) + links - ips
        return out
    monkeypatch.setattr(s4_devices, "assign_links", assign)
    counting(s5_fraud_roles, "draw_roles", lambda a, o: 2 * len(a[2]))

    result = seg6a.simulate(SEED, scale="tiny")
    recorded = {}
    for rng in result._substreams:
        for row in rng.audit():
            if row["substream"].startswith("gates."):
                continue  # the gates' draws are counted in test_gates' own terms
            recorded[int(rng.key(row["substream"]))] = row["draws"]
    assert recorded and all(v > 0 for v in recorded.values())
    assert made == recorded
