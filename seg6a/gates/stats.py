"""The gates' sufficient statistics: counts and histograms that add up over canonical blocks.

Every gate reads sums: per-cluster counts for the bootstrapped rates, histograms for the
tail quantiles, category counts for the divergences. ``measure`` takes them from one
block's gate data (or a whole run's), ``combine`` adds the blocks' up, and the board
judges the total. A run is measured block by block when its parts keep the published
layout (part ``b`` of every entity table holds the ids of block ``b``, in order, and every
reference stays inside its block); otherwise, or when a part breaks the 6B contract, as one
block, so a broken run is reported exactly as before. Both give the same totals: the sums
are of integers (exact in float64 too), whatever the blocking.
"""
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from .. import downstream
from ..engine import LOCAL
from ..tables import decode_part, part_columns
from ..kernels.histograms import label_histograms, owned_cells
from ..kernels.prf import uniform_ids
from . import data as gate_data, leakage

# The hash key of the resampling clusters is fixed: clustering is part of the method.
_CLUSTER_KEY = np.uint64(0x6A_C1_05_7E_12_5E_ED_00)


def clusters(ids, n_clusters):
    """Resampling cluster of each id: a keyed hash of the id, so clusters are exchangeable.

    Ids are laid out by country (parties) or by (block, region, type) (IPs); contiguous id
    ranges would be strata, not exchangeable clusters. All rows of one id (the accounts of
    a party) share its cluster.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    return (uniform_ids(_CLUSTER_KEY, ids, 0) * n_clusters).astype(np.int64)


def cell_counts(cluster, cell, n_cells, n_clusters):
    """Rows per (cluster, cell), as float64 (the bootstrap's sums): shape ``(n_clusters,
    n_cells)``; ``cell`` codes lie in ``[0, n_cells)``."""
    return np.bincount(cluster * n_cells + cell, minlength=n_clusters * n_cells).reshape(
        n_clusters, n_cells).astype(np.float64)


@dataclass
class BlockClusters:
    """The resampling clusters of one block's parties and IPs, each id hashed once; the
    rows owned by a party join its cluster.

    ``party[i]`` is the cluster of the block's party ``i`` (global id ``party_base + i``),
    ``ip[i]`` that of its IP ``i``.
    """

    party: np.ndarray
    ip: np.ndarray
    party_base: int
    n_clusters: int

    @classmethod
    def of(cls, data, n_clusters):
        """The clusters of a ``seg6a.gates.data.GateData``'s parties and IPs."""
        return cls(clusters(data.bases["party"] + np.arange(data.n_parties), n_clusters),
                   clusters(data.bases["ip"] + np.arange(data.n_ips), n_clusters),
                   data.bases["party"], n_clusters)

    def of_owners(self, owner):
        """The clusters of the block's party ids ``owner``; an owner outside the block (a
        dangling reference, which the contract reports) is hashed like any id."""
        if owner.size == 0 or (owner.min() >= 0 and owner.max() < self.party.size):
            return self.party[owner]
        return clusters(self.party_base + owner, self.n_clusters)


@dataclass
class Stats:
    """The statistics of a run (or of one block, before ``combine``).

    ``vocabularies`` are compared, not added: category codes mean the same in every block.
    ``arrays`` add up (histograms are padded to the longest), ``flags`` are and-ed, and
    ``violations`` (the 6B contract) are joined.
    """

    vocabularies: dict
    arrays: dict
    flags: dict = field(default_factory=dict)
    violations: list = field(default_factory=list)

    def __getitem__(self, name):
        return self.arrays[name]


def _hist(index, n_rows, values):
    """Histogram per row: ``out[r, v]`` counts the ``(index, values)`` pairs ``(r, v)``."""
    width = int(values.max(initial=0)) + 1
    flat = np.bincount(index * width + values, minlength=n_rows * width)
    return flat.reshape(n_rows, width)


def _null_last(codes, n):
    """Category ``codes`` (at least int32: products of codes stay exact), null (-1) moved to
    ``n``, after the ``n`` categories."""
    codes = codes.astype(np.promote_types(codes.dtype, np.int32), copy=False)
    if codes.size and codes.min() < 0:
        codes = codes.copy()
        codes[codes < 0] = n
    return codes


def _role_pairs(roles):
    """Rows per (raw role, family) code pair; the last row and column count nulls."""
    n_raw, n_family = len(roles.raw_roles), len(roles.families)
    raw, family = _null_last(roles.raw_role, n_raw), _null_last(roles.family, n_family)
    return np.bincount(raw * (n_family + 1) + family,
                       minlength=(n_raw + 1) * (n_family + 1)).reshape(n_raw + 1, n_family + 1)


def measure(data, block_clusters):
    """The statistics of one block's (or a whole run's) ``GateData``, resampled over
    ``block_clusters`` (``BlockClusters`` of it)."""
    n_clusters = block_clusters.n_clusters
    n_types, n_regions = len(data.ip_types), len(data.regions)
    n_accounts = len(data.account_types)
    arrays = {"entities": np.array([data.n_parties, data.account_owner.shape[0],
                                    data.n_devices, data.n_ips], dtype=np.int64)}
    # Holdings: accounts per holder, per (party type, account type) cell; counts at or below
    # zero share bucket 0 (they exceed no K_max and hold no account).
    holder = data.holding_party
    ok = (holder >= 0) & (holder < data.n_parties) & (data.holding_type >= 0)
    ok[ok] &= data.party_type[holder[ok]] >= 0
    cell = data.party_type[holder[ok]].astype(np.int64) * n_accounts + data.holding_type[ok]
    arrays["holdings"] = _hist(cell, len(data.party_types) * n_accounts,
                               np.maximum(data.holding_count[ok], 0))
    # IPs: per cluster and (region, type); devices per IP by type (nulls last).
    ip_ok = (data.ip_region >= 0) & (data.ip_type >= 0)
    ip_cell = data.ip_region.astype(np.int64) * n_types + data.ip_type
    ip_cluster = block_clusters.ip
    if not ip_ok.all():
        ip_cell, ip_cluster = ip_cell[ip_ok], ip_cluster[ip_ok]
    arrays["ip_cells"] = cell_counts(ip_cluster, ip_cell, n_regions * n_types, n_clusters)
    arrays["devices_per_ip"] = _hist(_null_last(data.ip_type, n_types), n_types + 1,
                                     np.diff(data.ip_device_ptr))
    # Devices with an IP, per cluster of the primary party.
    owner_cluster = {"account": block_clusters.of_owners(data.account_owner),
                     "device": block_clusters.of_owners(data.device_primary)}
    linked = cell_counts(owner_cluster["device"], np.diff(data.device_ip_ptr) > 0, 2, n_clusters)
    arrays["linked_devices"] = np.stack([linked[:, 1], linked.sum(axis=1)], axis=1)
    flags = {}
    entities = dict(zip(("party", "account", "device", "ip"), arrays["entities"].tolist()),
                    merchant=data.n_merchants)
    for kind, roles in data.roles.items():
        arrays[f"roles.{kind}"] = _role_pairs(roles)
        arrays[f"risky.{kind}"] = np.array([np.count_nonzero(roles.is_risky),
                                            roles.is_risky.shape[0], roles.null_cells])
        # one role row per entity: the ids (read in order) are the entities' own
        first, n, ids = data.bases.get(kind, 0), entities[kind], roles.ids
        flags[f"one_row.{kind}"] = ids.size == n and (n == 0 or bool(
            ids[0] == first and ids[-1] == first + n - 1 and gate_data.increasing(ids)))
    if "party" in data.roles:
        # T7: the 2x2 of entity risky by owner risky, per cluster of the owner.
        party_risky = data.roles["party"].is_risky
        for name, owner, kind in (("OR_account", data.account_owner, "account"),
                                  ("OR_device", data.device_primary, "device")):
            owner_risky = party_risky[owner]
            risky = data.roles[kind].is_risky
            # cells: risky owner & risky, risky owner & clean, clean & risky, clean & clean
            arrays[name] = cell_counts(owner_cluster[kind],
                                       2 * ~owner_risky + ~risky, 4, n_clusters)
            arrays[f"{name}.risky_owners"] = np.array(
                [np.count_nonzero(np.bincount(owner[owner_risky], minlength=1))])
    arrays["payers"] = np.array([np.count_nonzero(np.diff(data.party_account_ptr))])
    arrays.update(_by_country(data))
    vocabularies = {"party_types": data.party_types, "account_types": data.account_types,
                    "ip_types": data.ip_types, "regions": data.regions,
                    "countries": data.countries, "segments": data.segments,
                    "base_account_types": data.base_account_types,
                    "instrument_types": data.instrument_types,
                    **{f"roles.{kind}": (r.raw_roles, r.families)
                       for kind, r in data.roles.items()}}
    return Stats(vocabularies, arrays, flags)


def _by_country(data):
    """What the country-modulation diagnostic compares with its targets: parties and the
    devices they own (as primary) per (country, segment), holders per (account type,
    country, segment), accounts per (type, country) and instruments per (account type,
    instrument type, country). Rows whose codes or references do not resolve are left out
    (the 6B contract reports them)."""
    n_c, n_s = len(data.countries), len(data.segments)
    n_a, n_t = len(data.base_account_types), len(data.instrument_types)
    cell = data.party_country.astype(np.int64) * n_s + data.party_segment
    cell[(data.party_country < 0) | (data.party_segment < 0)] = -1

    def cells_of(owner, owner_cell, code, n_codes, n_owner_cells):
        return owned_cells(*map(gate_data.read_only, (owner, owner_cell, code)), n_codes,
                           n_owner_cells)

    def counted(index, size):  # index -1 (left out) is counted in bin 0, then dropped
        return np.bincount(index + 1, minlength=size + 1)[1:size + 1]

    holder_type = np.where(data.holding_count > 0, data.holding_type, -1)
    # a null country (code -1) leaves its parties' accounts out
    account_index = cells_of(data.account_owner, data.party_country, data.account_type, n_a,
                             n_c)
    instrument_index = cells_of(data.instrument_account, account_index, data.instrument_type,
                                n_t, n_a * n_c)
    device_code = np.zeros(data.device_primary.shape, dtype=np.int64)
    return {
        "country.parties": counted(cell, n_c * n_s).reshape(n_c, n_s),
        "country.devices": counted(cells_of(data.device_primary, cell, device_code, 1,
                                            n_c * n_s), n_c * n_s).reshape(n_c, n_s),
        "country.holders": counted(
            cells_of(data.holding_party, cell, holder_type, len(data.account_types), n_c * n_s),
            len(data.account_types) * n_c * n_s).reshape(len(data.account_types), n_c, n_s),
        "country.accounts": counted(account_index, n_a * n_c).reshape(n_a, n_c),
        "country.instruments": counted(instrument_index, n_t * n_a * n_c).reshape(
            n_t, n_a, n_c).transpose(1, 0, 2).copy(),
    }


def _pad_add(a, b):
    if a.shape != b.shape:
        shape = np.maximum(a.shape, b.shape)
        a = np.pad(a, [(0, s - n) for s, n in zip(shape, a.shape)])
        b = np.pad(b, [(0, s - n) for s, n in zip(shape, b.shape)])
    return a + b


def combine(parts):
    """The total of the blocks' statistics; ``None`` when their vocabularies differ (then
    codes mean different categories, and the run must be measured as one block)."""
    total = Stats(dict(parts[0].vocabularies), dict(parts[0].arrays), dict(parts[0].flags),
                  list(parts[0].violations))
    for part in parts[1:]:
        for name, vocabulary in part.vocabularies.items():
            if total.vocabularies.setdefault(name, vocabulary) != vocabulary:
                return None
        for name, array in part.arrays.items():
            total.arrays[name] = _pad_add(total.arrays[name], array) \
                if name in total.arrays else array
        for name, flag in part.flags.items():
            total.flags[name] = total.flags.get(name, True) and flag
        total.violations += part.violations
    return total


# --- the run's statistics, by block ------------------------------------------------------


def blocks_of(datasets):
    """Per canonical block, dataset name -> the block's part (its handle on the engine),
    from ``seg6a.tables.Dataset`` objects split into the same blocks (the merchant roles, one
    global part, go with the first block)."""
    n_blocks = max(len(d.part_handles) for d in datasets)
    blocks = [{} for _ in range(n_blocks)]
    for dataset in datasets:
        for block, part in enumerate(dataset.part_handles):
            blocks[block][dataset.name] = part
    return blocks


def bases_of(datasets):
    """Per canonical block, the id each entity kind's part starts at, from the datasets'
    block offsets."""
    offsets = {d.name: d.block_offsets for d in datasets}
    n_blocks = max(len(o) - 1 for o in offsets.values())
    return [{kind: int(offsets[name][b]) for kind, name in gate_data.BASES.items()}
            for b in range(n_blocks)]


@dataclass
class Measured:
    """A run's statistics, and per block (handles on the engine) the
    ``seg6a.downstream.FlowGraph`` of its gate data for the 6B probe and what the leakage
    audit's pass two needs of it (``seg6a.gates.leakage.pass_one``)."""

    stats: Stats
    blocks: list
    merchant_risky: np.ndarray
    engine: object
    payers: list  # per block, its parties with an account
    leakage: list
    strata: list  # per block, {kind: its entities per leakage stratum}
    starts: dict  # per kind, the first id of each canonical block, then the entities


def _first_ids(bases):
    """Per kind, the first id of each canonical block (``bases``; one block if None)."""
    bases = bases or [dict.fromkeys(leakage.KINDS, 0)]
    return {kind: np.array([b[kind] for b in bases], dtype=np.int64) for kind in leakage.KINDS}


def _starts(bases, entities):
    """Per kind, the first id of each canonical block (``bases``; one block if None) and,
    last, the number of entities."""
    return {kind: np.append(first, n)
            for (kind, first), n in zip(_first_ids(bases).items(), entities.tolist())}


def _strata_of(stats):
    return {name.split(".")[-1]: array for name, array in stats.arrays.items()
            if name.startswith("leakage.strata.")}


def _block_task(parts, bases, *, n_merchants, n_clusters, first_ids):
    """The probe's flow graph, the statistics and the leakage audit's held inputs of one
    block's parts (``bases``: its first ids), or of a whole run (``bases`` None); ``None``
    for a block that breaks the 6B contract or the published layout, which only the whole
    run can judge. ``first_ids``: per kind, the first id of each canonical block."""
    columns = {name: part_columns(part) for name, part in parts.items()}
    tables = {name: decode_part(part, gate_data.COLUMNS.get(name))
              for name, part in parts.items()}
    violations = downstream.contract_violations(tables, n_merchants, bases, columns)
    if bases is not None and (violations or not _in_layout(tables, bases)):
        return None
    data = gate_data.from_tables(tables, n_merchants, bases, columns)
    block_clusters = BlockClusters.of(data, n_clusters)
    stats = measure(data, block_clusters)
    stats.violations = violations
    arrays, held = leakage.pass_one(data, first_ids, block_clusters)
    stats.arrays.update(arrays)
    return downstream.FlowGraph.of(data), stats, held


def _merchant_risky(graph):
    return graph.risky.get("merchant", np.zeros(0, bool))


def _block_fields(result):
    """What the run needs here of a block's measure, or None: the merchants' risky flags
    (the first block holds the merchants), its parties with an account and its entities
    per leakage stratum."""
    if result is None:
        return None
    graph, stats, _ = result
    return _merchant_risky(graph), int(stats["payers"][0]), _strata_of(stats)


def _stats_of(result):
    """A block's statistics, or None (``_block_task``)."""
    return None if result is None else result[1]


def _combined(totals):
    """``combine`` of a reduction's partial totals (None stays None)."""
    return None if any(t is None for t in totals) else combine(totals)


def measure_run(blocks, n_merchants, n_clusters, engine=LOCAL, bases=None):
    """The statistics of a run given as its blocks' tables.

    Parameters
    ----------
    blocks : list of dict
        Per canonical block, dataset name -> the block's part (a ``pyarrow.Table``, or its
        Parquet bytes, or the handle of either on ``engine``). The merchant roles (global)
        belong to the first block. One block: a whole run, in any row order.
    n_merchants : int
    n_clusters : int
        Resampling clusters of the bootstrap.
    engine : seg6a.engine.LocalEngine or DaskEngine
        Where the blocks are measured.
    bases : list of dict, optional
        Per canonical block, the id each entity kind's part starts at (``bases_of``); by
        default counted from the tables (parts given as bytes need it). A whole run given as
        one block may still say where its canonical blocks start: the leakage audit's
        block features need them.
    """
    if len(blocks) > 1:
        if bases is None:  # where each block's parts start in the published layout
            starts = {kind: np.cumsum([0] + [b[name].num_rows for b in blocks[:-1]]).tolist()
                      for kind, name in gate_data.BASES.items()}
            bases = [{kind: starts[kind][b] for kind in starts} for b in range(len(blocks))]
        results = engine.map(_block_task, blocks, bases, n_merchants=n_merchants,
                             n_clusters=n_clusters, first_ids=_first_ids(bases), gather=False)
        # What the run needs of each block comes here; the blocks' statistics are added
        # up where they are, so this process holds one total, whatever the blocks. Both
        # come in one round trip.
        total = engine.reduce(_combined, engine.map(_stats_of, results, gather=False),
                              gather=False)
        *fields, total = engine.gather(
            [*engine.map(_block_fields, results, gather=False), total])
        if None not in fields and total is not None:
            return Measured(total, engine.pick(results, 0),
                            fields[0][0], engine, [payers for _, payers, _ in fields],
                            engine.pick(results, 2),
                            [strata for _, _, strata in fields],
                            _starts(bases, total["entities"]))
    # One block: the whole run, read here in id order (a run of one block as it is, so
    # that only the gates' columns are decoded).
    names = {name for block in blocks for name in block}
    whole = {name: _joined(engine.gather([b[name] for b in blocks if name in b]))
             for name in names}
    graph, total, found = _block_task(whole, None, n_merchants=n_merchants,
                                      n_clusters=n_clusters, first_ids=_first_ids(bases))
    return Measured(total, [graph], _merchant_risky(graph), LOCAL, [int(total["payers"][0])],
                    [found], [_strata_of(total)], _starts(bases, total["entities"]))


def _joined(parts):
    """One part for the parts of several blocks (a table), or the one part itself. Parts
    need not agree on which columns may hold nulls (a part another writer replaced)."""
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables([decode_part(p) for p in parts], promote_options="default")


def _in_layout(tables, bases):
    """Whether every entity table of the block holds exactly the ids ``base ..`` in order
    (its role table too) and its holdings are its own parties' (the contract checks the
    other references)."""
    holdings = tables["s2_party_product_holdings_6A"]
    if "party_id" in holdings.column_names:
        party = gate_data.ints(holdings, "party_id") - bases["party"]
        if party.size and not (party.min() >= 0 and
                               party.max() < tables["s1_party_base_6A"].num_rows):
            return False
    for kind, name in gate_data.BASES.items():
        for table_name in (name, f"s5_{kind}_fraud_roles_6A"):
            table = tables.get(table_name)
            key = f"{kind}_id"
            if table is None or key not in table.column_names:
                continue
            ids = gate_data.ints(table, key)
            if ids.size and not (ids[0] == bases[kind] and ids[-1] == bases[kind] + ids.size - 1
                                 and gate_data.increasing(ids)):
                return False
    return True


def probe_sums(measured, key, n_flows, n_clusters):
    """Per-cluster sums ``(fraud & touches, touches, fraud & ~touches, ~touches)`` of the
    6B probe's ``n_flows`` flows, the number of flows drawn, and per id column of
    ``seg6a.downstream.ID_COLUMNS`` the per-cluster histograms ``(n_clusters, 2 *
    leakage.CI_BINS)`` (fraud first) of the id's place in its canonical block.

    Flow ``f`` picks the payer of rank ``floor(prf(key, f, 0) * payers)`` among the run's
    parties with an account; the block holding that payer draws the rest of the flow, keyed
    by ``f``. So the flows are the same whatever the blocking.
    """
    blocks, engine = measured.blocks, measured.engine
    per_block = np.array(measured.payers, dtype=np.int64)
    payer_start = np.concatenate([[0], np.cumsum(per_block)])
    sums = np.zeros((n_clusters, 4))
    places = {kind: np.zeros((n_clusters, 2 * leakage.CI_BINS)) for kind in downstream.ID_COLUMNS}
    if payer_start[-1] == 0 or measured.merchant_risky.size == 0 or n_flows == 0:
        return sums, 0, places
    flow_ids = np.arange(n_flows, dtype=np.int64)
    rank = (uniform_ids(key, flow_ids, 0) * payer_start[-1]).astype(np.int64)
    block = np.searchsorted(payer_start, rank, side="right") - 1
    order = np.argsort(block, kind="stable")  # each block's flows in flow order
    bounds = np.searchsorted(block[order], np.arange(len(blocks) + 1))
    tasks = [order[a:z] for a, z in zip(bounds[:-1], bounds[1:])]
    results = engine.map(_probe_block, blocks, tasks,
                         [rank[ids] - payer_start[b] for b, ids in enumerate(tasks)],
                         key=key, merchant_risky=measured.merchant_risky, n_clusters=n_clusters,
                         starts=measured.starts)
    for block_sums, block_places in results:
        sums = sums + block_sums
        places = {kind: places[kind] + block_places[kind] for kind in places}
    return sums, n_flows, places


def _probe_block(graph, flow_ids, payer_rank, *, key, merchant_risky, n_clusters, starts):
    flows, fraud, touches = downstream.block_flows(graph, key, flow_ids, payer_rank,
                                                   merchant_risky)
    cluster = clusters(graph.party_base + flows[:, 0], n_clusters)
    # cells 2 * touches + fraud, summed to (fraud & touches, touches, fraud & ~touches,
    # ~touches)
    n = cell_counts(cluster, 2 * touches + fraud, 4, n_clusters)
    sums = np.stack([n[:, 3], n[:, 2] + n[:, 3], n[:, 1], n[:, 0] + n[:, 1]], axis=1)
    cells = leakage.label_cells(cluster, fraud, n_clusters)
    places = {}
    for kind, place in downstream.id_positions(flows, graph.bases, starts,
                                               leakage.CI_BINS).items():
        has = place >= 0
        _, per_cluster = label_histograms(cells[has], place[has], leakage.CI_BINS,
                                          leakage.CI_BINS, n_clusters, False)
        places[kind] = per_cluster.astype(np.float64)
    return sums, places


def leakage_sums(measured, n_clusters):
    """The leakage audit's histograms over the run: ``{(kind, feature): (exact,
    per_cluster)}`` (``seg6a.gates.leakage.pass_one``), pass two ranking each block's
    entities in the run's strata from the counts of the blocks before it. A kind some block
    could not give inputs for is left out."""
    kinds = [k for k in leakage.KINDS if all(k in strata for strata in measured.strata)]
    befores = []
    running = {k: np.zeros_like(measured.strata[0][k]) for k in kinds}
    for strata in measured.strata:
        befores.append(dict(running))
        running = {k: running[k] + strata[k] for k in kinds}
    total = {(kind, feature): (measured.stats[f"leakage.{kind}.{feature}.exact"],
                               measured.stats[f"leakage.{kind}.{feature}.per_cluster"])
             for kind in kinds for feature in ("canonical_block", "position_in_block",
                                               leakage.SIGNALS[kind])}
    ranked = measured.engine.reduce(_added, measured.engine.map(
        _leakage_block, measured.leakage, befores, totals=running, n_clusters=n_clusters,
        gather=False))
    for kind, histograms in ranked.items():
        total[(kind, "id_rank_in_stratum")] = histograms
    return total


def _added(results):
    """Pass two's histograms of several blocks, added up per kind."""
    total = dict(results[0])
    for result in results[1:]:
        for kind, (exact, per_cluster) in result.items():
            old = total.get(kind)
            total[kind] = (exact, per_cluster) if old is None else (
                old[0] + exact, old[1] + per_cluster)
    return total


def _leakage_block(held, before, *, totals, n_clusters):
    return {kind: leakage.rank_histograms(held[kind], before[kind], totals[kind], n_clusters)
            for kind in before}
