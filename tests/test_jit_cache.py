"""A cached kernel reloads correctly, from the cache, in a fresh process."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import seg6a.kernels
from seg6a.kernels.prf import uniform_range

KEY = 0x0DDC0FFEEBADF00D
COUNT = 10**5

SCRIPT = f"""
import hashlib, json, time
import numpy as np
from seg6a.kernels.prf import uniform_range

start = time.perf_counter()
out = uniform_range(np.uint64({KEY}), 0, {COUNT}, np.uint64(0))
seconds = time.perf_counter() - start
stats = uniform_range.stats
print(json.dumps({{
    "digest": hashlib.sha256(out.tobytes()).hexdigest(),
    "seconds": seconds,
    "hits": sum(stats.cache_hits.values()),
    "misses": sum(stats.cache_misses.values()),
}}))
"""


def run_fresh(cache_dir=None, **environment):
    env = {name: value for name, value in os.environ.items() if name != "NUMBA_CACHE_DIR"}
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cached_kernel_reloads(tmp_path):
    expected = hashlib.sha256(
        uniform_range(np.uint64(KEY), 0, COUNT, np.uint64(0)).tobytes()
    ).hexdigest()

    first = run_fresh(tmp_path)
    assert first["misses"] >= 1  # an empty cache directory: it compiled
    assert sorted(p.name for p in tmp_path.rglob("*.nbi")), "no cache index written"
    assert any(p.name.startswith("prf.uniform_range") for p in tmp_path.rglob("*.nbi"))

    second = run_fresh(tmp_path)
    assert second["hits"] >= 1 and second["misses"] == 0  # loaded, not recompiled
    assert first["digest"] == second["digest"] == expected
    # Loose: a cache load takes about a second here. Compiling this one small kernel takes
    # only ~2 s, so the time alone cannot tell a load from a compile: the hit and miss
    # counters above are the evidence that the cache was used.
    assert second["seconds"] < 3.0


def package_caches():
    """Numba cache files inside the installed ``seg6a.kernels`` package, with their mtimes."""
    package = Path(seg6a.kernels.__file__).parent
    return {path: path.stat().st_mtime_ns for path in package.rglob("*.nb[ic]")}


def test_kernels_cache_outside_the_package(tmp_path):
    # pip (26.3 too) leaves cache files in an uninstalled package's __pycache__, and the leftover
    # folder shadows a later editable install (kernels/_jit.py): without NUMBA_CACHE_DIR the
    # kernels cache in Numba's user-wide cache directory, which follows XDG_CACHE_HOME.
    before = package_caches()
    first = run_fresh(XDG_CACHE_HOME=str(tmp_path))
    assert first["misses"] >= 1  # nothing cached under this XDG_CACHE_HOME yet
    assert any(p.name.startswith("prf.uniform_range") for p in tmp_path.rglob("*.nbi"))
    assert package_caches() == before  # nothing written beside the source
    second = run_fresh(XDG_CACHE_HOME=str(tmp_path))
    assert second["hits"] >= 1 and second["misses"] == 0
    assert first["digest"] == second["digest"]
