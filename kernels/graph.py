"""S4's device graph: household sharing, IP pools sized to their links, links to capacity slots.

Work is split into groups (a canonical block x a region for IPs; a canonical block x a
country for households) that never look at each other, so one group can be computed
alone and the result does not depend on how groups are scheduled.

IP capacities: IP ``k`` of type ``t`` in group ``g`` can serve
``capacity(g, t, k) = bounded_pareto_inverse(alpha[t], low[t], high[t], prf(g * 2**32 + k, t))``
devices, a pure function of its coordinates. A group with ``L`` links gets the smallest
number of IPs ``n`` (types split by largest remainder of the region's mix) whose total
capacity reaches ``L``; links then fill capacity slots through keyed permutations, so no
IP ever serves more devices than its capacity, and every IP serves at least one.
"""
import numpy as np

from ._jit import njit
from .allocate import largest_remainder_law
from .permute import feistel_at, round_table
from .prf import prf_u64, prf_unit
from .sample import bounded_pareto_inverse

_GROUP_STRIDE = 2**32  # entity id of an IP's capacity draw: group * 2**32 + index in type
_INITIAL_IPS = 64


@njit
def household_links(key, device_lo, primary, party_lo, party_country, country_ptr, block_size,
                    share_probability, max_parties):
    """Parties using each device: its primary party, then co-users of the same household.

    Device ``d`` here is device id ``device_lo + d`` (the entity id of its draws);
    ``party_country[i]`` is the country of party ``party_lo + i`` and must cover whole
    canonical blocks, so one block's devices can be linked alone.

    A device is shared with probability ``share_probability`` (draw 0); a shared device has
    ``1 + floor(u * (max_parties - 1))`` co-users (draw 1), taken as consecutive parties
    after a random offset (draw 2) within the primary's country and canonical block
    (wrapping around, never the primary itself, never more than the group holds).

    Returns ``(ptr, parties)``: the CSR ``device -> parties``, primary first.
    """
    n = primary.shape[0]
    k = np.uint64(key)
    n_parties = party_lo + party_country.shape[0]
    lo = np.empty(n, dtype=np.int64)
    size = np.empty(n, dtype=np.int64)
    extra = np.zeros(n, dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    for d in range(n):
        p = primary[d]
        c = party_country[p - party_lo]
        block_lo = (p // block_size) * block_size
        block_hi = min(block_lo + block_size, n_parties)
        lo[d] = max(country_ptr[c], block_lo)
        size[d] = min(country_ptr[c + 1], block_hi) - lo[d]
        # All three draws are made for every device, so the audit counts 3 per device.
        device = np.uint64(device_lo + d)
        shared = prf_unit(k, device, np.uint64(0)) < share_probability
        wanted = 1 + np.int64(prf_unit(k, device, np.uint64(1)) * (max_parties - 1))
        start[d] = np.int64(prf_unit(k, device, np.uint64(2)) * max(size[d] - 1, 1))
        if shared:
            extra[d] = min(wanted, size[d] - 1)
    ptr = np.empty(n + 1, dtype=np.int64)
    ptr[0] = 0
    for d in range(n):
        ptr[d + 1] = ptr[d] + 1 + extra[d]
    parties = np.empty(ptr[n], dtype=np.int64)
    for d in range(n):
        p = primary[d]
        parties[ptr[d]] = p
        if extra[d] > 0:
            others = size[d] - 1
            position = p - lo[d]
            for j in range(extra[d]):
                step = 1 + (start[d] + j) % others
                parties[ptr[d] + 1 + j] = lo[d] + (position + step) % size[d]
    return ptr, parties


@njit
def ip_capacity(key, group, ip_type, index, alpha, low, high):
    """Devices IP ``index`` of type ``ip_type`` in ``group`` can serve (see module docstring)."""
    u = prf_unit(key, np.uint64(group * _GROUP_STRIDE + index), np.uint64(ip_type))
    return bounded_pareto_inverse(alpha[ip_type], low[ip_type], high[ip_type], u)


@njit
def _total_capacity(key, group, n_ips, mix, alpha, low, high, prefix, filled):
    """Capacity of the first ``n_ips`` IPs of a group. ``prefix[t, k]`` is the capacity of
    the first ``k`` IPs of type ``t``, drawn as far as ``filled[t]`` (the draws read): each
    capacity is drawn once however often the search asks (capacities are integers, so the
    sums are exact in any order)."""
    per_type = largest_remainder_law(n_ips, mix)
    total = 0
    for t in range(mix.shape[0]):
        while filled[t] < per_type[t]:
            k = filled[t]
            prefix[t, k + 1] = prefix[t, k] + ip_capacity(key, group, t, k, alpha, low, high)
            filled[t] = k + 1
        total += prefix[t, per_type[t]]
    return total


@njit
def ips_per_group(key, links, group_region, mix, alpha, low, high):
    """The number of IPs of each group: the smallest ``n`` whose capacity reaches its links.

    ``links[g]`` is the number of device -> IP links of group ``g``, ``mix[group_region[g]]``
    its region's ip_type mix. Every capacity is at least 1, so ``n <= links[g]``. The search
    keeps ``capacity(lo) < links <= capacity(hi)`` and returns ``hi``, so the chosen ``n``
    always has enough slots and ``n - 1`` IPs would not.

    Returns ``(n_ips, draws)``: per group, the IP count and the number of distinct capacity
    draws the search read (for the RNG audit).
    """
    n_groups = links.shape[0]
    out = np.zeros(n_groups, dtype=np.int64)
    draws = np.zeros(n_groups, dtype=np.int64)
    for g in range(n_groups):
        out[g], draws[g] = _ips_for_group(key, g, links[g], mix[group_region[g]],
                                          alpha, low, high)
    return out, draws


@njit
def _ips_for_group(key, g, need, row, alpha, low, high):
    if need == 0:
        return 0, 0
    # Only prefix[t, :filled[t] + 1] is ever read, and written first: no need to clear the
    # rest (a group's search stops far below ``need`` IPs).
    prefix = np.empty((row.shape[0], need + 1), dtype=np.int64)
    prefix[:, 0] = 0
    filled = np.zeros(row.shape[0], dtype=np.int64)
    lo = 0
    hi = min(need, _INITIAL_IPS)
    while _total_capacity(key, g, hi, row, alpha, low, high, prefix, filled) < need:
        lo = hi
        hi = min(need, 2 * hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _total_capacity(key, g, mid, row, alpha, low, high, prefix, filled) >= need:
            hi = mid
        else:
            lo = mid
    draws = 0
    for t in range(filled.shape[0]):
        draws += filled[t]
    return hi, draws


@njit
def ip_types_and_capacities(key, ip_ptr, group_region, mix, alpha, low, high):
    """Type code and capacity of every IP; the IPs of a group are laid out type by type."""
    n_ips = ip_ptr[-1]
    ip_type = np.empty(n_ips, dtype=np.int16)
    capacity = np.empty(n_ips, dtype=np.int64)
    for g in range(ip_ptr.shape[0] - 1):
        _fill_pool(key, g, ip_ptr[g], ip_ptr[g + 1], mix[group_region[g]], alpha, low,
                   high, ip_type, capacity)
    return ip_type, capacity


@njit
def _fill_pool(key, g, start, stop, row, alpha, low, high, ip_type, capacity):
    per_type = largest_remainder_law(stop - start, row)
    j = start
    for t in range(row.shape[0]):
        for index in range(per_type[t]):
            ip_type[j] = t
            capacity[j] = ip_capacity(key, g, t, index, alpha, low, high)
            j += 1


@njit
def assign_links(position_key, slot_key, group_device_ptr, group_devices, device_link_ptr, ip_ptr,
                 capacity):
    """The IP of every link, filling capacity slots through two keyed permutations.

    The links of group ``g`` (its devices ``group_devices[group_device_ptr[g]:...]`` in order,
    each with its links ``device_link_ptr[d]:device_link_ptr[d+1]``) get positions by a
    permutation of ``[0, L)``. Positions below ``n`` (the group's IP count) take the first
    slot of IP ``position``; the others take one of the remaining ``C - n`` slots through a
    permutation of ``[0, C - n)``. Group ``g`` keys them with ``prf_u64(position_key, g, 0)``
    and ``prf_u64(slot_key, g, 0)``. Each slot takes at most one link, so IP ``j`` serves
    at most ``capacity[j]`` links, and at least one because ``L >= n``.

    Returns ``(ip_of_link, first_link)``: the IP id of each link (indexed like
    ``device_link_ptr``) and, for each IP, the link that took its first slot.
    """
    ip_of_link = np.empty(device_link_ptr[-1], dtype=np.int64)
    first_link = np.empty(ip_ptr[-1], dtype=np.int64)
    for g in range(group_device_ptr.shape[0] - 1):
        _assign_group(position_key, slot_key, g, group_device_ptr, group_devices,
                      device_link_ptr, ip_ptr, capacity, ip_of_link, first_link)
    return ip_of_link, first_link


@njit
def _assign_group(position_key, slot_key, g, group_device_ptr, group_devices, device_link_ptr,
                  ip_ptr, capacity, ip_of_link, first_link):
    n = ip_ptr[g + 1] - ip_ptr[g]
    if n == 0:
        return
    # Typed counters: a literal 0 would make Numba also compile feistel_at for Literal[0].
    n_links = np.int64(0)
    for m in range(group_device_ptr[g], group_device_ptr[g + 1]):
        d = group_devices[m]
        n_links += device_link_ptr[d + 1] - device_link_ptr[d]
    # The IP of each slot beyond the IPs' first, in IP order: about as many as links
    # (ips_per_group takes the smallest pool that holds them), and a lookup per link is
    # cheaper than a bisection over the IPs (41 vs 93 ms for a block at full).
    n_extra = np.int64(0)
    for j in range(n):
        n_extra += capacity[ip_ptr[g] + j] - 1
    slot_ip = np.empty(n_extra, dtype=np.int32)
    slot = 0
    for j in range(n):
        for _ in range(capacity[ip_ptr[g] + j] - 1):
            slot_ip[slot] = j
            slot += 1
    # Both permutations are evaluated over the whole group: their round functions are
    # tabulated once (round_table), which keeps the images and saves most PRF calls.
    positions = round_table(prf_u64(np.uint64(position_key), np.uint64(g), np.uint64(0)),
                            n_links)
    slots = round_table(prf_u64(np.uint64(slot_key), np.uint64(g), np.uint64(0)),
                        max(n_extra, np.int64(1)))
    i = np.int64(0)
    for m in range(group_device_ptr[g], group_device_ptr[g + 1]):
        d = group_devices[m]
        for link in range(device_link_ptr[d], device_link_ptr[d + 1]):
            position = feistel_at(positions, n_links, i)
            if position < n:
                j = position
                first_link[ip_ptr[g] + j] = link
            else:
                j = slot_ip[feistel_at(slots, n_extra, position - n)]
            ip_of_link[link] = ip_ptr[g] + j
            i += 1


