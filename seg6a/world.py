"""The upstream world (the frozen input of segment 6A): countries and merchants.

The embedded world is ``config/world/countries.csv`` plus a merchant catalogue generated
deterministically from ``config/world/merchant_catalogue.yaml`` (its fixed ``world_seed``),
and the per-country indicators of ``config/world/country_indicators.yaml`` that set the
priors' country deltas (``seg6a.modulation``). A user world is a folder holding
``countries`` as ``.csv`` or ``.parquet`` with the same columns, ``merchants`` the same way
or the catalogue's generator, and optionally ``country_indicators.yaml``; it replaces the
embedded world whole.
"""
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .policies import canonical_hash, embedded_file, parse_document
from .errors import WorldError
from .kernels.allocate import largest_remainder
from .kernels.sample import categorical_range, normalised_cdf
from .rng import substream_key
from .runs.store import location
from .tables import buffer_reader

COUNTRY_COLUMNS = {
    "country_iso": pa.string(),
    "country_name": pa.string(),
    "region_id": pa.string(),
    "population_weight": pa.float64(),
}
MERCHANT_COLUMNS = {
    "merchant_id": pa.int64(),
    "country_iso": pa.string(),
    "mcc": pa.int16(),
    "size_class": pa.string(),
}


@dataclass(frozen=True)
class World:
    """Countries (sorted by ``country_iso``) and merchants, with their sealed inputs.

    Attributes
    ----------
    countries, merchants : pyarrow.Table
        Plain (non-dictionary) columns as in ``COUNTRY_COLUMNS`` / ``MERCHANT_COLUMNS``.
    countries_vocab, regions_vocab : tuple of str
        Sorted vocabularies; a country's code is its index in ``countries_vocab``.
    country_region : numpy.ndarray
        int16 region code of each country.
    country_weight : numpy.ndarray
        float64 population weight of each country.
    inputs : list of dict
        The files read: ``name``, ``source``, ``sha256``, ``bytes``.
    files : dict
        File name -> the bytes of each file read (a run publishes them with its config).
    indicators : dict
        Indicator name -> float64 percent per country (NaN where the world has no value);
        empty without ``country_indicators.yaml``.
    indicator_columns : dict
        Indicator name -> its ``indicator``, ``source``, ``year``, ``approximate``.
    """

    countries: pa.Table
    merchants: pa.Table
    countries_vocab: tuple
    regions_vocab: tuple
    country_region: np.ndarray
    country_weight: np.ndarray
    inputs: list
    files: dict
    indicators: dict
    indicator_columns: dict

    @property
    def fingerprint(self):
        """The manifest fingerprint: SHA-256 of the inputs' names and content hashes."""
        return canonical_hash([{"name": i["name"], "sha256": i["sha256"]} for i in self.inputs])


INDICATORS = "country_indicators.yaml"
EMBEDDED_WORLD = ("countries.csv", "merchant_catalogue.yaml", INDICATORS)
WORLD_FILES = ("countries.csv", "countries.parquet", "merchants.csv", "merchants.parquet",
               "merchant_catalogue.yaml", INDICATORS)


def load_world(world_dir=None):
    """Load, validate and return the world (embedded when ``world_dir`` is None).

    A user world folder holds ``countries`` (``.csv`` or ``.parquet``), either
    ``merchants`` (a table) or ``merchant_catalogue.yaml`` (the generator of the embedded
    catalogue), and optionally ``country_indicators.yaml``; any other file is refused. A file byte-identical to the embedded one is
    sealed as embedded, so an exported, unedited config gives the embedded world's bytes.

    Raises
    ------
    WorldError
        Naming the file and the column or value at fault.
    """
    if world_dir is None:
        files = {name: (f"embedded:world/{name}", embedded_file("world", name).read_bytes())
                 for name in EMBEDDED_WORLD}
    else:
        files = _user_world(location(world_dir))
    countries_name = next(n for n in files if n.startswith("countries."))
    countries_source, countries_bytes = files[countries_name]
    countries = _read_table(countries_bytes, Path(countries_name).suffix,
                            _shown(world_dir, countries_name), COUNTRY_COLUMNS)
    countries = _check_countries(countries, _shown(world_dir, countries_name))
    inputs = [_sealed("countries", countries_source, countries_bytes)]
    if "merchant_catalogue.yaml" in files:
        source, data = files["merchant_catalogue.yaml"]
        catalogue = _parse_yaml("merchant_catalogue.yaml", data, _shown(world_dir,
                                                                       "merchant_catalogue.yaml"))
        merchants = generate_merchants(countries, catalogue)
        inputs.append(_sealed("merchant_catalogue", source, data))
    else:
        name = next(n for n in files if n.startswith("merchants."))
        source, data = files[name]
        merchants = _read_table(data, Path(name).suffix, _shown(world_dir, name),
                                MERCHANT_COLUMNS)
        merchants = _check_merchants(merchants, countries, _shown(world_dir, name))
        inputs.append(_sealed("merchants", source, data))

    countries_vocab = tuple(countries.column("country_iso").to_pylist())
    indicators, indicator_columns = {}, {}
    if INDICATORS in files:
        source, data = files[INDICATORS]
        shown = _shown(world_dir, INDICATORS)
        document = _parse_yaml(INDICATORS, data, shown)
        indicators, indicator_columns = _indicators(document, countries_vocab)
        inputs.append(_sealed("country_indicators", source, data))
    regions_vocab = tuple(sorted(set(countries.column("region_id").to_pylist())))
    region_code = {region: code for code, region in enumerate(regions_vocab)}
    country_region = np.array(
        [region_code[r] for r in countries.column("region_id").to_pylist()], dtype=np.int16
    )
    return World(
        countries=countries,
        merchants=merchants,
        countries_vocab=countries_vocab,
        regions_vocab=regions_vocab,
        country_region=country_region,
        country_weight=countries.column("population_weight").to_numpy().astype(np.float64),
        inputs=inputs,
        files={name: data for name, (_, data) in files.items()},
        indicators=indicators,
        indicator_columns=indicator_columns,
    )


def _parse_yaml(name, data, shown):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorldError(f"cannot read: {exc}", file=shown) from exc
    return parse_document(name, text, shown)


def _indicators(document, countries_vocab):
    """``({indicator: percent per country, NaN where missing}, {indicator: its metadata})``
    of a schema-valid ``country_indicators.yaml``."""
    columns = document["columns"]
    code = {iso: c for c, iso in enumerate(countries_vocab)}
    out = {name: np.full(len(countries_vocab), np.nan) for name in columns}
    # A country the world lacks is skipped: one indicators file serves a world and its
    # subsets; a world's country without values is named in the receipts.
    for iso, row in document["values"].items():
        for name, value in row.items():  # parse_document checked the names
            if iso in code:
                out[name][code[iso]] = float(value)
    return out, {name: dict(meta) for name, meta in columns.items()}


def _shown(world_dir, name):
    return name if world_dir is None else location(world_dir) / name


def _user_world(world_dir):
    """``{file name: (sealed source, bytes)}`` of a user world folder."""
    unknown = sorted(p.name for p in world_dir.iterdir()
                     if not p.name.startswith(".") and p.name not in WORLD_FILES
                     and p.name not in ("README.md", "README.txt"))
    if unknown:
        raise WorldError(f"unknown world file {unknown[0]}; a world holds countries (.csv or "
                         ".parquet), merchants (.csv or .parquet) or "
                         f"merchant_catalogue.yaml, and optionally {INDICATORS}",
                         file=world_dir / unknown[0])
    files = {}
    for stem in ("countries", "merchants"):
        found = [f"{stem}{suffix}" for suffix in (".parquet", ".csv")
                 if (world_dir / f"{stem}{suffix}").is_file()]
        if stem == "merchants" and (world_dir / "merchant_catalogue.yaml").is_file():
            found.append("merchant_catalogue.yaml")
        if not found:
            expected = " or merchant_catalogue.yaml" if stem == "merchants" else ""
            raise WorldError(f"missing world file {stem}.csv or {stem}.parquet{expected}",
                             file=world_dir)
        if len(found) > 1:
            raise WorldError(f"{' and '.join(found)} both given; keep one", file=world_dir)
        files[found[0]] = _world_file(world_dir, found[0])
    if (world_dir / INDICATORS).is_file():
        files[INDICATORS] = _world_file(world_dir, INDICATORS)
    return files


def _world_file(world_dir, name):
    """``(sealed source, bytes)`` of a user world's file; the source names the file, not
    the user's folder (which must not change bytes), and an unedited copy of an embedded
    file is sealed as embedded."""
    data = _read_bytes(world_dir / name)
    embedded = name in EMBEDDED_WORLD and data == embedded_file("world", name).read_bytes()
    return f"{'embedded' if embedded else 'user'}:world/{name}", data


def generate_merchants(countries, catalogue):
    """The merchant catalogue from its generator document; depends on nothing else.

    Merchants per country: largest remainder of ``merchants_total`` over
    ``population_weight ** country_weight_exponent``; ``mcc`` and ``size_class`` by PRF
    inverse CDF under keys derived from the catalogue's ``world_seed``.
    """
    weights = countries.column("population_weight").to_numpy() ** catalogue["country_weight_exponent"]
    total = int(catalogue["merchants_total"])
    per_country = largest_remainder(total, weights, np.zeros_like(weights))
    country_codes = np.repeat(np.arange(len(weights), dtype=np.int64), per_country)

    mcc_codes, mcc_shares = zip(*catalogue["mcc_mix"].items())
    size_classes, size_shares = zip(*catalogue["size_class_mix"].items())
    world_seed = int(catalogue["world_seed"])
    rows = np.zeros(total, dtype=np.int16)  # the codes' type: one compiled signature
    mcc_key = substream_key("upstream-world", "", world_seed, "world.merchant.mcc")
    size_key = substream_key("upstream-world", "", world_seed, "world.merchant.size_class")
    mcc_pick = categorical_range(mcc_key, 0, 0, normalised_cdf(np.array([mcc_shares])), rows)
    size_pick = categorical_range(size_key, 0, 0, normalised_cdf(np.array([size_shares])), rows)

    iso = countries.column("country_iso")
    return pa.table(
        {
            "merchant_id": pa.array(np.arange(total, dtype=np.int64)),
            "country_iso": pc.take(iso, pa.array(country_codes)),
            "mcc": pa.array(np.array(mcc_codes, dtype=np.int16)[mcc_pick]),
            "size_class": pa.array(np.array(size_classes, dtype=object)[size_pick], pa.string()),
        }
    )


def _find_table(world_dir, stem):
    for suffix in (".parquet", ".csv"):
        path = world_dir / f"{stem}{suffix}"
        if path.is_file():
            return path
    raise WorldError(f"missing world file {stem}.csv or {stem}.parquet", file=world_dir)


def _read_bytes(path):
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WorldError(f"cannot read: {exc.strerror or exc}", file=path) from exc


def _read_table(data, suffix, shown_as, columns):
    try:
        if suffix == ".parquet":
            table = pq.read_table(buffer_reader(data))
        else:
            table = pacsv.read_csv(buffer_reader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise WorldError(f"cannot read table: {exc}", file=shown_as) from exc
    missing = [name for name in columns if name not in table.column_names]
    if missing:
        raise WorldError(
            f"missing required column(s) {', '.join(missing)}; expected {', '.join(columns)}",
            file=shown_as,
            key=missing[0],
        )
    out = {}
    for name, typ in columns.items():
        column = table.column(name)
        if column.null_count:
            raise WorldError("column has empty values", file=shown_as, key=name)
        try:
            out[name] = column.cast(typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise WorldError(f"column is not of type {typ}: {exc}", file=shown_as, key=name) from exc
    return pa.table(out)


def _check_countries(countries, shown_as):
    if countries.num_rows == 0:
        raise WorldError("no countries", file=shown_as)
    iso = countries.column("country_iso").to_pylist()
    for row, code in enumerate(iso):
        if len(code) != 2 or not code.isalpha() or not code.isupper():
            raise WorldError(f"row {row + 1}: {code!r} is not an ISO 3166 alpha-2 code",
                             file=shown_as, key="country_iso")
    if len(set(iso)) != len(iso):
        dupes = sorted({c for c in iso if iso.count(c) > 1})
        raise WorldError(f"duplicate countries {', '.join(dupes)}", file=shown_as, key="country_iso")
    for row, region in enumerate(countries.column("region_id").to_pylist()):
        if not region or not region.replace("_", "").isalnum():
            raise WorldError(f"row {row + 1}: {region!r} is not a region id", file=shown_as,
                             key="region_id")
    for row, weight in enumerate(countries.column("population_weight").to_pylist()):
        if not (math.isfinite(weight) and weight > 0):
            raise WorldError(f"row {row + 1}: weight {weight} must be positive", file=shown_as,
                             key="population_weight")
    if not math.isfinite(math.fsum(countries.column("population_weight").to_pylist())):
        raise WorldError("weights must have a finite sum", file=shown_as, key="population_weight")
    return countries.sort_by("country_iso")


def _check_merchants(merchants, countries, shown_as):
    if merchants.num_rows == 0:
        raise WorldError("no merchants", file=shown_as)
    known = pc.is_in(merchants.column("country_iso"), value_set=countries.column("country_iso"))
    if pc.any(pc.invert(known)).as_py():
        unknown = pc.filter(merchants.column("country_iso"), pc.invert(known))
        raise WorldError(f"unknown country {unknown[0].as_py()!r} (not in countries)",
                         file=shown_as, key="country_iso")
    ids = merchants.column("merchant_id")
    if pc.count_distinct(ids).as_py() != merchants.num_rows:
        raise WorldError("merchant ids are not unique", file=shown_as, key="merchant_id")
    return merchants.sort_by("merchant_id")


def _sealed(name, source, data):
    return {"name": name, "source": source, "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data)}
