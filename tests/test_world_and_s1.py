"""The upstream world (S0) and the party base (S1): SPEC sections 2, 3 and 4."""
import hashlib
import json
import math
import shutil
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import seg6a
from seg6a.kernels.prf import PRF_VERSION
from seg6a.kernels.sample import categorical_range, normalised_cdf
from seg6a.perf import PerfRecorder
from seg6a.policies import canonical_hash
from seg6a.rng import key_fingerprint, substream_key
from seg6a.states import s0_gate, s1_parties
from seg6a.world import load_world

N_SMALL = 200_000
S1_LABELS = ("s1.party.segment", "s1.party.type")


def embedded_bytes(*parts):
    node = resources.files("seg6a.config")
    for part in parts:
        node = node.joinpath(part)
    return node.read_bytes()


def sha(data):
    return hashlib.sha256(data).hexdigest()


# --- the embedded world --------------------------------------------------------------------


@pytest.fixture(scope="module")
def world():
    return load_world()


def test_embedded_world_countries(world):
    countries = world.countries
    iso = countries.column("country_iso").to_pylist()
    assert len(iso) >= 40
    assert len(set(iso)) == len(iso)
    assert iso == sorted(iso)
    assert all(len(code) == 2 and code.isalpha() and code.isupper() for code in iso)
    assert world.countries_vocab == tuple(iso)
    regions = set(countries.column("region_id").to_pylist())
    assert len(regions) == 6
    assert world.regions_vocab == tuple(sorted(regions))
    weights = countries.column("population_weight").to_numpy()
    assert np.all(np.isfinite(weights)) and np.all(weights > 0)
    np.testing.assert_array_equal(world.country_weight, weights)
    # country_region indexes regions_vocab consistently with the table.
    assert [world.regions_vocab[r] for r in world.country_region] == \
        countries.column("region_id").to_pylist()
    assert set(world.country_region.tolist()) == set(range(6))


def test_embedded_merchant_catalogue_is_deterministic(world):
    again = load_world()
    assert again.merchants.equals(world.merchants)
    assert again.inputs == world.inputs


def test_embedded_merchants_cover_every_country(world):
    catalogue = yaml.safe_load(embedded_bytes("world", "merchant_catalogue.yaml"))
    merchants = world.merchants
    assert merchants.num_rows == catalogue["merchants_total"]
    assert merchants.column("merchant_id").to_pylist() == list(range(merchants.num_rows))
    per_country = {}
    for code in merchants.column("country_iso").to_pylist():
        per_country[code] = per_country.get(code, 0) + 1
    assert set(per_country) == set(world.countries_vocab)
    assert min(per_country.values()) >= 1
    assert set(merchants.column("mcc").to_pylist()) <= {int(c) for c in catalogue["mcc_mix"]}
    assert set(merchants.column("size_class").to_pylist()) <= set(catalogue["size_class_mix"])
    # Bigger countries get more merchants (weights ** exponent, exponent > 0).
    weight = dict(zip(world.countries_vocab, world.country_weight))
    biggest, smallest = max(weight, key=weight.get), min(weight, key=weight.get)
    assert per_country[biggest] > per_country[smallest]


def test_embedded_fingerprint_is_the_hash_of_input_names_and_sha256():
    sealed = s0_gate.run(1, "tiny")
    expected = canonical_hash([
        {"name": "countries", "sha256": sha(embedded_bytes("world", "countries.csv"))},
        {"name": "merchant_catalogue",
         "sha256": sha(embedded_bytes("world", "merchant_catalogue.yaml"))},
        {"name": "country_indicators",
         "sha256": sha(embedded_bytes("world", "country_indicators.yaml"))},
    ])
    assert sealed.manifest_fingerprint == expected
    assert sealed.sealed_inputs["manifest_fingerprint"] == expected
    # Seed and scale do not enter the fingerprint.
    assert s0_gate.run(99, "small").manifest_fingerprint == expected


# --- a user world ---------------------------------------------------------------------------


MERCHANT_COUNTRIES = ("US", "FR", "NG", "BR", "IN", "AE")


def merchants_table(countries):
    """A small merchant table: a few merchants, ids deliberately not in file order."""
    rows = [(i, countries[i % len(countries)]) for i in range(len(countries) * 2)]
    rows.reverse()
    return pa.table({
        "merchant_id": pa.array([r[0] for r in rows], pa.int64()),
        "country_iso": pa.array([r[1] for r in rows], pa.string()),
        "mcc": pa.array([5411 + (r[0] % 3) for r in rows], pa.int16()),
        "size_class": pa.array(["MICRO" if r[0] % 2 else "SMALL" for r in rows], pa.string()),
    })


def write_indicators(world_dir):
    """The embedded country indicators, which the embedded priors' modulation names."""
    (world_dir / "country_indicators.yaml").write_bytes(
        embedded_bytes("world", "country_indicators.yaml"))


def write_csv_world(folder):
    """The embedded countries.csv, byte for byte, and a small merchants.csv."""
    world_dir = folder / "world"
    world_dir.mkdir(parents=True)
    (world_dir / "countries.csv").write_bytes(embedded_bytes("world", "countries.csv"))
    write_indicators(world_dir)
    merchants = merchants_table(MERCHANT_COUNTRIES)
    lines = ["merchant_id,country_iso,mcc,size_class"] + [
        f"{m},{c},{k},{s}" for m, c, k, s in zip(*(merchants.column(n).to_pylist()
                                                   for n in merchants.column_names))
    ]
    (world_dir / "merchants.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return world_dir


def write_parquet_world(folder, countries):
    world_dir = folder / "world"
    world_dir.mkdir(parents=True)
    pq.write_table(countries, world_dir / "countries.parquet")
    write_indicators(world_dir)
    pq.write_table(merchants_table(MERCHANT_COUNTRIES), world_dir / "merchants.parquet")
    return world_dir


def test_user_csv_world_replaces_the_embedded_one(tmp_path, world):
    world_dir = write_csv_world(tmp_path / "cfg")
    sealed = s0_gate.run(1, "tiny", tmp_path / "cfg")
    user = sealed.world
    assert user.countries.equals(world.countries)
    assert user.countries_vocab == world.countries_vocab
    # The user's merchants, sorted by id, replace the generated catalogue.
    assert user.merchants.num_rows == 2 * len(MERCHANT_COUNTRIES)
    assert user.merchants.column("merchant_id").to_pylist() == list(range(user.merchants.num_rows))
    assert set(user.merchants.column("country_iso").to_pylist()) == set(MERCHANT_COUNTRIES)
    assert user.merchants.schema.field("mcc").type == pa.int16()

    # The fingerprint is the hash of the sealed inputs' names and sha256 only.
    countries_sha = sha((world_dir / "countries.csv").read_bytes())
    merchants_sha = sha((world_dir / "merchants.csv").read_bytes())
    assert countries_sha == sha(embedded_bytes("world", "countries.csv"))
    indicators_sha = sha(embedded_bytes("world", "country_indicators.yaml"))
    assert [(i["name"], i["sha256"]) for i in sealed.sealed_inputs["inputs"]] == [
        ("countries", countries_sha), ("merchants", merchants_sha),
        ("country_indicators", indicators_sha)]
    assert sealed.manifest_fingerprint == canonical_hash(
        [{"name": "countries", "sha256": countries_sha},
         {"name": "merchants", "sha256": merchants_sha},
         {"name": "country_indicators", "sha256": indicators_sha}])
    # Same countries bytes, but the merchants input replaces the catalogue: a new fingerprint.
    assert sealed.manifest_fingerprint != s0_gate.run(1, "tiny").manifest_fingerprint
    # No user path leaks into the sealed inputs.
    assert str(tmp_path) not in json.dumps(sealed.sealed_inputs)
    assert str(tmp_path) not in json.dumps(sealed.receipt)


def test_user_world_fingerprint_ignores_the_folder_and_tracks_bytes(tmp_path):
    write_csv_world(tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b" / "deeper")
    first = s0_gate.run(1, "tiny", tmp_path / "a")
    moved = s0_gate.run(5, "small", tmp_path / "b" / "deeper")
    assert moved.manifest_fingerprint == first.manifest_fingerprint
    assert moved.sealed_inputs == first.sealed_inputs

    merchants = tmp_path / "b" / "deeper" / "world" / "merchants.csv"
    merchants.write_text(merchants.read_text() + "999,US,5411,LARGE\n")
    changed = s0_gate.run(1, "tiny", tmp_path / "b" / "deeper")
    assert changed.manifest_fingerprint != first.manifest_fingerprint
    assert changed.world.merchants.num_rows == first.world.merchants.num_rows + 1


def test_user_parquet_world(tmp_path, world):
    world_dir = write_parquet_world(tmp_path / "cfg", world.countries)
    sealed = s0_gate.run(1, "tiny", tmp_path / "cfg")
    assert sealed.world.countries.equals(world.countries)
    assert [i["source"] for i in sealed.sealed_inputs["inputs"]] == [
        "user:world/countries.parquet", "user:world/merchants.parquet",
        "embedded:world/country_indicators.yaml"]
    assert sealed.manifest_fingerprint == canonical_hash(
        [{"name": "countries", "sha256": sha((world_dir / "countries.parquet").read_bytes())},
         {"name": "merchants", "sha256": sha((world_dir / "merchants.parquet").read_bytes())},
         {"name": "country_indicators",
          "sha256": sha(embedded_bytes("world", "country_indicators.yaml"))}])
    csv_sealed = s0_gate.run(1, "tiny", write_csv_world(tmp_path / "csv").parent)
    assert sealed.manifest_fingerprint != csv_sealed.manifest_fingerprint
    assert sealed.world.merchants.equals(csv_sealed.world.merchants)


def test_user_world_changes_the_run_fingerprint_not_the_country_split(tmp_path):
    write_csv_world(tmp_path / "cfg")
    embedded = s1_parties.run(s0_gate.run(3, "tiny"), PerfRecorder())[0]
    sealed = s0_gate.run(3, "tiny", tmp_path / "cfg")
    user = s1_parties.run(sealed, PerfRecorder())[0]
    # Same countries and weights: the same per-country split of ids.
    np.testing.assert_array_equal(user.country_ptr, embedded.country_ptr)
    # Another fingerprint keys other PRF substreams.
    assert not np.array_equal(user.segment, embedded.segment)


# --- S1 at the small scale -----------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    sealed = s0_gate.run(42, "small")
    parties, datasets, rng = s1_parties.run(sealed, PerfRecorder())
    return sealed, parties, datasets, rng


def independent_largest_remainder(total, weights):
    """floor(total * w / sum(w)), then one unit each to the largest remainders (ties: index)."""
    weight_sum = 0.0
    for w in weights:  # sequential, like the kernel
        weight_sum += float(w)
    quota = total * (np.asarray(weights, dtype=np.float64) / weight_sum)
    base = np.floor(quota).astype(np.int64)
    remainder = quota - base
    left = total - int(base.sum())
    assert 0 <= left < len(weights)
    order = sorted(range(len(weights)), key=lambda i: (-remainder[i], i))
    base[order[:left]] += 1
    return base


def test_per_country_counts_are_the_largest_remainder_split(small):
    sealed, parties, _, _ = small
    assert parties.n_parties == N_SMALL == sealed.scale.n_parties
    expected = independent_largest_remainder(N_SMALL, sealed.world.country_weight)
    assert expected.sum() == N_SMALL
    np.testing.assert_array_equal(
        np.bincount(parties.country, minlength=len(expected)), expected)
    np.testing.assert_array_equal(np.diff(parties.country_ptr), expected)
    assert parties.country_ptr[0] == 0 and parties.country_ptr[-1] == N_SMALL


def test_country_ids_are_contiguous_in_iso_order(small):
    sealed, parties, datasets, _ = small
    assert np.all(np.diff(parties.country.astype(np.int64)) >= 0)
    for code in range(len(parties.countries)):
        lo, hi = parties.country_ptr[code], parties.country_ptr[code + 1]
        assert np.all(parties.country[lo:hi] == code)
    assert parties.countries == tuple(sorted(parties.countries))
    np.testing.assert_array_equal(parties.region, sealed.world.country_region[parties.country])
    table = datasets[0].table
    iso = table.column("country_iso").to_pylist()
    assert iso == sorted(iso)
    assert table.column("party_id").to_pylist() == list(range(N_SMALL))


def prior_type_mix(sealed, region):
    priors = sealed.config["party_priors_6A.v1.yaml"]
    mixes = priors["party_type_mix"]
    return (mixes.get("by_region") or {}).get(region, mixes["default"])


def test_party_type_shares_match_the_prior_per_region(small):
    sealed, parties, _, _ = small
    for code, region in enumerate(parties.regions):
        in_region = parties.region == code
        n = int(in_region.sum())
        assert n > 1000, region
        counts = np.bincount(parties.party_type[in_region], minlength=len(parties.party_types))
        mix = prior_type_mix(sealed, region)
        for t, party_type in enumerate(parties.party_types):
            p = mix[party_type]
            share = counts[t] / n
            se = math.sqrt(p * (1 - p) / n)
            if p == 0:
                assert counts[t] == 0, (region, party_type)
            else:
                assert abs(share - p) <= 4 * se, (region, party_type, share, p, se)


def test_segments_belong_to_their_party_type(small):
    sealed, parties, datasets, _ = small
    np.testing.assert_array_equal(parties.segment_party_type[parties.segment], parties.party_type)
    priors = sealed.config["party_priors_6A.v1.yaml"]
    table = datasets[0].table
    types = table.column("party_type").to_pylist()
    segments = table.column("segment_id").to_pylist()
    owner = {seg: t for t, mix in priors["segments"].items() for seg in mix}
    assert all(owner[s] == t for s, t in zip(segments, types))
    # And the segment mix within each type matches the prior.
    for t, party_type in enumerate(parties.party_types):
        of_type = parties.segment[parties.party_type == t]
        n = of_type.size
        for seg, p in priors["segments"][party_type].items():
            share = np.count_nonzero(of_type == parties.segments.index(seg)) / n
            assert abs(share - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12, (seg, share, p)


def test_table_columns_are_the_arrays(small):
    _, parties, datasets, _ = small
    table = datasets[0].table
    for column, codes, vocab in (
        ("party_type", parties.party_type, parties.party_types),
        ("segment_id", parties.segment, parties.segments),
        ("country_iso", parties.country, parties.countries),
        ("region_id", parties.region, parties.regions),
    ):
        chunked = table.column(column)
        assert pa.types.is_dictionary(chunked.type)
        array = chunked.combine_chunks()
        np.testing.assert_array_equal(array.indices.to_numpy(), codes)
        assert tuple(array.dictionary.to_pylist()) == tuple(vocab)


@pytest.mark.parametrize("start, stop", [(70_001, 130_003), (131_072, 131_073), (0, 17)])
def test_a_block_computed_alone_equals_the_slice(small, start, stop):
    sealed, parties, _, _ = small
    priors = sealed.config["party_priors_6A.v1.yaml"]
    ph = sealed.parameter_hashes["S1"]
    mf = sealed.manifest_fingerprint
    type_cdf = normalised_cdf(s1_parties.party_type_weights(priors, parties.regions))
    _, _, seg_weights = s1_parties.segment_weights(priors)
    segment_cdf = normalised_cdf(seg_weights)

    type_key = substream_key(mf, ph, sealed.seed, "s1.party.type")
    alone = categorical_range(type_key, start, 0, type_cdf,
                              np.ascontiguousarray(parties.region[start:stop]))
    np.testing.assert_array_equal(alone, parties.party_type[start:stop])

    segment_key = substream_key(mf, ph, sealed.seed, "s1.party.segment")
    alone = categorical_range(segment_key, start, 0, segment_cdf,
                              np.ascontiguousarray(parties.party_type[start:stop]))
    np.testing.assert_array_equal(alone, parties.segment[start:stop])

    # A wrong start id (the block's offset is the id, not 0) gives other draws.
    if start > 0 and stop - start > 100:
        shifted = categorical_range(type_key, 0, 0, type_cdf,
                                    np.ascontiguousarray(parties.region[start:stop]))
        assert not np.array_equal(shifted, parties.party_type[start:stop])


def test_s1_substreams_record_one_draw_per_party(small):
    sealed, _, _, rng = small
    audit = rng.audit()
    assert [(a["state"], a["substream"], a["draws"]) for a in audit] == [
        ("S1", label, N_SMALL) for label in S1_LABELS]


# --- the published RNG audit ----------------------------------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    result = seg6a.simulate(42, scale="tiny", out=root, run_id="audit")
    return result, root / "audit"


def test_published_rng_audit_matches_the_result(published):
    result, run_dir = published
    audit_path = run_dir / "layer3/6A/rng/seed=42/rng_audit_6A.json"
    audit = json.loads(audit_path.read_text())
    assert audit["prf_version"] == PRF_VERSION
    s1 = [row for row in audit["substreams"] if row["state"] == "S1"]
    n = result.parties.n_parties
    assert n == result.table("s1_party_base_6A").num_rows == 20_000
    assert [(r["state"], r["substream"], r["draws"]) for r in s1] == [
        ("S1", label, n) for label in S1_LABELS]
    sealed = result.sealed
    for row in s1:
        key = substream_key(sealed.manifest_fingerprint, sealed.parameter_hashes["S1"],
                            result.seed, row["substream"])
        assert row["key_fingerprint"] == key_fingerprint(key)
    assert len({row["key_fingerprint"] for row in audit["substreams"]}) == len(audit["substreams"])


def test_published_rng_trace_sums_to_the_audit(published):
    _, run_dir = published
    rng_dir = run_dir / "layer3/6A/rng/seed=42"
    audit = json.loads((rng_dir / "rng_audit_6A.json").read_text())["substreams"]
    totals = {}
    for line in (rng_dir / "rng_trace_6A.jsonl").read_text().splitlines():
        row = json.loads(line)
        key = (row["state"], row["substream"])
        totals[key] = totals.get(key, 0) + row["draws"]
    assert totals == {(a["state"], a["substream"]): a["draws"] for a in audit}
    assert totals[("S1", "s1.party.type")] == 20_000


def test_empty_merchants_file_is_a_world_error(tmp_path):
    world_dir = write_csv_world(tmp_path / "cfg")
    (world_dir / "merchants.csv").write_text("merchant_id,country_iso,mcc,size_class\n")
    with pytest.raises(seg6a.errors.WorldError, match="no merchants"):
        load_world(world_dir)


def test_party_type_left_out_of_a_region_mix_has_share_zero(tmp_path):
    priors = yaml.safe_load(embedded_bytes("priors", "party_priors_6A.v1.yaml"))
    priors["party_type_mix"]["by_region"]["EUROPE"] = {"RETAIL": 0.95, "BUSINESS": 0.05}
    (tmp_path / "party_priors_6A.v1.yaml").write_text(yaml.safe_dump(priors))
    result = seg6a.simulate(5, scale="tiny", config=tmp_path)
    parties = result.parties
    europe = parties.region == parties.regions.index("EUROPE")
    assert europe.any()
    assert not np.any(parties.party_type[europe] == parties.party_types.index("OTHER"))
