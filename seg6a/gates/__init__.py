"""Realism gates T1-T10 and the metrics behind them (SPEC section 5).

``odds_ratio``, ``jsd`` and ``bootstrap_ci`` are usable on their own, e.g. in a notebook;
``to_xarray`` turns gate records into an ``xarray.Dataset``.
"""
from .board import bootstrap_ci
from .metrics import jsd, odds_ratio
from .tables import format_board, to_xarray

__all__ = ["bootstrap_ci", "format_board", "jsd", "odds_ratio", "to_xarray"]
