"""Local engine vs Dask engine: identical bytes, and the Dask engine's overhead.

Runs the same seed on both engines into fresh run folders, checks that every published
file (leaving out the perf measurements under ``reports/`` and their manifest entries) has
the same SHA-256, and
prints the median wall time of each engine over several repeats and their ratio. The Dask
cluster (``seg6a.engine.local_cluster``: ``--workers`` single-threaded processes with
``--memory-limit`` each) is started once, before timing, and its start-up time is printed
apart; each worker's peak memory is read from the cluster at the end.

Usage: ``python benchmarks/compare_engines.py [--scale small] [--repeats 3] [--block-size N]``
"""
import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import yaml

import seg6a
from seg6a.policies import embedded_file
from seg6a.runs.commit import LOCK, MANIFEST


def files_of(run_dir):
    """Path -> SHA-256 of a run's files, leaving out the perf measurements under
    ``reports/`` (timings differ from run to run); the manifest counts by its entries for
    the other files, as it lists the measurements too."""
    run_dir = Path(run_dir)
    out = {}
    for path in sorted(run_dir.rglob("*")):
        relative = path.relative_to(run_dir).as_posix()
        if not path.is_file() or relative.startswith("reports/") or relative == LOCK:
            continue
        data = path.read_bytes()
        if relative == MANIFEST:
            manifest = json.loads(data)
            manifest["files"] = {p: entry for p, entry in manifest["files"].items()
                                 if not p.startswith("reports/")}
            data = json.dumps(manifest, sort_keys=True).encode()
        out[relative] = hashlib.sha256(data).hexdigest()
    return out


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

    def scales_config(block_size):
        folder = Path(tempfile.mkdtemp())
        doc = yaml.safe_load(embedded_file("scales.yaml").read_text())
        doc["block_size"] = block_size
        (folder / "scales.yaml").write_text(yaml.safe_dump(doc))
        return folder

    config = None if args.block_size is None else scales_config(args.block_size)

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

    # Warm both: every kernel loaded here and in every worker before timing, those of
    # runs of many blocks too (tiny in blocks of 5,000 parties).
    warm = scales_config(5000)
    for engine in ("local", "dask"):
        with tempfile.TemporaryDirectory() as root:
            seg6a.simulate(args.seed, scale="tiny", config=warm, engine=engine, out=root,
                           client=client if engine == "dask" else None)
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
