"""S4 devices and IPs at `tiny`: counts and mixes from the priors, coverage, the IP mix by
quota, capacity bounds by construction, households, and canonical blocks."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from configs import BLOCK_SIZE, small_blocks
from seg6a.kernels.csr import owners_from_ptr
from seg6a.perf import PerfRecorder
from seg6a.states import s0_gate, s1_parties, s4_devices


def build(config=None):
    perf = PerfRecorder()
    sealed = s0_gate.run(42, "tiny", config, perf)
    parties, _, _ = s1_parties.run(sealed, perf)
    graph, datasets, rng = s4_devices.run(sealed, parties, perf)
    return sealed, parties, graph, {d.name: d for d in datasets}, rng, perf


@pytest.fixture(scope="module")
def tiny():
    return build()


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    """The same world at tiny with canonical blocks of 4096 parties (5 blocks)."""
    return build(small_blocks(tmp_path_factory.mktemp("blocks")))


def priors_of(sealed):
    return sealed.config[s4_devices.DEVICE_IP_PRIORS]


def test_substeps_are_the_specified_ones(tiny):
    perf = tiny[5]
    assert [e["substep"] for e in perf.events if e["state"] == "S4"] == [
        "load_contracts_inputs", "load_party_base", "plan_device_counts", "plan_ip_counts",
        "emit_ip_base", "emit_regions", "merge_parts"]


def test_device_counts_follow_party_type_and_segment(tiny):
    sealed, parties, graph, *_ = tiny
    priors = priors_of(sealed)
    owned = np.diff(graph.party_device_ptr)
    for t, name in enumerate(parties.party_types):
        spec = priors["devices_per_party"][name]
        of_type = parties.party_type == t
        assert owned[of_type].min() >= spec["min_count"]
        assert owned[of_type].max() <= spec["max_count"]
    # A segment's factor moves its mean: affluent retail parties own more than seniors.
    multiplier = priors["segment_mean_multiplier"]
    assert multiplier["R_AFFLUENT"] > 1 > multiplier["R_SENIOR"]
    affluent = parties.segment == parties.segments.index("R_AFFLUENT")
    senior = parties.segment == parties.segments.index("R_SENIOR")
    assert owned[affluent].mean() > owned[senior].mean() + 0.5


def test_device_type_and_os_follow_the_priors(tiny):
    sealed, parties, graph, *_ = tiny
    priors = priors_of(sealed)
    owner_type = parties.party_type[graph.primary_party_id]
    retail = owner_type == parties.party_types.index("RETAIL")
    share = np.bincount(graph.device_type[retail], minlength=len(graph.device_types)) / retail.sum()
    prior = np.array([priors["devices_per_party"]["RETAIL"]["device_type_mix"][t]
                      for t in graph.device_types])
    se = np.sqrt(prior * (1 - prior) / retail.sum())
    assert np.all(np.abs(share - prior) <= 5 * se + 1e-12)
    # Zero-share categories are never drawn: no retail POS terminal, no iOS laptop.
    assert share[graph.device_types.index("POS_TERMINAL")] == 0
    laptops = graph.device_type == graph.device_types.index("LAPTOP")
    assert not np.any(graph.os_family[laptops] == graph.os_families.index("IOS"))


def test_coverage_meets_its_target(tiny):
    sealed, _, graph, *_ = tiny
    target = priors_of(sealed)["linkage"]["coverage_target"]
    linked = np.diff(graph.device_ip_ptr) > 0
    se = np.sqrt(target * (1 - target) / graph.n_devices)
    assert abs(linked.mean() - target) <= 5 * se
    assert linked.mean() >= 0.35  # T4 at B+


def test_ip_type_mix_is_the_prior_up_to_rounding(tiny):
    sealed, parties, graph, *_ = tiny
    mix = priors_of(sealed)["ip_type_mix"]
    for r, region in enumerate(parties.regions):
        of_region = graph.ip_region == r
        n = of_region.sum()
        share = np.bincount(graph.ip_type[of_region], minlength=len(graph.ip_types)) / n
        prior = np.array([mix[region][t] for t in graph.ip_types])
        # One largest-remainder split per (block, region): each type is off by < 1 IP.
        assert np.all(np.abs(share - prior) < 1.0 / n), region


def test_devices_per_ip_bounded_by_the_capacity_law(tiny):
    sealed, _, graph, *_ = tiny
    linkage = priors_of(sealed)["linkage"]
    per_ip = np.diff(graph.ip_device_ptr)
    assert per_ip.min() >= 1  # every IP serves someone
    for t, ip_type in enumerate(graph.ip_types):
        law = linkage["capacity_law"][ip_type]
        assert per_ip[graph.ip_type == t].max(initial=0) <= law["max"], ip_type
    assert per_ip.max() <= linkage["max_devices_per_ip"]
    # Heavy-tailed types reuse more: a mobile carrier IP serves more devices than a home line.
    mobile = per_ip[graph.ip_type == graph.ip_types.index("MOBILE_CGNAT")].mean()
    home = per_ip[graph.ip_type == graph.ip_types.index("RESIDENTIAL_BROADBAND")].mean()
    assert mobile > 2 * home


def test_links_are_distinct_and_have_one_primary(tiny):
    _, _, graph, *_ = tiny
    device = owners_from_ptr(graph.device_ip_ptr)
    pairs = device * graph.n_ips + graph.device_ip_ids
    assert np.unique(pairs).size == pairs.size
    np.testing.assert_array_equal(graph.ip_region[graph.device_ip_ids], graph.device_region[device])
    linked = np.diff(graph.device_ip_ptr) > 0
    primaries = np.bincount(device[graph.device_ip_primary], minlength=graph.n_devices)
    np.testing.assert_array_equal(primaries, linked.astype(np.int64))
    # The transpose holds the same edges.
    back = owners_from_ptr(graph.ip_device_ptr) + graph.ip_device_ids * graph.n_ips
    np.testing.assert_array_equal(np.sort(back), np.sort(graph.device_ip_ids + device * graph.n_ips))


def test_counters_add_up(tiny):
    _, _, graph, *_ = tiny
    c = graph.counters
    assert c["ip_links_drawn"] - c["ip_links_repeated_dropped"] == graph.device_ip_ids.size
    assert c["ips"] == graph.n_ips and c["devices"] == graph.n_devices
    assert c["max_devices_per_ip"] == np.diff(graph.ip_device_ptr).max()
    assert c["capacity_slots_unused"] >= 0


def test_households_share_within_country(tiny):
    sealed, parties, graph, *_ = tiny
    sharing = priors_of(sealed)["sharing"]
    users = np.diff(graph.device_party_ptr)
    assert users.min() == 1 and users.max() <= sharing["max_parties_per_device"]
    shared = users > 1
    p = sharing["shared_device_probability"]
    assert abs(shared.mean() - p) <= 5 * np.sqrt(p * (1 - p) / graph.n_devices)
    device = owners_from_ptr(graph.device_party_ptr)
    np.testing.assert_array_equal(
        parties.country[graph.device_party_ids], parties.country[graph.primary_party_id[device]])


def test_ip_country_is_in_the_ip_region(tiny):
    _, parties, graph, *_ = tiny
    np.testing.assert_array_equal(parties.region[parties.country_ptr[graph.ip_country]],
                                  graph.ip_region)


def test_blocks_keep_links_and_households_inside(blocks):
    sealed, parties, graph, datasets, *_ = blocks
    assert sealed.scale.block_size == BLOCK_SIZE
    device_block = graph.primary_party_id // BLOCK_SIZE
    party_device = owners_from_ptr(graph.device_party_ptr)
    np.testing.assert_array_equal(graph.device_party_ids // BLOCK_SIZE, device_block[party_device])
    # An IP belongs to one (block, region) group: IP part b serves only block b's devices.
    ips = datasets["s4_ip_base_6A"]
    n_blocks = -(-parties.n_parties // BLOCK_SIZE)
    assert len(ips.block_offsets) == n_blocks + 1
    for b in range(n_blocks):
        start, stop = ips.block_offsets[b], ips.block_offsets[b + 1]
        served = np.unique(device_block[graph.ip_device_ids[
            graph.ip_device_ptr[start]:graph.ip_device_ptr[stop]]])
        np.testing.assert_array_equal(served, [b])


def test_rng_trace_counts_the_draws(tiny):
    _, parties, graph, _, rng, _ = tiny
    draws = {row["substream"]: row["draws"] for row in rng.trace}
    assert draws["s4.device.count"] == parties.n_parties
    assert draws["s4.device.type"] == draws["s4.device.os"] == graph.n_devices
    assert draws["s4.device.share"] == 3 * graph.n_devices
    assert draws["s4.ip.position"] == graph.counters["ip_links_drawn"]
    assert draws["s4.ip.slot"] == graph.counters["ip_links_drawn"] - graph.n_ips
    assert draws["s4.ip.capacity"] >= graph.n_ips


def test_same_seed_same_graph(tiny):
    again = build()
    for field in ("primary_party_id", "device_type", "device_party_ids", "ip_type",
                  "ip_country", "device_ip_ids"):
        np.testing.assert_array_equal(getattr(again[2], field), getattr(tiny[2], field))


@given(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 0.999]) | st.floats(0, 1, exclude_max=True),
                max_size=60))
def test_stable_argsort_is_numpys_stable_order_with_ties_or_without(values):
    values = np.array(values, dtype=np.float64)
    np.testing.assert_array_equal(s4_devices.stable_argsort(values),
                                  np.argsort(values, kind="stable"))


def test_stable_argsort_keeps_the_stable_order_where_quicksort_would_not():
    values = (np.arange(10_000) * 7919 % 3).astype(np.float64)
    assert not np.array_equal(np.argsort(values), np.argsort(values, kind="stable"))
    np.testing.assert_array_equal(s4_devices.stable_argsort(values),
                                  np.argsort(values, kind="stable"))
