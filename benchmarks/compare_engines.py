"""Local engine vs Dask engine: identical bytes, and the Dask engine's overhead.

Runs the same seed on both engines into fresh run folders, checks that every published
file (leaving out the perf measurements under ``reports/``) has the same SHA-256, and
prints the median wall time of each engine over several repeats and their ratio. The Dask
cluster (``seg6a.engine.local_cluster``: ``--workers`` single-threaded processes with
``--memory-limit`` each) is started once, before timing, and its start-up time is printed
apart; each worker's peak memory is read from the cluster at the end.

Usage: ``python benchmarks/compare_engines.py [--scale small] [--repeats 3] [--block-size N]``
"""
import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import yaml

import seg6a
from seg6a.policies import embedded_file


def files_of(run_dir):
    return {p.relative_to(run_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(run_dir).rglob("*"))
            if p.is_file() and p.relative_to(run_dir).parts[0] != "reports"}


def worker_peak_rss_gib():
    """Peak resident memory of the calling process (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--block-size", type=int, default=None,
                        help="canonical block size (default: scales.yaml's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="4GiB")
    parser.add_argument("--skip-local", action="store_true",
                        help="time the Dask engine only (e.g. at a scale the local engine "
                        "cannot hold)")
    args = parser.parse_args(argv)
    from distributed import Client

    from seg6a.engine import local_cluster

    config = None
    if args.block_size is not None:
        config = Path(tempfile.mkdtemp())
        doc = yaml.safe_load(embedded_file("scales.yaml").read_text())
        doc["block_size"] = args.block_size
        (config / "scales.yaml").write_text(yaml.safe_dump(doc))

    start = time.perf_counter()
    cluster = local_cluster(args.workers, args.memory_limit)
    client = Client(cluster)
    print(f"LocalCluster of {args.workers} workers started in "
          f"{time.perf_counter() - start:.2f} s")

    def run(engine, root):
        begin = time.perf_counter()
        result = seg6a.simulate(args.seed, scale=args.scale, config=config, out=root,
                                run_id="r", engine=engine,
                                client=client if engine == "dask" else None)
        return time.perf_counter() - begin, result.run_dir

    # Warm both: kernels loaded here and in every worker before timing.
    with tempfile.TemporaryDirectory() as root:
        seg6a.simulate(args.seed, scale="tiny", engine="dask", client=client, out=root)
    seconds = {"local": [], "dask": []}
    hashes = {}
    engines = ("dask",) if args.skip_local else ("local", "dask")
    for _ in range(args.repeats):
        for engine in engines:
            with tempfile.TemporaryDirectory() as root:
                elapsed, run_dir = run(engine, root)
                seconds[engine].append(elapsed)
                hashes[engine] = files_of(run_dir)
    peaks = client.run(worker_peak_rss_gib)
    client.close()
    cluster.close()

    for engine in engines:
        print(f"{engine:5s} median {statistics.median(seconds[engine]):7.2f} s  "
              f"runs {', '.join(f'{s:.2f}' for s in seconds[engine])}")
    print("worker peak RSS (GiB): " + ", ".join(f"{v:.2f}" for v in peaks.values())
          + f"; this process (the client): {worker_peak_rss_gib():.2f}")
    if not args.skip_local:
        ratio = statistics.median(seconds["dask"]) / statistics.median(seconds["local"])
        same = hashes["local"] == hashes["dask"]
        print(f"dask / local: {ratio:.2f}; {len(hashes['local'])} files, identical bytes: {same}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
