"""S3 — instruments: per-account counts with account-type-aware floors, schemes by region.

For every account and every instrument type its account type allows, the count is
``floor + Poisson(lambda)`` capped at ``hard_max_per_account`` (a PRF draw per account),
``lambda`` being ``mean_count - floor`` modulated by the owner's country
(``seg6a.modulation``), so a current account always has its debit card and a mortgage has nothing, with
no universal floor inflating low-rate types. Schemes: within each (canonical block, region)
the scheme-bearing instruments get scheme counts by largest remainder of the region's mix,
dealt out through a keyed Feistel permutation of the group (no sort, no per-row queues).
"""
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter

import numpy as np
import pyarrow as pa

from ..kernels.allocate import assign_by_quota
from ..kernels.csr import csr_from_owners, expand_count_matrix, ptr_from_counts
from ..kernels.sample import capped_poisson_counts
from ..engine import LOCAL, BlockResult, join, spans
from ..modulation import MEAN, modulated
from ..rng import Substreams
from ..tables import Dataset, block_offsets_for, dictionary_column, encode_part

STATE = "S3"
INSTRUMENT_PRIORS = "instrument_priors_6A.v1.yaml"
DATASETS = ("s3_instrument_base_6A", "s3_account_instrument_links_6A")
NO_SCHEME = "NONE"
LINK_ROLES = ("PRIMARY", "ADDITIONAL")
_COUNT, _SCHEME_ORDER = "s3.instruments.count", "s3.instruments.scheme_order"


@dataclass(frozen=True)
class InstrumentBlock(BlockResult):
    """The instruments of one canonical block, in id order: their accounts and owners (global
    ids), types, schemes, whether each is the first of its type on its account; how many
    bear a scheme, and per instrument type how many ``hard_max_per_account`` clipped."""

    account_id: np.ndarray
    owner_party_id: np.ndarray
    instrument_type: np.ndarray
    scheme: np.ndarray
    first: np.ndarray
    n_scheme_bearing: int
    clipped: np.ndarray

    @property
    def n_instruments(self):
        return self.account_id.shape[0]


class Instruments:
    """Instruments, kept per canonical block; the run's arrays (``instrument_id`` is the row
    index) are joined from the blocks on first use.

    Attributes
    ----------
    account_id, owner_party_id : int64 arrays
    instrument_type, scheme : int16 codes into ``instrument_types`` / ``schemes``
        (``schemes`` ends with ``"NONE"`` for schemeless types).
    account_instrument_ptr : int64 array
        CSR ``account -> instruments``.
    instrument_block_ptr : int64 array
        Instruments of canonical block ``b`` are ids ``instrument_block_ptr[b]:[b+1]``.
    blocks : list
        Per block, the handle of its ``InstrumentBlock`` on the engine.
    counters : dict
        S3's work: ``hard_max_clipped_rows`` (instruments the per-account hard max removed),
        in all and per instrument type.
    country_modulation : list of dict
        The country deltas applied to the mean counts (``seg6a.modulation``).
    """

    def __init__(self, blocks, instrument_block_ptr, n_accounts, instrument_types, schemes,
                 counters, engine=LOCAL):
        self.blocks = blocks  # handles on the engine
        self._engine = engine
        self.instrument_block_ptr = instrument_block_ptr
        self._n_accounts = n_accounts
        self.instrument_types = instrument_types
        self.schemes = schemes
        self.counters = counters

    def _join(self, name):
        return join(self._engine.map(attrgetter(name), self.blocks))

    @cached_property
    def account_id(self):
        return self._join("account_id")

    @cached_property
    def owner_party_id(self):
        return self._join("owner_party_id")

    @cached_property
    def instrument_type(self):
        return self._join("instrument_type")

    @cached_property
    def scheme(self):
        return self._join("scheme")

    @cached_property
    def account_instrument_ptr(self):
        return ptr_from_counts(np.bincount(self.account_id, minlength=self._n_accounts))


def count_tables(priors, account_types):
    """Per (account type, instrument type): mean, floor and hard max (zeros if not allowed)."""
    types = priors["instrument_types"]
    shape = (len(account_types), len(types))
    mean, floor, cap = np.zeros(shape), np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    for rule in priors["rules"]:
        row = account_types.index(rule["account_type"])
        for spec in rule["instruments"]:
            col = types.index(spec["instrument_type"])
            mean[row, col] = spec["mean_count"]
            floor[row, col] = spec["floor"]
            cap[row, col] = spec["hard_max_per_account"]
    return mean, floor, cap


def excess_tables(priors, account_types, accounts_by_country, world):
    """The Poisson mean above the floor per (account type, instrument type, country): the
    priors' ``mean_count - floor`` modulated by country (``seg6a.modulation``), each
    conserving its mean over the accounts of its type; and the modulation applied."""
    mean, floor, _ = count_tables(priors, account_types)
    n_accounts, n_types = mean.shape
    account_of, type_of = np.divmod(np.arange(n_accounts * n_types), n_types)
    types = priors["instrument_types"]
    table, applied = modulated((mean - floor).ravel(), [types[t] for t in type_of],
                               accounts_by_country[account_of].astype(np.float64),
                               priors.get("country_modulation", ()), "instrument_types",
                               world, MEAN)
    return np.ascontiguousarray(table.reshape(n_accounts, n_types, -1)), applied


def instrument_block(lo, account_lo, accounts, parties, *, count_key, scheme_key, excess,
                     floor, cap, schemeless, scheme_mix, block_size, n_groups):
    """The ``InstrumentBlock`` of the accounts (S2's ``AccountBlock``, ids ``account_lo ..``)
    of the parties ``lo ..`` (S1's ``PartyBlock``) of one canonical block.

    Schemes are dealt per (block, region) group; a group's number (its PRF key) is global,
    so the groups of other blocks are passed empty.
    """
    n_regions = scheme_mix.shape[0]
    account_type, owner = accounts.account_type, accounts.owner
    # int16 like S2's count matrix: expand_count_matrix compiles for one type.
    counts, clipped = capped_poisson_counts(count_key, int(account_lo), account_type,
                                            parties.country[owner - int(lo)], excess, floor,
                                            cap)
    row, instrument_type, first = expand_count_matrix(counts)
    scheme = np.full(row.shape[0], scheme_mix.shape[1], dtype=np.int16)  # NONE
    bearing = np.flatnonzero(~schemeless[instrument_type])
    bearing_owner = owner[row[bearing]]
    region = parties.region[bearing_owner - int(lo)].astype(np.int64)
    group_ptr, members = csr_from_owners((bearing_owner // block_size) * n_regions + region,
                                         n_groups)
    scheme[bearing] = assign_by_quota(scheme_key, group_ptr, members,
                                      np.arange(n_groups) % n_regions, scheme_mix)
    return InstrumentBlock(int(account_lo) + row, owner[row], instrument_type, scheme, first,
                           bearing.shape[0], clipped)


def run(sealed, parties, accounts, perf, engine=LOCAL):
    """Allocate instruments. Returns ``(Instruments, [Dataset], Substreams)``."""
    rng = Substreams(STATE, sealed.manifest_fingerprint, sealed.parameter_hashes[STATE], sealed.seed)
    with perf.substep(STATE, "load_contracts_inputs"):
        priors = sealed.config[INSTRUMENT_PRIORS]
        instrument_types = tuple(priors["instrument_types"])
        schemes = tuple(priors["schemes"]) + (NO_SCHEME,)
        schemeless = np.array([t in priors["schemeless_instrument_types"] for t in instrument_types])
        _, floor, cap = count_tables(priors, accounts.account_types)
        excess, modulation = excess_tables(priors, accounts.account_types,
                                           accounts.accounts_by_country, sealed.world)
        scheme_mix = np.array(
            [[priors["scheme_mix_by_region"][region][s] for s in priors["schemes"]]
             for region in parties.regions]
        )
    with perf.substep(STATE, "load_account_base") as event:
        n_accounts = int(accounts.account_block_ptr[-1])
        event["rows"] = n_accounts

    with perf.substep(STATE, "plan_counts") as event:
        bounds = block_offsets_for(parties.n_parties, sealed.scale.block_size)
        starts = spans(bounds)[0]
        account_starts = accounts.account_block_ptr[:-1]
        blocks = engine.map(
            instrument_block, starts, account_starts, accounts.blocks, parties.blocks,
            count_key=rng.key(_COUNT), scheme_key=rng.key(_SCHEME_ORDER), excess=excess,
            floor=floor, cap=cap, schemeless=schemeless, scheme_mix=scheme_mix,
            block_size=sealed.scale.block_size,
            n_groups=(parties.n_parties // sealed.scale.block_size + 1) * len(parties.regions),
            gather=False)
        rng.record(_COUNT, n_accounts, len(instrument_types))
        sums = engine.map(attrgetter("n_instruments", "n_scheme_bearing", "clipped"), blocks)
        sizes = np.array([s[:2] for s in sums], dtype=np.int64).reshape(-1, 2)
        clipped = np.sum([s[2] for s in sums], axis=0)
        # The cap's work (reference plan POPT.6.1): instruments hard_max_per_account removed.
        counters = {"hard_max_clipped_rows": int(clipped.sum()),
                    "hard_max_clipped_rows_by_type": dict(zip(instrument_types,
                                                              map(int, clipped)))}
        event["rows"] = int(sizes[:, 0].sum())
        event["counters"] = counters

    with perf.substep(STATE, "allocate_instruments") as event:
        rng.record(_SCHEME_ORDER, int(sizes[:, 1].sum()))
        instrument_block_ptr = ptr_from_counts(np.ascontiguousarray(sizes[:, 0]))
        event["rows"] = int(instrument_block_ptr[-1])

    instruments = Instruments(blocks, instrument_block_ptr, n_accounts, instrument_types,
                              schemes, counters, engine)
    instruments.country_modulation = modulation
    ph = sealed.parameter_hashes[STATE]
    with perf.substep(STATE, "emit_instrument_base_links") as event:
        parts = engine.map(tables_block, instrument_block_ptr[:-1], blocks,
                           vocabularies=(instrument_types, schemes), gather=False)
        event["rows"] = int(instrument_block_ptr[-1])
    datasets = [Dataset(name, STATE, engine.pick(parts, d),
                        sizes[:, 0], ph, engine) for d, name in enumerate(DATASETS)]
    return instruments, datasets, rng


def tables_block(instrument_lo, block, *, vocabularies):
    """The base and links parts of one canonical block's instruments (ids
    ``instrument_lo ..``)."""
    instrument_types, schemes = vocabularies
    n = block.account_id.shape[0]
    ids = pa.array(np.arange(instrument_lo, instrument_lo + n, dtype=np.int64))
    accounts = pa.array(block.account_id)
    base = encode_part({
        "instrument_id": ids,
        "account_id": accounts,
        "owner_party_id": pa.array(block.owner_party_id),
        "instrument_type": dictionary_column(block.instrument_type, instrument_types),
        "scheme": dictionary_column(block.scheme, schemes),
    })
    links = encode_part({
        "account_id": accounts,
        "instrument_id": ids,
        "link_role": dictionary_column((~block.first).astype(np.int16), LINK_ROLES),
    })
    return base, links
