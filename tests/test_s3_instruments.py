"""S3 instruments: account-type-aware floors, hard maxima, schemes by region."""
import numpy as np
import pytest
from scipy import stats

from seg6a.perf import PerfRecorder
from seg6a.states import s0_gate, s1_parties, s2_accounts, s3_instruments


@pytest.fixture(scope="module")
def small_run():
    perf = PerfRecorder()
    sealed = s0_gate.run(42, "small", None, perf)
    parties, _, _ = s1_parties.run(sealed, perf)
    accounts, _, _ = s2_accounts.run(sealed, parties, perf)
    instruments, datasets, rng = s3_instruments.run(sealed, parties, accounts, perf)
    priors = sealed.config[s3_instruments.INSTRUMENT_PRIORS]
    return sealed, parties, accounts, instruments, {d.name: d for d in datasets}, rng, priors, perf


def truncated_mean(floor, mean, hard_max):
    k = np.arange(0, hard_max - floor + 1)
    pmf = stats.poisson.pmf(k, mean - floor)
    return floor + float(np.sum(k * pmf) + (hard_max - floor) * stats.poisson.sf(k[-1], mean - floor))


def per_account_counts(accounts, instruments):
    n_accounts = accounts.account_type.shape[0]
    n_types = len(instruments.instrument_types)
    flat = instruments.account_id * n_types + instruments.instrument_type
    return np.bincount(flat, minlength=n_accounts * n_types).reshape(n_accounts, n_types)


def test_floors_maxima_and_eligibility(small_run):
    _, _, accounts, instruments, _, _, priors, _ = small_run
    counts = per_account_counts(accounts, instruments)
    for rule in priors["rules"]:
        of_type = accounts.account_type == accounts.account_types.index(rule["account_type"])
        allowed = set()
        for spec in rule["instruments"]:
            col = instruments.instrument_types.index(spec["instrument_type"])
            allowed.add(col)
            column = counts[of_type, col]
            assert column.min(initial=spec["floor"]) >= spec["floor"], rule["account_type"]
            assert column.max(initial=0) <= spec["hard_max_per_account"]
            if of_type.sum() >= 5000:
                # The documented law: floor + Poisson(mean_count - floor), capped at the max.
                expected = truncated_mean(spec["floor"], spec["mean_count"],
                                          spec["hard_max_per_account"])
                se = np.sqrt(spec["mean_count"] / of_type.sum())
                assert abs(column.mean() - expected) < 5 * se, rule["account_type"]
        others = [c for c in range(counts.shape[1]) if c not in allowed]
        assert counts[np.ix_(of_type, others)].sum() == 0, rule["account_type"]
    # The seed's examples: every current account has a debit card, a mortgage has nothing.
    current = accounts.account_type == accounts.account_types.index("CURRENT")
    debit = instruments.instrument_types.index("DEBIT_CARD")
    assert counts[current, debit].min() >= 1
    mortgage = accounts.account_type == accounts.account_types.index("MORTGAGE")
    assert counts[mortgage].sum() == 0


def test_schemes_follow_the_region_mix(small_run):
    _, parties, _, instruments, _, _, priors, _ = small_run
    schemes = list(priors["schemes"])
    region = parties.region[instruments.owner_party_id]
    schemeless = np.isin(
        instruments.instrument_type,
        [instruments.instrument_types.index(t) for t in priors["schemeless_instrument_types"]],
    )
    none = instruments.schemes.index("NONE")
    assert np.all((instruments.scheme == none) == schemeless)
    for code, name in enumerate(parties.regions):
        mine = (region == code) & ~schemeless
        realised = np.bincount(instruments.scheme[mine], minlength=len(schemes))[: len(schemes)]
        target = np.array([priors["scheme_mix_by_region"][name][s] for s in schemes])
        # Largest remainder per (block, region): off by less than one instrument per scheme.
        assert np.all(np.abs(realised - target * mine.sum()) < 1.0), name


def test_outputs_and_csr_agree(small_run):
    _, _, accounts, instruments, datasets, rng, _, perf = small_run
    base = datasets["s3_instrument_base_6A"].table
    links = datasets["s3_account_instrument_links_6A"].table
    n = instruments.account_id.shape[0]
    assert base.num_rows == links.num_rows == n
    account_id = np.asarray(base.column("account_id"))
    assert np.all(np.diff(account_id) >= 0)
    ptr = instruments.account_instrument_ptr
    np.testing.assert_array_equal(
        np.diff(ptr), np.bincount(account_id, minlength=accounts.account_type.shape[0])
    )
    np.testing.assert_array_equal(np.asarray(base.column("owner_party_id")),
                                  accounts.owner_party_id[account_id])
    roles = links.column("link_role").to_pylist()
    assert set(roles) <= {"PRIMARY", "ADDITIONAL"}
    assert roles.count("PRIMARY") == len(set(zip(account_id.tolist(),
                                                 instruments.instrument_type.tolist())))
    offsets = datasets["s3_instrument_base_6A"].block_offsets
    assert offsets[0] == 0 and offsets[-1] == n
    assert {row["substream"] for row in rng.audit()} == {
        "s3.instruments.count", "s3.instruments.scheme_order"}
    substeps = [e["substep"] for e in perf.events if e["state"] == "S3"]
    assert substeps == ["load_contracts_inputs", "load_account_base", "plan_counts",
                        "allocate_instruments", "emit_instrument_base_links"]


def test_the_receipt_counts_the_instruments_the_hard_max_clipped(small_run):
    sealed, parties, accounts, instruments, _, rng, priors, perf = small_run
    counters = instruments.counters
    by_type = counters["hard_max_clipped_rows_by_type"]
    assert counters["hard_max_clipped_rows"] == sum(by_type.values()) > 0
    # The same draws without the cap: the instruments it removed are the difference.
    _, floor, cap = s3_instruments.count_tables(priors, accounts.account_types)
    excess, _ = s3_instruments.excess_tables(priors, accounts.account_types,
                                             accounts.accounts_by_country, sealed.world)
    unbounded = np.where(cap > 0, np.iinfo(np.int16).max, 0)
    args = dict(count_key=rng.key(s3_instruments._COUNT),
                scheme_key=rng.key(s3_instruments._SCHEME_ORDER), excess=excess, floor=floor,
                schemeless=np.array([t in priors["schemeless_instrument_types"]
                                     for t in instruments.instrument_types]),
                scheme_mix=np.array([[priors["scheme_mix_by_region"][r][s]
                                      for s in priors["schemes"]] for r in parties.regions]),
                block_size=sealed.scale.block_size,
                n_groups=(parties.n_parties // sealed.scale.block_size + 1) * len(parties.regions))
    capped = s3_instruments.instrument_block(0, 0, accounts.blocks[0], parties.blocks[0],
                                             cap=cap, **args)
    free = s3_instruments.instrument_block(0, 0, accounts.blocks[0], parties.blocks[0],
                                           cap=unbounded, **args)
    assert len(accounts.blocks) == 1  # small is one canonical block
    for code, name in enumerate(instruments.instrument_types):
        removed = np.count_nonzero(free.instrument_type == code) - np.count_nonzero(
            capped.instrument_type == code)
        assert by_type[name] == removed == capped.clipped[code]
    event = next(e for e in perf.events if e["state"] == "S3" and e["substep"] == "plan_counts")
    assert event["counters"] == counters
