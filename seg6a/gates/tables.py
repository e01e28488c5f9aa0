"""Views of gate records: an ``xarray.Dataset`` and a plain-text table."""
import numpy as np

from ..judging import shown

FIELDS = ("value", "threshold_B", "threshold_Bplus", "ci_low", "ci_high", "support")
FLAGS = ("pass_B", "pass_Bplus")
LABELS = ("metric_name", "method", "owner_state", "reason")


def to_xarray(boards):
    """Gate records as an ``xarray.Dataset``: dim ``test`` (and ``seed`` for several boards).

    ``pass_B`` and ``pass_Bplus`` are 1.0 (passed), 0.0 (failed) or NaN (not evaluable, T9
    of a single run); ``df[df.pass_Bplus == 0]`` lists the failures of a DataFrame.

    Parameters
    ----------
    boards : list of dict, or list of lists of dict
        One board (records of one seed) or several.
    """
    import xarray as xr

    several = bool(boards) and isinstance(boards[0], list)
    boards = boards if several else [boards]
    tests = [r["test_id"] for r in boards[0]]
    seeds = [board[0]["seed"] for board in boards]

    def column(field, dtype):
        rows = []
        for board in boards:
            by_id = {r["test_id"]: r for r in board}
            rows.append([by_id[t].get(field) for t in tests])
        if dtype is float:
            return np.array([[np.nan if v is None else float(v) for v in row] for row in rows])
        return np.array([["" if v is None else str(v) for v in row] for row in rows], dtype=object)

    variables = {f: (("seed", "test"), column(f, float)) for f in FIELDS}
    # Pass flags are 1.0 / 0.0, and NaN where not evaluable (T9 of a single run): a gate
    # that was not judged never reads as failed.
    variables.update({f: (("seed", "test"), column(f, float)) for f in FLAGS})
    variables.update({f: (("seed", "test"), column(f, str)) for f in LABELS})
    dataset = xr.Dataset(variables, coords={"seed": seeds, "test": tests})
    return dataset if several else dataset.isel(seed=0, drop=True).assign_attrs(seed=seeds[0])


def verdict(record):
    """``"B+"``, ``"B"``, ``"FAIL"`` or ``"n/a"`` (T9 of a single run) of a gate record.

    >>> verdict({"pass_B": True, "pass_Bplus": False}), verdict({"pass_B": None})
    ('B', 'n/a')
    """
    if record["pass_B"] is None:  # not evaluable: T9 of a single run
        return "n/a"
    return "B+" if record["pass_Bplus"] else ("B" if record["pass_B"] else "FAIL")


def format_board(records):
    """A board as an aligned text table, one line per gate."""
    def number(v):
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    header = ("test", "value", "CI 95%", "B", "B+", "pass", "owner", "reason")
    rows = [(r["test_id"], number(r["value"]),
             "-" if r["ci_low"] is None else f"[{number(r['ci_low'])}, {number(r['ci_high'])}]",
             number(r["threshold_B"]), number(r["threshold_Bplus"]),
             shown(verdict(r), r.get("waivers", [])), r["owner_state"], r["reason"] or "")
            for r in records]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in (header, tuple("-" * w for w in widths), *rows)]
    return "\n".join(lines)
