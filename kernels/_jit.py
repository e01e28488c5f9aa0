"""The project's Numba decorator: the one place where JIT options are set.

Kernels are serial and release the GIL (``nogil``): parallelism comes from the engine, which
runs canonical blocks on a thread pool (or on Dask workers), never from ``prange``. A result
therefore cannot depend on thread scheduling, and each kernel compiles once, without the
parfor machinery (about 2 s of compile time per parallel kernel). ``njit`` caches on disk;
``tests/test_jit_cache.py`` checks that a cached kernel reloads correctly in a fresh process.

Where the cache lives: by default Numba writes it into the ``__pycache__`` beside the
source, i.e. inside an installed package. ``pip uninstall`` leaves those files
behind (numba#9312), and the leftover ``site-packages/seg6a`` folder, now without an
``__init__.py``, imports as a namespace package that shadows a later ``pip install -e .``:
the README's two commands run one after the other would break the second. Our kernels
therefore cache where Numba caches a read-only install, its user-wide cache directory, or
in ``NUMBA_CACHE_DIR`` when that is set.
"""
import os

# Intel SVML (used by numba when icc_rt is installed) gives transcendental results that
# differ from the platform libm; outputs must be the same bytes on every machine.
os.environ.setdefault("NUMBA_DISABLE_INTEL_SVML", "1")

import numba  # noqa: E402
from numba.misc.appdirs import AppDirs  # noqa: E402  (Numba's own user-wide cache path)

USER_CACHE_DIR = AppDirs(appname="numba", appauthor=False).user_cache_dir

# fastmath stays off: it licenses reassociation, and outputs must be bit-identical across
# thread counts, engines and machines.
_compile = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


def njit(function):
    """``function`` as a cached, GIL-releasing Numba kernel (see the module docstring)."""
    # Numba picks a function's cache directory when it is decorated, from this setting;
    # it is set for our kernels only and put back at once.
    users_choice = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = users_choice or USER_CACHE_DIR
    try:
        return _compile(function)
    finally:
        numba.config.CACHE_DIR = users_choice


__all__ = ["njit"]
