"""S2 — accounts, with a hard post-merge K_max per (party_type, account_type).

For each rule ``(party_type, account_type)`` of ``account_per_party_priors_6A.v1.yaml``:

1. Zero gate. A PRF uniform per party against the holding probability of its segment in
   its country (the prior modulated by country, ``seg6a.modulation``) picks the holders; it
   is block-local.
2. Cell totals. A cell is ``(country, party_type, account_type)``; its target total is
   ``mean_accounts_per_holder * holders`` made integer by largest remainder across the
   rule's cells (holders per cell are a small reduction over blocks).
3. Block quotas. Each cell total is split over the canonical blocks its parties fall in, in
   proportion to the holders per block, so a block can be computed alone.
4. Allocation inside a (cell, block). Every holder gets one account (quotas are at least the
   holder count because the mean is at least 1) and the rest of the quota goes by largest
   remainder over PRF exponential weights (ties by a PRF tie value, then index).
5. Hard cap. ``enforce_cap`` moves counts above ``k_max`` to holders with headroom by PRF
   rank and drops them only when no headroom is left; a post-check raises on any excess.
"""
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter, itemgetter

import numpy as np
import pyarrow as pa

from ..errors import Seg6aError
from ..kernels.allocate import largest_remainder
from ..kernels.caps import enforce_cap
from ..kernels.csr import expand_count_matrix, ptr_from_counts
from ..kernels.prf import uniform_ids
from ..kernels.sample import exponential_ids
from ..engine import LOCAL, BlockResult, join, spans
from ..modulation import PROBABILITY, modulated
from ..rng import Substreams
from ..tables import Dataset, block_offsets_for, dictionary_column, encode_part

STATE = "S2"
ACCOUNT_PRIORS = "account_per_party_priors_6A.v1.yaml"
DATASETS = ("s2_account_base_6A", "s2_party_product_holdings_6A", "s2_account_summary_6A")
# One PRF draw index per rule and purpose under each substream key.
_GATE, _WEIGHT, _TIE, _RANK = (
    "s2.accounts.zero_gate", "s2.accounts.weight", "s2.accounts.tie", "s2.accounts.cap_rank"
)


class KmaxViolation(Seg6aError):
    """A party holds more accounts of a type than its K_max after the cap pass."""


@dataclass(frozen=True)
class AccountBlock(BlockResult):
    """The accounts of one canonical block: counts per (party, rule), int16, and per account
    (ids from the block's first) its owner (a global party id) and type."""

    counts: np.ndarray
    owner: np.ndarray
    account_type: np.ndarray


class Accounts:
    """Accounts, kept per canonical block; the run's arrays (``account_id`` is the row
    index) are joined from the blocks on first use.

    Attributes
    ----------
    owner_party_id : int64 array
    account_type : int16 codes into ``account_types``
    party_account_ptr : int64 array
        CSR ``party -> accounts``: accounts of party ``p`` are ids
        ``party_account_ptr[p]:party_account_ptr[p+1]``.
    counts : int16 array (n_parties, n_rules)
        Accounts per party and rule.
    account_block_ptr : int64 array
        Accounts of canonical block ``b`` are ids ``account_block_ptr[b]:[b+1]``.
    blocks : list
        Per block, the handle of its ``AccountBlock`` on the engine.
    account_types : tuple of str
    rules : list of dict
        The rules of the priors, in order (``counts`` columns).
    counters : dict
        ``kmax_overflow_rows, kmax_redistributed_rows, kmax_dropped_rows,
        kmax_postcheck_violations`` and the work ``per_rule``.
    country_modulation : list of dict
        The country deltas applied to the holding probabilities (``seg6a.modulation``).
    accounts_by_country : int64 array (account types, countries)
        Accounts per type and country of the owner (S3 conserves its means over them).
    """

    def __init__(self, blocks, account_block_ptr, account_types, rules, counters, engine=LOCAL):
        self.blocks = blocks  # handles on the engine
        self._engine = engine
        self.account_block_ptr = account_block_ptr
        self.account_types = account_types
        self.rules = rules
        self.counters = counters

    def _join(self, name):
        return join(self._engine.map(attrgetter(name), self.blocks))

    @cached_property
    def counts(self):
        return self._join("counts")

    @cached_property
    def owner_party_id(self):
        return self._join("owner")

    @cached_property
    def account_type(self):
        return self._join("account_type")

    @cached_property
    def party_account_ptr(self):
        return ptr_from_counts(self.counts.sum(axis=1, dtype=np.int64))


def holding_tables(rules, segments, party_types, population, world, modulation):
    """The zero gate's probabilities per (rule, country, segment code), each rule's party
    type code, and the country modulation applied (``seg6a.modulation.modulated``).

    ``population`` counts the parties per (country, segment): a probability's country
    deltas conserve its mean over the parties of its segment.
    """
    n_rules, n_segments = len(rules), len(segments)
    by_segment = np.array([[rule["holding_probability"].get(segment, 0.0)
                            for segment in segments] for rule in rules],
                          dtype=np.float64).reshape(n_rules, n_segments)
    rule_of, segment_of = np.divmod(np.arange(n_rules * n_segments), n_segments)
    table, applied = modulated(by_segment.ravel(), [rules[r]["party_type"] for r in rule_of],
                               population.T[segment_of].astype(np.float64), modulation,
                               "party_types", world, PROBABILITY)
    rule_type = np.array([party_types.index(rule["party_type"]) for rule in rules],
                         dtype=np.int16)
    return (np.ascontiguousarray(table.reshape(n_rules, n_segments, -1).transpose(0, 2, 1)),
            rule_type, applied)


def holders_block(lo, hi, parties, *, country_ptr, gate_key, holding, rule_type):
    """Pass 1 over the party ids ``lo .. hi - 1`` of one canonical block (``parties``, its
    ``PartyBlock``): the zero gate.

    Returns ``(holder, holders, eligible)``: holder flags per (rule, party), holders per
    (rule, country), and per rule the parties of its party type (those the gate is drawn
    for).
    """
    lo, hi = int(lo), int(hi)
    n_rules, n_countries = rule_type.shape[0], country_ptr.shape[0] - 1
    block_country_ptr = np.clip(country_ptr, lo, hi) - lo
    country = np.repeat(np.arange(n_countries), np.diff(block_country_ptr))
    holder = np.zeros((n_rules, hi - lo), dtype=bool)
    holders = np.empty((n_rules, n_countries), dtype=np.int64)
    eligible = np.empty(n_rules, dtype=np.int64)
    of_type = {}  # the rules of a party type share its parties and their cells
    for r in range(n_rules):
        if rule_type[r] not in of_type:
            ids = np.flatnonzero(parties.party_type == rule_type[r])
            cell = country[ids].astype(np.int64) * holding.shape[2] + parties.segment[ids]
            # ids ascend and countries are id ranges: a country's parties are a slice
            of_type[rule_type[r]] = ids, cell, np.searchsorted(ids, block_country_ptr)
        ids, cell, country_bounds = of_type[rule_type[r]]
        eligible[r] = ids.size
        flags = uniform_ids(gate_key, lo + ids, r) < holding[r].ravel()[cell]
        holder[r, ids] = flags
        flagged = np.concatenate([[0], np.cumsum(flags)])
        holders[r] = np.diff(flagged[country_bounds])
    return holder, holders, eligible


def block_quotas(block_holders, rules, country_ptr, block_size):
    """Cell totals per (rule, country), and per (block, rule, country) their quotas: largest
    remainder of ``mean * holders`` across a rule's countries, then of a country's total
    across the blocks its parties fall in, in proportion to their holders."""
    holders = block_holders.sum(axis=0)
    cell_total = np.zeros(holders.shape, dtype=np.int64)
    quotas = np.zeros(block_holders.shape, dtype=np.int64)
    for r, rule in enumerate(rules):
        mean = float(rule["mean_accounts_per_holder"])
        weights = mean * holders[r].astype(np.float64)
        cell_total[r] = largest_remainder(int(round(mean * float(holders[r].sum()))), weights,
                                          np.zeros_like(weights))
        for country in np.flatnonzero(cell_total[r]):
            lo, hi = int(country_ptr[country]), int(country_ptr[country + 1])
            blocks = slice(lo // block_size, (hi - 1) // block_size + 1)
            quotas[blocks, r, country] = largest_remainder(
                int(cell_total[r, country]),
                block_holders[blocks, r, country].astype(np.float64),
                np.zeros(blocks.stop - blocks.start))
    return cell_total, quotas


@dataclass(frozen=True)
class Allocation(BlockResult):
    """Pass 2 of one canonical block: accounts per (party, rule), int16, and what the run
    sums of it: per rule the cap counters ``(overflow, redistributed, dropped)`` and the
    accounts above K_max (the post-check), per (rule, country) the block's accounts and
    holders ``(2, rules, countries)``, and its accounts and holding rows."""

    counts: np.ndarray
    counters: np.ndarray
    excess: np.ndarray
    cells: np.ndarray
    n_accounts: int
    n_holdings: int


def allocate_block(lo, hi, gate, quota, *, country_ptr, cell_total, keys, k_max):
    """Pass 2 over the party ids ``lo .. hi - 1`` of one canonical block, given its pass 1
    ``gate`` (``holders_block``): the ``Allocation``.

    In each country's piece of the block every holder gets one account and the rest of the
    piece's quota (``quota[rule, country]``) goes by largest remainder over PRF exponential
    weights, ties by a PRF tie value; then the hard cap. Weights, ties and cap ranks are
    drawn for the holders only (values keyed by party id, whoever else is drawn).
    """
    lo, hi = int(lo), int(hi)
    _, weight_key, tie_key, rank_key = keys
    holder = gate[0]
    n_rules = holder.shape[0]
    counts = np.zeros((hi - lo, n_rules), dtype=np.int16)
    counters = np.zeros((n_rules, 3), dtype=np.int64)
    excess = np.zeros(n_rules, dtype=np.int64)
    cells = np.zeros((2, n_rules, country_ptr.shape[0] - 1), dtype=np.int64)
    for r in range(n_rules):
        holder_ids = np.flatnonzero(holder[r])
        weight = exponential_ids(weight_key, lo + holder_ids, r)
        tie = uniform_ids(tie_key, lo + holder_ids, r)
        rank = uniform_ids(rank_key, lo + holder_ids, r)
        for country in np.flatnonzero(cell_total[r]):
            a = max(int(country_ptr[country]), lo) - lo
            z = min(int(country_ptr[country + 1]), hi) - lo
            piece = slice(*np.searchsorted(holder_ids, [a, max(a, z)]))
            ids = holder_ids[piece]
            if ids.size == 0:
                continue
            piece_quota = int(quota[r, country])
            if piece_quota < ids.size:  # impossible while mean_accounts_per_holder >= 1
                raise Seg6aError(f"S2 quota {piece_quota} below {ids.size} holders")
            extra = largest_remainder(piece_quota - ids.size, weight[piece], tie[piece])
            capped, overflow, redistributed, dropped = enforce_cap(1 + extra, int(k_max[r]),
                                                                   rank[piece])
            counts[ids, r] = capped
            counters[r] += (overflow, redistributed, dropped)
            excess[r] += np.maximum(capped - k_max[r], 0).sum()
            cells[:, r, country] = capped.sum(), np.count_nonzero(capped)
    # Every nonzero count is in one piece: the totals follow from the pieces' (three passes
    # over the whole count matrix were 43% of the block's time at full).
    return Allocation(counts, counters, excess, cells, int(cells[0].sum()), int(cells[1].sum()))


def tables_block(lo, account_lo, allocation, parties, *, rule_account_type, vocabularies):
    """The accounts of one canonical block (parties ``lo ..``, its ``PartyBlock``
    ``parties``, first account id ``account_lo``): ``(AccountBlock, account base part,
    holdings part)``."""
    counts = allocation.counts
    local_owner, rule_of_account, first = expand_count_matrix(counts)
    owner = lo + local_owner
    account_type = rule_account_type[rule_of_account]
    party_types, countries, regions, account_types = vocabularies
    base = encode_part({
        "account_id": pa.array(np.arange(account_lo, account_lo + owner.shape[0],
                                         dtype=np.int64)),
        "owner_party_id": pa.array(owner),
        "account_type": dictionary_column(account_type, account_types),
        "party_type": dictionary_column(parties.party_type[local_owner], party_types),
        "country_iso": dictionary_column(parties.country[local_owner], countries),
        "region_id": dictionary_column(parties.region[local_owner], regions),
    })
    # one holding per (party, rule) cell, row-major as np.nonzero(counts) lists them
    party_idx, rule_idx = local_owner[first], rule_of_account[first]
    holdings = encode_part({
        "party_id": pa.array(lo + party_idx.astype(np.int64)),
        "account_type": dictionary_column(rule_account_type[rule_idx], account_types),
        "account_count": pa.array(counts[party_idx, rule_idx]),
    })
    return AccountBlock(counts, owner, account_type), base, holdings


def run(sealed, parties, perf, engine=LOCAL):
    """Allocate accounts. Returns ``(Accounts, [Dataset], Substreams)``."""
    rng = Substreams(STATE, sealed.manifest_fingerprint, sealed.parameter_hashes[STATE], sealed.seed)
    with perf.substep(STATE, "load_contracts_inputs"):
        priors = sealed.config[ACCOUNT_PRIORS]
        rules = list(priors["rules"])
        account_types = tuple(priors["account_types"])
        rule_account_type = np.array(
            [account_types.index(r["account_type"]) for r in rules], dtype=np.int16
        )
    with perf.substep(STATE, "load_party_base") as event:
        n = parties.n_parties
        block_size = sealed.scale.block_size
        holding, rule_type, modulation = holding_tables(
            rules, parties.segments, parties.party_types, parties.population, sealed.world,
            priors.get("country_modulation", ()))
        bounds = block_offsets_for(n, block_size)
        starts, stops = spans(bounds)
        event["rows"] = n

    with perf.substep(STATE, "allocate_accounts") as event:
        keys = tuple(rng.key(label) for label in (_GATE, _WEIGHT, _TIE, _RANK))
        gated = engine.map(
            holders_block, starts, stops, parties.blocks, country_ptr=parties.country_ptr,
            gate_key=keys[0], holding=holding, rule_type=rule_type, gather=False)
        gate_sums = engine.map(itemgetter(1, 2), gated)
        cell_total, quotas = block_quotas(np.stack([g[0] for g in gate_sums]), rules,
                                          parties.country_ptr, block_size)
        k_max = np.array([int(rule["k_max"]) for rule in rules], dtype=np.int64)
        allocated = engine.map(
            allocate_block, starts, stops, gated, list(quotas), country_ptr=parties.country_ptr,
            cell_total=cell_total, keys=keys, k_max=k_max, gather=False)
        sums = engine.map(attrgetter("counters", "excess", "cells", "n_accounts", "n_holdings"),
                          allocated)
        totals = np.sum([s[0] for s in sums], axis=(0, 1))
        # The post-check: the cap pass leaves no party above K_max.
        excess = np.sum([s[1] for s in sums], axis=0)
        for index in np.flatnonzero(excess):
            rule = rules[index]
            raise KmaxViolation(
                f"{excess[index]} accounts above k_max={rule['k_max']} for "
                f"{rule['party_type']}/{rule['account_type']} after the cap pass"
            )
        # The work per rule (reference plan POPT.3.2): the parties of its type, whom the zero
        # gate is drawn for, those it skips, and the weights drawn (one per holder, as are
        # the ties and cap ranks) against those used.
        eligible = np.sum([g[1] for g in gate_sums], axis=0)
        holders = np.sum([g[0] for g in gate_sums], axis=(0, 2))
        for r in range(len(rules)):
            rng.record(_GATE, int(eligible[r]))
            for label in (_WEIGHT, _TIE, _RANK):
                rng.record(label, int(holders[r]))
        work = {f"{rule['party_type']}/{rule['account_type']}": {
            "eligible_parties": int(eligible[r]), "zero_gate_skips": int(eligible[r] - holders[r]),
            "weights_drawn": int(holders[r]), "weights_used": int(holders[r])}
            for r, rule in enumerate(rules)}
        counters = {
            "kmax_overflow_rows": int(totals[0]),
            "kmax_redistributed_rows": int(totals[1]),
            "kmax_dropped_rows": int(totals[2]),
            "kmax_postcheck_violations": 0,  # the post-check raises on any
            "per_rule": work,
        }
        event["counters"] = counters
        account_block_ptr = ptr_from_counts(np.array([s[3] for s in sums], dtype=np.int64))
        event["rows"] = int(account_block_ptr[-1])

    ph = sealed.parameter_hashes[STATE]
    # The account base and the holdings per canonical block, on the engine; the summary
    # from the blocks' per-cell sums.
    with perf.substep(STATE, "emit_account_base") as event:
        emitted = engine.map(
            tables_block, starts, account_block_ptr[:-1], allocated, parties.blocks,
            rule_account_type=rule_account_type,
            vocabularies=(parties.party_types, parties.countries, parties.regions,
                          account_types), gather=False)
        base_ds = Dataset(DATASETS[0], STATE, engine.pick(emitted, 1),
                          np.diff(account_block_ptr), ph, engine)
        event["rows"] = base_ds.num_rows

    with perf.substep(STATE, "emit_holdings") as event:
        holdings_ds = Dataset(DATASETS[1], STATE,
                              engine.pick(emitted, 2),
                              [s[4] for s in sums], ph, engine)
        event["rows"] = holdings_ds.num_rows

    with perf.substep(STATE, "emit_summary") as event:
        cells = np.sum([s[2] for s in sums], axis=0)
        summary = summarise(cells, rules, rule_account_type, account_types, parties)
        summary_ds = Dataset.from_parts(DATASETS[2], STATE, [summary], ph)
        event["rows"] = summary.num_rows
    accounts = Accounts(engine.pick(emitted, 0), account_block_ptr,
                        account_types, rules, counters, engine)
    accounts.country_modulation = modulation
    accounts.accounts_by_country = np.array(
        [cells[0, rule_account_type == a].sum(axis=0) for a in range(len(account_types))],
        dtype=np.int64)
    return accounts, [base_ds, holdings_ds, summary_ds], rng


def summarise(cells, rules, rule_account_type, account_types, parties):
    """One row per cell ``(country, party_type, account_type)`` with any account, from the
    accounts and holders per (rule, country), ``cells`` of shape (2, rules, countries)."""
    columns = {k: [] for k in ("country", "party_type", "account_type", "n_accounts",
                               "n_holders", "k_max")}
    for index, rule in enumerate(rules):
        accounts, holders = cells[0, index], cells[1, index]
        for country in np.flatnonzero(accounts):
            columns["country"].append(country)
            columns["party_type"].append(parties.party_types.index(rule["party_type"]))
            columns["account_type"].append(rule_account_type[index])
            columns["n_accounts"].append(int(accounts[country]))
            columns["n_holders"].append(int(holders[country]))
            columns["k_max"].append(int(rule["k_max"]))
    order = np.lexsort((columns["account_type"], columns["party_type"], columns["country"]))
    take = lambda key, dtype: np.asarray(columns[key], dtype=dtype)[order]  # noqa: E731
    return pa.table(
        {
            "country_iso": dictionary_column(take("country", np.int16), parties.countries),
            "party_type": dictionary_column(take("party_type", np.int16), parties.party_types),
            "account_type": dictionary_column(take("account_type", np.int16), account_types),
            "n_accounts": pa.array(take("n_accounts", np.int64)),
            "n_holders": pa.array(take("n_holders", np.int64)),
            "k_max": pa.array(take("k_max", np.int16)),
        }
    )
