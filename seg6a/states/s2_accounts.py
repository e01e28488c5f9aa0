"""S2 — accounts, with a hard post-merge K_max per (party_type, account_type).

For each rule ``(party_type, account_type)`` of ``account_per_party_priors_6A.v1.yaml``:

1. Zero gate. A PRF uniform per party against its segment's holding probability picks the
   holders; it is block-local.
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

import numpy as np
import pyarrow as pa

from ..errors import Seg6aError
from ..kernels.allocate import largest_remainder
from ..kernels.caps import enforce_cap
from ..kernels.csr import expand_count_matrix, ptr_from_counts
from ..kernels.prf import uniform_range
from ..kernels.sample import exponential_range
from ..rng import Substreams
from ..tables import Dataset, block_offsets_for, dictionary_column

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
class Accounts:
    """Accounts as arrays; ``account_id`` is the row index.

    Attributes
    ----------
    owner_party_id : int64 array
    account_type : int16 codes into ``account_types``
    party_account_ptr : int64 array
        CSR ``party -> accounts``: accounts of party ``p`` are ids
        ``party_account_ptr[p]:party_account_ptr[p+1]``.
    counts : int16 array (n_parties, n_rules)
        Accounts per party and rule.
    account_types : tuple of str
    rules : list of dict
        The rules of the priors, in order (``counts`` columns).
    counters : dict
        ``kmax_overflow_rows, kmax_redistributed_rows, kmax_dropped_rows,
        kmax_postcheck_violations``.
    """

    owner_party_id: np.ndarray
    account_type: np.ndarray
    party_account_ptr: np.ndarray
    counts: np.ndarray
    account_types: tuple
    rules: list
    counters: dict


def holding_probability(rule, parties):
    """Per-party holding probability of ``rule`` (zero for other party types)."""
    by_segment = np.zeros(len(parties.segments), dtype=np.float64)
    for code, segment in enumerate(parties.segments):
        by_segment[code] = rule["holding_probability"].get(segment, 0.0)
    type_code = parties.party_types.index(rule["party_type"])
    prob = by_segment[parties.segment]
    prob[parties.party_type != type_code] = 0.0
    return prob


def allocate_rule(rule, rule_index, prob, parties, block_size, rng):
    """Accounts per party for one rule, and the rule's cap counters."""
    n = parties.n_parties
    gate = uniform_range(rng.key(_GATE), 0, n, rule_index)
    weight = exponential_range(rng.key(_WEIGHT), 0, n, rule_index)
    tie = uniform_range(rng.key(_TIE), 0, n, rule_index)
    rank = uniform_range(rng.key(_RANK), 0, n, rule_index)
    for label in (_GATE, _WEIGHT, _TIE, _RANK):
        rng.record(label, n)
    holder = gate < prob
    mean = float(rule["mean_accounts_per_holder"])
    k_max = int(rule["k_max"])

    ptr = parties.country_ptr
    holders = np.bincount(parties.country, weights=holder, minlength=len(ptr) - 1)
    cell_total = largest_remainder(
        int(round(mean * holders.sum())), mean * holders, np.zeros_like(holders)
    )

    counts = np.zeros(n, dtype=np.int64)
    overflow = redistributed = dropped = 0
    for country in range(len(ptr) - 1):
        lo, hi = int(ptr[country]), int(ptr[country + 1])
        if cell_total[country] == 0:
            continue
        first_edge = (lo // block_size + 1) * block_size
        edges = np.r_[lo, np.arange(first_edge, hi, block_size), hi]
        block_holders = np.add.reduceat(holder[lo:hi], edges[:-1] - lo).astype(np.float64)
        quotas = largest_remainder(int(cell_total[country]), block_holders, np.zeros_like(block_holders))
        for b in range(len(edges) - 1):
            a, z = int(edges[b]), int(edges[b + 1])
            ids = a + np.flatnonzero(holder[a:z])
            if ids.size == 0:
                continue
            quota = int(quotas[b])
            if quota < ids.size:  # impossible while mean_accounts_per_holder >= 1
                raise Seg6aError(f"S2 quota {quota} below {ids.size} holders")
            extra = largest_remainder(quota - ids.size, weight[ids], tie[ids])
            capped, o, r, d = enforce_cap(1 + extra, k_max, rank[ids])
            counts[ids] = capped
            overflow, redistributed, dropped = overflow + o, redistributed + r, dropped + d
    return counts, (overflow, redistributed, dropped)


def run(sealed, parties, perf):
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
        probs = [holding_probability(rule, parties) for rule in rules]
        event["rows"] = n

    with perf.substep(STATE, "allocate_accounts") as event:
        counts = np.zeros((n, len(rules)), dtype=np.int16)
        totals = np.zeros(3, dtype=np.int64)
        violations = 0
        for index, rule in enumerate(rules):
            column, rule_counters = allocate_rule(
                rule, index, probs[index], parties, sealed.scale.block_size, rng
            )
            excess = int(np.maximum(column - int(rule["k_max"]), 0).sum())
            violations += excess
            if excess:
                raise KmaxViolation(
                    f"{excess} accounts above k_max={rule['k_max']} for "
                    f"{rule['party_type']}/{rule['account_type']} after the cap pass"
                )
            counts[:, index] = column
            totals += rule_counters
        counters = {
            "kmax_overflow_rows": int(totals[0]),
            "kmax_redistributed_rows": int(totals[1]),
            "kmax_dropped_rows": int(totals[2]),
            "kmax_postcheck_violations": violations,
        }
        owner, rule_of_account, _ = expand_count_matrix(counts)
        account_type = rule_account_type[rule_of_account]
        party_account_ptr = ptr_from_counts(counts.sum(axis=1, dtype=np.int64))
        event["rows"] = owner.shape[0]

    accounts = Accounts(owner, account_type, party_account_ptr, counts, account_types, rules,
                        counters)
    ph = sealed.parameter_hashes[STATE]
    # Canonical blocks are blocks of parties; a dataset's block offsets are its rows there.
    block_parties = block_offsets_for(n, sealed.scale.block_size)
    with perf.substep(STATE, "emit_account_base") as event:
        base = pa.table(
            {
                "account_id": pa.array(np.arange(owner.shape[0], dtype=np.int64)),
                "owner_party_id": pa.array(owner),
                "account_type": dictionary_column(account_type, account_types),
                "party_type": dictionary_column(parties.party_type[owner], parties.party_types),
                "country_iso": dictionary_column(parties.country[owner], parties.countries),
                "region_id": dictionary_column(parties.region[owner], parties.regions),
            }
        )
        base_ds = Dataset(DATASETS[0], STATE, base, party_account_ptr[block_parties], ph)
        event["rows"] = base.num_rows

    with perf.substep(STATE, "emit_holdings") as event:
        party_idx, rule_idx = np.nonzero(counts)
        holdings = pa.table(
            {
                "party_id": pa.array(party_idx.astype(np.int64)),
                "account_type": dictionary_column(rule_account_type[rule_idx], account_types),
                "account_count": pa.array(counts[party_idx, rule_idx]),
            }
        )
        holdings_ptr = ptr_from_counts(np.count_nonzero(counts, axis=1).astype(np.int64))
        holdings_ds = Dataset(DATASETS[1], STATE, holdings, holdings_ptr[block_parties], ph)
        event["rows"] = holdings.num_rows

    with perf.substep(STATE, "emit_summary") as event:
        summary = summarise(counts, rules, rule_account_type, account_types, parties)
        summary_ds = Dataset(DATASETS[2], STATE, summary, np.array([0, summary.num_rows]), ph)
        event["rows"] = summary.num_rows
    return accounts, [base_ds, holdings_ds, summary_ds], rng


def summarise(counts, rules, rule_account_type, account_types, parties):
    """One row per cell ``(country, party_type, account_type)`` with any account."""
    n_countries = len(parties.countries)
    columns = {k: [] for k in ("country", "party_type", "account_type", "n_accounts",
                               "n_holders", "k_max")}
    for index, rule in enumerate(rules):
        column = counts[:, index].astype(np.int64)
        accounts = np.bincount(parties.country, weights=column, minlength=n_countries)
        holders = np.bincount(parties.country, weights=column > 0, minlength=n_countries)
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
