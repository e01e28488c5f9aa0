"""CSR builders: exact agreement with the reference and their round trips."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from seg6a.kernels import csr


def int64(values):
    return np.array(values, dtype=np.int64)


count_lists = st.lists(st.integers(0, 20), max_size=50)


@given(count_lists)
def test_ptr_from_counts_matches_reference(counts):
    got = csr.ptr_from_counts(int64(counts))
    np.testing.assert_array_equal(got, ref.ptr_from_counts(counts))
    assert got.shape == (len(counts) + 1,)
    assert got[0] == 0 and got[-1] == sum(counts)


@given(count_lists)
def test_owners_from_ptr_inverts_ptr_from_counts(counts):
    ptr = csr.ptr_from_counts(int64(counts))
    got = csr.owners_from_ptr(ptr)
    np.testing.assert_array_equal(got, ref.owners_from_ptr(ptr))
    np.testing.assert_array_equal(got, np.repeat(np.arange(len(counts)), counts))
    np.testing.assert_array_equal(np.bincount(got, minlength=len(counts)), counts)


@given(count_lists)
def test_degrees_matches_reference(counts):
    ptr = csr.ptr_from_counts(int64(counts))
    got = csr.degrees(ptr)
    np.testing.assert_array_equal(got, ref.degrees(ptr))
    np.testing.assert_array_equal(got, counts)


@st.composite
def owner_assignments(draw):
    n_owners = draw(st.integers(0, 20))
    if n_owners == 0:
        return int64([]), 0
    shape = draw(st.sampled_from(["random", "skewed"]))
    if shape == "skewed":
        # All members in one owner; every other owner is empty.
        owner = draw(st.integers(0, n_owners - 1))
        return int64([owner] * draw(st.integers(0, 100))), n_owners
    return int64(draw(st.lists(st.integers(0, n_owners - 1), max_size=100))), n_owners


def check_csr_from_owners(owner_ids, n_owners):
    ptr, members = csr.csr_from_owners(owner_ids, n_owners)
    ref_ptr, ref_members = ref.csr_from_owners(owner_ids, n_owners)
    np.testing.assert_array_equal(ptr, ref_ptr)
    np.testing.assert_array_equal(members, ref_members)
    assert ptr.shape == (n_owners + 1,)
    np.testing.assert_array_equal(np.sort(members), np.arange(len(owner_ids)))
    for o in range(n_owners):
        group = members[ptr[o] : ptr[o + 1]]
        assert np.all(owner_ids[group] == o)
        assert np.all(np.diff(group) > 0)  # stable: input order kept


@given(owner_assignments())
def test_csr_from_owners_matches_reference(case):
    check_csr_from_owners(*case)


def test_csr_from_owners_edge_cases():
    check_csr_from_owners(int64([]), 0)  # empty input, no owners
    check_csr_from_owners(int64([]), 3)  # owners with no members
    check_csr_from_owners(int64([0]), 1)  # a single owner
    check_csr_from_owners(int64([2, 2, 2, 2]), 4)  # skewed
    ptr, members = csr.csr_from_owners(int64([1, 0, 1, 3]), 5)
    np.testing.assert_array_equal(ptr, [0, 1, 3, 3, 4, 4])
    np.testing.assert_array_equal(members, [1, 0, 2, 3])


@st.composite
def adjacencies(draw):
    """A CSR over ``n_cols`` columns; rows unordered, no repeated column in a row."""
    n_rows = draw(st.integers(0, 15))
    n_cols = draw(st.integers(0, 15))
    column = st.integers(0, max(n_cols - 1, 0))
    rows = [
        draw(st.lists(column, unique=True, max_size=n_cols)) if n_cols else []
        for _ in range(n_rows)
    ]
    ptr, indices = ref.csr_from_rows(rows)
    return ptr, indices, n_cols, rows


@given(adjacencies())
def test_transpose_matches_reference(case):
    ptr, indices, n_cols, rows = case
    tptr, tindices = csr.transpose(ptr, indices, n_cols)
    ref_tptr, ref_tindices = ref.transpose(ptr, indices, n_cols)
    np.testing.assert_array_equal(tptr, ref_tptr)
    np.testing.assert_array_equal(tindices, ref_tindices)
    assert tptr.shape == (n_cols + 1,)
    for c, linked in enumerate(ref.csr_rows(tptr, tindices)):
        assert linked == [r for r, row in enumerate(rows) if c in row]


@given(adjacencies())
def test_transpose_twice_sorts_rows(case):
    ptr, indices, n_cols, rows = case
    tptr, tindices = csr.transpose(ptr, indices, n_cols)
    back_ptr, back_indices = csr.transpose(tptr, tindices, len(rows))
    np.testing.assert_array_equal(back_ptr, ptr)
    assert ref.csr_rows(back_ptr, back_indices) == [sorted(row) for row in rows]


def test_transpose_hand_case():
    # device -> ips: 0 -> {2, 0}, 1 -> {}, 2 -> {0}; so ip -> devices: 0 -> {0, 2}, 2 -> {0}.
    tptr, tindices = csr.transpose(int64([0, 2, 2, 3]), int64([2, 0, 0]), 4)
    np.testing.assert_array_equal(tptr, [0, 2, 2, 3, 3])
    np.testing.assert_array_equal(tindices, [0, 2, 0])


@given(owner_assignments())
def test_ptr_from_grouped_matches_reference(case):
    owner, n_owners = case
    owner = np.sort(owner)
    owner.flags.writeable = False
    np.testing.assert_array_equal(csr.ptr_from_grouped(owner, n_owners),
                                  ref.ptr_from_grouped(owner, n_owners))


def test_ptr_from_grouped_refuses_an_owner_out_of_range():
    owner = int64([0, 3])
    owner.flags.writeable = False
    with pytest.raises(ValueError, match="out of range"):
        csr.ptr_from_grouped(owner, 3)
