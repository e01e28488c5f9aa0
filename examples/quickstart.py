"""Quickstart: generate a tiny world, print its gateboard, read the published Parquet with
pyarrow and DuckDB."""
import tempfile

import duckdb
import pyarrow.dataset as ds

import seg6a
from seg6a.gates import format_board

with tempfile.TemporaryDirectory() as root:
    result = seg6a.simulate(42, scale="tiny", out=root)
    parties = result.table("s1_party_base_6A")
    print(f"run {result.run_dir.name}: {parties.num_rows:,} parties, "
          f"S5 validation {result.fraud.report['overall_status']}")
    print(format_board(result.fraud.gates))          # T1-T10 with CIs, as in `seg6a gates`
    print(result.gates.value.to_series())             # the same board as an xarray Dataset

    published = ds.dataset(
        result.run_dir / "layer3" / "6A" / "s1_party_base_6A", format="parquet", partitioning="hive"
    )
    print(published.to_table(columns=["region_id"]).group_by("region_id").aggregate(
        [("region_id", "count")]))

    # Risky account share by the owner's role family, straight from the Parquet.
    layer = f"{result.run_dir}/layer3/6A"
    print(duckdb.sql(f"""
        select p.canonical_role_family as owner_family, count(*) as accounts,
               round(avg(a.is_risky::int), 4) as risky_share
        from read_parquet('{layer}/s5_account_fraud_roles_6A/**/*.parquet') a
        join read_parquet('{layer}/s2_account_base_6A/**/*.parquet') b using (account_id)
        join read_parquet('{layer}/s5_party_fraud_roles_6A/**/*.parquet') p
          on p.party_id = b.owner_party_id
        group by 1 order by 2 desc"""))
