"""``seg6a run`` end to end: layout, readability, determinism and reruns (SPEC sections 2, 3,
7 and 10)."""
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import duckdb
import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from runfiles import files_of
from seg6a.cli import main

SEED = 42
SCALE = "tiny"
N_TINY = 20_000
HEX64 = r"[0-9a-f]{64}"
PARTY_DIR = re.compile(
    rf"layer3/6A/s1_party_base_6A/seed={SEED}/parameter_hash=({HEX64})/"
    rf"manifest_fingerprint=({HEX64})$"
)
PARTY_GLOB = "layer3/6A/s1_party_base_6A/**/part-*.parquet"
CATEGORY_COLUMNS = ("party_type", "segment_id", "country_iso", "region_id")


# --- helpers ----------------------------------------------------------------------------


def run_in_process(argv):
    """``seg6a.cli.main(argv)`` with stdout and stderr captured: (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def run_subprocess(argv, cwd, **env_overrides):
    env = dict(os.environ)
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-m", "seg6a.cli", *argv],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def run_args(seed, root, run_id, *extra):
    return ["run", "--seed", str(seed), "--scale", SCALE, "--out", str(root),
            "--run-id", run_id, *extra]


def published_files(run_dir):
    """Relative posix path -> sha256 of every data and evidence file of a run folder (the
    perf measurements, different on every run, and the manifest listing them left out)."""
    return files_of(run_dir, measurements=False)


def party_parts(run_dir):
    """The part files of s1_party_base_6A, sorted by name."""
    return sorted(Path(run_dir).glob(PARTY_GLOB))


def party_table(run_dir):
    """The party base as one pyarrow table: its parts concatenated in block order."""
    return pa.concat_tables([pq.read_table(p) for p in party_parts(run_dir)])


def restore_threads():
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def default_run(root):
    """One in-process tiny run, seed 42, run id ``base``."""
    code, out, err = run_in_process(run_args(SEED, root, "base"))
    assert code == 0, err
    return {"run_dir": root / "base", "stdout": out, "stderr": err}


@pytest.fixture(scope="module")
def block_config(tmp_path_factory):
    """A --config folder whose scales.yaml (a copy of the embedded one) has block_size 4096."""
    folder = tmp_path_factory.mktemp("blocks")
    text = resources.files("seg6a.config").joinpath("scales.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    assert doc["block_size"] != 4096
    doc["block_size"] = 4096
    (folder / "scales.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def block_run(root, block_config):
    code, _, err = run_in_process(run_args(SEED, root, "blocks", "--config", str(block_config)))
    assert code == 0, err
    return root / "blocks"


# --- one run ------------------------------------------------------------------------------


def test_run_prints_exactly_the_run_id(default_run):
    assert default_run["stdout"] == "base\n"
    # Progress and the summary table go to stderr, not stdout.
    assert "s1_party_base_6A" in default_run["stderr"]
    assert "20,000" in default_run["stderr"]


def test_run_without_run_id_prints_a_fresh_id(tmp_path, capsys):
    assert main(["run", "--seed", "1", "--scale", SCALE, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == 1 and out == lines[0] + "\n"
    run_id = lines[0]
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id)
    assert [p.name for p in tmp_path.iterdir()] == [run_id]
    assert len(party_parts(tmp_path / run_id)) == 1


def test_run_writes_the_hive_layout(default_run):
    parts = party_parts(default_run["run_dir"])
    assert [p.name for p in parts] == ["part-00000.parquet"]
    folder = parts[0].parent.relative_to(default_run["run_dir"]).as_posix()
    assert PARTY_DIR.fullmatch(folder), folder


def test_duckdb_reads_the_party_base(default_run):
    part = party_parts(default_run["run_dir"])[0]
    _, fingerprint = PARTY_DIR.search(part.parent.as_posix()).groups()
    con = duckdb.connect()
    try:
        rows, distinct, lo, hi, seeds, mfs = con.execute(
            "SELECT count(*), count(DISTINCT party_id), min(party_id), max(party_id), "
            "list(DISTINCT seed), list(DISTINCT manifest_fingerprint) "
            "FROM read_parquet(?, hive_partitioning=true)",
            [str(default_run["run_dir"] / PARTY_GLOB)],
        ).fetchone()
        counts = dict(con.execute(
            "SELECT party_type, count(*) FROM read_parquet(?, hive_partitioning=true) "
            "GROUP BY party_type", [str(part)],
        ).fetchall())
    finally:
        con.close()
    assert (rows, distinct, lo, hi) == (N_TINY, N_TINY, 0, N_TINY - 1)
    assert [int(s) for s in seeds] == [SEED]
    assert mfs == [fingerprint]
    assert set(counts) == {"RETAIL", "BUSINESS", "OTHER"}
    assert sum(counts.values()) == N_TINY


def test_pyarrow_reads_categories_as_dictionaries(default_run):
    table = pq.read_table(party_parts(default_run["run_dir"])[0])
    assert table.num_rows == N_TINY
    assert table.column_names == ["party_id", *CATEGORY_COLUMNS]
    assert table.schema.field("party_id").type == pa.int64()
    for name in CATEGORY_COLUMNS:
        assert pa.types.is_dictionary(table.schema.field(name).type), name
    assert table.column("party_id").to_pylist() == list(range(N_TINY))


def test_gate_receipt_and_sealed_inputs_match_the_path(default_run):
    run_dir = default_run["run_dir"]
    _, fingerprint = PARTY_DIR.search(party_parts(run_dir)[0].parent.as_posix()).groups()
    receipts = list(run_dir.glob("layer3/6A/s0_gate_receipt_6A/**/s0_gate_receipt_6A.json"))
    sealed = list(run_dir.glob("layer3/6A/s0_gate_receipt_6A/**/sealed_inputs_6A.json"))
    assert len(receipts) == 1 and len(sealed) == 1
    assert receipts[0].parent == sealed[0].parent
    match = re.search(rf"seed={SEED}/parameter_hash=({HEX64})/manifest_fingerprint=({HEX64})$",
                      receipts[0].parent.as_posix())
    assert match
    receipt = json.loads(receipts[0].read_text())
    sealed_doc = json.loads(sealed[0].read_text())
    assert receipt["manifest_fingerprint"] == match.group(2) == fingerprint
    assert sealed_doc["manifest_fingerprint"] == fingerprint
    assert receipt["parameter_hash"] == match.group(1)
    assert receipt["seed"] == SEED
    assert receipt["scale"]["name"] == SCALE and receipt["scale"]["n_parties"] == N_TINY
    assert {i["name"] for i in sealed_doc["inputs"]} >= {"countries"}
    assert all(re.fullmatch(HEX64, i["sha256"]) for i in sealed_doc["inputs"])


# --- determinism ------------------------------------------------------------------------


def test_bytes_do_not_depend_on_numba_threads(tmp_path):
    """Fresh processes with 1 and 2 Numba threads publish byte-identical runs."""
    results = {}
    for threads, hash_seed in (("1", "1"), ("2", "2")):
        root = tmp_path / f"threads{threads}"
        done = run_subprocess(run_args(SEED, root, "same"), cwd=tmp_path,
                              NUMBA_NUM_THREADS=threads, PYTHONHASHSEED=hash_seed)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "same\n"
        results[threads] = published_files(root / "same")
    assert results["1"], "nothing published"
    assert any(name.endswith(".parquet") for name in results["1"])
    assert sorted(results["1"]) == sorted(results["2"])
    assert results["1"] == results["2"]


def test_threads_flag_does_not_change_bytes(default_run, root, monkeypatch):
    # Guard the environment in case main() touches NUMBA_NUM_THREADS (it must not once
    # numba is imported; see the test below). setenv, not delenv: monkeypatch restores
    # only what it recorded.
    monkeypatch.setenv("NUMBA_NUM_THREADS", str(numba.config.NUMBA_NUM_THREADS))
    try:
        code, out, err = run_in_process(run_args(SEED, root, "one-thread", "--threads", "1"))
        assert numba.get_num_threads() == 1
    finally:
        restore_threads()
    assert code == 0, err
    assert out == "one-thread\n"
    assert published_files(root / "one-thread") == published_files(default_run["run_dir"])


def test_in_process_threads_flag_leaves_numba_usable(default_run, root, monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", str(numba.config.NUMBA_NUM_THREADS))
    try:
        code, _, err = run_in_process(run_args(SEED, root, "one-thread-b", "--threads", "1"))
    finally:
        restore_threads()
    assert code == 0, err

    @numba.njit
    def total(values):
        acc = 0.0
        for value in values:
            acc += value
        return acc

    assert total(np.ones(5)) == 5.0


def test_in_process_and_subprocess_runs_agree(default_run, tmp_path):
    done = run_subprocess(run_args(SEED, tmp_path, "base"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert published_files(tmp_path / "base") == published_files(default_run["run_dir"])


def test_other_seed_changes_parties_not_fingerprint(default_run, root):
    code, _, err = run_in_process(run_args(7, root, "seed7"))
    assert code == 0, err
    parts7 = sorted((root / "seed7").glob(PARTY_GLOB))
    assert len(parts7) == 1
    assert "/seed=7/" in parts7[0].as_posix()
    base_part = party_parts(default_run["run_dir"])[0]
    ph42, mf42 = PARTY_DIR.search(base_part.parent.as_posix()).groups()
    folder7 = parts7[0].parent.as_posix().replace("seed=7", f"seed={SEED}")
    ph7, mf7 = PARTY_DIR.search(folder7).groups()
    assert mf7 == mf42
    assert ph7 == ph42  # the parameter hash covers policies and scale, not the seed
    t42, t7 = pq.read_table(base_part), pq.read_table(parts7[0])
    assert t7.num_rows == t42.num_rows == N_TINY
    assert not t7.equals(t42)
    assert t7.column("party_type").to_pylist() != t42.column("party_type").to_pylist()
    # Countries come from population weights x scale: the same for every seed.
    assert t7.column("country_iso").to_pylist() == t42.column("country_iso").to_pylist()


def test_rerun_with_same_run_id_is_a_noop(default_run, root):
    run_dir = default_run["run_dir"]
    before = published_files(run_dir)
    mtimes = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    code, out, err = run_in_process(run_args(SEED, root, "base"))
    assert code == 0, err
    assert out == "base\n"
    assert published_files(run_dir) == before
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == mtimes
    assert not [p for p in run_dir.rglob("*.tmp")]


# --- canonical blocks --------------------------------------------------------------------


def test_block_size_splits_parts(default_run, block_run):
    parts = party_parts(block_run)
    assert [p.name for p in parts] == [f"part-{b:05d}.parquet" for b in range(5)]
    assert len({p.parent for p in parts}) == 1
    sizes = [pq.read_metadata(p).num_rows for p in parts]
    assert sizes == [4096, 4096, 4096, 4096, N_TINY - 4 * 4096]
    for block, part in enumerate(parts):
        ids = pq.read_table(part, columns=["party_id"]).column("party_id").to_pylist()
        assert ids == list(range(block * 4096, block * 4096 + sizes[block]))
    blocks = party_table(block_run)
    single = party_table(default_run["run_dir"])
    assert blocks.num_rows == single.num_rows == N_TINY
    assert blocks.schema == single.schema
    # Countries (and so regions) are a largest-remainder split of the population: no PRF.
    for name in ("party_id", "country_iso", "region_id"):
        assert blocks.column(name).to_pylist() == single.column(name).to_pylist(), name


def test_block_size_changes_parameter_hash_only(default_run, block_run):
    # The block size shapes S1's published parts, so it is in S1's parameter hash (and so
    # its PRF keys): a different block size is a different partition, never a silent mix.
    ph1, mf1 = PARTY_DIR.search(party_parts(default_run["run_dir"])[0].parent.as_posix()).groups()
    ph5, mf5 = PARTY_DIR.search(party_parts(block_run)[0].parent.as_posix()).groups()
    assert ph5 != ph1
    assert mf5 == mf1


def test_duckdb_reads_both_layouts_alike(default_run, block_run):
    # Only the PRF-free columns: the block size is in the S1 keys (see above).
    query = ("SELECT party_id, country_iso, region_id "
             "FROM read_parquet(?, hive_partitioning=true) ORDER BY party_id")
    con = duckdb.connect()
    try:
        single = con.execute(query, [str(default_run["run_dir"] / PARTY_GLOB)]).fetchall()
        blocks = con.execute(query, [str(block_run / PARTY_GLOB)]).fetchall()
        hashes = con.execute(
            "SELECT DISTINCT parameter_hash FROM read_parquet(?, hive_partitioning=true)",
            [str(block_run / PARTY_GLOB)],
        ).fetchall()
    finally:
        con.close()
    assert len(single) == N_TINY
    assert blocks == single
    assert len(hashes) == 1


# --- help ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--help"], ["run", "config", "--version"]),
        (["run", "--help"], ["--seed", "--scale", "--out", "--run-id", "--config", "--engine",
                             "--threads"]),
        (["config", "validate", "--help"], ["--config"]),
    ],
)
def test_help_exits_zero_and_lists_options(argv, expected, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in expected:
        assert option in out, option


def test_console_script_help(tmp_path):
    done = subprocess.run(["seg6a", "run", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0
    assert "--seed" in done.stdout and "--run-id" in done.stdout


def test_missing_seed_is_bad_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--scale", SCALE])
    assert info.value.code == 2
    assert "--seed" in capsys.readouterr().err


def test_quiet_json_run_is_for_scripts(tmp_path, capsys):
    code = main(["run", "--seed", str(SEED), "--scale", SCALE, "--out", str(tmp_path),
                 "--run-id", "js", "--quiet", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    assert captured.err == ""
    summary = json.loads(captured.out)
    assert summary["run_id"] == "js" and summary["datasets"]["s1_party_base_6A"] == N_TINY
    assert summary["validation"] == "PASS"
    assert set(summary["gates"]) >= {"T1_KMAX_HARD_INVARIANT", "T10_DOWNSTREAM_COMPAT_6B"}
