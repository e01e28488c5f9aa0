"""Realism gates T1-T10 and the metrics behind them (SPEC section 5)."""
from .metrics import jsd, odds_ratio

__all__ = ["jsd", "odds_ratio"]
