"""S4's kernels: the Feistel permutation, bounded Pareto capacities, households, IP pools, links."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from seg6a.kernels import csr, graph, permute, sample

keys = st.integers(0, 2**64 - 1).map(np.uint64)
PRIMES = [2, 3, 5, 7, 13, 61, 257, 1021, 4099]
domain_sizes = st.one_of(st.just(1), st.sampled_from(PRIMES), st.integers(1, 5000))


@given(keys, domain_sizes)
def test_permutation_is_a_bijection_of_the_domain(key, n):
    image = permute.permutation(key, n)
    np.testing.assert_array_equal(np.sort(image), np.arange(n))


@given(keys, st.one_of(st.sampled_from(PRIMES), st.integers(1, 300)))
def test_permutation_matches_reference(key, n):
    expected = [ref.feistel_index(int(key), n, x) for x in range(n)]
    np.testing.assert_array_equal(permute.permutation(key, n), expected)


@given(keys, st.integers(1, 2**40), st.data())
def test_pointwise_index_agrees_with_reference_on_large_domains(key, n, data):
    x = data.draw(st.integers(0, n - 1))
    y = permute.feistel_index(key, n, x)
    assert 0 <= y < n
    assert y == ref.feistel_index(int(key), n, x)


@given(keys, st.integers(1, 2**24), st.data())
def test_a_tabulated_round_function_gives_the_same_images(key, n, data):
    table = permute.round_table(key, n)
    h = permute.half_width(n)
    assert table.shape == (permute.FEISTEL_ROUNDS, 2**h)
    right = data.draw(st.integers(0, 2**h - 1))
    for r in range(permute.FEISTEL_ROUNDS):  # a row is the round's PRF, masked to h bits
        assert int(table[r, right]) == ref.prf_u64(int(key), right, r) & (2**h - 1)
    for x in data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=20)):
        assert permute.feistel_at(table, n, x) == ref.feistel_index(int(key), n, x)


def test_permutation_depends_on_the_key():
    a = permute.permutation(np.uint64(1), 1000)
    b = permute.permutation(np.uint64(2), 1000)
    assert not np.array_equal(a, b)
    # Not the identity nor a shift: most points move.
    assert np.count_nonzero(a != np.arange(1000)) > 950


@given(st.floats(0.2, 4.0), st.integers(1, 50), st.integers(0, 500), st.floats(0.0, 1.0,
                                                                              exclude_max=True))
def test_bounded_pareto_inverse_matches_reference_and_bounds(alpha, low, width, u):
    high = low + width
    got = sample.bounded_pareto_inverse(alpha, float(low), float(high), u)
    assert got == ref.bounded_pareto_inverse(alpha, float(low), float(high), u)
    assert low <= got <= high


def test_bounded_pareto_law_has_its_tail():
    # P(X >= x) = (low**a * x**-a - low**a * high**-a) / (1 - (low/high)**a) for the
    # continuous law; floor(X) >= k iff X >= k.
    alpha, low, high = 1.1, 2.0, 300.0
    u = (np.arange(200_000) + 0.5) / 200_000
    draws = np.array([sample.bounded_pareto_inverse(alpha, low, high, v) for v in u])
    for k in (4, 20, 80, 200):
        expected = (low**alpha * k**-alpha - (low / high)**alpha) / (1 - (low / high)**alpha)
        assert abs(np.mean(draws >= k) - expected) < 1e-3, k
    assert draws.max() <= high and draws.min() >= low


@st.composite
def households(draw):
    n_countries = draw(st.integers(1, 5))
    sizes = draw(st.lists(st.integers(0, 30), min_size=n_countries, max_size=n_countries))
    country_ptr = ref.ptr_from_counts(sizes)
    n_parties = int(country_ptr[-1])
    party_country = np.repeat(np.arange(n_countries), sizes).astype(np.int16)
    if n_parties == 0:
        primary = np.zeros(0, dtype=np.int64)
    else:
        primary = np.sort(np.array(draw(st.lists(st.integers(0, n_parties - 1), max_size=60)),
                                   dtype=np.int64))
    block_size = draw(st.integers(1, 40))
    return primary, party_country, country_ptr, block_size


@given(keys, households(), st.floats(0.0, 1.0), st.integers(2, 6))
def test_household_links_match_reference_and_stay_in_the_household(key, case, share, max_parties):
    primary, party_country, country_ptr, block_size = case
    ptr, parties = graph.household_links(key, 0, primary, 0, party_country, country_ptr,
                                         block_size, share, max_parties)
    expected = ref.household_links(int(key), 0, primary, 0, party_country, country_ptr,
                                   block_size, share, max_parties)
    np.testing.assert_array_equal(ptr, expected[0])
    np.testing.assert_array_equal(parties, expected[1])
    for d, row in enumerate(ref.csr_rows(ptr, parties)):
        assert row[0] == primary[d]
        assert len(set(row)) == len(row) <= max_parties
        assert {party_country[p] for p in row} == {party_country[primary[d]]}
        assert {p // block_size for p in row} == {primary[d] // block_size}


@given(keys, households(), st.floats(0.0, 1.0), st.integers(2, 6))
def test_household_links_of_one_block_at_a_time_equal_the_whole(key, case, share, max_parties):
    primary, party_country, country_ptr, block_size = case
    whole = ref.csr_rows(*graph.household_links(key, 0, primary, 0, party_country, country_ptr,
                                                block_size, share, max_parties))
    n_parties = party_country.shape[0]
    rows = []
    for party_lo in range(0, n_parties, block_size):
        party_hi = min(party_lo + block_size, n_parties)
        devices = np.flatnonzero((primary >= party_lo) & (primary < party_hi))
        device_lo = int(devices[0]) if devices.size else 0
        rows += ref.csr_rows(*graph.household_links(
            key, device_lo, primary[devices], party_lo, party_country[party_lo:party_hi],
            country_ptr, block_size, share, max_parties))
    assert [list(r) for r in rows] == [list(r) for r in whole]


LAW = (np.array([2.2, 1.1, 1.5]), np.array([1.0, 2.0, 2.0]), np.array([12.0, 300.0, 120.0]))


@given(keys, st.lists(st.integers(0, 400), min_size=1, max_size=6), st.data())
def test_ips_per_group_is_the_smallest_pool_that_holds_the_links(key, links, data):
    n_regions = 2
    mix = np.array([[0.5, 0.3, 0.2], [0.2, 0.7, 0.1]])
    links = np.array(links, dtype=np.int64)
    group_region = np.arange(len(links)) % n_regions
    n_ips, draws = graph.ips_per_group(key, links, group_region, mix, *LAW)
    np.testing.assert_array_equal(n_ips, ref.ips_per_group(int(key), links, group_region, mix, *LAW))
    for g, n in enumerate(n_ips):
        capacity = sum(c for _, c in ref.pool_capacity(int(key), g, n, mix[group_region[g]], *LAW))
        assert capacity >= links[g] and n <= links[g]
        assert draws[g] >= n


@st.composite
def link_plans(draw):
    """Devices in groups with link counts, and each group's IP pool from ``ips_per_group``."""
    n_groups = draw(st.integers(1, 4))
    n_devices = draw(st.integers(0, 80))
    group = np.array(draw(st.lists(st.integers(0, n_groups - 1), min_size=n_devices,
                                   max_size=n_devices)), dtype=np.int64)
    links = np.array(draw(st.lists(st.integers(0, 4), min_size=n_devices, max_size=n_devices)),
                     dtype=np.int64)
    return group, links, n_groups


@given(keys, keys, link_plans())
def test_assign_links_respects_capacity_and_matches_reference(position_key, slot_key, plan):
    group, links, n_groups = plan
    mix = np.array([[0.5, 0.3, 0.2]])
    group_region = np.zeros(n_groups, dtype=np.int64)
    group_links = np.bincount(group, weights=links, minlength=n_groups).astype(np.int64)
    n_ips, _ = graph.ips_per_group(position_key, group_links, group_region, mix, *LAW)
    ip_ptr = csr.ptr_from_counts(n_ips)
    ip_type, capacity = graph.ip_types_and_capacities(position_key, ip_ptr, group_region, mix, *LAW)
    group_device_ptr, group_devices = csr.csr_from_owners(group, n_groups)
    device_link_ptr = csr.ptr_from_counts(links)
    got = graph.assign_links(position_key, slot_key, group_device_ptr, group_devices,
                             device_link_ptr, ip_ptr, capacity)
    expected = ref.assign_links(int(position_key), int(slot_key), group_device_ptr,
                                group_devices, device_link_ptr, ip_ptr, capacity)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    ip_of_link, first_link = got
    served = np.bincount(ip_of_link, minlength=ip_ptr[-1])
    assert np.all(served <= capacity)
    assert np.all(served >= 1)
    # Links stay in their device's group, and each IP's first link is one of its own.
    link_group = group[csr.owners_from_ptr(device_link_ptr)]
    ip_group = csr.owners_from_ptr(ip_ptr)
    np.testing.assert_array_equal(ip_group[ip_of_link], link_group)
    np.testing.assert_array_equal(ip_of_link[first_link], np.arange(ip_ptr[-1]))


@given(st.lists(st.lists(st.integers(0, 5), max_size=6), max_size=30))
def test_drop_repeats_within_rows_matches_reference(rows):
    ptr, indices = ref.csr_from_rows(rows)
    got = csr.drop_repeats_within_rows(ptr, indices)
    expected = ref.drop_repeats_within_rows(ptr, indices)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    for row in ref.csr_rows(got[0], got[1]):
        assert len(set(row)) == len(row)
