"""Every pipeline kernel ready before a run: loaded from Numba's cache, or compiled on two
processes when the cache is cold.

Numba compiles under one process-wide lock, so a first run on an empty cache compiled its
~50 functions one after another (~25 s). ``Warmup`` compiles one cheap kernel first; if
that was a cache miss, it starts a helper process that compiles a share of the kernels
(``HELPER_SHARE``) into the same cache while this process validates the input (S0) and
compiles the rest; ``finish`` then loads the helper's share from the cache. A warm cache
costs nothing extra (one load per kernel, as the run would do anyway). If the helper
fails, this process compiles its share: a slow start, never a wrong result.
``tests/test_kernel_cache.py`` checks that ``KERNELS`` lists exactly the signatures a run
uses, so a cold run compiles nothing after this step.

Run as ``python -m seg6a.kernel_cache NAME...`` it compiles the named kernels (the helper).
"""
import importlib
import os
import subprocess
import sys

from numba import types

_I64 = types.int64[::1]
_I64_READONLY = types.Array(types.int64, 1, "C", readonly=True)
_I16 = types.int16[::1]
_I32 = types.int32[::1]
_F64 = types.float64[::1]
_F64_2D = types.float64[:, ::1]
_BOOL = types.boolean[::1]
_KEY, _INT, _FLOAT = types.uint64, types.int64, types.float64

# "module.function": argument types. The first entry is cheap: it probes whether the cache
# is cold.
KERNELS = {
    "csr.ptr_from_counts": (_I64,),
    "allocate.largest_remainder": (_INT, _F64, _F64),
    "allocate.assign_by_quota": (_KEY, _I64, _I64, _I64, _F64_2D),
    "graph.ips_per_group": (_KEY, _I64, _I64, _F64_2D, _F64, _F64, _F64),
    "graph.assign_links": (_KEY, _KEY, _I64, _I64, _I64, _I64, _I64),
    "graph.ip_types_and_capacities": (_KEY, _I64, _I64, _F64_2D, _F64, _F64, _F64),
    "sample.categorical_range": (_KEY, _INT, _INT, _F64_2D, _I16),
    "flows.sample_flows": (_KEY, _I64, _I64, _I32, _I32, _I32, _I32, _I32, _I32, _INT),
    "graph.household_links": (_KEY, _INT, _I64, _INT, _I16, _I64, _INT, _FLOAT, _INT),
    "caps.enforce_cap": (_I64, _INT, _F64),
    "uplift.expected_prevalence": (_FLOAT, _F64, _F64, _FLOAT, _FLOAT),
    "uplift.draw_roles": (_KEY, _INT, _I64, _F64, _I16, _F64_2D, _I16, _F64_2D),
    "csr.expand_count_matrix": (types.int16[:, ::1],),
    "csr.drop_repeats_within_rows": (_I64, _I64),
    "sample.poisson_range": (_KEY, _INT, _INT, _F64),
    "sample.capped_poisson_counts": (_KEY, _INT, _I16, _I16, types.float64[:, :, ::1],
                                     types.int64[:, ::1], types.int64[:, ::1]),
    "sample.exponential_ids": (_KEY, _I64, _INT),
    "flows.label_flows": (_KEY, _I64, types.int64[:, ::1], types.int64[:, ::1], _BOOL, _F64,
                          _FLOAT),
    "sample.normalised_cdf": (_F64_2D,),
    "csr.csr_from_owners": (_I64, _INT),
    "csr.transpose": (_I64, _I64, _INT),
    "csr.count_flagged": (_I64, _I64, _BOOL),
    "csr.owners_from_ptr": (_I64,),
    "csr.ptr_from_grouped": (_I64_READONLY, _INT),
    "prf.uniform_range": (_KEY, _INT, _INT, _INT),
    "prf.uniform_ids": (_KEY, _I64, _INT),
    "histograms.label_histograms": (_I16, _I64, _INT, _INT, _INT, types.boolean),
    "histograms.owned_cells": (_I64_READONLY, _I64_READONLY, _I64_READONLY, _INT, _INT),
}

# What the helper compiles on a cold cache: a little more than half of the compile time
# (measured), since this process also validates the input and builds the world meanwhile,
# and compiles largest_remainder for it.
HELPER_SHARE = frozenset({
    "allocate.assign_by_quota", "graph.assign_links", "graph.ip_types_and_capacities",
    "sample.categorical_range", "graph.household_links", "uplift.expected_prevalence",
    "csr.expand_count_matrix", "sample.poisson_range", "flows.label_flows",
    "csr.csr_from_owners", "csr.count_flagged", "csr.ptr_from_grouped", "prf.uniform_range",
})


def kernel(name):
    """The dispatcher of ``"module.function"`` in ``seg6a.kernels``."""
    module, function = name.split(".")
    return getattr(importlib.import_module(f"seg6a.kernels.{module}"), function)


def _compile(name):
    """Load or compile one kernel's signature; True if it had to be compiled."""
    dispatcher = kernel(name)
    before = sum(dispatcher.stats.cache_misses.values())
    dispatcher.compile(KERNELS[name])
    return sum(dispatcher.stats.cache_misses.values()) > before


class Warmup:
    """Kernels being made ready: construct it early (it probes the cache and, if cold,
    starts the helper process), do other work, then ``finish`` (or ``cancel``).

    Parameters
    ----------
    helper : bool
        Whether a cold cache may be filled with the help of a second process.
    """

    def __init__(self, helper=True):
        self.compiled = 0
        self._mine, self._theirs, self._process = [], [], None
        if os.environ.get("NUMBA_DISABLE_JIT") == "1":
            return
        probe, *self._mine = KERNELS
        self.compiled = int(_compile(probe))
        if self.compiled and helper and (os.cpu_count() or 1) >= 2:
            self._theirs = [name for name in self._mine if name in HELPER_SHARE]
            self._mine = [name for name in self._mine if name not in HELPER_SHARE]
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, *self._theirs],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self):
        """Compile (or load) this process's share, wait for the helper, load its share.

        Returns the number of kernels this process compiled (0 on a warm cache).
        """
        try:
            self.compiled += sum(_compile(name) for name in self._mine)
        except BaseException:
            self.cancel()
            raise
        if self._process is not None:
            self._process.wait()
        # Cache hits now, unless the helper failed: then they are compiled here.
        self.compiled += sum(_compile(name) for name in self._theirs)
        self._mine, self._theirs = [], []
        return self.compiled

    def cancel(self):
        """Stop the helper, if any (e.g. the run failed before ``finish``)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()


def load_or_compile(helper=True):
    """Make every kernel of ``KERNELS`` ready in this process (see the module docstring).

    Returns the number of kernels this process compiled (0 on a warm cache).
    """
    return Warmup(helper).finish()


if __name__ == "__main__":
    for kernel_name in sys.argv[1:]:
        _compile(kernel_name)
