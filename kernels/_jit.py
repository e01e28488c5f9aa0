"""The project's Numba decorators: the one place where JIT options are set.

``njit`` is for serial kernels and is cached on disk. ``njit_parallel`` is for kernels whose
iterations each write their own output slots (per-entity PRF draws), so the result does not
depend on thread scheduling. It is cached too; ``tests/test_jit_cache.py`` checks that a
cached parallel kernel reloads correctly in a fresh process.
"""
import os

# Intel SVML (used by numba when icc_rt is installed) gives transcendental results that
# differ from the platform libm; outputs must be the same bytes on every machine.
os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")

import numba  # noqa: E402

# fastmath stays off: it licenses reassociation, and outputs must be bit-identical across
# thread counts, engines and machines.
_OPTIONS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")

njit = numba.njit(**_OPTIONS)
njit_parallel = numba.njit(parallel=True, **_OPTIONS)
prange = numba.prange

__all__ = ["njit", "njit_parallel", "prange"]
