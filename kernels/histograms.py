"""Histograms of a feature split by a 0/1 label and by resampling cluster, for the AUCs of
the label-leakage audit and their cluster bootstrap (``seg6a.gates.leakage``)."""
import numpy as np

from ._jit import njit


@njit
def label_histograms(cells, values, n_values, n_bins, n_clusters, counts):
    """Entities per (label, value) and per (cluster, label, bin) in one pass.

    ``cells[i]`` is ``cluster * 2 + label`` of entity ``i`` (label 1: clean) and
    ``values[i]`` its feature in ``[0, n_values)``; a count (``counts``) is its own value,
    its tail merged into the last one. Returns ``exact`` ``(2, n_values)`` and
    ``per_cluster`` ``(n_clusters, 2 * n_bins)``, column ``label * n_bins + bin``, a value's
    bin being ``value * n_bins // n_values``, or for a count the value, up to
    ``n_bins - 1``. Values outside the range are clipped to it.
    """
    exact = np.zeros((2, n_values), dtype=np.int64)
    per_cluster = np.zeros((n_clusters, 2 * n_bins), dtype=np.int64)
    for i in range(cells.shape[0]):
        cell = np.int64(cells[i])
        label = cell & 1
        value = min(max(np.int64(values[i]), 0), n_values - 1)
        exact[label, value] += 1
        if counts:
            bin_ = min(value, n_bins - 1)
        else:
            bin_ = value * n_bins // n_values
        per_cluster[cell >> 1, label * n_bins + bin_] += 1
    return exact, per_cluster


@njit
def owned_cells(owner, owner_cell, code, n_codes, n_owner_cells):
    """The cell ``code[i] * n_owner_cells + owner_cell[owner[i]]`` of each row ``i``, or -1
    where its owner lies outside ``owner_cell``, the owner's cell is -1 or its code lies
    outside ``[0, n_codes)`` (owner cells lie in ``[-1, n_owner_cells)``).

    A row's cell counts it under its own category and its owner's (e.g. an account under
    its type and its owner's country) in one pass, without the index arrays of NumPy.
    """
    cells = np.empty(owner.shape[0], dtype=np.int64)
    for i in range(owner.shape[0]):
        o, c = owner[i], code[i]
        cells[i] = -1
        if 0 <= o < owner_cell.shape[0] and 0 <= c < n_codes:
            cell = owner_cell[o]
            if cell >= 0:
                cells[i] = c * n_owner_cells + cell
    return cells
