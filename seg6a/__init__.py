"""seg6a: the Segment 6A synthetic financial-crime population generator.

>>> import seg6a
>>> result = seg6a.simulate(42, scale="tiny")          # doctest: +SKIP
"""
__version__ = "0.1.0"


def __getattr__(name):
    # The API imports numba; importing it lazily lets the CLI set NUMBA_NUM_THREADS first.
    if name in ("simulate", "certify"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'seg6a' has no attribute {name!r}")


__all__ = ["certify", "simulate", "__version__"]
