"""S2 accounts: the hard K_max pass, the outputs and their consistency."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import reference
from seg6a.kernels.caps import enforce_cap
from seg6a.perf import PerfRecorder
from seg6a.states import s0_gate, s1_parties, s2_accounts


@given(
    counts=hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(0, 12)),
    cap=st.integers(1, 6),
    data=st.data(),
)
def test_enforce_cap_matches_reference(counts, cap, data):
    rank = data.draw(hnp.arrays(np.float64, counts.shape[0],
                                elements=st.floats(0, 1, exclude_max=True)))
    capped, overflow, moved, dropped = enforce_cap(counts, cap, rank)
    expected = reference.enforce_cap(counts, cap, rank)
    np.testing.assert_array_equal(capped, expected[0])
    assert (overflow, moved, dropped) == expected[1:]
    assert capped.max(initial=0) <= cap
    assert overflow == moved + dropped
    # Nothing is created or lost except what is reported dropped, and no new holder appears.
    assert capped.sum() == counts.sum() - dropped
    assert np.all((capped > 0) == (counts > 0))


def test_enforce_cap_drops_only_without_headroom():
    capped, overflow, moved, dropped = enforce_cap(np.array([9, 2, 0]), 3, np.zeros(3))
    assert capped.tolist() == [3, 3, 0]
    assert (overflow, moved, dropped) == (6, 1, 5)


@pytest.fixture(scope="module")
def small_run():
    perf = PerfRecorder()
    sealed = s0_gate.run(42, "small", None, perf)
    parties, _, _ = s1_parties.run(sealed, perf)
    accounts, datasets, rng = s2_accounts.run(sealed, parties, perf)
    return sealed, parties, accounts, {d.name: d for d in datasets}, rng, perf


def test_the_post_check_stops_a_cap_pass_that_leaves_a_party_above_kmax(monkeypatch):
    def one_too_many(counts, cap, rank):  # a broken cap pass
        capped, *counters = enforce_cap(counts, cap, rank)
        capped[:1] = cap + 1
        return (capped, *counters)

    monkeypatch.setattr(s2_accounts, "enforce_cap", one_too_many)
    perf = PerfRecorder()
    sealed = s0_gate.run(42, "tiny", None, perf)
    parties, _, _ = s1_parties.run(sealed, perf)
    with pytest.raises(s2_accounts.KmaxViolation, match="accounts above k_max=.* after the cap"):
        s2_accounts.run(sealed, parties, perf)


def test_no_party_above_kmax(small_run):
    _, _, accounts, datasets, _, _ = small_run
    k_max = np.array([rule["k_max"] for rule in accounts.rules])
    assert np.all(accounts.counts <= k_max[None, :])
    assert accounts.counters["kmax_postcheck_violations"] == 0
    counters = accounts.counters
    assert counters["kmax_overflow_rows"] == (
        counters["kmax_redistributed_rows"] + counters["kmax_dropped_rows"]
    )
    holdings = datasets["s2_party_product_holdings_6A"].table
    summary = datasets["s2_account_summary_6A"].table.to_pydict()
    # Per type, the published holdings never exceed the published k_max.
    by_type = {}
    for account_type, k in zip(summary["account_type"], summary["k_max"]):
        by_type[account_type] = max(by_type.get(account_type, 0), k)
    for account_type, count in zip(holdings.column("account_type").to_pylist(),
                                   holdings.column("account_count").to_pylist()):
        assert count <= by_type[account_type]


def test_outputs_agree(small_run):
    _, parties, accounts, datasets, _, _ = small_run
    base = datasets["s2_account_base_6A"].table
    holdings = datasets["s2_party_product_holdings_6A"].table
    summary = datasets["s2_account_summary_6A"].table
    n_accounts = base.num_rows
    assert n_accounts == int(accounts.counts.sum())
    assert holdings.num_rows == int(np.count_nonzero(accounts.counts))
    assert int(np.asarray(holdings.column("account_count")).sum()) == n_accounts
    assert int(np.asarray(summary.column("n_accounts")).sum()) == n_accounts
    assert int(np.asarray(summary.column("n_holders")).sum()) == holdings.num_rows
    assert np.all(np.asarray(holdings.column("account_count")) > 0)
    # Canonical order: accounts sorted by owner, ids dense; CSR party -> accounts agrees.
    owner = np.asarray(base.column("owner_party_id"))
    assert np.all(np.diff(owner) >= 0)
    np.testing.assert_array_equal(np.asarray(base.column("account_id")), np.arange(n_accounts))
    ptr = accounts.party_account_ptr
    assert ptr[0] == 0 and ptr[-1] == n_accounts
    np.testing.assert_array_equal(np.diff(ptr), np.bincount(owner, minlength=parties.n_parties))
    # Owner attributes are copied from the party base.
    np.testing.assert_array_equal(base.column("party_type").combine_chunks().indices.to_numpy(),
                                  parties.party_type[owner])


def test_zero_gate_and_party_types(small_run):
    _, parties, accounts, _, _, _ = small_run
    for index, rule in enumerate(accounts.rules):
        held = accounts.counts[:, index] > 0
        type_code = parties.party_types.index(rule["party_type"])
        assert np.all(parties.party_type[held] == type_code)
        for segment, probability in rule["holding_probability"].items():
            in_segment = parties.segment == parties.segments.index(segment)
            share = held[in_segment].mean() if in_segment.any() else 0.0
            if probability == 0.0:
                assert share == 0.0
            elif in_segment.sum() >= 2000:
                # Holders come from the zero gate; quotas move the realised share only by
                # cells whose quota is below their holder count.
                se = np.sqrt(probability * (1 - probability) / in_segment.sum())
                assert abs(share - probability) < 5 * se + 0.01, (rule["account_type"], segment)


def test_mean_accounts_per_holder_in_large_cells(small_run):
    _, _, accounts, _, _, _ = small_run
    for index, rule in enumerate(accounts.rules):
        column = accounts.counts[:, index]
        holders = column[column > 0]
        if holders.size >= 20000:
            assert holders.mean() == pytest.approx(rule["mean_accounts_per_holder"], rel=0.03)


def test_deterministic_and_rng_recorded(small_run):
    sealed, parties, accounts, _, rng, _ = small_run
    again, _, _ = s2_accounts.run(sealed, parties, PerfRecorder())
    np.testing.assert_array_equal(again.counts, accounts.counts)
    audit = {row["substream"]: row["draws"] for row in rng.audit()}
    assert set(audit) == {"s2.accounts.zero_gate", "s2.accounts.weight", "s2.accounts.tie",
                          "s2.accounts.cap_rank"}
    # The gate is drawn for the parties of each rule's type; weights, ties and cap ranks for
    # its holders.
    types = list(parties.party_types)
    eligible = sum(int(np.count_nonzero(parties.party_type == types.index(rule["party_type"])))
                   for rule in accounts.rules)
    holders = int(np.count_nonzero(accounts.counts))
    assert 0 < holders < eligible < parties.n_parties * len(accounts.rules)
    assert audit == {"s2.accounts.zero_gate": eligible, "s2.accounts.weight": holders,
                     "s2.accounts.tie": holders, "s2.accounts.cap_rank": holders}


def test_substeps(small_run):
    *_, perf = small_run
    substeps = [e["substep"] for e in perf.events if e["state"] == "S2"]
    assert substeps == ["load_contracts_inputs", "load_party_base", "allocate_accounts",
                        "emit_account_base", "emit_holdings", "emit_summary"]


def test_tiny_population_with_empty_countries(tmp_path):
    # 10 parties over 45 countries leaves most countries (the last ones too) empty.
    import importlib.resources

    import yaml

    import seg6a

    scales = yaml.safe_load(
        importlib.resources.files("seg6a.config").joinpath("scales.yaml").read_text()
    )
    scales["scales"]["tiny"]["n_parties"] = 10
    scales["block_size"] = 4
    (tmp_path / "scales.yaml").write_text(yaml.safe_dump(scales))
    result = seg6a.simulate(3, scale="tiny", config=tmp_path)
    accounts = result.accounts
    assert result.parties.n_parties == 10
    k_max = np.array([rule["k_max"] for rule in accounts.rules])
    assert np.all(accounts.counts <= k_max[None, :])
    assert accounts.party_account_ptr[-1] == result.table("s2_account_base_6A").num_rows
    assert len(result.datasets["s2_account_base_6A"].block_offsets) - 1 == 3


def test_the_receipt_counts_the_work_per_rule(small_run):
    _, parties, accounts, _, _, perf = small_run
    work = accounts.counters["per_rule"]
    assert len(work) == len(accounts.rules)
    for index, rule in enumerate(accounts.rules):
        counted = work[f"{rule['party_type']}/{rule['account_type']}"]
        eligible = int(np.count_nonzero(
            parties.party_type == parties.party_types.index(rule["party_type"])))
        holders = int(np.count_nonzero(accounts.counts[:, index]))
        assert counted["eligible_parties"] == eligible
        assert counted["zero_gate_skips"] == eligible - holders
        assert counted["weights_used"] == holders
        assert counted["weights_drawn"] == holders  # drawn for the holders only
    event = next(e for e in perf.events if e["state"] == "S2" and e["substep"] ==
                 "allocate_accounts")
    assert event["counters"] == accounts.counters  # the perf event carries them
