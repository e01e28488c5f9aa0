"""Engines: canonical blocks as tasks on threads or on Dask, with identical bytes."""
import os
import signal
import threading

import distributed  # the test extra installs it: these tests must run in CI
import numba
import numpy as np
import pytest

import seg6a
from configs import small_blocks as blocks_config
from runfiles import files_of
from seg6a.cli import main
from seg6a.engine import DaskEngine, LocalEngine, Piece, concurrently, held_bytes, local_cluster
from seg6a.errors import ParameterError

SEED = 42


@pytest.fixture(scope="module")
def client():
    cluster = local_cluster(n_workers=2)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def small_blocks(tmp_path_factory):
    return blocks_config(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, small_blocks):
    return seg6a.simulate(SEED, scale="tiny", config=small_blocks,
                          out=tmp_path_factory.mktemp("local"), run_id="r").run_dir


def test_local_engine_runs_blocks_on_its_threads_in_order():
    def block(b, *, scale):
        return b * scale, threading.get_ident()

    try:
        numba.set_num_threads(1)
        one = LocalEngine().map(block, range(8), scale=3)
        numba.set_num_threads(2)
        two = LocalEngine().map(block, range(8), scale=3)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert [v for v, _ in one] == [v for v, _ in two] == [3 * b for b in range(8)]
    assert {t for _, t in one} == {threading.get_ident()}
    assert threading.get_ident() not in {t for _, t in two}  # a pool's threads did the work


def _pair(i):
    return (np.arange(i + 1), (10 * i, {"k": i}))


def _total(values):
    return sum(values)


def _described(a, fields, *, extra):
    return int(a.sum()) + fields["scale"] * fields["value"] + extra


def test_a_picked_field_is_the_same_on_both_engines(client):
    """``pick`` (no task on Dask) gives what a map of ``itemgetter`` gives, nested, inside
    the dicts and lists of a task's arguments, gathered and reduced."""
    outcomes = []
    for engine in (LocalEngine(), DaskEngine(client)):
        results = engine.map(_pair, range(11), gather=False)
        arrays, inner = engine.pick(results, 0), engine.pick(results, 1)
        tens = engine.pick(inner, 0)
        if engine.name == "dask":
            assert all(isinstance(h, Piece) and h.path == (1, 0) for h in tens)
        outcomes.append((
            [a.tolist() for a in engine.gather(arrays)],
            engine.gather(tens),
            engine.reduce(_total, tens),
            engine.reduce(_total, tens[:1]),
            engine.gather([engine.reduce(_total, tens, gather=False)]),
            engine.map(_described, arrays, [{"scale": 2, "value": t} for t in tens],
                       extra=1),
        ))
    local, dask = outcomes
    assert local == dask
    assert local[1] == [10 * i for i in range(11)] and local[2] == 550
    assert local[5][3] == 6 + 2 * 30 + 1


def test_one_or_two_threads_publish_the_same_bytes(small_blocks, local_run, tmp_path):
    assert numba.config.NUMBA_NUM_THREADS >= 2  # local_run used two threads
    try:
        numba.set_num_threads(1)
        result = seg6a.simulate(SEED, scale="tiny", config=small_blocks, out=tmp_path,
                                run_id="r")
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert files_of(result.run_dir, measurements=False) == files_of(local_run,
                                                                    measurements=False)


def test_dask_engine_publishes_the_local_engines_bytes(client, small_blocks, local_run, tmp_path):
    result = seg6a.simulate(SEED, scale="tiny", config=small_blocks, out=tmp_path, run_id="r",
                            engine="dask", client=client)
    ours = files_of(result.run_dir, measurements=False)
    assert sum(name.endswith(".parquet") for name in ours) > 13  # several parts per dataset
    assert ours == files_of(local_run, measurements=False)


def test_a_dask_result_reads_its_arrays_from_the_workers(client, small_blocks):
    local = seg6a.simulate(SEED, scale="tiny", config=small_blocks)
    dask = seg6a.simulate(SEED, scale="tiny", config=small_blocks, engine="dask", client=client)
    # The blocks stayed where their tasks ran: the result holds futures (or fields picked
    # out of the results behind futures), not arrays.
    def future_of(handle):
        return handle.future if isinstance(handle, Piece) else handle

    for blocks in (dask.accounts.blocks, dask.instruments.blocks, dask.devices.blocks,
                   dask.datasets["s3_instrument_base_6A"].part_handles):
        assert len(blocks) == 5
        assert all(isinstance(future_of(b), distributed.Future) for b in blocks)
    # Dask sizes the blocks by what they hold, so it can spill them when memory is short.
    for blocks, here in ((dask.accounts.blocks, local.accounts.blocks),
                         (dask.instruments.blocks, local.instruments.blocks),
                         (dask.devices.blocks, local.devices.blocks)):
        keys = [future_of(b).key for b in blocks]
        sizes = client.nbytes(keys=keys, summary=False)
        assert all(sizes[k] >= held_bytes(vars(h)) for k, h in zip(keys, here))
        assert held_bytes(vars(here[0])) > 10**5
    for read in (lambda r: r.accounts.owner_party_id, lambda r: r.accounts.counts,
                 lambda r: r.accounts.party_account_ptr, lambda r: r.instruments.scheme,
                 lambda r: r.instruments.account_instrument_ptr,
                 lambda r: r.devices.ip_device_ids, lambda r: r.devices.primary_party_id,
                 lambda r: r.fraud.roles["ip"].code,
                 lambda r: r.fraud.roles["account"].risk_logit):
        np.testing.assert_array_equal(read(dask), read(local))
    assert dask.fraud.roles["ip"].code.dtype == np.int64
    assert dask.table("s4_device_ip_links_6A").equals(local.table("s4_device_ip_links_6A"))
    assert dask.fraud.counters == local.fraud.counters


def test_closing_a_result_stops_the_cluster_simulate_started(small_blocks):
    with seg6a.simulate(SEED, scale="tiny", config=small_blocks, engine="dask") as result:
        owned = result.accounts.blocks[0].future.client  # a Piece of a Future
        assert owned.status == "running"
        assert result.accounts.owner_party_id.size == result.table("s2_account_base_6A").num_rows
    assert owned.status == "closed"


def test_a_worker_killed_mid_run_loses_nothing(client, small_blocks, local_run, tmp_path):
    killed = []

    def kill_a_worker(state, seconds):
        if state == "S1":  # after S1's tasks, before S2's: the cluster must recover
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    result = seg6a.simulate(SEED, scale="tiny", config=small_blocks, out=tmp_path, run_id="r",
                            engine="dask", client=client, progress=kill_a_worker)
    assert killed
    assert files_of(result.run_dir, measurements=False) == files_of(local_run,
                                                                    measurements=False)
    assert not [p for p in result.run_dir.rglob("*") if p.name.endswith(".tmp")]


def test_cli_runs_on_its_own_local_cluster(small_blocks, local_run, tmp_path, capsys):
    code = main(["run", "--seed", str(SEED), "--scale", "tiny", "--config", str(small_blocks),
                 "--out", str(tmp_path), "--run-id", "r", "--engine", "dask", "--quiet"])
    assert code == 0
    assert capsys.readouterr().out.strip() == "r"
    assert files_of(tmp_path / "r", measurements=False) == files_of(local_run,
                                                                    measurements=False)


def test_certify_on_dask_publishes_the_local_summary(client, small_blocks, tmp_path):
    local = seg6a.certify(seeds=(SEED, 7), scale="tiny", config=small_blocks,
                          out=tmp_path / "local", run_id="c")
    dask = seg6a.certify(seeds=(SEED, 7), scale="tiny", config=small_blocks,
                         out=tmp_path / "dask", run_id="c", engine="dask", client=client)
    assert dask.decision == local.decision
    assert files_of(dask.run_dir, measurements=False) == files_of(local.run_dir,
                                                                  measurements=False)


def test_engine_arguments_are_checked():
    with pytest.raises(ParameterError, match="unknown engine 'spark'"):
        seg6a.simulate(SEED, scale="tiny", engine="spark")
    with pytest.raises(ParameterError, match="needs engine='dask'"):
        seg6a.simulate(SEED, scale="tiny", client=object())
    with pytest.raises(ParameterError, match="unknown engine 'spark'"):
        seg6a.certify(seeds=(SEED,), scale="tiny", engine="spark")


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_concurrently_keeps_its_threads_and_runs_nested_tasks_itself():
    previous = numba.get_num_threads()
    numba.set_num_threads(2)
    try:
        barrier = threading.Barrier(2, timeout=30)

        def where():
            barrier.wait()  # both tasks at once: two threads, neither the caller's
            return threading.get_ident(), concurrently(threading.get_ident,
                                                       threading.get_ident)

        first, second = concurrently(where, where), concurrently(where, where)
        threads = {ident for ident, _ in first}
        assert len(threads) == 2 and threading.get_ident() not in threads
        assert {ident for ident, _ in second} == threads  # the same threads, not new ones
        for ident, nested in first + second:
            assert nested == [ident, ident]  # nested tasks run in the calling task
    finally:
        numba.set_num_threads(previous)
