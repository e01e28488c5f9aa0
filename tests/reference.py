"""Deliberately naive references of the seg6a kernels (in the manner of stumpy's ``naive.py``).

Plain Python loops over Python ints and floats: slow, obvious, written from the kernels'
docstrings rather than from their code. The tests compare every kernel with these on many
drawn inputs and require exact agreement: the kernels are deterministic IEEE-754 float64
arithmetic with fastmath off, and Python floats are IEEE-754 float64, so performing the same
operations in the same order gives the same bits.
"""
import math

import numpy as np

# ---------------------------------------------------------------------------------------
# PRF (kernels/prf.py)
# ---------------------------------------------------------------------------------------

MASK64 = (1 << 64) - 1
W1 = 0x9E3779B97F4A7C15
W2 = 0xD1B54A32D192ED03
W3 = 0x8CB92BA72F3D8DD7
M1 = 0xBF58476D1CE4E5B9
M2 = 0x94D049BB133111EB
ROTATE_LEFT = 29


def mix(z):
    """SplitMix64 finaliser (Stafford's Mix13) on a Python int modulo 2**64."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * M1) & MASK64
    z = ((z ^ (z >> 27)) * M2) & MASK64
    return z ^ (z >> 31)


def rotl64(x, r):
    x &= MASK64
    return ((x << r) | (x >> (64 - r))) & MASK64


def prf_u64(key, entity_id, draw_index):
    """The documented construction, one step per line, as Python ints."""
    key, entity_id, draw_index = int(key), int(entity_id), int(draw_index)
    x = mix(key + entity_id * W1)
    x = mix(x ^ ((draw_index * W2 + rotl64(key, ROTATE_LEFT)) & MASK64))
    return mix(x + W3)


def prf_unit(key, entity_id, draw_index):
    """Top 53 bits of the uint64 scaled by 2**-53 (both steps exact in float64)."""
    return float(prf_u64(key, entity_id, draw_index) >> 11) * 2.0**-53


def u64_range(key, id_start, count, draw_index):
    values = [prf_u64(key, (int(id_start) + i) & MASK64, draw_index) for i in range(count)]
    return np.array(values, dtype=np.uint64)


def uniform_range(key, id_start, count, draw_index):
    values = [prf_unit(key, (int(id_start) + i) & MASK64, draw_index) for i in range(count)]
    return np.array(values, dtype=np.float64)


def uniform_ids(key, entity_ids, draw_index):
    values = [prf_unit(key, int(e) & MASK64, draw_index) for e in entity_ids]
    return np.array(values, dtype=np.float64)


# ---------------------------------------------------------------------------------------
# Samplers (kernels/sample.py)
# ---------------------------------------------------------------------------------------


def normalised_cdf(weights):
    """Running sums (left to right) divided by the row total; last entry forced to 1.0.

    A row of all zeros divides 0 by 0; like the kernel, that gives NaN (and the final 1.0).
    """
    rows = []
    for row in np.asarray(weights, dtype=np.float64).tolist():
        running = []
        total = 0.0
        for w in row:
            total += w
            running.append(total)
        normed = [(r / total) if total != 0.0 else math.nan for r in running]
        if normed:
            normed[-1] = 1.0
        rows.append(normed)
    n_cats = np.asarray(weights).shape[1]
    return np.array(rows, dtype=np.float64).reshape(len(rows), n_cats)


def invert_cdf(cdf_row, u):
    """First category j with u < cdf_row[j]; the last one if none."""
    for j, c in enumerate(cdf_row):
        if u < c:
            return j
    return len(cdf_row) - 1


def categorical_range(key, id_start, draw_index, cdf, rows):
    cdf = np.asarray(cdf, dtype=np.float64).tolist()
    codes = []
    for i, row in enumerate(np.asarray(rows).tolist()):
        u = prf_unit(key, int(id_start) + i, draw_index)
        codes.append(invert_cdf(cdf[row], u))
    return np.array(codes, dtype=np.int16)


def poisson_inverse(lam, u):
    """Inversion by the recurrence P(k) = P(k-1) * lam / k from P(0) = exp(-lam).

    Returns the smallest k whose running CDF exceeds u; the walk gives up once past the
    mean the terms have fallen below 1e-300 (the kernel's documented guard).
    """
    if lam <= 0.0:
        return 0
    term = math.exp(-lam)
    running = term
    k = 0
    while not (u < running):
        k = k + 1
        term = term * (lam / k)
        running = running + term
        if term < 1e-300 and k > lam:
            return k
    return k


def poisson_range(key, id_start, draw_index, lam):
    values = [
        poisson_inverse(m, prf_unit(key, int(id_start) + i, draw_index))
        for i, m in enumerate(np.asarray(lam, dtype=np.float64).tolist())
    ]
    return np.array(values, dtype=np.int64)


def capped_poisson_counts(key, id_start, row_type, row_cell, excess, floor, cap):
    """Column by column: floor + Poisson(excess of the row's type and cell), capped."""
    n_cols = floor.shape[1]
    counts = np.zeros((len(row_type), n_cols), dtype=np.int16)
    clipped = np.zeros(n_cols, dtype=np.int64)
    for j in range(n_cols):
        wanted = floor[row_type, j] + poisson_range(key, id_start, j,
                                                    excess[row_type, j, row_cell])
        counts[:, j] = np.minimum(wanted, cap[row_type, j])
        clipped[j] = wanted.sum() - counts[:, j].sum(dtype=np.int64)
    return counts, clipped


def exponential_ids(key, entity_ids, draw_index):
    """Exp(1) by inversion, -log1p(-u), one uniform per id."""
    values = [-math.log1p(-prf_unit(key, int(i), draw_index)) for i in entity_ids]
    return np.array(values, dtype=np.float64)


def geometric_inverse(p, u):
    """Failures before the first success: floor(log(1 - u) / log(1 - p))."""
    if p >= 1.0:
        return 0
    return int(math.floor(math.log1p(-u) / math.log1p(-p)))


def geometric_range(key, id_start, draw_index, p):
    values = [
        geometric_inverse(q, prf_unit(key, int(id_start) + i, draw_index))
        for i, q in enumerate(np.asarray(p, dtype=np.float64).tolist())
    ]
    return np.array(values, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# CSR (kernels/csr.py)
# ---------------------------------------------------------------------------------------


def ptr_from_counts(counts):
    ptr = [0]
    for c in np.asarray(counts).tolist():
        ptr.append(ptr[-1] + c)
    return np.array(ptr, dtype=np.int64)


def ptr_from_grouped(owner, n_owners):
    return ptr_from_counts(np.bincount(owner, minlength=n_owners))


def csr_from_owners(owner_ids, n_owners):
    groups = [[] for _ in range(n_owners)]
    for i, o in enumerate(np.asarray(owner_ids).tolist()):
        groups[o].append(i)
    ptr = ptr_from_counts([len(g) for g in groups])
    members = [i for g in groups for i in g]
    return ptr, np.array(members, dtype=np.int64)


def csr_rows(ptr, indices):
    """The CSR as a list of Python lists, one per row."""
    ptr = np.asarray(ptr).tolist()
    indices = np.asarray(indices).tolist()
    return [indices[ptr[r] : ptr[r + 1]] for r in range(len(ptr) - 1)]


def csr_from_rows(rows):
    ptr = ptr_from_counts([len(r) for r in rows])
    return ptr, np.array([c for r in rows for c in r], dtype=np.int64)


def transpose(ptr, indices, n_cols):
    columns = [[] for _ in range(n_cols)]
    for r, row in enumerate(csr_rows(ptr, indices)):
        for c in row:
            columns[c].append(r)
    return csr_from_rows(columns)


def degrees(ptr):
    ptr = np.asarray(ptr).tolist()
    return np.array([ptr[i + 1] - ptr[i] for i in range(len(ptr) - 1)], dtype=np.int64)


def owners_from_ptr(ptr):
    ptr = np.asarray(ptr).tolist()
    out = []
    for owner in range(len(ptr) - 1):
        out.extend([owner] * (ptr[owner + 1] - ptr[owner]))
    return np.array(out, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Allocation (kernels/allocate.py)
# ---------------------------------------------------------------------------------------


def largest_remainder(total, weights, tie_values):
    """Floors of ``total * (w / sum(w))`` plus leftover units by largest remainder.

    The sum is accumulated left to right in float64 like the kernel (so the floors are the
    kernel's floors). Leftover units go one each to slots in order of (remainder desc,
    tie desc, index asc), cycling should there be more units than slots.
    """
    weights = np.asarray(weights, dtype=np.float64).tolist()
    ties = np.asarray(tie_values).tolist()
    n = len(weights)
    total = int(total)
    s = 0.0
    for w in weights:
        s += w
    if n == 0 or total <= 0 or not s > 0.0:
        return np.zeros(n, dtype=np.int64)
    out = []
    rem = []
    for w in weights:
        quota = float(total) * (w / s)
        floor = math.floor(quota)
        out.append(floor)
        rem.append(quota - floor)
    left = total - sum(out)
    if left > 0:
        order = sorted(range(n), key=lambda i: (-rem[i], -ties[i], i))
        for r in range(left):
            out[order[r % n]] += 1
    assert left >= 0, "floors above the total: the kernel refuses such totals"
    return np.array(out, dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Caps (kernels/caps.py)
# ---------------------------------------------------------------------------------------


def enforce_cap(counts, cap, rank_keys):
    """Naive hard cap: clip at ``cap``, then hand the overflow one unit at a time to
    holders with headroom in (rank, index) order, round after round; drop the rest."""
    capped = [int(c) for c in counts]
    overflow = sum(max(c - cap, 0) for c in capped)
    capped = [min(c, cap) for c in capped]
    order = sorted(range(len(capped)), key=lambda i: (float(rank_keys[i]), i))
    left = overflow
    progress = True
    while left and progress:
        progress = False
        for i in order:
            if left and 1 <= capped[i] < cap:
                capped[i] += 1
                left -= 1
                progress = True
    return np.array(capped, dtype=np.int64), overflow, overflow - left, left


def bounded_pareto_inverse(alpha, low, high, u):
    """floor of ``low * (1 - u * (1 - (low/high)**alpha))**(-1/alpha)``, at most ``high``."""
    if high <= low:
        return int(low)
    x = low * math.pow(1.0 - u * (1.0 - math.pow(low / high, alpha)), -1.0 / alpha)
    return min(math.floor(x), int(high))


# ---------------------------------------------------------------------------------------
# Permutations (kernels/permute.py)
# ---------------------------------------------------------------------------------------


def feistel_index(key, n, x):
    """Four-round balanced Feistel on 2h bits (smallest h >= 1 with 4**h >= n), PRF rounds,
    applied again while the value is outside [0, n)."""
    h = 1
    while 4**h < n:
        h += 1
    mask = (1 << h) - 1

    def once(v):
        left, right = v >> h, v & mask
        for r in range(4):
            left, right = right, left ^ (prf_u64(key, right, r) & mask)
        return (left << h) | right

    y = once(int(x))
    while y >= n:
        y = once(y)
    return y


# ---------------------------------------------------------------------------------------
# Device graph (kernels/graph.py)
# ---------------------------------------------------------------------------------------


def household_links(key, device_lo, primary, party_lo, party_country, country_ptr, block_size,
                    share_probability, max_parties):
    """Per device: the primary, then (if shared) 1 + floor(u1 * (max - 1)) co-users, capped
    by the household group (country x block) size minus one, as the parties following the
    primary (cyclically within the group) after a random offset."""
    n_parties = party_lo + len(party_country)
    rows = []
    for i, p in enumerate(np.asarray(primary).tolist()):
        d = device_lo + i
        c = int(party_country[p - party_lo])
        block_lo = (p // block_size) * block_size
        lo = max(int(country_ptr[c]), block_lo)
        hi = min(int(country_ptr[c + 1]), block_lo + block_size, n_parties)
        row = [p]
        if prf_unit(key, d, 0) < share_probability:
            wanted = 1 + int(prf_unit(key, d, 1) * (max_parties - 1))
            others = hi - lo - 1
            extra = min(wanted, others)
            if extra > 0:
                start = int(prf_unit(key, d, 2) * others)
                for j in range(extra):
                    row.append(lo + (p - lo + 1 + (start + j) % others) % (hi - lo))
        rows.append(row)
    return csr_from_rows(rows)


def ip_capacity(key, group, ip_type, index, alpha, low, high):
    u = prf_unit(key, group * 2**32 + index, ip_type)
    return bounded_pareto_inverse(float(alpha[ip_type]), float(low[ip_type]),
                                  float(high[ip_type]), u)


def pool_capacity(key, group, n_ips, mix_row, alpha, low, high):
    """Capacities of a group's first n IPs, type by type (largest remainder of the mix)."""
    per_type = largest_remainder(n_ips, mix_row, np.zeros(len(mix_row)))
    return [(t, ip_capacity(key, group, t, i, alpha, low, high))
            for t in range(len(mix_row)) for i in range(per_type[t])]


def ips_per_group(key, links, group_region, mix, alpha, low, high):
    """Smallest n whose pool capacity reaches the links, by a linear scan."""
    out = []
    for g, need in enumerate(np.asarray(links).tolist()):
        n = 0
        while need and sum(c for _, c in pool_capacity(key, g, n, mix[group_region[g]],
                                                        alpha, low, high)) < need:
            n += 1
        out.append(n)
    return np.array(out, dtype=np.int64)


def assign_links(position_key, slot_key, group_device_ptr, group_devices, device_link_ptr, ip_ptr,
                 capacity):
    """Positions by permuting each group's links; the first n positions take IP first slots,
    the rest take the remaining slots (listed IP by IP) through a second permutation."""
    ip_of_link = [None] * int(device_link_ptr[-1])
    first_link = [None] * int(ip_ptr[-1])
    for g in range(len(group_device_ptr) - 1):
        links = [link for d in group_devices[group_device_ptr[g]:group_device_ptr[g + 1]]
                 for link in range(device_link_ptr[d], device_link_ptr[d + 1])]
        ips = list(range(ip_ptr[g], ip_ptr[g + 1]))
        if not ips:
            continue
        extra_slots = [j for j in ips for _ in range(int(capacity[j]) - 1)]
        position_key_g = prf_u64(position_key, g, 0)
        slot_key_g = prf_u64(slot_key, g, 0)
        for i, link in enumerate(links):
            position = feistel_index(position_key_g, len(links), i)
            if position < len(ips):
                ip_of_link[link] = ips[position]
                first_link[ips[position]] = link
            else:
                ip_of_link[link] = extra_slots[
                    feistel_index(slot_key_g, len(extra_slots), position - len(ips))]
    return np.array(ip_of_link, dtype=np.int64), np.array(first_link, dtype=np.int64)


def drop_repeats_within_rows(ptr, indices):
    rows, kept = [], []
    for row in csr_rows(ptr, indices):
        seen = []
        for c in row:
            kept.append(c not in seen)
            if c not in seen:
                seen.append(c)
        rows.append(seen)
    new_ptr, new_indices = csr_from_rows(rows)
    return new_ptr, new_indices, np.array(kept, dtype=bool)


def count_flagged(ptr, indices, flag):
    return np.array([sum(bool(flag[c]) for c in row) for row in csr_rows(ptr, indices)],
                    dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Risk uplift (kernels/uplift.py)
# ---------------------------------------------------------------------------------------


def sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def clamped_logits(base, shift, low, high):
    return np.array([min(max(base + s, low), high) for s in np.asarray(shift).tolist()])


def expected_prevalence(base, shift, counts, low, high):
    logits = clamped_logits(base, shift, low, high)
    total, n = 0.0, 0.0
    for c, logit in enumerate(logits.tolist()):
        total += float(counts[c]) * sigmoid(logit)
        n += float(counts[c])
    return total / n


def draw_roles(key, id_start, code, logit_of_code, risky_roles, risky_cdf, clean_roles,
               clean_cdf):
    out = []
    for i, c in enumerate(np.asarray(code).tolist(), start=id_start):
        pick = prf_unit(key, i, 1)
        if prf_unit(key, i, 0) < sigmoid(float(logit_of_code[c])):
            out.append(int(risky_roles[invert_cdf(risky_cdf[0], pick)]))
        else:
            out.append(int(clean_roles[invert_cdf(clean_cdf[0], pick)]))
    return np.array(out, dtype=np.int16)


# ---------------------------------------------------------------------------------------
# The 6B probe (kernels/flows.py)
# ---------------------------------------------------------------------------------------


def sample_flows(key, flow_ids, payer, party_account_ptr, account_instrument_ptr,
                 party_device_ptr, party_device_ids, device_ip_ptr, device_ip_ids, n_merchants):
    def pick(ptr, owner, f, draw):
        n = int(ptr[owner + 1] - ptr[owner])
        return None if n == 0 else int(ptr[owner]) + int(prf_unit(key, f, draw) * n)

    rows = []
    for f, p in zip(np.asarray(flow_ids).tolist(), np.asarray(payer).tolist()):
        a = pick(party_account_ptr, p, f, 1)
        i = pick(account_instrument_ptr, a, f, 2)
        slot = pick(party_device_ptr, p, f, 3)
        d = None if slot is None else int(party_device_ids[slot])
        ip_slot = None if d is None else pick(device_ip_ptr, d, f, 4)
        # The IP of that rank among the device's IPs by id.
        ip = None if ip_slot is None else int(np.sort(
            device_ip_ids[device_ip_ptr[d]:device_ip_ptr[d + 1]])[ip_slot - device_ip_ptr[d]])
        m = int(prf_unit(key, f, 5) * n_merchants)
        rows.append([p, a, -1 if i is None else i, -1 if d is None else d,
                     -1 if ip is None else ip, m])
    return np.array(rows, dtype=np.int64).reshape(len(flow_ids), 6)


def label_flows(key, flow_ids, flows, columns, risky, weights, base_logit):
    fraud, touches = [], []
    for f, row in zip(np.asarray(flow_ids).tolist(), np.asarray(flows).tolist()):
        logit, touched = base_logit, False
        for (column, offset), weight in zip(np.asarray(columns).tolist(), weights):
            entity = row[column]
            if entity >= 0 and risky[offset + entity]:
                logit += float(weight)
                touched = True
        fraud.append(prf_unit(key, f, 6) < sigmoid(logit))
        touches.append(touched)
    return np.array(fraud, dtype=bool), np.array(touches, dtype=bool)


# ---------------------------------------------------------------------------------------
# The label-leakage audit (kernels/histograms.py)
# ---------------------------------------------------------------------------------------


def label_histograms(cells, values, n_values, n_bins, n_clusters, counts):
    exact = np.zeros((2, n_values), dtype=np.int64)
    per_cluster = np.zeros((n_clusters, 2 * n_bins), dtype=np.int64)
    for cell, value in zip(np.asarray(cells).tolist(), np.asarray(values).tolist()):
        cluster, label = divmod(cell, 2)
        value = min(max(value, 0), n_values - 1)
        exact[label, value] += 1
        bin_ = min(value, n_bins - 1) if counts else value * n_bins // n_values
        per_cluster[cluster, label * n_bins + bin_] += 1
    return exact, per_cluster


def owned_cells(owner, owner_cell, code, n_codes, n_owner_cells):
    cells = []
    for o, c in zip(np.asarray(owner).tolist(), np.asarray(code).tolist()):
        cell = owner_cell[o] if 0 <= o < len(owner_cell) else -1
        cells.append(c * n_owner_cells + cell if cell >= 0 and 0 <= c < n_codes else -1)
    return np.array(cells, dtype=np.int64)
