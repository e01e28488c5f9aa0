"""The kernel list of ``seg6a.kernel_cache`` is exactly what a run uses, and a cold cache is
filled by two processes that leave every kernel loadable."""
import json
import os
import subprocess
import sys

import pytest

from configs import small_blocks
from seg6a.kernel_cache import HELPER_SHARE, KERNELS

SIGNATURES_OF_A_RUN = """
import importlib, json, pkgutil, sys
import seg6a, seg6a.kernels, seg6a.kernel_cache

class NoWarmup:  # the run compiles only what it calls
    def finish(self):
        return 0

    def cancel(self):
        pass

seg6a.kernel_cache.Warmup = NoWarmup
seg6a.simulate(7, scale="tiny")
# and in several canonical blocks, whose ids start past 0
seg6a.simulate(7, scale="tiny", config=sys.argv[1])
used = {}
for info in pkgutil.iter_modules(seg6a.kernels.__path__):
    module = importlib.import_module(f"seg6a.kernels.{info.name}")
    for name, value in vars(module).items():
        if getattr(value, "__module__", None) == module.__name__ and getattr(
                value, "signatures", None):
            used[f"{info.name}.{name}"] = [[str(t) for t in sig] for sig in value.signatures]
print(json.dumps(used))
"""

LOAD_OR_COMPILE = """
import json
from seg6a import kernel_cache
compiled = kernel_cache.load_or_compile()
hits = sum(sum(kernel_cache.kernel(name).stats.cache_hits.values())
           for name in kernel_cache.KERNELS)
print(json.dumps({"compiled": compiled, "hits": hits}))
"""


def run_python(code, *args, env=None):
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                            text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_kernels_are_the_signatures_a_run_compiles(tmp_path):
    # A kernel compiled (not loaded) also compiles the kernels it calls, which would then
    # show signatures of their own: fill the cache with the listed signatures first, so
    # that the run below loads them and compiles only what the list lacks.
    run_python(LOAD_OR_COMPILE)
    used = run_python(SIGNATURES_OF_A_RUN, small_blocks(tmp_path))
    listed = {name: [[str(t) for t in sig]] for name, sig in KERNELS.items()}
    assert used == listed
    assert HELPER_SHARE < set(KERNELS) and next(iter(KERNELS)) not in HELPER_SHARE


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the helper process needs a second core")
def test_a_cold_cache_is_filled_by_two_processes(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    cold = run_python(LOAD_OR_COMPILE, env=env)
    # This process compiled its share; the helper process compiled the rest into the cache.
    assert 0 < cold["compiled"] < len(KERNELS)
    assert cold["hits"] == len(KERNELS) - cold["compiled"]
    warm = run_python(LOAD_OR_COMPILE, env=env)
    assert warm == {"compiled": 0, "hits": len(KERNELS)}
