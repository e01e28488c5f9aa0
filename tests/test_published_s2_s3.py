"""Issue 3's evidence, read back from the published Parquet of a `small` run with DuckDB."""
import json

import duckdb
import pytest

import seg6a


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return seg6a.simulate(42, scale="small", out=root, run_id="small42").run_dir


def scan(run_dir, dataset):
    return f"read_parquet('{run_dir}/layer3/6A/{dataset}/**/*.parquet', hive_partitioning=true)"


@pytest.fixture(scope="module")
def sql(run_dir):
    con = duckdb.connect()
    for name in ("s1_party_base_6A", "s2_account_base_6A", "s2_party_product_holdings_6A",
                 "s2_account_summary_6A", "s3_instrument_base_6A"):
        con.execute(f"create view {name} as select * from {scan(run_dir, name)}")
    return lambda query: con.execute(query).fetchall()


def test_no_party_above_kmax(sql):
    above = sql("""
        with caps as (select distinct party_type, account_type, k_max from s2_account_summary_6A)
        select count(*) from s2_party_product_holdings_6A h
        join s1_party_base_6A p using (party_id)
        join caps c on c.party_type = p.party_type and c.account_type = h.account_type
        where h.account_count > c.k_max""")
    assert above == [(0,)]
    # Every holding row found its cap (the join above dropped nothing).
    joined = sql("""
        select count(*) from s2_party_product_holdings_6A h join s1_party_base_6A p using (party_id)
        join (select distinct party_type, account_type from s2_account_summary_6A) c
          on c.party_type = p.party_type and c.account_type = h.account_type""")
    assert joined == sql("select count(*) from s2_party_product_holdings_6A")


def test_references_resolve(sql):
    assert sql("""select count(*) from s2_account_base_6A a
                  anti join s1_party_base_6A p on a.owner_party_id = p.party_id""") == [(0,)]
    assert sql("""select count(*) from s3_instrument_base_6A i
                  anti join s2_account_base_6A a on i.account_id = a.account_id""") == [(0,)]
    assert sql("""select count(*) from s3_instrument_base_6A i
                  join s2_account_base_6A a on i.account_id = a.account_id
                  where i.owner_party_id <> a.owner_party_id""") == [(0,)]
    assert sql("select count(*) = count(distinct account_id) from s2_account_base_6A") == [(True,)]


def test_floors_hold(sql):
    missing_debit = sql("""
        select count(*) from s2_account_base_6A a
        where a.account_type = 'CURRENT' and not exists (
            select 1 from s3_instrument_base_6A i
            where i.account_id = a.account_id and i.instrument_type = 'DEBIT_CARD')""")
    assert missing_debit == [(0,)]
    mortgage_instruments = sql("""
        select count(*) from s3_instrument_base_6A i join s2_account_base_6A a using (account_id)
        where a.account_type = 'MORTGAGE'""")
    assert mortgage_instruments == [(0,)]


def test_counters_add_up(run_dir, sql):
    receipt = json.loads((run_dir / "layer3/6A/receipts/seed=42/s2_receipt_6A.json").read_text())
    counters = receipt["counters"]
    assert counters["kmax_overflow_rows"] == (
        counters["kmax_redistributed_rows"] + counters["kmax_dropped_rows"]
    )
    assert counters["kmax_postcheck_violations"] == 0
    # The holdings published sum to the accounts published.
    assert sql("select sum(account_count) from s2_party_product_holdings_6A") == sql(
        "select count(*) from s2_account_base_6A")
