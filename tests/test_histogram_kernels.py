"""The gates' histogram kernels: the label-leakage audit's, and the cells of owned rows."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from seg6a.kernels.histograms import label_histograms, owned_cells


@st.composite
def labelled(draw):
    n_clusters = draw(st.integers(1, 5))
    n_values = draw(st.integers(1, 40))
    n_bins = draw(st.integers(1, 8))
    n = draw(st.integers(0, 60))
    cells = draw(st.lists(st.integers(0, 2 * n_clusters - 1), min_size=n, max_size=n))
    # values beyond the range too: a count's tail, or a bad value the kernel clips
    values = draw(st.lists(st.integers(-3, n_values + 50), min_size=n, max_size=n))
    return (np.array(cells, dtype=np.int16), np.array(values, dtype=np.int64), n_values,
            n_bins, n_clusters)


@given(labelled(), st.booleans())
def test_label_histograms_match_reference_and_count_every_entity(case, counts):
    cells, values, n_values, n_bins, n_clusters = case
    exact, per_cluster = label_histograms(cells, values, n_values, n_bins, n_clusters, counts)
    want = ref.label_histograms(cells, values, n_values, n_bins, n_clusters, counts)
    np.testing.assert_array_equal(exact, want[0])
    np.testing.assert_array_equal(per_cluster, want[1])
    # each entity once in each, under its own label
    labels = cells.astype(np.int64) & 1
    np.testing.assert_array_equal(exact.sum(axis=1), np.bincount(labels, minlength=2))
    by_label = per_cluster.reshape(n_clusters, 2, n_bins).sum(axis=(0, 2))
    np.testing.assert_array_equal(by_label, exact.sum(axis=1))


@given(st.integers(1, 6), st.integers(1, 5), st.data())
def test_owned_cells_match_reference_and_leave_out_what_does_not_resolve(
        n_owner_cells, n_codes, data):
    # owners and codes beyond their tables, and owners whose cell is unknown (-1)
    owner_cell = np.array(data.draw(st.lists(st.integers(-1, n_owner_cells - 1), max_size=8)),
                          dtype=np.int64)
    n = data.draw(st.integers(0, 40))
    owner = np.array(data.draw(st.lists(st.integers(-2, owner_cell.size + 1), min_size=n,
                                        max_size=n)), dtype=np.int64)
    code = np.array(data.draw(st.lists(st.integers(-1, n_codes), min_size=n, max_size=n)),
                    dtype=np.int64)
    cells = owned_cells(owner, owner_cell, code, n_codes, n_owner_cells)
    np.testing.assert_array_equal(
        cells, ref.owned_cells(owner, owner_cell, code, n_codes, n_owner_cells))
    resolved = cells >= 0
    np.testing.assert_array_equal(cells[resolved] // n_owner_cells, code[resolved])
    np.testing.assert_array_equal(cells[resolved] % n_owner_cells,
                                  owner_cell[owner[resolved]])
    assert cells.max(initial=-1) < n_codes * n_owner_cells
