"""Largest-remainder allocation: exact agreement with the reference and its guarantees."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from seg6a.kernels.allocate import largest_remainder, largest_remainder_law, rank

totals = st.integers(0, 10**6)
# Zeros often, ordinary and tiny values, integers, and huge values (up to 1e300: thirty of
# them still sum to a finite float64).
weight_values = st.one_of(
    st.just(0.0),
    st.floats(0.0, 1e3),
    st.floats(1e-300, 1e-3),
    st.integers(0, 10).map(float),
    st.floats(1e200, 1e300),
)


@st.composite
def slots(draw, max_size=30):
    weights = draw(st.lists(weight_values, max_size=max_size))
    # Ties like PRF uniforms, with repeats so that the index rule is exercised too.
    ties = draw(
        st.lists(
            st.one_of(st.sampled_from([0.0, 0.5]), st.floats(0.0, 1.0, exclude_max=True)),
            min_size=len(weights),
            max_size=len(weights),
        )
    )
    return np.array(weights, dtype=np.float64), np.array(ties, dtype=np.float64)


def exact_quotas(total, weights):
    weight_sum = sum(Fraction(w) for w in weights.tolist())
    return [total * Fraction(w) / weight_sum for w in weights.tolist()]


def check(total, weights, ties, within_one=True):
    got = largest_remainder(total, weights, ties)
    assert got.dtype == np.int64 and got.shape == weights.shape
    np.testing.assert_array_equal(got, ref.largest_remainder(total, weights, ties))
    if np.any(weights > 0):
        assert got.sum() == total
        if not within_one:
            return got
        for units, quota in zip(got.tolist(), exact_quotas(total, weights)):
            assert abs(units - quota) < 1
    else:
        assert np.all(got == 0)
    return got


@given(totals, slots())
def test_matches_reference_and_quotas(total, case):
    check(total, *case)


@given(st.integers(0, 10**4), slots(max_size=8))
def test_law_split_equals_the_general_one_with_zero_ties(total, case):
    weights, _ = case
    zeros = np.zeros_like(weights)
    np.testing.assert_array_equal(largest_remainder_law(total, weights),
                                  ref.largest_remainder(total, weights, zeros))


def test_law_split_gives_equal_remainders_to_lower_indices_first():
    # Floors of 5 * [1/3, 1/3, 1/3] leave 2 units: remainders tie, lower indices first.
    law = np.full(3, 1.0)
    np.testing.assert_array_equal(largest_remainder_law(5, law), [2, 2, 1])
    np.testing.assert_array_equal(largest_remainder_law(5, law),
                                  largest_remainder(5, law, np.zeros(3)))


@given(totals, st.floats(0.0, 1e300), st.floats(0.0, 1.0, exclude_max=True))
def test_single_slot(total, weight, tie):
    got = check(total, np.array([weight]), np.array([tie]))
    assert got[0] == (total if weight > 0 else 0)


def test_empty():
    got = largest_remainder(10, np.zeros(0), np.zeros(0))
    assert got.shape == (0,) and got.dtype == np.int64


def test_all_zero_weights_give_zeros():
    np.testing.assert_array_equal(check(7, np.zeros(4), np.array([0.9, 0.1, 0.5, 0.3])), 0)


def test_hand_case():
    # Quotas 10 * [0.5, 0.3, 0.2] -> exact; then 7 * [...] = [3.5, 2.1, 1.4] -> 4, 2, 1.
    np.testing.assert_array_equal(check(10, np.array([5.0, 3.0, 2.0]), np.zeros(3)), [5, 3, 2])
    np.testing.assert_array_equal(check(7, np.array([5.0, 3.0, 2.0]), np.zeros(3)), [4, 2, 1])


def test_ties_go_to_larger_tie_value():
    # Equal weights give equal remainders; the two leftover units go to the larger ties.
    got = check(2, np.ones(3), np.array([0.1, 0.9, 0.5]))
    np.testing.assert_array_equal(got, [0, 1, 1])


def test_equal_ties_go_to_lower_index():
    got = check(2, np.ones(3), np.full(3, 0.5))
    np.testing.assert_array_equal(got, [1, 1, 0])
    got = check(5, np.ones(4), np.array([0.2, 0.7, 0.2, 0.7]))
    np.testing.assert_array_equal(got, [1, 2, 1, 1])


def test_remainder_before_tie():
    # Remainders 0.6 and 0.4: the larger remainder wins over the larger tie.
    got = check(1, np.array([0.6, 0.4]), np.array([0.0, 0.99]))
    np.testing.assert_array_equal(got, [1, 0])


def test_weight_sum_is_sequential():
    # Exact quotas 16 * [1, 0.1, 1e-17, 0.3] / 1.4 have equal remainders 3/7 in slots 0 and
    # 3. Summed left to right in float64 the total is 1.4000000000000001, and the computed
    # remainders are 0.428571428571427 (slot 0) < 0.428571428571428 (slot 3), so the
    # leftover unit goes to slot 3; an exactly rounded sum (1.4, math.fsum) would give it to
    # slot 0, i.e. [12, 1, 0, 3].
    got = check(16, np.array([1.0, 0.1, 1e-17, 0.3]), np.zeros(4))
    np.testing.assert_array_equal(got, [11, 1, 0, 4])


@pytest.mark.parametrize("total", [2**52, 2**62])
def test_total_beyond_exact_float_quotas_is_refused(total):
    with pytest.raises(ValueError, match="2\\*\\*52"):
        largest_remainder(total, np.array([1.3, 0.1, 0.6]), np.zeros(3))


def test_overflowing_weight_sum_is_refused():
    with pytest.raises(ValueError, match="finite"):
        largest_remainder(10, np.array([1.5e308, 1.5e308, 1.0]), np.zeros(3))


@given(st.lists(st.tuples(st.sampled_from([0.0, 1.0, -0.5]), st.floats(-1.0, 1.0)),
                max_size=70))
def test_rank_is_a_stable_sort_by_both_keys(pairs):
    primary = np.array([p for p, _ in pairs], dtype=np.float64)
    secondary = np.array([s for _, s in pairs], dtype=np.float64)
    # np.lexsort sorts by its last key first and is stable: ties keep index order.
    np.testing.assert_array_equal(rank(primary, secondary), np.lexsort((secondary, primary)))
