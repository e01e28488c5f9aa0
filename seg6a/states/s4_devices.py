"""S4 — devices and IPs: a device graph with prior-aligned IP mix and bounded reuse.

Devices: each party owns ``min_count + Poisson(mean - min_count)`` devices (mean by party
type times a segment factor, the excess over ``min_count`` modulated by country,
``seg6a.modulation``), capped at ``max_count``; device type by party type, OS family
by device type. A shared device also serves co-users of its primary's household (country
and canonical block), at most ``max_parties_per_device`` parties in all.

IPs: a device is linked with probability ``coverage_target`` and then has
``1 + Poisson(mean - 1)`` links (capped). IPs live in groups of (canonical block, region):
a group's IP count is the smallest whose total capacity (bounded Pareto per ip_type) holds
its links, ip types are split by largest remainder of the region's ``ip_type_mix`` (so the
realised mix is the prior up to rounding), and links fill capacity slots through keyed
Feistel permutations. Devices per IP therefore never exceed the capacity law's bound, the
tail follows the law instead of being clipped, and every IP serves at least one device.
An IP's country is that of the device that took its first slot.
"""
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter

import numpy as np
import pyarrow as pa

from ..errors import Seg6aError
from ..kernels.csr import drop_repeats_within_rows, owners_from_ptr, ptr_from_counts, transpose
from ..kernels.csr import csr_from_owners
from ..kernels.graph import (assign_links, household_links, ip_types_and_capacities,
                             ips_per_group)
from ..kernels.prf import uniform_range
from ..kernels.sample import categorical_range, normalised_cdf, poisson_range
from ..engine import LOCAL, BlockResult, join, spans
from ..modulation import MEAN, modulated
from ..rng import Substreams
from ..tables import Dataset, block_offsets_for, dictionary_column, encode_part

STATE = "S4"
DEVICE_IP_PRIORS = "device_ip_priors_6A.v1.yaml"
DATASETS = ("s4_device_base_6A", "s4_device_party_links_6A", "s4_ip_base_6A",
            "s4_device_ip_links_6A")
PARTY_LINK_ROLES = ("PRIMARY_OWNER", "SHARED_USER")
IP_LINK_ROLES = ("PRIMARY", "SECONDARY")
_COUNT, _TYPE, _OS = "s4.device.count", "s4.device.type", "s4.device.os"
_SHARE, _COVER, _LINKS = "s4.device.share", "s4.ip.coverage", "s4.ip.links"
_CAPACITY, _POSITION, _SLOT = "s4.ip.capacity", "s4.ip.position", "s4.ip.slot"
_IP_ORDER = "s4.ip.order"
# What the run sums (or maxes) of each block's DeviceBlock.
_BLOCK_SUMS = ("capacity_draws", "n_links", "n_ips", "ips_per_group", "linked_devices",
               "capacity_total", "shared_devices", "max_devices_per_ip", "n_kept",
               "n_party_links")


class DeviceGraph:
    """Devices, IPs and their links, kept per canonical block; the run's arrays (ids are row
    indices) are joined from the blocks on first use.

    Attributes
    ----------
    primary_party_id : int64 array
        Owner of each device; devices are in owner order.
    device_type, os_family, device_region : int16 codes per device.
    party_device_ptr : int64 array
        CSR ``party -> devices`` (owned devices).
    device_party_ptr, device_party_ids : int64 arrays
        CSR ``device -> parties`` (primary first, then household co-users).
    ip_type, ip_region, ip_country, ip_asn_class : int16 codes per IP.
    device_ip_ptr, device_ip_ids : int64 arrays
        CSR ``device -> ips``.
    ip_device_ptr, ip_device_ids : int64 arrays
        CSR ``ip -> devices``, the transpose.
    device_block_ptr, ip_block_ptr : int64 arrays
        Devices (IPs) of canonical block ``b`` are ids ``ptr[b]:ptr[b+1]``.
    device_ip_primary : bool array
        Per ``device -> ips`` entry: whether it is the device's primary IP.
    blocks : list
        Per canonical block, the handle on the engine of its ``DeviceBlock``.
    counters : dict
        Construction evidence for the receipt (links drawn, repeats dropped, slots unused).
    country_modulation : list of dict
        The country deltas applied to the device counts (``seg6a.modulation``).
    """

    def __init__(self, blocks, device_block_ptr, ip_block_ptr, asn_of_type, vocabularies,
                 counters, engine=LOCAL):
        self.blocks = blocks  # handles on the engine
        self._engine = engine
        self.device_block_ptr = device_block_ptr
        self.ip_block_ptr = ip_block_ptr
        self._asn_of_type = asn_of_type
        self.device_types, self.os_families, self.ip_types, self.asn_classes = vocabularies
        self.counters = counters

    @property
    def n_devices(self):
        return int(self.device_block_ptr[-1])

    @property
    def n_ips(self):
        return int(self.ip_block_ptr[-1])

    def _parts(self, name):
        return self._engine.map(attrgetter(name), self.blocks)

    def _join(self, name):
        return join(self._parts(name))

    def _join_ids(self, name, offsets):
        return join([ids + offsets[b] for b, ids in enumerate(self._parts(name))])

    @cached_property
    def party_device_ptr(self):
        return ptr_from_counts(self._join("owned"))

    @cached_property
    def primary_party_id(self):
        return owners_from_ptr(self.party_device_ptr)

    @cached_property
    def device_type(self):
        return self._join("device_type")

    @cached_property
    def os_family(self):
        return self._join("os_family")

    @cached_property
    def device_region(self):
        return self._join("device_region")

    @cached_property
    def device_party_ptr(self):
        return _concat_ptr(self._parts("device_party_ptr"))

    @cached_property
    def device_party_ids(self):
        return self._join("device_party_ids")

    @cached_property
    def ip_type(self):
        return self._join("ip_type")

    @cached_property
    def ip_region(self):
        return self._join("ip_region")

    @cached_property
    def ip_country(self):
        return self._join("ip_country")

    @cached_property
    def ip_asn_class(self):
        return self._asn_of_type[self.ip_type]

    @cached_property
    def device_ip_ptr(self):
        return _concat_ptr(self._parts("device_ip_ptr"))

    @cached_property
    def device_ip_ids(self):
        return self._join_ids("device_ip_ids", self.ip_block_ptr)

    @cached_property
    def ip_device_ptr(self):
        return _concat_ptr(self._parts("ip_device_ptr"))

    @cached_property
    def ip_device_ids(self):
        return self._join_ids("ip_device_ids", self.device_block_ptr)

    @cached_property
    def device_ip_primary(self):
        return self._join("device_ip_primary")


def _mix_rows(mixes, rows, columns):
    """A 2-D table ``mixes[row][column]`` in vocabulary order."""
    return np.array([[float(mixes[row][col]) for col in columns] for row in rows])


def run(sealed, parties, perf, engine=LOCAL):
    """Build the device graph. Returns ``(DeviceGraph, [Dataset], Substreams)``."""
    rng = Substreams(STATE, sealed.manifest_fingerprint, sealed.parameter_hashes[STATE], sealed.seed)
    with perf.substep(STATE, "load_contracts_inputs"):
        priors = sealed.config[DEVICE_IP_PRIORS]
        device_types, os_families = tuple(priors["device_types"]), tuple(priors["os_families"])
        ip_types, asn_classes = tuple(priors["ip_types"]), tuple(priors["asn_classes"])
        per_type = [priors["devices_per_party"][t] for t in parties.party_types]
        excess, modulation = device_excess_table(priors, parties.party_types, parties.segments,
                                                 parties.segment_party_type, parties.population,
                                                 sealed.world)
        min_count = np.array([spec["min_count"] for spec in per_type], dtype=np.int64)
        max_count = np.array([spec["max_count"] for spec in per_type], dtype=np.int64)
        type_cdf = normalised_cdf(_mix_rows({t: s["device_type_mix"] for t, s in
                                             zip(parties.party_types, per_type)},
                                            parties.party_types, device_types))
        os_cdf = normalised_cdf(_mix_rows(priors["os_mix_by_device_type"], device_types,
                                          os_families))
        ip_mix = _mix_rows(priors["ip_type_mix"], parties.regions, ip_types)
        asn_of_type = np.array([asn_classes.index(priors["asn_class_by_ip_type"][t])
                                for t in ip_types], dtype=np.int16)
        linkage = priors["linkage"]
        laws = [linkage["capacity_law"][t] for t in ip_types]
        alpha = np.array([law["alpha"] for law in laws], dtype=np.float64)
        low = np.array([law["min"] for law in laws], dtype=np.float64)
        high = np.array([law["max"] for law in laws], dtype=np.float64)
        links_spec = linkage["ip_links_per_linked_device"]
        sharing = priors["sharing"]

    with perf.substep(STATE, "load_party_base") as event:
        n_parties = parties.n_parties
        block_size = sealed.scale.block_size
        bounds = block_offsets_for(n_parties, block_size)
        n_blocks = len(bounds) - 1
        starts = spans(bounds)[0]
        event["rows"] = n_parties

    with perf.substep(STATE, "plan_device_counts") as event:
        counts = engine.map(device_counts_block, starts, parties.blocks, key=rng.key(_COUNT),
                            excess=excess, min_count=min_count,
                            max_count=max_count, gather=False)
        rng.record(_COUNT, n_parties)
        per_block = np.array(engine.map(np.sum, counts), dtype=np.int64)
        party_device_ptr_at_blocks = ptr_from_counts(per_block)[:-1]
        n_devices = int(per_block.sum())
        event["rows"] = n_devices

    n_regions = len(parties.regions)
    with perf.substep(STATE, "plan_ip_counts") as event:
        keys = {label: rng.key(label) for label in (_TYPE, _OS, _SHARE, _COVER, _LINKS,
                                                    _CAPACITY, _POSITION, _SLOT, _IP_ORDER)}
        pieces = engine.map(
            device_block, starts, party_device_ptr_at_blocks, counts, parties.blocks,
            keys=keys, type_cdf=type_cdf, os_cdf=os_cdf, country_ptr=parties.country_ptr,
            block_size=block_size, share_probability=float(sharing["shared_device_probability"]),
            max_parties=int(sharing["max_parties_per_device"]),
            coverage=float(linkage["coverage_target"]),
            links_mean=float(links_spec["mean_count"]), links_max=int(links_spec["max_count"]),
            n_groups=n_blocks * n_regions, ip_mix=ip_mix, alpha=alpha, low=low, high=high,
            gather=False)
        sums = [dict(zip(_BLOCK_SUMS, values)) for values in
                engine.map(attrgetter(*_BLOCK_SUMS), pieces)]
        rng.record(_TYPE, n_devices)
        rng.record(_OS, n_devices)
        rng.record(_SHARE, n_devices, 3)
        rng.record(_COVER, n_devices)
        rng.record(_LINKS, n_devices)
        # Capacities are pure functions of (group, type, index): the search and the final
        # pools read the same values, counted once.
        rng.record(_CAPACITY, sum(block["capacity_draws"] for block in sums))
        n_links = sum(block["n_links"] for block in sums)
        n_ips = sum(block["n_ips"] for block in sums)
        # A permutation evaluation counts as one draw: a position per link, and a slot per
        # link beyond the first slots.
        rng.record(_POSITION, n_links)
        rng.record(_SLOT, n_links - n_ips)
        rng.record(_IP_ORDER, n_ips)
        event["rows"] = n_ips

    with perf.substep(STATE, "emit_ip_base") as event:
        # IP groups are (block, region), block-major: block b's are b * n_regions ...
        ips_per_block = sum(block["ips_per_group"] for block in sums).reshape(n_blocks, n_regions)
        ip_block_ptr = ptr_from_counts(ips_per_block.sum(axis=1))
        device_block_ptr = np.append(party_device_ptr_at_blocks, n_devices)
        vocabularies = (device_types, os_families, ip_types, asn_classes, parties.party_types,
                        parties.countries, parties.regions)
        parts = engine.map(tables_block, starts, device_block_ptr[:-1], ip_block_ptr[:-1],
                           pieces, asn_of_type=asn_of_type, vocabularies=vocabularies,
                           gather=False)
        event["rows"] = n_ips

    with perf.substep(STATE, "emit_regions") as event:
        ph = sealed.parameter_hashes[STATE]
        rows = [per_block, [block["n_party_links"] for block in sums],
                np.diff(ip_block_ptr), [block["n_kept"] for block in sums]]
        datasets = [Dataset(name, STATE, engine.pick(parts, d),
                            rows[d], ph, engine) for d, name in enumerate(DATASETS)]
        event["rows"] = n_links

    with perf.substep(STATE, "merge_parts") as event:
        # Capacities never exceed the construction cap, so this holds by construction.
        top = max(block["max_devices_per_ip"] for block in sums)
        cap = priors["linkage"]["max_devices_per_ip"]
        if top > cap:
            raise Seg6aError(f"S4: an IP serves {top} devices, above "
                             f"linkage.max_devices_per_ip {cap} of {DEVICE_IP_PRIORS}")
        kept = sum(block["n_kept"] for block in sums)
        counters = {
            "devices": n_devices,
            "shared_devices": sum(block["shared_devices"] for block in sums),
            "linked_devices": sum(block["linked_devices"] for block in sums),
            "ips": n_ips,
            "ip_links_drawn": n_links,
            "ip_links_repeated_dropped": n_links - kept,
            "capacity_slots_unused": sum(block["capacity_total"] for block in sums) - n_links,
            "max_devices_per_ip": top,
        }
        graph = DeviceGraph(pieces, device_block_ptr, ip_block_ptr, asn_of_type,
                            vocabularies[:4], counters, engine)
        graph.country_modulation = modulation
        event["rows"] = kept
    return graph, datasets, rng


def _concat_ptr(ptrs):
    """One CSR pointer from consecutive blocks' pointers (each starting at 0)."""
    if len(ptrs) == 1:
        return ptrs[0]
    offsets = np.concatenate([[0], np.cumsum([ptr[-1] for ptr in ptrs])]).astype(np.int64)
    return np.concatenate([ptr[:-1] + offsets[b] for b, ptr in enumerate(ptrs)]
                          + [offsets[-1:]]).astype(np.int64)


def device_excess_table(priors, party_types, segments, segment_type, population, world):
    """The Poisson mean above ``min_count`` of the devices a party owns, per (country,
    segment code): the priors' ``mean_count`` (times the segment's multiplier) less the
    party type's ``min_count``, modulated by country (``seg6a.modulation``) conserving its
    mean over the parties of the segment; and the modulation applied. ``segment_type``:
    each segment's party type code."""
    per_type = [priors["devices_per_party"][t] for t in party_types]
    multiplier = priors.get("segment_mean_multiplier", {})
    excess = np.array([max(per_type[segment_type[s]]["mean_count"] * multiplier.get(name, 1.0)
                           - per_type[segment_type[s]]["min_count"], 0.0)
                       for s, name in enumerate(segments)])
    table, applied = modulated(excess, [party_types[t] for t in segment_type],
                               population.T.astype(np.float64),
                               priors.get("country_modulation", ()), "party_types", world, MEAN)
    return np.ascontiguousarray(table.T), applied


def device_counts_block(lo, parties, *, key, excess, min_count, max_count):
    """Devices owned by each party of one canonical block (ids ``lo ..``, S1's
    ``PartyBlock`` ``parties``)."""
    party_type = parties.party_type
    lam = excess[parties.country, parties.segment]
    drawn = poisson_range(key, int(lo), 0, lam)
    return np.minimum(min_count[party_type] + drawn, max_count[party_type])


@dataclass(frozen=True)
class DeviceBlock(BlockResult):
    """The devices and IPs of one canonical block, with block-local device, link and IP ids
    (party ids are global); ``DeviceGraph`` offsets them when it joins the blocks. ``owned``
    counts the devices of each party of the block."""

    owned: np.ndarray
    device_type: np.ndarray
    os_family: np.ndarray
    device_region: np.ndarray
    device_party_ptr: np.ndarray
    device_party_ids: np.ndarray
    device_ip_ptr: np.ndarray
    device_ip_ids: np.ndarray
    device_ip_primary: np.ndarray
    ip_device_ptr: np.ndarray
    ip_device_ids: np.ndarray
    ip_type: np.ndarray
    ip_region: np.ndarray
    ip_country: np.ndarray
    ips_per_group: np.ndarray
    linked_devices: int
    capacity_total: int
    capacity_draws: int
    shared_devices: int
    max_devices_per_ip: int
    n_links: int  # IP links drawn, before repeats were dropped

    @property
    def n_kept(self):
        return int(self.device_ip_ptr[-1])

    @property
    def n_ips(self):
        return self.ip_type.shape[0]

    @property
    def n_party_links(self):
        return self.device_party_ids.shape[0]


def device_block(lo, device_lo, counts, parties, *, keys, type_cdf, os_cdf, country_ptr,
                 block_size, share_probability, max_parties, coverage, links_mean, links_max,
                 n_groups, ip_mix, alpha, low, high):
    """Devices, households, IP pools and links of the parties ``lo ..`` (S1's ``PartyBlock``
    ``parties``) of one canonical block (see the module docstring). IP groups are (block,
    region), numbered globally (their PRF keys), so the groups of other blocks are passed
    empty."""
    lo, device_lo = int(lo), int(device_lo)
    party_type, party_country, party_region = parties.party_type, parties.country, parties.region
    n_regions = ip_mix.shape[0]
    owner = owners_from_ptr(ptr_from_counts(counts))  # block-local party index
    n = owner.shape[0]
    device_type = categorical_range(keys[_TYPE], device_lo, 0, type_cdf, party_type[owner])
    os_family = categorical_range(keys[_OS], device_lo, 0, os_cdf, device_type)
    device_party_ptr, device_party_ids = household_links(
        keys[_SHARE], device_lo, lo + owner, lo, party_country, country_ptr, block_size,
        share_probability, max_parties)
    device_region = party_region[owner]

    linked = uniform_range(keys[_COVER], device_lo, n, 0) < coverage
    extra = poisson_range(keys[_LINKS], device_lo, 0, np.full(n, links_mean - 1.0))
    device_links = np.where(linked, np.minimum(1 + extra, links_max), 0)
    device_link_ptr = ptr_from_counts(device_links)
    group = ((lo + owner) // block_size) * n_regions + device_region.astype(np.int64)
    group_links = np.bincount(group, weights=device_links, minlength=n_groups).astype(np.int64)
    group_region = (np.arange(n_groups) % n_regions).astype(np.int64)
    n_ips, capacity_draws = ips_per_group(keys[_CAPACITY], group_links, group_region, ip_mix,
                                          alpha, low, high)
    ip_ptr = ptr_from_counts(n_ips)
    ip_type, capacity = ip_types_and_capacities(keys[_CAPACITY], ip_ptr, group_region, ip_mix,
                                                alpha, low, high)

    group_device_ptr, group_devices = csr_from_owners(group, n_groups)
    ip_of_link, first_link = assign_links(keys[_POSITION], keys[_SLOT], group_device_ptr,
                                          group_devices, device_link_ptr, ip_ptr, capacity)
    link_device = owners_from_ptr(device_link_ptr)
    # IPs are built per (region, ip_type); their ids are dealt in a keyed order, so that an
    # IP's id (its place in the block) says nothing of its region or type (the leakage
    # audit found the place in the block predicting risk through the type).
    order = stable_argsort(uniform_range(keys[_IP_ORDER], 0, int(ip_ptr[-1]), lo // block_size))
    new_id = np.empty_like(order)
    new_id[order] = np.arange(order.shape[0])
    device_ip_ptr, device_ip_ids, kept = drop_repeats_within_rows(device_link_ptr,
                                                                  new_id[ip_of_link])
    ip_device_ptr, ip_device_ids = transpose(device_ip_ptr, device_ip_ids, ip_ptr[-1])
    # The first link of a device (kept always) is its primary IP. Every pointer is a first
    # link: a device without links points at the next one's first (or past the end).
    first_of_device = np.zeros(device_link_ptr[-1] + 1, dtype=np.bool_)
    first_of_device[device_link_ptr] = True
    return DeviceBlock(
        counts, device_type, os_family, device_region, device_party_ptr, device_party_ids,
        device_ip_ptr, device_ip_ids, first_of_device[:-1][kept], ip_device_ptr,
        ip_device_ids, ip_type[order], np.repeat(group_region, n_ips).astype(np.int16)[order],
        # An IP's country is that of the device that took its first slot.
        party_country[owner[link_device[first_link]]][order], n_ips,
        int(np.count_nonzero(device_links)), int(capacity.sum()), int(capacity_draws.sum()),
        int(np.count_nonzero(np.diff(device_party_ptr) > 1)),
        int(np.diff(ip_device_ptr).max(initial=0)), int(device_link_ptr[-1]))


def stable_argsort(values):
    """``np.argsort(values, kind="stable")``, by NumPy's SIMD quicksort when the values are
    distinct, as PRF draws are but for a chance of about n**2 / 2**54: their order is then
    unique, so the same (150k draws: 1.9 against 11.3 ms)."""
    order = np.argsort(values)
    ordered = values[order]
    if np.any(ordered[1:] == ordered[:-1]):
        return np.argsort(values, kind="stable")
    return order


def tables_block(lo, device_lo, ip_lo, block, *, asn_of_type, vocabularies):
    """The parts of the four datasets for one canonical block (parties ``lo ..``, first
    device and IP ids ``device_lo`` and ``ip_lo``)."""
    (device_types, os_families, ip_types, asn_classes, party_types, countries,
     regions) = vocabularies
    n_devices = block.device_type.shape[0]
    device_base = encode_part({
        "device_id": pa.array(np.arange(device_lo, device_lo + n_devices, dtype=np.int64)),
        "primary_party_id": pa.array(lo + owners_from_ptr(ptr_from_counts(block.owned))),
        "device_type": dictionary_column(block.device_type, device_types),
        "os_family": dictionary_column(block.os_family, os_families),
        "region_id": dictionary_column(block.device_region, regions),
    })
    shared = np.ones(block.device_party_ids.shape[0], dtype=np.int16)
    shared[block.device_party_ptr[:-1]] = 0  # every device's first party is its primary
    party_links = encode_part({
        "device_id": pa.array(device_lo + owners_from_ptr(block.device_party_ptr)),
        "party_id": pa.array(block.device_party_ids),
        "link_role": dictionary_column(shared, PARTY_LINK_ROLES),
    })
    n_ips = block.ip_type.shape[0]
    ip_base = encode_part({
        "ip_id": pa.array(np.arange(ip_lo, ip_lo + n_ips, dtype=np.int64)),
        "ip_type": dictionary_column(block.ip_type, ip_types),
        "region_id": dictionary_column(block.ip_region, regions),
        "country_iso": dictionary_column(block.ip_country.astype(np.int16), countries),
        "asn_class": dictionary_column(asn_of_type[block.ip_type], asn_classes),
    })
    ip_links = encode_part({
        "device_id": pa.array(device_lo + owners_from_ptr(block.device_ip_ptr)),
        "ip_id": pa.array(ip_lo + block.device_ip_ids),
        "link_role": dictionary_column(np.where(block.device_ip_primary, 0, 1).astype(np.int16),
                                       IP_LINK_ROLES),
    })
    return device_base, party_links, ip_base, ip_links
