"""The 6B probe's kernels: flows drawn along CSR relations and labelled by risky roles."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from seg6a.kernels import flows

keys = st.integers(0, 2**64 - 1).map(np.uint64)


@st.composite
def graphs(draw):
    """A small random graph: parties with accounts (some with none), instruments, devices, IPs."""
    n_parties = draw(st.integers(1, 12))
    accounts = draw(st.lists(st.integers(0, 3), min_size=n_parties, max_size=n_parties))
    if sum(accounts) == 0:
        accounts[0] = 1
    n_accounts = sum(accounts)
    instruments = draw(st.lists(st.integers(0, 2), min_size=n_accounts, max_size=n_accounts))
    n_devices = draw(st.integers(0, 8))
    device_rows = [draw(st.lists(st.integers(0, n_parties - 1), max_size=3))
                   for _ in range(n_devices)]
    n_ips = draw(st.integers(1, 6))
    ip_rows = [draw(st.lists(st.integers(0, n_ips - 1), max_size=3)) for _ in range(n_devices)]
    party_rows = [[d for d, row in enumerate(device_rows) if p in row] for p in range(n_parties)]
    party_device_ptr, party_device_ids = ref.csr_from_rows(party_rows)
    device_ip_ptr, device_ip_ids = ref.csr_from_rows(ip_rows)
    return (ref.ptr_from_counts(accounts), ref.ptr_from_counts(instruments), party_device_ptr,
            party_device_ids, device_ip_ptr, device_ip_ids, n_devices, n_ips)


@given(keys, graphs(), st.integers(0, 60), st.integers(1, 30), st.integers(0, 2**40), st.data())
def test_sample_flows_matches_reference_and_follows_edges(key, graph, n_flows, n_merchants,
                                                          flow_lo, data):
    (account_ptr, instrument_ptr, party_device_ptr, party_device_ids, device_ip_ptr,
     device_ip_ids, _, _) = graph
    payers = np.flatnonzero(np.diff(account_ptr) > 0)
    # Any flow ids (a block's flows are scattered over the run's), each with a payer.
    flow_ids = np.unique(np.array(data.draw(st.lists(st.integers(flow_lo, flow_lo + 10**6),
                                                     max_size=n_flows)), dtype=np.int64))
    payer = payers[data.draw(st.lists(st.integers(0, payers.size - 1), min_size=flow_ids.size,
                                      max_size=flow_ids.size))].astype(np.int64)
    args = (flow_ids, payer, account_ptr, instrument_ptr, party_device_ptr, party_device_ids,
            device_ip_ptr, device_ip_ids, n_merchants)
    got = flows.sample_flows(key, *args)
    np.testing.assert_array_equal(got, ref.sample_flows(int(key), *args))
    # The gates keep a block's relations as int32 (seg6a.downstream.FlowGraph): same flows.
    narrow = (*args[:2], *(a.astype(np.int32) for a in args[2:8]), n_merchants)
    np.testing.assert_array_equal(flows.sample_flows(key, *narrow), got)
    np.testing.assert_array_equal(got[:, 0], payer)
    # A flow's entities depend on its id alone, not on the other flows given with it.
    if flow_ids.size:
        np.testing.assert_array_equal(flows.sample_flows(key, flow_ids[-1:], payer[-1:],
                                                         *args[2:]), got[-1:])
    for p, a, i, d, ip, m in got.tolist():
        assert account_ptr[p] <= a < account_ptr[p + 1]
        assert i == -1 or instrument_ptr[a] <= i < instrument_ptr[a + 1]
        assert d == -1 or d in party_device_ids[party_device_ptr[p]:party_device_ptr[p + 1]]
        assert ip == -1 or ip in device_ip_ids[device_ip_ptr[d]:device_ip_ptr[d + 1]]
        assert 0 <= m < n_merchants
    # The order of each device's IP links is free: reversing every row changes nothing.
    reversed_ips = np.concatenate(
        [device_ip_ids[a:z][::-1] for a, z in zip(device_ip_ptr[:-1], device_ip_ptr[1:])]
        + [np.zeros(0, np.int64)]).astype(np.int64)
    np.testing.assert_array_equal(
        flows.sample_flows(key, *args[:-2], reversed_ips, n_merchants), got)


@given(keys, st.integers(1, 50), st.data())
def test_label_flows_matches_reference(key, n_flows, data):
    sizes = [5, 7, 3]
    risky = np.array(data.draw(st.lists(st.booleans(), min_size=sum(sizes), max_size=sum(sizes))))
    columns = np.array([[0, 0], [1, 5], [2, 12]], dtype=np.int64)
    table = np.array([[data.draw(st.integers(-1, n - 1)) for n in sizes] for _ in range(n_flows)],
                     dtype=np.int64)
    flow_ids = np.sort(np.array(data.draw(st.lists(st.integers(0, 2**40), min_size=n_flows,
                                                   max_size=n_flows, unique=True)), np.int64))
    weights = np.array([1.0, 0.5, 2.0])
    got = flows.label_flows(key, flow_ids, table, columns, risky, weights, -3.0)
    expected = ref.label_flows(int(key), flow_ids, table, columns, risky, weights, -3.0)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
