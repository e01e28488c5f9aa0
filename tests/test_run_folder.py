"""A run folder is one coherent, verifiable dataset (SPEC section 7): one live version after
reruns, the manifest as the commit point, ``seg6a verify``, crashes at every step of a
publish, two publishers into one run, golden digests, and no abort at interpreter exit."""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import duckdb
import pytest
import yaml

from runfiles import files_of
from seg6a.cli import main
from seg6a.runs.commit import CRASH_AFTER, CRASH_EXIT, MANIFEST, read_manifest, verify
from seg6a.runs.store import is_staging

SEED = 42
GOLDEN = Path(__file__).parent / "golden" / "tiny_seed42.json"
DEVICE_PRIORS = "device_ip_priors_6A.v1.yaml"


def cli(*args, env=None, cwd=None):
    """``seg6a ARGS`` in a fresh interpreter."""
    return subprocess.run([sys.executable, "-m", "seg6a.cli", *map(str, args)], cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **(env or {})),
                          capture_output=True, text=True, timeout=600)


def seg6a(*args):
    """``seg6a ARGS`` in this process."""
    return main([str(a) for a in args])


def run_args(root, run_id, *extra):
    return [str(a) for a in ("run", "--seed", SEED, "--scale", "tiny", "--out", root,
                             "--run-id", run_id, "--quiet", *extra)]


def device_config(folder, mean_count):
    doc = yaml.safe_load(resources.files("seg6a.config").joinpath("priors", DEVICE_PRIORS)
                         .read_text())
    doc["devices_per_party"]["RETAIL"]["mean_count"] = mean_count
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / DEVICE_PRIORS).write_text(yaml.safe_dump(doc))
    return Path(folder)


def rows_and_entities(run_dir, dataset, key):
    """The README's DuckDB read of a dataset: (rows, distinct entities)."""
    return duckdb.sql(f"select count(*), count(distinct {key}) from read_parquet("
                      f"'{run_dir}/layer3/6A/{dataset}/**/*.parquet', hive_partitioning=true)"
                      ).fetchall()[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A clean run of seed 42 (``clean``), the same after a ``--from S4`` rerun with more
    devices (``rerun``), and that rerun's config."""
    root = tmp_path_factory.mktemp("runs")
    config = device_config(tmp_path_factory.mktemp("cfg"), 2.2)
    assert main(run_args(root, "clean")) == 0
    shutil.copytree(root / "clean", root / "rerun")
    assert main(run_args(root, "rerun", "--from", "S4", "--config", config)) == 0
    return {"root": root, "config": config}


# --- 1. one live version -------------------------------------------------------------------


def test_reruns_leave_one_partition_per_dataset_and_seed(runs, tmp_path):
    root = runs["root"]
    clean, rerun = root / "clean", root / "rerun"
    devices_before = rows_and_entities(clean, "s4_device_base_6A", "device_id")
    devices_after = rows_and_entities(rerun, "s4_device_base_6A", "device_id")
    assert devices_before[0] == devices_before[1]
    assert devices_after[0] == devices_after[1] > devices_before[1]  # more devices, once each
    for dataset, key in (("s5_device_fraud_roles_6A", "device_id"),
                         ("s5_party_fraud_roles_6A", "party_id"),
                         ("s1_party_base_6A", "party_id")):
        rows, entities = rows_and_entities(rerun, dataset, key)
        assert rows == entities, dataset
    for dataset in ("s4_device_base_6A", "s5_validation_report_6A", "s0_gate_receipt_6A"):
        partitions = list((rerun / "layer3/6A" / dataset / f"seed={SEED}").iterdir())
        assert len(partitions) == 1, dataset
    assert len(list(rerun.rglob("_passed.flag"))) == 1
    # the rerun's receipt lists what it superseded, with the hashes the clean run published
    receipt = json.loads((rerun / f"layer3/6A/receipts/seed={SEED}/s4_receipt_6A.json")
                         .read_text())
    before, after = files_of(clean), files_of(rerun)
    gone = {p: d for p, d in before.items() if p not in after}
    assert any("s4_device_base_6A" in p for p in gone)
    assert {e["path"]: e["sha256"] for e in receipt["superseded"]} == gone
    assert seg6a("verify", str(rerun)) == 0


# --- 2, 3. the manifest and verify ---------------------------------------------------------


def test_the_manifest_lists_every_live_file(runs):
    run_dir = runs["root"] / "clean"
    manifest = read_manifest(run_dir)
    assert manifest["run_id"] == "clean" and manifest["seeds"] == [SEED]
    assert manifest["seg6a_version"]
    listed = {p: e["sha256"] for p, e in manifest["files"].items()}
    assert listed == {p: d for p, d in files_of(run_dir).items() if p != MANIFEST}


@pytest.mark.parametrize("damage", ["flip_byte", "delete_part", "extra_file", "no_manifest",
                                    "torn_manifest"])
def test_verify_names_every_difference(runs, tmp_path, damage, capsys):
    run_dir = shutil.copytree(runs["root"] / "clean", tmp_path / "run")
    assert seg6a("verify", run_dir) == 0
    part = sorted(run_dir.rglob("part-*.parquet"))[3]
    relative = part.relative_to(run_dir).as_posix()
    if damage == "flip_byte":
        data = bytearray(part.read_bytes())
        data[len(data) // 2] ^= 0x01
        part.write_bytes(bytes(data))
        expected = f"changed: {relative}"
    elif damage == "delete_part":
        part.unlink()
        expected = f"missing: {relative}"
    elif damage == "extra_file":
        relative = relative.replace("part-00000", "part-00001")
        (run_dir / relative).write_bytes(b"not committed")
        expected = f"unexpected: {relative}"
    elif damage == "no_manifest":
        (run_dir / MANIFEST).unlink()
        expected = f"missing: {MANIFEST}"
    else:
        (run_dir / MANIFEST).write_text('{"files": {')
        expected = f"changed: {MANIFEST}"
    capsys.readouterr()
    assert seg6a("verify", run_dir) == 4
    out = capsys.readouterr().out
    assert expected in out and "NOT verified" in out
    assert seg6a("verify", run_dir, "--json") == 4
    found = json.loads(capsys.readouterr().out)
    assert not found["ok"] and expected.split(": ")[1] in found[expected.split(":")[0]]
    if damage != "flip_byte":  # a reader checks sizes of parts, and every other byte
        assert seg6a("gates", run_dir) == 2
        assert "incomplete run" in capsys.readouterr().err


def test_readers_refuse_a_changed_evidence_file(runs, tmp_path, capsys):
    run_dir = shutil.copytree(runs["root"] / "clean", tmp_path / "run")
    board = next(run_dir.rglob("realism_gate_6A.json"))
    text = board.read_text()
    board.write_text(text.replace('"pass_Bplus": true', '"pass_Bplus": 1.00', 1))
    assert board.read_text() != text
    for command in (["gates", run_dir], ["report", run_dir, "--out", tmp_path / "page"]):
        capsys.readouterr()
        assert seg6a(*command) == 2
        err = capsys.readouterr().err
        assert "incomplete run" in err and "realism_gate_6A.json" in err
    assert not (tmp_path / "page").exists()
    assert seg6a("verify", run_dir) == 4
    # judging anew recomputes the verdict from the (intact) data, and the run verifies again
    assert seg6a("gates", run_dir, "--rejudge") == 0
    assert seg6a("verify", run_dir) == 0


def test_a_folder_that_is_not_a_run_is_never_written_into(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine")
    assert main(run_args(tmp_path, "docs")) == 2
    assert "is not a seg6a run folder" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["notes.txt"]


# --- 4. crash safety -----------------------------------------------------------------------

FRESH_STEPS = ["staged", "placed:1", "placed:12", "manifest_staged", "committed"]
RERUN_STEPS = ["staged", "placed:1", "placed:8", "manifest_staged", "committed", "retired:1",
               "retired:6"]


def _reader_view(run_dir, capsys):
    """What a reader gets: ("incomplete", None), or ("complete", the board)."""
    capsys.readouterr()
    code = seg6a("gates", run_dir, "--json")
    out, err = capsys.readouterr()
    if code == 2:
        assert "incomplete run" in err
        return "incomplete", None
    assert code == 0, err
    # what the reader read is the manifest's, byte for byte (at most a staged file beside it)
    found = verify(run_dir)
    assert found["missing"] == found["changed"] == found["receipts"] == []
    assert all(is_staging(Path(p).name) for p in found["unexpected"])
    return "complete", json.loads(out)


@pytest.mark.parametrize("step", FRESH_STEPS)
def test_a_crash_while_publishing_a_new_run(runs, tmp_path, step, capsys):
    root = tmp_path / "runs"
    crashed = cli(*run_args(root, "clean"), env={CRASH_AFTER: step})
    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    view, board = _reader_view(root / "clean", capsys)
    expected = json.loads((runs["root"] / "clean" / f"layer3/6A/validation/seed={SEED}/"
                           "realism_gate_6A.json").read_text())
    assert view == ("complete" if step == "committed" else "incomplete")
    if board is not None:
        assert board == {str(SEED): expected}
    # the same command again completes the run: verified, and the clean run's bytes
    assert main(run_args(root, "clean")) == 0
    assert seg6a("verify", root / "clean") == 0
    assert files_of(root / "clean", False) == files_of(runs["root"] / "clean", False)


@pytest.mark.parametrize("step", RERUN_STEPS)
def test_a_crash_while_publishing_a_rerun(runs, tmp_path, step, capsys):
    root = tmp_path / "runs"
    shutil.copytree(runs["root"] / "clean", root / "rerun")
    command = run_args(root, "rerun", "--from", "S4", "--config", runs["config"])
    crashed = cli(*command, env={CRASH_AFTER: step})
    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    view, board = _reader_view(root / "rerun", capsys)
    old, new = ({str(SEED): json.loads((runs["root"] / name / f"layer3/6A/validation/"
                                        f"seed={SEED}/realism_gate_6A.json").read_text())}
                for name in ("clean", "rerun"))
    # before the commit, the old run or an incomplete one; after it, never the old run
    if step.startswith(("staged", "placed", "manifest")):
        assert board in (None, old)
    else:
        assert board in (None, new)
    assert main(command) == 0
    assert seg6a("verify", root / "rerun") == 0
    assert files_of(root / "rerun", False) == files_of(runs["root"] / "rerun", False)
    assert rows_and_entities(root / "rerun", "s4_device_base_6A", "device_id")[0] == \
        rows_and_entities(runs["root"] / "rerun", "s4_device_base_6A", "device_id")[0]


# --- 5. two publishers into one run --------------------------------------------------------


def test_two_publishers_of_different_bytes_one_wins(tmp_path):
    root = tmp_path / "runs"
    configs = [device_config(tmp_path / f"cfg{i}", mean) for i, mean in enumerate((1.9, 2.4))]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda c: cli(*run_args(root, "both", "--config", c)), configs))
    codes = sorted(d.returncode for d in done)
    assert codes == [0, 2], [d.stderr for d in done]
    loser = next(d for d in done if d.returncode == 2)
    assert "already holds different data" in loser.stderr and str(root / "both") in loser.stderr
    assert seg6a("verify", root / "both") == 0
    # the winner's data and receipts, nothing of the loser's
    (rows, entities), = [rows_and_entities(root / "both", "s4_device_base_6A", "device_id")]
    assert rows == entities


def test_two_publishers_of_the_same_bytes_both_succeed(tmp_path):
    root = tmp_path / "runs"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda _: cli(*run_args(root, "same")), range(2)))
    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    assert seg6a("verify", root / "same") == 0


# --- 6. golden digests ---------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["1", "2"])
def test_published_bytes_are_the_golden_digests(tmp_path, threads):
    """Any output change fails here: regenerate with ``python tests/golden_digests.py`` only
    for an intended change, and say why (SPEC section 7; README, "Golden digests")."""
    done = cli(*run_args(tmp_path, "golden"), env={"NUMBA_NUM_THREADS": threads})
    assert done.returncode == 0, done.stderr
    golden = json.loads(GOLDEN.read_text())
    assert golden["seed"] == SEED and golden["scale"] == "tiny"
    assert files_of(tmp_path / "golden", measurements=False) == golden["files"]


# --- 7. no abort at interpreter exit ------------------------------------------------------

EXIT_SCRIPT = "import seg6a; r = seg6a.simulate(7, scale='tiny'); r.tables"


def test_reading_tables_never_aborts_at_exit():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))

    def once(_):
        return subprocess.run([sys.executable, "-c", EXIT_SCRIPT], env=env,
                              capture_output=True, text=True, timeout=300)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        done = list(pool.map(once, range(30)))
    failed = [(d.returncode, d.stderr[-300:]) for d in done if d.returncode != 0]
    assert failed == []


# --- found in review ------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["removed", "torn"])
def test_a_run_without_a_trustworthy_manifest_is_never_published_into(runs, tmp_path, damage,
                                                                       capsys):
    run_dir = shutil.copytree(runs["root"] / "clean", tmp_path / "run")
    if damage == "removed":
        (run_dir / MANIFEST).unlink()
    else:
        (run_dir / MANIFEST).write_text("{")
    before = files_of(run_dir)
    assert seg6a("run", "--seed", 7, "--scale", "tiny", "--out", tmp_path, "--run-id", "run",
                 "--quiet") == 2
    assert "nothing is published" in capsys.readouterr().err or damage == "removed"
    assert files_of(run_dir) == before  # nothing collected


def test_a_crash_at_the_commit_still_gets_its_measurements(tmp_path):
    root = tmp_path / "runs"
    assert cli(*run_args(root, "m"), env={CRASH_AFTER: "committed"}).returncode == CRASH_EXIT
    assert not (root / "m" / "reports").exists()
    assert seg6a(*run_args(root, "m")) == 0
    assert list((root / "m" / "reports").rglob("perf_summary_6A.json"))
    assert seg6a("verify", root / "m") == 0


def test_reruns_list_only_what_they_retired_and_accept_an_unhashed_policy(runs, tmp_path):
    root = tmp_path / "runs"
    run_dir = shutil.copytree(runs["root"] / "clean", root / "r")
    propagation = "risk_propagation_coeffs_6A.v1.yaml"
    doc = yaml.safe_load(resources.files("seg6a.config").joinpath("policy", propagation)
                         .read_text())
    doc["party_to_account"]["beta_risky_owner"] = 2.2
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / propagation).write_text(yaml.safe_dump(doc))
    assert seg6a(*run_args(root, "r", "--from", "S5", "--config", changed)) == 0
    assert seg6a(*run_args(root, "r", "--from", "S5")) == 0  # back to the embedded policy
    receipt = json.loads((run_dir / f"layer3/6A/receipts/seed={SEED}/s5_receipt_6A.json")
                         .read_text())
    live = read_manifest(run_dir)["files"]
    assert receipt["superseded"] and not [e for e in receipt["superseded"] if e["path"] in live]
    # a perf budget is in no partition path: S0's receipt and published config change in
    # place, and a rerun supersedes them
    budget = "perf_budget_6A.v1.yaml"
    doc = yaml.safe_load(resources.files("seg6a.config").joinpath("policy", budget).read_text())
    doc["budgets"]["tiny"]["segment_seconds"] = 2.5
    folder = tmp_path / "budget"
    folder.mkdir()
    (folder / budget).write_text(yaml.safe_dump(doc))
    assert seg6a(*run_args(root, "r", "--from", "S5", "--config", folder)) == 0
    assert seg6a("verify", run_dir) == 0
