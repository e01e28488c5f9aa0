"""Runs published to an object store (SPEC section 9), against a real S3-compatible server:
moto's server mode on 127.0.0.1, a free port, reached through the usual AWS environment."""
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

import seg6a
from configs import small_blocks
from runfiles import files_of
from seg6a.cli import main
from seg6a.engine import local_cluster
from seg6a.runs.commit import INTENT, LOCK, MANIFEST
from seg6a.runs.store import for_each, is_staging, listing, location

BUCKET = "seg6a-runs"
GOLDEN = json.loads((Path(__file__).parent / "golden" / "tiny_seed42.json").read_text())


@pytest.fixture(scope="module")
def s3():
    """A boto3 client of a fresh S3 server with one bucket; the environment points seg6a
    (s3fs) at it for the module."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    environment = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test",
                   "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client
    server.stop()


def keys(s3, prefix):
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="module")
def s3_run(s3):
    """Seed 42 at tiny published by the CLI to ``s3://BUCKET/runs/golden``."""
    assert main(["run", "--seed", "42", "--scale", "tiny", "--out", f"s3://{BUCKET}/runs",
                 "--run-id", "golden", "--quiet"]) == 0
    return f"s3://{BUCKET}/runs/golden"


def test_a_run_on_s3_publishes_the_golden_bytes(s3, s3_run):
    assert files_of(s3_run, measurements=False) == GOLDEN["files"]
    found = keys(s3, "runs/golden/")
    assert f"runs/golden/{MANIFEST}" in found
    # Nothing of the commit protocol is left beside the run: no lock, intent or staged file.
    assert not [k for k in found if k.endswith(LOCK) or k.endswith(INTENT)
                or is_staging(k.rsplit("/", 1)[-1])]


def test_verify_gates_and_perf_read_from_s3(s3, s3_run, capsys):
    assert main(["verify", s3_run]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["gates", s3_run]) == 0
    board = capsys.readouterr().out
    assert "seed=42" in board and "T1" in board
    assert main(["perf", s3_run]) == 0
    assert "budget check" in capsys.readouterr().out


def test_a_changed_object_fails_verify_and_readers_refuse_it(s3, s3_run, capsys):
    key = next(k for k in keys(s3, "runs/golden/layer3/6A/receipts/") if k.endswith(".json"))
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=original.replace(b"S", b"s", 1))
    try:
        assert main(["verify", s3_run]) == 4
        assert f"changed: {key.removeprefix('runs/golden/')}" in capsys.readouterr().out
        assert main(["gates", s3_run]) == 2
        assert "incomplete run" in capsys.readouterr().err
    finally:
        s3.put_object(Bucket=BUCKET, Key=key, Body=original)
    assert main(["verify", s3_run]) == 0


def test_a_rerun_from_s5_on_s3_keeps_the_bytes(s3, s3_run):
    before = files_of(s3_run, measurements=False)
    assert main(["run", "--seed", "42", "--scale", "tiny", "--out", f"s3://{BUCKET}/runs",
                 "--run-id", "golden", "--from", "S5", "--quiet"]) == 0
    assert files_of(s3_run, measurements=False) == before
    assert main(["verify", s3_run]) == 0


def test_a_report_of_a_run_on_s3_is_published_into_it(s3, s3_run, capsys):
    assert main(["report", s3_run]) == 0
    page = capsys.readouterr().out.strip()
    assert page == f"{s3_run}/reports/layer3/6A/report/report_6A.html"
    assert b"T1" in location(page).read_bytes()
    assert main(["verify", s3_run]) == 0  # the page and its images are files of the run


def test_a_held_lock_refuses_a_second_publisher(s3, s3_run, capsys):
    holder = {"host": "elsewhere", "pid": 1, "since": "then"}
    s3.put_object(Bucket=BUCKET, Key=f"runs/golden/{LOCK}", Body=json.dumps(holder).encode())
    try:
        assert main(["run", "--seed", "42", "--scale", "tiny", "--out",
                     f"s3://{BUCKET}/runs", "--run-id", "golden", "--from", "S5",
                     "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "holds the run's lock (elsewhere pid 1 since then)" in err and LOCK in err
    finally:
        s3.delete_object(Bucket=BUCKET, Key=f"runs/golden/{LOCK}")


def test_an_interrupted_publish_is_refused_then_rolled_forward(s3, tmp_path):
    out = f"s3://{BUCKET}/crash"
    command = [sys.executable, "-m", "seg6a.cli", "run", "--seed", "42", "--scale", "tiny",
               "--out", out, "--run-id", "r", "--quiet"]
    died = subprocess.run(command, env={**os.environ, "SEG6A_CRASH_AFTER": "placed:3"},
                          capture_output=True)
    assert died.returncode == 86
    assert main(["gates", f"{out}/r"]) == 2  # a reader refuses the uncommitted run
    subprocess.run(command, check=True, capture_output=True)  # the same command again
    assert main(["verify", f"{out}/r"]) == 0
    assert files_of(f"{out}/r", measurements=False) == GOLDEN["files"]
    assert not [k for k in keys(s3, "crash/r/") if is_staging(k.rsplit("/", 1)[-1])]


def test_a_destination_that_cannot_be_written_costs_no_run(s3, capsys):
    assert main(["run", "--seed", "42", "--scale", "tiny", "--out", "s3://no-such-bucket/x",
                 "--quiet"]) == 2
    assert "--out s3://no-such-bucket/x" in capsys.readouterr().err


def test_location_names_local_folders_and_urls(s3):
    assert location("runs/a") == Path("runs/a")
    assert location("file:///tmp/a") == Path("/tmp/a")
    remote = location(f"s3://{BUCKET}/runs")
    assert str(remote / "r") == f"s3://{BUCKET}/runs/r"
    assert listing(remote / "nothing-here") == {}


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    return small_blocks(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def disk_run(tmp_path_factory, blocks):
    """The local engine's run on the local disk, with 5 canonical blocks: the reference."""
    return seg6a.simulate(42, scale="tiny", config=blocks, out=tmp_path_factory.mktemp("disk"),
                          run_id="r").run_dir


@pytest.fixture(scope="module")
def cluster(s3):
    """Two worker processes, started with the environment that points them at the server."""
    import distributed

    started = local_cluster(n_workers=2)
    with distributed.Client(started) as client:
        yield client
    started.close()


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_both_engines_publish_to_s3_the_bytes_of_a_local_disk_run(s3, cluster, blocks,
                                                                  disk_run, engine, capsys):
    out = f"s3://{BUCKET}/engines-{engine}"
    result = seg6a.simulate(42, scale="tiny", config=blocks, out=out, run_id="r",
                            engine=engine, client=cluster if engine == "dask" else None)
    ours = files_of(result.run_dir, measurements=False)
    assert sum(name.endswith(".parquet") for name in ours) > 13  # several parts per dataset
    assert ours == files_of(disk_run, measurements=False)
    assert main(["verify", f"{out}/r"]) == 0
    assert not [k for k in keys(s3, f"engines-{engine}/") if is_staging(k.rsplit("/", 1)[-1])]


def test_a_worker_killed_while_staging_leaves_nothing_staged(s3, cluster, blocks, disk_run):
    def sabotage():  # on one worker: its next staging task writes, then the worker dies
        import functools

        from seg6a.runs import publish

        original = publish.stage_file

        @functools.wraps(original)
        def stage_then_die(path, data):
            original(path, data)
            os._exit(1)

        publish.stage_file = stage_then_die

    victim = []

    def workers():  # asked now: Client.scheduler_info() is a copy refreshed every 2 s
        return sorted(cluster.run(os.getpid))

    def on_state(state, seconds):
        if state == "S5":  # every block computed; staging comes next
            victim.append(workers()[0])
            cluster.run(sabotage, workers=victim)

    out = f"s3://{BUCKET}/killed"
    result = seg6a.simulate(42, scale="tiny", config=blocks, out=out, run_id="r",
                            engine="dask", client=cluster, progress=on_state)
    assert victim and victim[0] not in workers()  # it died
    assert files_of(result.run_dir, measurements=False) == files_of(disk_run,
                                                                     measurements=False)
    assert not [k for k in keys(s3, "killed/") if is_staging(k.rsplit("/", 1)[-1])]
    assert main(["verify", f"{out}/r"]) == 0


def test_runs_keep_and_prune_on_s3(s3, s3_run, capsys):
    for run_id in ("kept", "scratch"):  # two copies of the golden run under one root
        for key in keys(s3, "runs/golden/"):
            s3.copy_object(Bucket=BUCKET, Key=key.replace("runs/golden/", f"prune/{run_id}/"),
                           CopySource={"Bucket": BUCKET, "Key": key})
    root = f"s3://{BUCKET}/prune"
    assert main(["runs", "keep", root, "kept", "--as", "baseline"]) == 0
    assert "prune/keep_set.json" in keys(s3, "prune/")
    capsys.readouterr()
    assert main(["runs", "prune", root]) == 0  # a dry run lists, removes nothing
    listed = capsys.readouterr().out
    assert "scratch" in listed and "kept" not in listed and keys(s3, "prune/scratch/")
    assert main(["runs", "prune", root, "--yes"]) == 0
    assert not keys(s3, "prune/scratch/")
    assert main(["verify", f"{root}/kept"]) == 0


def test_for_each_keeps_requests_in_flight_on_a_store_and_order_everywhere(s3, tmp_path):
    def work(i):
        ran.append((i, threading.get_ident()))
        if i == 3:
            raise ValueError(i)
        return i * i

    for folder, threads in ((location(f"s3://{BUCKET}/x"), "several"), (tmp_path, "one")):
        ran = []
        with pytest.raises(ValueError, match="3"):
            for_each(work, [(i,) for i in range(40)], folder)
        # On the store the error waits for the rest; on a disk it stops the loop.
        assert sorted(i for i, _ in ran) == list(range(40) if threads == "several" else range(4))
        used = {t for _, t in ran}
        assert (len(used) > 1) if threads == "several" else used == {threading.get_ident()}
        ran = []
        assert for_each(work, [(i,) for i in range(40) if i != 3], folder) == [
            i * i for i in range(40) if i != 3]
