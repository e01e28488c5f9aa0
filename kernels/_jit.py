"""The project's Numba decorator: the one place where JIT options are set.

Kernels are serial and release the GIL (``nogil``): parallelism comes from the engine, which
runs canonical blocks on a thread pool (or on Dask workers), never from ``prange``. A result
therefore cannot depend on thread scheduling, and each kernel compiles once, without the
parfor machinery (about 2 s of compile time per parallel kernel). ``njit`` caches on disk;
``tests/test_jit_cache.py`` checks that a cached kernel reloads correctly in a fresh process.
"""
import os

# Intel SVML (used by numba when icc_rt is installed) gives transcendental results that
# differ from the platform libm; outputs must be the same bytes on every machine.
os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")

import numba  # noqa: E402

# fastmath stays off: it licenses reassociation, and outputs must be bit-identical across
# thread counts, engines and machines.
njit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")

__all__ = ["njit"]
