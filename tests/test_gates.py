"""Gates T1-T10: metrics against independent computations over the published Parquet,
the bootstrap, broken datasets failing the right gate, and certification decisions."""
import json
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import bootstrap as scipy_bootstrap
from scipy.stats.contingency import odds_ratio as scipy_odds_ratio

import seg6a
from configs import embedded, overlay
from seg6a.cli import main
from seg6a.gates import board, bootstrap_ci, jsd, odds_ratio
from seg6a.gates import data as gate_data
from seg6a.gates import stats as gate_stats
from seg6a.runs.publish import parquet_bytes
from seg6a.tables import decode_part, part_columns

VALIDATION = "validation_policy_6A.v1.yaml"
PROPAGATION = "risk_propagation_coeffs_6A.v1.yaml"
N_CLUSTERS = embedded(VALIDATION)["bootstrap"]["clusters"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return seg6a.simulate(42, scale="tiny", out=root, run_id="tiny42")


@pytest.fixture(scope="module")
def board_of(tiny):
    return {r["test_id"]: r for r in tiny.fraud.gates}


@pytest.fixture(scope="module")
def sql(tiny):
    con = duckdb.connect()
    for name in gate_data.DATASETS:
        con.execute(f"create view {name} as select * from read_parquet("
                    f"'{tiny.run_dir}/layer3/6A/{name}/**/*.parquet', hive_partitioning=true)")
    return lambda query: con.execute(query).fetchall()


# --- the public metrics against scipy ---------------------------------------------------------

distributions = st.lists(st.floats(0.0, 100.0), min_size=1, max_size=8)


@given(distributions, st.data())
def test_jsd_is_scipys_distance_squared(p, data):
    q = data.draw(st.lists(st.floats(0.0, 100.0), min_size=len(p), max_size=len(p)))
    if sum(p) == 0 or sum(q) == 0:
        assert np.isnan(jsd(p, q))
        return
    assert jsd(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)


@given(st.lists(st.integers(1, 10_000), min_size=4, max_size=4))
def test_odds_ratio_is_scipys_sample_odds_ratio(cells):
    a, b, c, d = cells
    expected = scipy_odds_ratio([[a, b], [c, d]], kind="sample").statistic
    assert odds_ratio(a, b, c, d) == pytest.approx(expected, rel=1e-12)


def test_odds_ratio_with_an_empty_cell_is_not_computable():
    assert np.isnan(odds_ratio(0, 5, 5, 5))


def test_bootstrap_ci_is_deterministic_and_covers_the_rate():
    rng = np.random.default_rng(0)
    trials = np.full(200, 50)
    clusters = np.stack([rng.binomial(trials, 0.3), trials], axis=1)

    def rate(summed):
        return summed[..., 0] / summed[..., 1]

    first = bootstrap_ci(clusters, rate, seed=11)
    assert first == bootstrap_ci(clusters, rate, seed=11)
    assert first != bootstrap_ci(clusters, rate, seed=12)
    point = rate(clusters.sum(axis=0))
    se = np.sqrt(point * (1 - point) / trials.sum())  # binomial: clusters are independent
    assert first[0] < point < first[1]
    assert 2 * 1.96 * se * 0.8 < first[1] - first[0] < 2 * 1.96 * se * 1.25
    assert np.isnan(bootstrap_ci(clusters[:1], rate)[0])


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 40), st.integers(0, 2**32 - 1),
       st.sampled_from(["percentile", "basic", "BCa"]))
def test_bootstrap_ci_is_scipys_bootstrap_over_cluster_indices(n_clusters, seed, method):
    stats_rng = np.random.default_rng(seed)
    trials = stats_rng.integers(1, 60, n_clusters)
    clusters = np.stack([stats_rng.binomial(trials, 0.4), trials], axis=1).astype(float)

    def rate(summed):
        return summed[..., 0] / summed[..., 1]

    def resampled(index, axis=-1):
        return rate(clusters[index].sum(axis=-2))

    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = scipy_bootstrap((np.arange(n_clusters),), resampled, vectorized=True,
                                   n_resamples=199, confidence_level=0.9, method=method,
                                   rng=np.random.default_rng(seed)).confidence_interval
    got = bootstrap_ci(clusters, rate, seed=seed, n_resamples=199, confidence_level=0.9,
                       method=method)
    # Same draws and quantiles; BCa's jackknife sums differ in the last bits.
    np.testing.assert_allclose(got, tuple(expected), rtol=1e-9, atol=1e-12)


# --- every gate value equals an independent recomputation from the Parquet ------------------


def test_t1_t2_from_parquet(sql, board_of):
    rules = embedded("account_per_party_priors_6A.v1.yaml", "priors")["rules"]
    caps = ", ".join(f"('{r['party_type']}', '{r['account_type']}', {r['k_max']})" for r in rules)
    (excess, p99_over, max_over), = sql(f"""
        with caps(party_type, account_type, k_max) as (values {caps}),
        per_cell as (
          select c.k_max, quantile_disc(h.account_count, 0.99) as p99, max(h.account_count) as top
          from s2_party_product_holdings_6A h join s1_party_base_6A p using (party_id)
          join caps c on c.party_type = p.party_type::varchar and c.account_type = h.account_type::varchar
          group by c.party_type, c.account_type, c.k_max)
        select greatest(0, max(top - k_max)), max(p99 - k_max), max(top - k_max) from per_cell""")
    assert board_of["T1_KMAX_HARD_INVARIANT"]["value"] == excess
    components = board_of["T2_KMAX_TAIL_SANITY"]["components"]
    assert max(c["value"] for n, c in components.items() if n.endswith("p99_over_kmax")) == p99_over
    assert max(c["value"] for n, c in components.items() if n.endswith("max_over_kmax")) == max_over


def test_t3_t4_t5_from_parquet(sql, board_of):
    mix = embedded("device_ip_priors_6A.v1.yaml", "priors")["ip_type_mix"]
    rows = sql("""select region_id::varchar, ip_type::varchar, count(*) from s4_ip_base_6A
                  group by all""")
    totals = {}
    for region, _, n in rows:
        totals[region] = totals.get(region, 0) + n
    counts = {(region, t): n for region, t, n in rows}
    error = max(abs(counts.get((region, t), 0) / totals[region] - share) * 100
                for region, shares in mix.items() for t, share in shares.items())
    assert board_of["T3_IP_PRIOR_ALIGNMENT"]["value"] == pytest.approx(error, abs=1e-9)
    (coverage,), = sql("""select (select count(distinct device_id) from s4_device_ip_links_6A)
                                 / count(*) from s4_device_base_6A""")
    assert board_of["T4_DEVICE_IP_COVERAGE"]["value"] == pytest.approx(coverage, abs=1e-12)
    (p99, top), = sql("""select quantile_disc(n, 0.99), max(n) from (
                           select count(*) as n from s4_device_ip_links_6A group by ip_id)""")
    t5 = board_of["T5_IP_REUSE_TAIL_BOUNDS"]["components"]
    assert (t5["p99"]["value"], t5["max"]["value"]) == (p99, top)


def test_t6_t7_from_parquet(sql, board_of):
    taxonomy = embedded("fraud_role_taxonomy_6A.v1.yaml")
    pairs = ", ".join(f"('{kind}', '{r['raw_role']}', '{r['family']}')"
                      for kind, roles in taxonomy["entity_kinds"].items() for r in roles)
    union = " union all ".join(
        f"select '{k}' as kind, raw_role::varchar as raw_role, "
        f"canonical_role_family::varchar as family from s5_{k}_fraud_roles_6A"
        for k in gate_data.ROLE_KINDS)
    (rows, mapped), = sql(f"""with t(kind, raw_role, family) as (values {pairs})
        select count(*), count(t.kind) from ({union}) r
        left join t on t.kind = r.kind and t.raw_role = r.raw_role and t.family = r.family""")
    t6 = board_of["T6_ROLE_MAPPING_COVERAGE"]["components"]
    assert t6["coverage"]["value"] == mapped / rows and t6["unmapped"]["value"] == rows - mapped
    for name, kind, base, owner in (("OR_account", "account", "s2_account_base_6A", "owner_party_id"),
                                    ("OR_device", "device", "s4_device_base_6A", "primary_party_id")):
        cells = sql(f"""select o.is_risky, e.is_risky, count(*) from s5_{kind}_fraud_roles_6A e
                        join {base} x using ({kind}_id)
                        join s5_party_fraud_roles_6A o on o.party_id = x.{owner} group by all""")
        n = {(owner_risky, risky): c for owner_risky, risky, c in cells}
        expected = scipy_odds_ratio([[n[True, True], n[True, False]],
                                     [n[False, True], n[False, False]]], kind="sample").statistic
        component = board_of["T7_RISK_PROPAGATION_EFFECT"]["components"][name]
        assert component["value"] == pytest.approx(expected, rel=1e-12)
        assert component["ci_low"] < component["value"] < component["ci_high"]


def test_t8_from_parquet(sql, board_of):
    taxonomy = embedded("fraud_role_taxonomy_6A.v1.yaml")
    components = board_of["T8_DISTRIBUTION_ALIGNMENT_JSD"]["components"]
    for kind in gate_data.ROLE_KINDS:
        counts = dict(sql(f"select raw_role::varchar, count(*) from s5_{kind}_fraud_roles_6A "
                          "group by 1"))
        spec = taxonomy["entity_kinds"][kind]
        realised = [counts.get(r["raw_role"], 0) for r in spec]
        expected = jensenshannon(realised, [r["target_prevalence"] for r in spec], base=2) ** 2
        assert components[f"role_mix.{kind}"]["value"] == pytest.approx(expected, abs=1e-12)
    assert board_of["T8_DISTRIBUTION_ALIGNMENT_JSD"]["value"] == max(
        c["value"] for c in components.values())


def test_t10_contract_and_lift(board_of):
    t10 = board_of["T10_DOWNSTREAM_COMPAT_6B"]["components"]
    assert t10["contract_violations"]["value"] == 0
    lift = t10["fraud_label_lift"]
    assert lift["ci_low"] <= lift["value"] <= lift["ci_high"]
    assert lift["pass_B"]


def test_single_run_board_marks_t9_not_evaluable_and_converts_to_xarray(tiny, board_of):
    t9 = board_of["T9_CROSS_SEED_STABILITY"]
    assert t9["reason"] == board.NOT_EVALUABLE
    assert t9["pass_B"] is None and t9["pass_Bplus"] is None  # neither passed nor failed
    assert set(t9["stability_metrics"]) >= {"T4.linked_device_fraction", "T7.OR_account",
                                            "T8.max_jsd", "prevalence.ip"}
    gates = tiny.gates
    assert list(gates.test.values) == list(board.GATES)
    assert float(gates.value.sel(test="T4_DEVICE_IP_COVERAGE")) == board_of[
        "T4_DEVICE_IP_COVERAGE"]["value"]
    published = next(Path(tiny.run_dir).rglob("realism_gate_6A.json"))
    assert json.loads(published.read_text()) == json.loads(json.dumps(tiny.fraud.gates))


def test_gates_command_prints_every_gate(tiny, capsys):
    assert main(["gates", str(tiny.run_dir)]) == 0
    out = capsys.readouterr().out
    for gate in board.GATES:
        assert gate in out


# --- broken datasets fail the right gate --------------------------------------------------------


def evaluate(tiny, tables, bases=None):
    """The board of a run given as one block of tables (or as a list of blocks); ``bases``:
    where its canonical blocks start, when given as one."""
    blocks = tables if isinstance(tables, list) else [tables]
    measured = gate_stats.measure_run(blocks, tiny.sealed.world.merchants.num_rows, N_CLUSTERS,
                                      bases=bases)
    sealed = tiny.sealed
    streams = board.Streams.of(sealed.manifest_fingerprint, sealed.parameter_hashes["S5"],
                               sealed.judging.validation_hash, 42)
    return {r["test_id"]: r
            for r in board.evaluate(measured, sealed.config, 42, streams, sealed.judging)}


def replaced(table, column, values):
    return table.set_column(table.column_names.index(column), column, values)


def test_an_account_above_kmax_fails_t1(tiny):
    tables = dict(tiny.tables)
    holdings = tables["s2_party_product_holdings_6A"]
    counts = holdings.column("account_count").to_numpy().copy()
    counts[0] = 99
    tables["s2_party_product_holdings_6A"] = replaced(holdings, "account_count", pa.array(counts))
    gates = evaluate(tiny, tables)
    assert not gates["T1_KMAX_HARD_INVARIANT"]["pass_B"]
    assert gates["T1_KMAX_HARD_INVARIANT"]["owner_state"] == "S2"
    assert gates["T4_DEVICE_IP_COVERAGE"]["pass_Bplus"]


def test_an_unmapped_role_fails_t6(tiny):
    tables = dict(tiny.tables)
    name = "s5_device_fraud_roles_6A"
    families = tables[name].column("canonical_role_family").combine_chunks()
    nulled = pa.DictionaryArray.from_arrays(
        pa.array([None] + families.indices.to_pylist()[1:], pa.int16()), families.dictionary)
    tables[name] = replaced(tables[name], "canonical_role_family", nulled)
    gates = evaluate(tiny, tables)
    t6 = gates["T6_ROLE_MAPPING_COVERAGE"]
    assert not t6["pass_B"] and t6["components"]["unmapped"]["value"] == 1
    assert t6["owner_state"] == "S5"


def test_a_dangling_reference_fails_t10(tiny):
    tables = dict(tiny.tables)
    name = "s3_instrument_base_6A"
    accounts = tables[name].column("account_id").to_numpy().copy()
    accounts[-1] = 10**9
    tables[name] = replaced(tables[name], "account_id", pa.array(accounts))
    t10 = evaluate(tiny, tables)["T10_DOWNSTREAM_COMPAT_6B"]
    assert not t10["pass_B"]
    contract = t10["components"]["contract_violations"]
    assert contract["value"] == 1
    assert "s3_instrument_base_6A.account_id" in contract["detail"][0]
    assert contract["owner_state"] == "S3"  # the state whose dataset breaks the contract


def test_a_missing_key_column_fails_t10_and_the_board_still_evaluates(tiny):
    tables = dict(tiny.tables)
    name = "s3_instrument_base_6A"
    tables[name] = tables[name].drop_columns(["instrument_id"])
    t10 = evaluate(tiny, tables)["T10_DOWNSTREAM_COMPAT_6B"]
    assert not t10["pass_B"]
    assert t10["components"]["contract_violations"]["detail"] == [
        "s3_instrument_base_6A.instrument_id: missing column"]


def test_role_rows_must_hold_each_entity_once_in_any_order(tiny):
    from seg6a.downstream import contract_violations

    n_merchants = tiny.sealed.world.merchants.num_rows
    tables = dict(tiny.tables)
    name = "s5_ip_fraud_roles_6A"
    shuffled = tables[name].take(pa.array(np.random.default_rng(0).permutation(
        tables[name].num_rows)))
    assert contract_violations({**tables, name: shuffled}, n_merchants) == []
    ids = tables[name].column("ip_id").to_numpy().copy()
    ids[1] = ids[0]  # one IP twice, another missing
    broken = {**tables, name: replaced(tables[name], "ip_id", pa.array(ids))}
    assert contract_violations(broken, n_merchants) == [
        "s5_ip_fraud_roles_6A: not exactly one row per ip"]


def test_the_contract_reads_undecoded_columns_from_the_parquet_footer(tiny):
    from seg6a.downstream import contract_violations

    n_merchants = tiny.sealed.world.merchants.num_rows
    tables = dict(tiny.tables)
    name = "s4_device_base_6A"
    os_family = tables[name].column("os_family").combine_chunks()
    nulled = pa.DictionaryArray.from_arrays(
        pa.array([None, None] + os_family.indices.to_pylist()[2:], pa.int16()),
        os_family.dictionary)
    # written as another writer might (nullable columns); the nulls leave os_family without
    # statistics, so its nulls are counted
    parts = {n: parquet_bytes(t) for n, t in
             {**tables, name: replaced(tables[name], "os_family", nulled)}.items()}
    # the gates decode only their columns: os_family is not one of them
    assert "os_family" not in gate_data.COLUMNS[name]
    decoded = {n: decode_part(data, gate_data.COLUMNS.get(n)) for n, data in parts.items()}
    columns = {n: part_columns(data) for n, data in parts.items()}
    assert contract_violations(decoded, n_merchants, columns=columns) == [
        "s4_device_base_6A.os_family: 2 nulls"]
    healthy = {n: part_columns(t) for n, t in tables.items()}
    assert contract_violations(decoded, n_merchants, columns=healthy) == []


# --- certification ------------------------------------------------------------------------------


def test_impossible_thresholds_hold_with_the_owner(tmp_path, capsys):
    doc = embedded(VALIDATION)
    doc["gates"]["T5_IP_REUSE_TAIL_BOUNDS"]["components"]["p99"].update(B=1, Bplus=1)
    doc["certification"].update(required_seeds=[42, 7], min_scale="tiny")  # loosened: waived
    folder = overlay(tmp_path / "cfg", VALIDATION, doc)
    code = main(["certify", "--scale", "tiny", "--out", str(tmp_path / "runs"), "--run-id", "c",
                 "--config", str(folder), "--waive", "a fast test"])
    assert code == 3
    assert capsys.readouterr().out.strip() == "HOLD_REMEDIATE (2 waivers)"
    summary = json.loads(next((tmp_path / "runs" / "c").rglob("realism_gate_summary_6A.json"))
                         .read_text())
    assert summary["decision"] == "HOLD_REMEDIATE" and summary["seeds"] == [42, 7]
    assert summary["reason"] == "gate_failure"
    failures = {(f["test_id"], f["seed"]) for f in summary["failures"]}
    assert failures == {("T5_IP_REUSE_TAIL_BOUNDS", 42), ("T5_IP_REUSE_TAIL_BOUNDS", 7)}
    assert {f["rerun"] for f in summary["failures"]} == {"--from S4"}


def test_certification_decides_from_every_seed(tmp_path):
    doc = embedded(VALIDATION)
    doc["certification"].update(required_seeds=[42, 7, 101], min_scale="tiny")
    outcome = seg6a.certify(seeds=[42, 7, 101], scale="tiny", waive="a fast test",
                            config=overlay(tmp_path / "cfg", VALIDATION, doc))
    summary = outcome.summary
    assert summary["evidence"]["complete"]
    assert outcome.decision in ("PASS_BPLUS", "PASS_B", "HOLD_REMEDIATE")
    every = [r for b in summary["per_seed"] for r in b if r["test_id"] != "T9_CROSS_SEED_STABILITY"]
    # The reference plan's gates count in both bands, L1 (by default) only in B+.
    t_gates = [r for r in every if r["test_id"] != "L1_LABEL_LEAKAGE"]
    expected = ("PASS_BPLUS" if all(r["pass_Bplus"] for r in every) and summary["T9"]["pass_Bplus"]
                else "PASS_B" if all(r["pass_B"] for r in t_gates) and summary["T9"]["pass_B"]
                else "HOLD_REMEDIATE")
    assert outcome.decision == expected
    assert outcome.gates.sizes == {"seed": 3, "test": 11}
    cvs = summary["T9"]["coefficients_of_variation"]
    values = [b[8]["stability_metrics"]["T7.OR_account"] for b in summary["per_seed"]]
    assert cvs["T7.OR_account"] == pytest.approx(np.std(values, ddof=1) / np.mean(values))
    assert summary["T9"]["value"] == max(cvs.values())


def test_raising_a_coefficient_raises_the_6b_lift(tmp_path):
    # At `small`: the lift's CI at `tiny` is too wide to order nearby coefficients.
    lifts = []
    for beta in (0.5, 3.5):
        doc = embedded(PROPAGATION)
        doc["party_to_account"]["beta_risky_owner"] = beta
        doc["party_to_device"]["beta_risky_party"] = beta
        result = seg6a.simulate(42, scale="small", config=overlay(tmp_path / str(beta),
                                                                  PROPAGATION, doc))
        t10 = {r["test_id"]: r for r in result.fraud.gates}["T10_DOWNSTREAM_COMPAT_6B"]
        lifts.append(t10["components"]["fraud_label_lift"])
    low, high = lifts
    assert high["ci_low"] > low["ci_high"]  # raised, beyond the bootstrap noise


def test_gates_do_not_depend_on_row_order(tiny, board_of):
    # The contract admits rows in any order; the gates look entities up by id.
    tables = dict(tiny.tables)
    rng = np.random.default_rng(3)
    for name in gate_data.DATASETS:
        tables[name] = tables[name].take(pa.array(rng.permutation(tables[name].num_rows)))
    shuffled = evaluate(tiny, tables)
    for gate_id, record in board_of.items():
        assert shuffled[gate_id]["value"] == record["value"], gate_id
        assert shuffled[gate_id].get("components") == record.get("components"), gate_id


# --- statistics add up over canonical blocks -------------------------------------------------


@pytest.fixture(scope="module")
def blocked(tmp_path_factory):
    """A tiny run in 5 canonical blocks of 4,096 parties."""
    doc = embedded("scales.yaml", folder="")
    doc["block_size"] = 4096
    return seg6a.simulate(42, scale="tiny",
                          config=overlay(tmp_path_factory.mktemp("cfg"), "scales.yaml", doc))


def _gate_datasets(result):
    return [d for d in result.datasets.values() if d.name in gate_data.DATASETS]


def _gate_blocks(result):
    """Per block, its parts as tables (to be broken by the tests)."""
    return [{name: decode_part(part) for name, part in block.items()}
            for block in gate_stats.blocks_of(_gate_datasets(result))]


def _assert_same_stats(a, b):
    assert a.vocabularies == b.vocabularies and a.flags == b.flags
    assert a.violations == b.violations
    assert set(a.arrays) == set(b.arrays)
    for name in a.arrays:
        x, y = a[name], b[name]
        width = max(x.shape[-1], y.shape[-1])  # histograms end at their largest value
        x, y = (np.pad(h, [(0, 0)] * (h.ndim - 1) + [(0, width - h.shape[-1])]) for h in (x, y))
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_blocks_add_up_to_the_whole_run(blocked):
    n_merchants = blocked.sealed.world.merchants.num_rows
    blocks = _gate_blocks(blocked)
    by_block = gate_stats.measure_run(blocks, n_merchants, N_CLUSTERS)
    assert len(blocks) == 5 and len(by_block.blocks) == 5  # measured block by block
    # the leakage audit's block features need the canonical layout of a run given whole
    layout = gate_stats.bases_of(_gate_datasets(blocked))
    whole = gate_stats.measure_run([blocked.tables], n_merchants, N_CLUSTERS, bases=layout)
    assert len(whole.blocks) == 1
    _assert_same_stats(by_block.stats, whole.stats)
    # and the probe's flows, drawn per block, are the run's
    key = np.uint64(12345)
    by_blocks, at_once = (gate_stats.probe_sums(m, key, 30000, N_CLUSTERS) for m in (by_block,
                                                                                    whole))
    np.testing.assert_array_equal(by_blocks[0], at_once[0])
    assert evaluate(blocked, blocks) == evaluate(blocked, blocked.tables, layout)
    # and so do the parts as published, their Parquet bytes
    published = gate_stats.measure_run(gate_stats.blocks_of(_gate_datasets(blocked)),
                                       n_merchants, N_CLUSTERS,
                                       bases=gate_stats.bases_of(_gate_datasets(blocked)))
    assert len(published.blocks) == 5
    _assert_same_stats(published.stats, whole.stats)


def test_a_reference_across_blocks_is_measured_with_the_whole_run(blocked):
    # The contract allows an account owned by a party of another block; a block cannot
    # measure it alone, so the run is measured as one block, with the same result.
    blocks = _gate_blocks(blocked)
    name = "s2_account_base_6A"
    owners = blocks[1][name].column("owner_party_id").to_numpy().copy()
    owners[0] = 7  # a party of block 0
    blocks[1] = {**blocks[1], name: replaced(blocks[1][name], "owner_party_id", pa.array(owners))}
    n_merchants = blocked.sealed.world.merchants.num_rows
    measured = gate_stats.measure_run(blocks, n_merchants, N_CLUSTERS)
    assert len(measured.blocks) == 1
    whole = {n: pa.concat_tables([b[n] for b in blocks if n in b], promote_options="default")
             for n in blocks[0]}
    layout = gate_stats.bases_of(_gate_datasets(blocked))
    _assert_same_stats(measured.stats, gate_stats.measure_run([whole], n_merchants, N_CLUSTERS,
                                                              bases=layout).stats)
    assert measured.stats.violations == []
    assert evaluate(blocked, blocks) == evaluate(blocked, whole, layout)


@given(st.lists(st.integers(0, 40), min_size=1, max_size=200),
       st.sampled_from([0.01, 0.5, 0.9, 0.99, 1.0]))
def test_quantiles_from_histograms_are_numpys(values, q):
    from seg6a.gates import metrics

    histogram = np.bincount(values)
    expected = np.quantile(values, q, method="inverted_cdf")
    assert metrics.upper_quantile(histogram, q) == expected
    assert metrics.largest(histogram) == max(values)
