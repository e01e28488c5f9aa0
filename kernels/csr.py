"""Compressed sparse row (CSR) relations: ``owner -> members`` as ``(ptr, members)``.

Members of owner ``o`` are ``members[ptr[o]:ptr[o + 1]]``. All builders are stable counting
sorts, so members keep their input order within an owner and the result is deterministic.
"""
import numpy as np

from ._jit import njit


@njit
def ptr_from_counts(counts):
    """Pointer array (length ``len(counts) + 1``) from per-owner member counts."""
    n = counts.shape[0]
    ptr = np.empty(n + 1, dtype=np.int64)
    ptr[0] = 0
    for i in range(n):
        ptr[i + 1] = ptr[i] + counts[i]
    return ptr


@njit
def csr_from_owners(owner_ids, n_owners):
    """Group member indices ``0..len(owner_ids)-1`` by owner.

    Returns ``(ptr, members)``: ``members[ptr[o]:ptr[o+1]]`` are the indices ``i`` with
    ``owner_ids[i] == o``, ascending. Owner ids must lie in ``[0, n_owners)``.
    """
    counts = np.zeros(n_owners, dtype=np.int64)
    for i in range(owner_ids.shape[0]):
        counts[owner_ids[i]] += 1
    ptr = ptr_from_counts(counts)
    fill = ptr[:-1].copy()
    members = np.empty(owner_ids.shape[0], dtype=np.int64)
    for i in range(owner_ids.shape[0]):
        o = owner_ids[i]
        members[fill[o]] = i
        fill[o] += 1
    return ptr, members


@njit
def transpose(ptr, indices, n_cols):
    """Transpose a CSR adjacency of ``len(ptr) - 1`` rows over ``n_cols`` columns.

    Returns ``(tptr, tindices)`` where ``tindices[tptr[c]:tptr[c+1]]`` are the rows that
    link to column ``c``, ascending (e.g. ``device -> ips`` into ``ip -> devices``).
    """
    n_rows = ptr.shape[0] - 1
    counts = np.zeros(n_cols, dtype=np.int64)
    for j in range(indices.shape[0]):
        counts[indices[j]] += 1
    tptr = ptr_from_counts(counts)
    fill = tptr[:-1].copy()
    tindices = np.empty(indices.shape[0], dtype=np.int64)
    for r in range(n_rows):
        for j in range(ptr[r], ptr[r + 1]):
            c = indices[j]
            tindices[fill[c]] = r
            fill[c] += 1
    return tptr, tindices


@njit
def degrees(ptr):
    """Members per owner: ``ptr[1:] - ptr[:-1]``."""
    n = ptr.shape[0] - 1
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = ptr[i + 1] - ptr[i]
    return out


@njit
def owners_from_ptr(ptr):
    """Owner of each member position (the inverse of ``ptr_from_counts``)."""
    n = ptr.shape[0] - 1
    out = np.empty(ptr[n], dtype=np.int64)
    for o in range(n):
        for j in range(ptr[o], ptr[o + 1]):
            out[j] = o
    return out


@njit
def drop_repeats_within_rows(ptr, indices):
    """Keep the first occurrence of each column within every row, in row order.

    Returns ``(new_ptr, new_indices, kept)`` where ``kept`` flags the input entries that
    remain (e.g. a device linked twice to one IP keeps its first link). Rows are short;
    each entry is compared with the kept entries before it in its row.
    """
    n_rows = ptr.shape[0] - 1
    kept = np.zeros(indices.shape[0], dtype=np.bool_)
    counts = np.zeros(n_rows, dtype=np.int64)
    for r in range(n_rows):
        for j in range(ptr[r], ptr[r + 1]):
            repeat = False
            for earlier in range(ptr[r], j):
                if kept[earlier] and indices[earlier] == indices[j]:
                    repeat = True
                    break
            if not repeat:
                kept[j] = True
                counts[r] += 1
    new_ptr = ptr_from_counts(counts)
    new_indices = np.empty(new_ptr[n_rows], dtype=np.int64)
    w = 0
    for j in range(indices.shape[0]):
        if kept[j]:
            new_indices[w] = indices[j]
            w += 1
    return new_ptr, new_indices, kept


@njit
def count_flagged(ptr, indices, flag):
    """Per row, how many of its columns are flagged (e.g. risky devices per IP)."""
    n_rows = ptr.shape[0] - 1
    out = np.zeros(n_rows, dtype=np.int64)
    for r in range(n_rows):
        total = 0
        for j in range(ptr[r], ptr[r + 1]):
            if flag[indices[j]]:
                total += 1
        out[r] = total
    return out


@njit
def expand_count_matrix(counts):
    """Rows of a count matrix expanded: one entry per unit, row-major.

    ``counts[r, c]`` units of column ``c`` for row ``r`` become that many entries
    ``(row=r, column=c)``; ``first`` flags the first entry of each ``(r, c)`` cell. This is
    ``np.repeat`` of the flat index without materialising it.
    """
    n_rows, n_cols = counts.shape
    total = 0
    for r in range(n_rows):
        for c in range(n_cols):
            total += counts[r, c]
    row = np.empty(total, dtype=np.int64)
    column = np.empty(total, dtype=np.int16)
    first = np.empty(total, dtype=np.bool_)
    k = 0
    for r in range(n_rows):
        for c in range(n_cols):
            for j in range(counts[r, c]):
                row[k] = r
                column[k] = c
                first[k] = j == 0
                k += 1
    return row, column, first


@njit
def ptr_from_grouped(owner, n_owners):
    """Pointer array of rows already grouped by owner (non-decreasing ``owner``)."""
    ptr = np.zeros(n_owners + 1, dtype=np.int64)
    for i in range(owner.shape[0]):
        if owner[i] < 0 or owner[i] >= n_owners:
            raise ValueError("ptr_from_grouped: owner id out of range")
        ptr[owner[i] + 1] += 1
    for o in range(n_owners):
        ptr[o + 1] += ptr[o]
    return ptr
