"""Quickstart: generate a tiny world, look at the parties, read the published Parquet."""
import tempfile

import pyarrow.dataset as ds

import seg6a

with tempfile.TemporaryDirectory() as root:
    result = seg6a.simulate(42, scale="tiny", out=root)
    parties = result.table("s1_party_base_6A")
    print(f"run {result.run_dir.name}: {parties.num_rows:,} parties")
    print(parties.group_by("party_type").aggregate([("party_id", "count")]))

    published = ds.dataset(
        result.run_dir / "layer3" / "6A" / "s1_party_base_6A", format="parquet", partitioning="hive"
    )
    print(published.to_table(columns=["region_id"]).group_by("region_id").aggregate(
        [("region_id", "count")]))
