"""The arrays the gates read, taken from the published tables (or the identical in-memory ones).

Gates never see a state's objects or counters: ``from_tables`` rebuilds the relations they
need (CSR pointers, codes, role flags) from the dataset tables alone, for a whole run or for
one canonical block (whose parts hold its own id ranges), and ``read_run`` loads the
tables back from a run folder's Parquet.
"""
import functools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..engine import concurrently
from ..errors import InputError
from ..kernels.csr import csr_from_owners, ptr_from_grouped, transpose
from ..runs.store import location
from ..tables import buffer_reader, decode_part, part_columns

ROLE_KINDS = ("party", "account", "merchant", "device", "ip")
DATASETS = (
    "s1_party_base_6A", "s2_account_base_6A", "s2_party_product_holdings_6A",
    "s3_instrument_base_6A", "s4_device_base_6A", "s4_device_party_links_6A", "s4_ip_base_6A",
    "s4_device_ip_links_6A", *(f"s5_{kind}_fraud_roles_6A" for kind in ROLE_KINDS),
)

# The columns the gates decode of each dataset: ids, references and the categories they
# count. The 6B contract reads the other columns' types and null counts only, which a
# part's Parquet footer holds (``seg6a.tables.part_columns``).
COLUMNS = {
    "s1_party_base_6A": ("party_id", "party_type", "segment_id", "country_iso"),
    "s2_account_base_6A": ("account_id", "owner_party_id", "account_type"),
    "s2_party_product_holdings_6A": ("party_id", "account_type", "account_count"),
    "s3_instrument_base_6A": ("instrument_id", "account_id", "owner_party_id",
                              "instrument_type"),
    "s4_device_base_6A": ("device_id", "primary_party_id"),
    "s4_device_party_links_6A": ("device_id", "party_id"),
    "s4_ip_base_6A": ("ip_id", "ip_type", "region_id"),
    "s4_device_ip_links_6A": ("device_id", "ip_id"),
    **{f"s5_{kind}_fraud_roles_6A": (f"{kind}_id", "raw_role", "canonical_role_family",
                                     "is_risky") for kind in ROLE_KINDS},
}


def codes(table, column):
    """``(codes, vocabulary)`` of a category column; nulls get code -1."""
    array = table.column(column).combine_chunks()
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    indices = array.indices
    if indices.null_count:
        indices = indices.fill_null(-1)
    # Codes keep their (small) integer type: every use is indexing or a small product.
    return indices.to_numpy(zero_copy_only=False), [str(v) for v in array.dictionary.to_pylist()]


def codes_if_any(table, column):
    """``codes`` of a column, or all -1 and no vocabulary when the table lacks it (the 6B
    contract reports the missing column; the diagnostics that read it see no rows)."""
    if column not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int16), []
    return codes(table, column)


def read_only(ids):
    """``ids`` as the kernels that read key columns take them: a read-only contiguous int64
    view.

    Arrow's columns are read-only and ids computed from them are not; one type means one
    compiled signature (``seg6a.kernel_cache.KERNELS``).
    """
    view = np.ascontiguousarray(ids, dtype=np.int64).view()
    view.flags.writeable = False
    return view


def increasing(ids):
    """Whether ``ids`` strictly increase (the published layout of a key column).

    NumPy's vectorised comparison, 2.5x a loop that stops at the first decrease: the
    published layout never decreases, so the whole column is read either way.
    """
    return bool(np.all(ids[1:] > ids[:-1]))


def ints(table, column):
    return table.column(column).to_numpy().astype(np.int64, copy=False)


@dataclass
class Roles:
    """One role table: raw role and family codes (-1 for null), and the risky flag."""

    raw_role: np.ndarray
    raw_roles: list
    family: np.ndarray
    families: list
    is_risky: np.ndarray
    ids: np.ndarray
    null_cells: int


@dataclass
class GateData:
    """What T1-T10 read of a run or of one canonical block, as arrays.

    Ids are row indices of their base tables: entity ``i`` of a kind is global id
    ``bases[kind] + i`` (the bases are 0 for a whole run).
    """

    party_type: np.ndarray
    party_types: list
    holding_party: np.ndarray
    holding_type: np.ndarray
    account_types: list
    holding_count: np.ndarray
    account_owner: np.ndarray
    party_account_ptr: np.ndarray
    instrument_account: np.ndarray
    account_instrument_ptr: np.ndarray
    device_primary: np.ndarray
    party_device_ptr: np.ndarray
    party_device_ids: np.ndarray
    device_ip_ptr: np.ndarray
    device_ip_ids: np.ndarray
    ip_device_ptr: np.ndarray
    ip_type: np.ndarray
    ip_types: list
    ip_region: np.ndarray
    regions: list
    n_merchants: int
    roles: dict
    bases: dict
    # What the country-modulation diagnostic counts (seg6a.gates.diagnostics); -1 codes
    # where a table lacks the column.
    party_country: np.ndarray = None
    countries: list = None
    party_segment: np.ndarray = None
    segments: list = None
    account_type: np.ndarray = None
    base_account_types: list = None
    instrument_type: np.ndarray = None
    instrument_types: list = None

    @property
    def n_parties(self):
        return self.party_type.shape[0]

    @property
    def n_devices(self):
        return self.device_primary.shape[0]

    @property
    def n_ips(self):
        return self.ip_type.shape[0]


def _resolvable(*columns_and_sizes):
    """Rows whose ids all lie in their tables (dangling ones are T10's to report)."""
    keep = None
    for ids, n in columns_and_sizes:
        ok = (ids >= 0) & (ids < n)
        keep = ok if keep is None else keep & ok
    return keep


def owned(owner, values, n_owners, fill=0):
    """``values[owner]``, ``fill`` where the owner does not resolve (the contract reports
    it); one gather when every owner does, as in the published layout."""
    if owner.size == 0 or (owner.min() >= 0 and owner.max() < n_owners):
        return values[owner]
    out = np.full(owner.shape, fill, dtype=values.dtype)
    ok = (owner >= 0) & (owner < n_owners)
    out[ok] = values[owner[ok]]
    return out


def _group_rows(owner, n_owners):
    """``(ptr, order)`` of rows grouped by owner; the published order when already grouped."""
    if np.all(owner[1:] >= owner[:-1]):
        return ptr_from_grouped(read_only(owner), n_owners), slice(None)
    return csr_from_owners(owner, n_owners)


def _resolved(owner, n_owners):
    """The owner ids that lie in their table."""
    ok = _resolvable((owner, n_owners))
    return owner if ok.all() else owner[ok]


def _links_by_device(link_device, target, n_devices, n_targets):
    """CSR ``device -> target`` from the link rows whose ids both resolve."""
    ok = _resolvable((link_device, n_devices), (target, n_targets))
    if not ok.all():
        link_device, target = link_device[ok], target[ok]
    ptr, order = _group_rows(link_device, n_devices)
    # Writable like the states' arrays (Arrow's are read-only): kernels compile once per type.
    return ptr, np.require(target[order], requirements="W")


def _device_ip(link_device, link_ip, n_devices, n_ips):
    """``device -> ips`` and the pointers of ``ip -> devices``."""
    device_ip_ptr, device_ip_ids = _links_by_device(link_device, link_ip, n_devices, n_ips)
    return device_ip_ptr, device_ip_ids, transpose(device_ip_ptr, device_ip_ids, n_ips)[0]


def _roles(table, kind, columns):
    raw_role, raw_roles = codes(table, "raw_role")
    family, families = codes(table, "canonical_role_family")
    risky = table.column("is_risky").combine_chunks()
    return Roles(raw_role, raw_roles, family, families,
                 risky.fill_null(False).to_numpy(zero_copy_only=False).astype(bool),
                 ints(table, f"{kind}_id"), sum(nulls for _, nulls in columns.values()))


# Tables whose rows the gates index by entity id, and their keys.
ENTITY_KEYS = {"s1_party_base_6A": "party_id", "s2_account_base_6A": "account_id",
               "s3_instrument_base_6A": "instrument_id", "s4_device_base_6A": "device_id",
               "s4_ip_base_6A": "ip_id",
               **{f"s5_{kind}_fraud_roles_6A": f"{kind}_id" for kind in ROLE_KINDS}}


def _in_id_order(table, key):
    """The table with its rows in ``key`` order (the contract admits any row order; the
    published layout is already in order, which costs one pass to see)."""
    if key not in table.column_names:
        return table  # T10's contract check reports the missing key
    ids = ints(table, key)
    if ids.size == 0 or increasing(ids):
        return table
    return table.take(pa.array(np.argsort(ids, kind="stable")))


# The base table of each entity kind an id refers to.
BASES = {"party": "s1_party_base_6A", "account": "s2_account_base_6A",
         "instrument": "s3_instrument_base_6A", "device": "s4_device_base_6A",
         "ip": "s4_ip_base_6A"}


def from_tables(tables, n_merchants, bases=None, columns=None):
    """Gate inputs from dataset name -> ``pyarrow.Table`` (at least its ``COLUMNS``).

    Entity tables are read in id order, whatever their row order. Relations are built from
    the rows whose references resolve; T10's contract check reports the others (a broken
    dataset must fail a gate, not crash the board). The independent relations are built
    concurrently.

    ``bases`` maps each kind of ``BASES`` to the global id of its first entity, for the
    tables of one canonical block (default: a whole run, all 0). The merchant roles are
    global: a block's tables may leave them out. ``columns`` (dataset name ->
    ``seg6a.tables.part_columns``) gives the null counts of the role tables' other columns;
    by default they are read from the tables.
    """
    bases = dict.fromkeys(BASES, 0) if bases is None else bases
    if columns is None:
        columns = {name: part_columns(table) for name, table in tables.items()}
    tables = {**tables, **{name: _in_id_order(tables[name], key)
                           for name, key in ENTITY_KEYS.items() if name in tables}}
    parties = tables["s1_party_base_6A"]
    n_parties = parties.num_rows
    accounts = tables["s2_account_base_6A"]
    devices = tables["s4_device_base_6A"]
    ips = tables["s4_ip_base_6A"]
    holdings = tables["s2_party_product_holdings_6A"]

    def local(table, column, kind):
        ids = ints(table, column)
        return ids - bases[kind] if bases[kind] else ids

    instruments = tables["s3_instrument_base_6A"]
    instrument_account = local(instruments, "account_id", "account")
    instrument_type, instrument_types = codes_if_any(instruments, "instrument_type")
    resolves = _resolvable((instrument_account, accounts.num_rows))
    if not resolves.all():
        instrument_account, instrument_type = (instrument_account[resolves],
                                               instrument_type[resolves])
    account_owner = local(accounts, "owner_party_id", "party")
    kinds = [kind for kind in ROLE_KINDS if f"s5_{kind}_fraud_roles_6A" in tables]
    results = concurrently(
        lambda: _group_rows(_resolved(account_owner, n_parties), n_parties)[0],
        lambda: _group_rows(instrument_account, accounts.num_rows)[0],
        lambda: transpose(*_links_by_device(
            local(tables["s4_device_party_links_6A"], "device_id", "device"),
            local(tables["s4_device_party_links_6A"], "party_id", "party"),
            devices.num_rows, n_parties), n_parties),
        lambda: _device_ip(local(tables["s4_device_ip_links_6A"], "device_id", "device"),
                           local(tables["s4_device_ip_links_6A"], "ip_id", "ip"),
                           devices.num_rows, ips.num_rows),
        *[functools.partial(_roles, tables[f"s5_{kind}_fraud_roles_6A"], kind,
                            columns[f"s5_{kind}_fraud_roles_6A"]) for kind in kinds],
    )
    (party_account_ptr, account_instrument_ptr, (party_device_ptr, party_device_ids),
     (device_ip_ptr, device_ip_ids, ip_device_ptr)) = results[:4]
    party_type, party_types = codes(parties, "party_type")
    holding_type, account_types = codes(holdings, "account_type")
    ip_type, ip_types = codes(ips, "ip_type")
    ip_region, regions = codes(ips, "region_id")
    return GateData(
        party_type, party_types, local(holdings, "party_id", "party"), holding_type,
        account_types, ints(holdings, "account_count"), account_owner, party_account_ptr,
        instrument_account, account_instrument_ptr,
        local(devices, "primary_party_id", "party"), party_device_ptr, party_device_ids,
        device_ip_ptr, device_ip_ids, ip_device_ptr, ip_type, ip_types, ip_region, regions,
        n_merchants, dict(zip(kinds, results[4:])), bases,
        *codes_if_any(parties, "country_iso"), *codes_if_any(parties, "segment_id"),
        *codes_if_any(accounts, "account_type"), instrument_type, instrument_types)


def read_run(run_dir, seed, state_hashes=None, names=DATASETS):
    """Dataset name -> ``pyarrow.Table`` of one seed, read back from a run folder's Parquet.

    Parameters
    ----------
    run_dir : path-like
    seed : int
    state_hashes : dict, optional
        ``{"S1": parameter_hash, ..., "S5": ...}`` (S0's receipt has them): the partition to
        read of each dataset. Required when a ``--from`` rerun left several.
    names : sequence of str
        The datasets to read (default: every dataset the gates read).
    """
    run_dir = location(run_dir)
    tables = {}
    for name in names:
        folder = run_dir / "layer3" / "6A" / name / f"seed={seed}"
        state_hash = "*" if state_hashes is None else state_hashes[name[:2].upper()]
        partitions = sorted(folder.glob(f"parameter_hash={state_hash}/manifest_fingerprint=*"))
        if len(partitions) > 1:
            raise InputError(f"{folder} holds {len(partitions)} partitions; say which to read "
                             "with state_hashes")
        parts = sorted(partitions[0].glob("part-*.parquet")) if partitions else []
        if not parts:
            raise InputError(f"no published parts of {name} for seed {seed} in {run_dir}")
        # Parts are named by canonical block, so sorted names are canonical row order; they
        # need not agree on which columns may hold nulls (a part another writer replaced).
        tables[name] = pa.concat_tables([decode_part(p.read_bytes()) for p in parts],
                                        promote_options="default")
    return tables


def published_blocks(run_dir, parts):
    """A seed's published parts as ``seg6a.gates.stats.measure_run`` takes them.

    Parameters
    ----------
    run_dir : path-like
    parts : iterable of str
        The seed's live Parquet parts, relative to ``run_dir`` (its receipts list them).

    Returns
    -------
    (list of dict, list of dict)
        Per canonical block, dataset name -> the Parquet bytes of its part (the merchant
        roles, one global part, with the first block); and per block the first id of each
        entity kind, from the parts' row counts.
    """
    run_dir = location(run_dir)
    by_dataset = {}
    for relative in sorted(parts):  # parts are named by block: sorted is block order
        name = relative.split("/")[2]  # layer3/6A/<dataset>/seed=...
        if name in DATASETS:
            by_dataset.setdefault(name, []).append((run_dir / relative).read_bytes())
    n_blocks = max((len(p) for p in by_dataset.values()), default=0)
    blocks = [{} for _ in range(n_blocks)]
    rows = {}
    for name, datas in by_dataset.items():
        for block, data in enumerate(datas):
            blocks[block][name] = data
            rows.setdefault(name, []).append(pq.read_metadata(buffer_reader(data)).num_rows)
    missing = [name for name in DATASETS if name not in by_dataset]
    if missing:
        raise InputError(f"the receipts of {run_dir} list no parts of {', '.join(missing)}")
    bases = [{kind: int(sum(rows[name][:block])) for kind, name in BASES.items()}
             for block in range(n_blocks)]
    return blocks, bases
