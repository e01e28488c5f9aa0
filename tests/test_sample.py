"""Samplers by inversion: exact agreement with the reference, and their laws at scale."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import reference as ref
from seg6a.kernels import sample

N = 10**6
KEY = np.uint64(0xC0FFEE0DDBA11AD5)

keys = st.integers(0, 2**64 - 1).map(np.uint64)
id_starts = st.integers(0, 2**62)
draw_indices = st.integers(0, 2**32)
# Weights: exact zeros often, ordinary values, and very large and very small ones.
weights_values = st.one_of(
    st.just(0.0),
    st.floats(0.0, 1e3),
    st.floats(1e-300, 1e-200),
    st.floats(1e200, 1e300),
)


@st.composite
def weight_tables(draw, max_rows=4, max_cats=8):
    """2-D weights with at least one positive weight in every row."""
    n_rows = draw(st.integers(1, max_rows))
    n_cats = draw(st.integers(1, max_cats))
    table = []
    for _ in range(n_rows):
        row = draw(st.lists(weights_values, min_size=n_cats, max_size=n_cats))
        if not any(w > 0.0 for w in row):
            row[draw(st.integers(0, n_cats - 1))] = draw(st.floats(1e-3, 1e3))
        table.append(row)
    return np.array(table, dtype=np.float64)


@given(weight_tables())
def test_normalised_cdf_matches_reference(weights):
    got = sample.normalised_cdf(weights)
    np.testing.assert_array_equal(got, ref.normalised_cdf(weights))
    assert np.all(got[:, -1] == 1.0)
    assert np.all(np.diff(got, axis=1) >= 0.0)


def test_normalised_cdf_hand_case():
    got = sample.normalised_cdf(np.array([[1.0, 0.0, 3.0], [2.0, 2.0, 0.0]]))
    np.testing.assert_array_equal(got, [[0.25, 0.25, 1.0], [0.5, 1.0, 1.0]])


@st.composite
def categorical_cases(draw):
    weights = draw(weight_tables())
    rows = draw(st.lists(st.integers(0, weights.shape[0] - 1), max_size=300))
    return weights, np.array(rows, dtype=np.int64)


@given(keys, id_starts, draw_indices, categorical_cases())
def test_categorical_range_matches_reference(key, id_start, draw_index, case):
    weights, rows = case
    cdf = sample.normalised_cdf(weights)
    got = sample.categorical_range(key, id_start, draw_index, cdf, rows)
    assert got.dtype == sample.CODE_DTYPE
    np.testing.assert_array_equal(got, ref.categorical_range(key, id_start, draw_index, cdf, rows))
    # Zero-weight categories are never chosen, whatever the law of the row.
    assert np.all(weights[rows, got] > 0.0)


def test_inversion_at_cdf_boundaries():
    # The first j with u < cdf[j]: a u equal to a CDF value moves past it, and past the
    # zero-weight category whose CDF value repeats it. Drawn uniforms hit these ties with
    # probability ~0, so they are checked by hand.
    cdf = sample.normalised_cdf(np.array([[0.0, 1.0, 0.0, 3.0]]))
    np.testing.assert_array_equal(cdf, [[0.0, 0.25, 0.25, 1.0]])
    for u, code in [(0.0, 1), (0.2, 1), (0.25, 3), (0.5, 3), (1.0 - 2.0**-53, 3)]:
        assert sample.invert_cdf(cdf, 0, u) == code == ref.invert_cdf(cdf[0].tolist(), u)


def test_categorical_single_category():
    cdf = sample.normalised_cdf(np.array([[2.5]]))
    got = sample.categorical_range(KEY, 0, 0, cdf, np.zeros(1000, dtype=np.int64))
    assert np.all(got == 0)


def test_categorical_rows_select_their_law():
    # Each law puts all its mass on a different category, so the code reveals the row.
    weights = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 4.0, 0.0]])
    rows = np.arange(3000, dtype=np.int64) % 3
    got = sample.categorical_range(KEY, 0, 0, sample.normalised_cdf(weights), rows)
    np.testing.assert_array_equal(got, np.array([2, 0, 1])[rows])


def test_categorical_chi_square():
    weights = np.array([[0.4, 0.25, 0.0, 0.2, 0.1, 0.05]])
    rows = np.zeros(N, dtype=np.int64)
    got = sample.categorical_range(KEY, 0, 0, sample.normalised_cdf(weights), rows)
    observed = np.bincount(got, minlength=weights.shape[1])
    assert observed[2] == 0  # zero weight
    positive = weights[0] > 0
    expected = N * weights[0, positive] / weights[0].sum()
    # Floor 1e-4: a correct sampler fails this with probability 1e-4 for this key.
    assert stats.chisquare(observed[positive], expected).pvalue > 1e-4


lams = st.one_of(st.just(0.0), st.floats(0.0, 50.0))


# runs of equal means share one exp(-lam) in the kernel
@given(keys, id_starts, draw_indices,
       st.lists(st.one_of(lams, st.sampled_from([0.5, 3.7])), max_size=300))
def test_poisson_range_matches_reference(key, id_start, draw_index, lam):
    lam = np.array(lam, dtype=np.float64)
    got = sample.poisson_range(key, id_start, draw_index, lam)
    np.testing.assert_array_equal(got, ref.poisson_range(key, id_start, draw_index, lam))
    assert np.all(got[lam == 0.0] == 0)
    assert np.all(got >= 0)


@given(lams, st.floats(0.0, 1.0, exclude_max=True))
def test_poisson_inverse_matches_reference(lam, u):
    assert sample.poisson_inverse(lam, u) == ref.poisson_inverse(lam, u)


def test_poisson_inverse_near_one_terminates():
    # The largest uniform the PRF can give; the walk must stop, in the far tail.
    u = 1.0 - 2.0**-53
    for lam in (0.02, 0.5, 3.7, 50.0):
        k = sample.poisson_inverse(lam, u)
        assert k == ref.poisson_inverse(lam, u)
        assert k > lam + 5 * np.sqrt(lam)
    # For lam = 0.02 the running CDF stalls at 0.9999999999999999 < u: only the documented
    # guard (term < 1e-300 past the mean) ends the walk, at k = 93.
    assert sample.poisson_inverse(0.02, u) == 93


@st.composite
def count_matrix_cases(draw):
    n_types, n_cols, n_cells = (draw(st.integers(1, 4)) for _ in range(3))
    n = draw(st.integers(0, 60))
    excess = np.array(draw(st.lists(lams, min_size=n_types * n_cols * n_cells,
                                    max_size=n_types * n_cols * n_cells)))
    floor = np.array(draw(st.lists(st.integers(0, 3), min_size=n_types * n_cols,
                                   max_size=n_types * n_cols)), dtype=np.int64)
    cap = floor + np.array(draw(st.lists(st.integers(0, 5), min_size=n_types * n_cols,
                                         max_size=n_types * n_cols)), dtype=np.int64)
    row_type = np.array(draw(st.lists(st.integers(0, n_types - 1), min_size=n, max_size=n)),
                        dtype=np.int16)
    row_cell = np.array(draw(st.lists(st.integers(0, n_cells - 1), min_size=n, max_size=n)),
                        dtype=np.int16)
    return (excess.reshape(n_types, n_cols, n_cells), floor.reshape(n_types, n_cols),
            cap.reshape(n_types, n_cols), row_type, row_cell)


@given(keys, id_starts, count_matrix_cases())
def test_capped_poisson_counts_match_reference(key, id_start, case):
    excess, floor, cap, row_type, row_cell = case
    counts, clipped = sample.capped_poisson_counts(key, id_start, row_type, row_cell, excess,
                                                   floor, cap)
    ref_counts, ref_clipped = ref.capped_poisson_counts(key, id_start, row_type, row_cell,
                                                        excess, floor, cap)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(clipped, ref_clipped)
    assert counts.dtype == np.int16
    assert np.all(counts >= floor[row_type]) and np.all(counts <= cap[row_type])


def test_poisson_mean_and_variance():
    lam = 3.7
    got = sample.poisson_range(KEY, 0, 0, np.full(N, lam))
    standard_error = np.sqrt(lam / N)
    assert abs(got.mean() - lam) < 5 * standard_error
    assert abs(got.var() / lam - 1.0) < 0.02


probabilities = st.one_of(st.just(1.0), st.floats(1e-15, 1.0))


@given(keys, id_starts, draw_indices, st.lists(probabilities, max_size=300))
def test_geometric_range_matches_reference(key, id_start, draw_index, p):
    p = np.array(p, dtype=np.float64)
    got = sample.geometric_range(key, id_start, draw_index, p)
    np.testing.assert_array_equal(got, ref.geometric_range(key, id_start, draw_index, p))
    assert np.all(got[p == 1.0] == 0)
    assert np.all(got >= 0)


def test_geometric_mean():
    p = 0.3
    got = sample.geometric_range(KEY, 0, 0, np.full(N, p))
    mean = (1 - p) / p
    standard_error = np.sqrt((1 - p) / p**2 / N)
    assert abs(got.mean() - mean) < 5 * standard_error


@given(
    key=st.integers(0, 2**64 - 1),
    ids=st.lists(st.integers(0, 2**62), max_size=200),
    draw=st.integers(0, 2**32),
)
def test_exponential_ids_matches_reference_exactly(key, ids, draw):
    ids = np.array(ids, dtype=np.int64)
    got = sample.exponential_ids(np.uint64(key), ids, draw)
    np.testing.assert_array_equal(got, ref.exponential_ids(key, ids, draw))


def test_exponential_ids_is_exp1():
    draws = sample.exponential_ids(np.uint64(0xE1), np.arange(10**6), 0)
    assert draws.min() >= 0.0
    # Mean 1 within 5 standard errors (sd 1); a KS test against Exp(1) above the 1e-4 floor.
    assert abs(draws.mean() - 1.0) < 5 / np.sqrt(draws.size)
    assert stats.kstest(draws, "expon").pvalue > 1e-4
