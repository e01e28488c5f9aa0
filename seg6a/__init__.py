"""seg6a: the Segment 6A synthetic financial-crime population generator.

``simulate`` and ``certify`` are the API; the public modules (``seg6a.gates`` with
``odds_ratio``, ``jsd`` and ``bootstrap_ci``, ``seg6a.errors``, ...) load on first use.

>>> import seg6a
>>> result = seg6a.simulate(42, scale="tiny")          # doctest: +SKIP
>>> seg6a.gates.odds_ratio(30, 70, 10, 90)
3.857142857142857
"""
import importlib

__version__ = "0.1.0"

# Loaded when first used: the API imports numba, and importing it lazily lets the CLI set
# NUMBA_NUM_THREADS first.
_API = ("simulate", "certify")
_MODULES = ("api", "errors", "gates", "judging", "policies", "report", "runs", "states",
            "world")


def __getattr__(name):
    if name in _API:
        return getattr(importlib.import_module(".api", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'seg6a' has no attribute {name!r}")


def __dir__():
    return sorted(__all__ + list(_MODULES))


__all__ = ["certify", "simulate", "__version__"]
