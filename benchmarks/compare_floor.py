"""How close is the pipeline to the floor of what it must do? Ratios measured in one process.

The floor of a run is writing the same tables with pyarrow alone (same Parquet settings,
same parts) plus drawing as many PRF values as the run's audit records. The script prints
median seconds of several repeats, pipeline / floor, and the speedup of the kernels from 1
to 2 threads (block tasks on the local engine's thread pool, and the in-memory states, timed
under ``numba.set_num_threads``).

Usage: ``python benchmarks/compare_floor.py [--scale small] [--repeats 3]``
"""
import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np

import seg6a
from seg6a.engine import LocalEngine
from seg6a.kernels.prf import uniform_range
from seg6a.kernels.sample import poisson_range
from seg6a.kernels.uplift import draw_roles
from seg6a.runs.publish import parquet_bytes


def timed(function, repeats):
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    seg6a.simulate(42, scale="tiny")  # every kernel loaded before timing
    result = seg6a.simulate(42, scale=args.scale)
    draws = sum(row["draws"] for rng in result._substreams for row in rng.audit())
    parts = [part for dataset in result.datasets.values() for _, part in dataset.parts()]

    def pipeline():
        with tempfile.TemporaryDirectory() as root:
            seg6a.simulate(42, scale=args.scale, out=root, run_id="floor")

    def write_floor():
        # As the pipeline does: parts encoded on a thread per core.
        with tempfile.TemporaryDirectory() as root, ThreadPoolExecutor(os.cpu_count()) as pool:
            for i, data in enumerate(pool.map(parquet_bytes, parts)):
                Path(root, f"part-{i}.parquet").write_bytes(data)

    def prf_floor():
        # On the engine's threads, as the pipeline draws: blocks of 2**22 values.
        starts = range(0, draws, 2**22)
        LocalEngine().map(lambda lo: uniform_range(np.uint64(7), lo, min(2**22, draws - lo), 0),
                          starts)

    t_pipeline = timed(pipeline, args.repeats)
    t_write = timed(write_floor, args.repeats)
    t_prf = timed(prf_floor, args.repeats)
    floor = t_write + t_prf
    print(f"scale {args.scale}: {sum(p.num_rows for p in parts):,} rows in {len(parts)} parts, "
          f"{draws:,} PRF draws; medians of {args.repeats}")
    print(f"pipeline (S0-S5, gates, publish)  {t_pipeline:8.3f} s")
    print(f"floor: pyarrow write {t_write:.3f} s + PRF draws {t_prf:.3f} s = {floor:8.3f} s")
    print(f"pipeline / floor                  {t_pipeline / floor:8.2f}")

    block, n_blocks = 2**18, 40  # 10.5M entities in canonical blocks
    lam = np.full(block, 1.4)
    code = np.arange(block, dtype=np.int64) % 2
    cdf = np.array([[1.0]])
    roles = np.array([0], dtype=np.int16)

    def one_block(lo):
        uniform_range(np.uint64(1), lo, block, 0)
        poisson_range(np.uint64(2), lo, 0, lam)
        draw_roles(np.uint64(3), lo, code, np.array([-3.0, -1.0]), roles, cdf, roles, cdf)

    def kernels():
        LocalEngine().map(one_block, range(0, block * n_blocks, block))

    threads = numba.config.NUMBA_NUM_THREADS
    if threads < 2:
        print("one Numba thread available: no speedup to measure")
        return
    for name, work in (("kernels on the engine's block threads (uniform, Poisson, roles; "
                        "40 blocks of 2**18)", kernels),
                       ("in-memory S0-S5 with gates", lambda: seg6a.simulate(42, scale=args.scale))):
        per_thread = {}
        for count in (1, 2):
            numba.set_num_threads(count)
            per_thread[count] = timed(work, args.repeats)
        numba.set_num_threads(threads)
        print(f"{name}: 1 thread {per_thread[1]:.3f} s, 2 threads {per_thread[2]:.3f} s, "
              f"speedup {per_thread[1] / per_thread[2]:.2f}x")


if __name__ == "__main__":
    main()
