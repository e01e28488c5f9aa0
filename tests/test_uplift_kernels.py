"""S5's kernels: clamped uplift, expected prevalence, the role draw, and neighbour counts."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from seg6a.kernels import csr, sample, uplift

keys = st.integers(0, 2**64 - 1).map(np.uint64)
logits = st.floats(-30.0, 30.0)
shifts = st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=12).map(np.array)


@given(logits, shifts, st.floats(-12.0, 0.0), st.floats(0.0, 12.0))
def test_clamped_logits_match_reference_and_respect_the_clamp(base, shift, low, high):
    got = uplift.clamped_logits(base, shift, low, high)
    np.testing.assert_array_equal(got, ref.clamped_logits(base, shift, low, high))
    assert np.all((got >= low) & (got <= high))


@given(st.floats(-700.0, 700.0))
def test_sigmoid_matches_reference(x):
    assert uplift.sigmoid(x) == ref.sigmoid(x)
    assert 0.0 <= uplift.sigmoid(x) <= 1.0


@given(logits, shifts, st.data())
def test_expected_prevalence_matches_reference_and_is_monotone(base, shift, data):
    counts = np.array(data.draw(st.lists(st.integers(0, 1000), min_size=len(shift),
                                         max_size=len(shift))), dtype=np.float64)
    counts[0] += 1
    got = uplift.expected_prevalence(base, shift, counts, -9.0, 2.0)
    assert got == ref.expected_prevalence(base, shift, counts, -9.0, 2.0)
    assert uplift.expected_prevalence(base + 0.5, shift, counts, -9.0, 2.0) >= got


@st.composite
def role_setups(draw):
    n_codes = draw(st.integers(1, 6))
    n = draw(st.integers(0, 300))
    code = np.array(draw(st.lists(st.integers(0, n_codes - 1), min_size=n, max_size=n)),
                    dtype=np.int64)
    logit_of_code = np.array(draw(st.lists(st.floats(-9.0, 2.0), min_size=n_codes,
                                           max_size=n_codes)))
    n_risky = draw(st.integers(1, 4))
    weights = np.array(draw(st.lists(st.floats(0.01, 1.0), min_size=n_risky + 1,
                                     max_size=n_risky + 1)))
    return code, logit_of_code, n_risky, weights


@given(keys, st.integers(0, 2**40), role_setups())
def test_draw_roles_matches_reference(key, id_start, setup):
    code, logit_of_code, n_risky, weights = setup
    risky_roles = np.arange(1, n_risky + 1, dtype=np.int16)
    clean_roles = np.array([0], dtype=np.int16)
    risky_cdf = sample.normalised_cdf(weights[1:][None, :])
    clean_cdf = sample.normalised_cdf(weights[:1][None, :])
    got = uplift.draw_roles(key, id_start, code, logit_of_code, risky_roles, risky_cdf,
                            clean_roles, clean_cdf)
    np.testing.assert_array_equal(got, ref.draw_roles(int(key), id_start, code, logit_of_code,
                                                      risky_roles, risky_cdf, clean_roles,
                                                      clean_cdf))


def test_draw_roles_hits_the_probabilities():
    n = 400_000
    code = np.arange(n, dtype=np.int64) % 2
    logit_of_code = np.array([-3.0, 0.5])
    roles = uplift.draw_roles(np.uint64(7), 0, code, logit_of_code, np.array([1, 2], np.int16),
                              sample.normalised_cdf(np.array([[0.25, 0.75]])),
                              np.array([0], np.int16), sample.normalised_cdf(np.array([[1.0]])))
    for c, logit in enumerate(logit_of_code):
        p = 1 / (1 + np.exp(-logit))
        risky = roles[code == c] > 0
        assert abs(risky.mean() - p) < 5 * np.sqrt(p * (1 - p) / risky.size)
    among_risky = roles[roles > 0]
    assert abs(np.mean(among_risky == 1) - 0.25) < 5 * np.sqrt(0.25 * 0.75 / among_risky.size)


@given(st.lists(st.lists(st.integers(0, 9), max_size=6), max_size=30), st.data())
def test_count_flagged_matches_reference(rows, data):
    ptr, indices = ref.csr_from_rows(rows)
    flag = np.array(data.draw(st.lists(st.booleans(), min_size=10, max_size=10)))
    np.testing.assert_array_equal(csr.count_flagged(ptr, indices, flag),
                                  ref.count_flagged(ptr, indices, flag))
