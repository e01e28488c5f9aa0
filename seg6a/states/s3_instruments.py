"""S3 — instruments: per-account counts with account-type-aware floors, schemes by region.

For every account and every instrument type its account type allows, the count is
``floor + Poisson(mean_count - floor)`` capped at ``hard_max_per_account`` (a PRF draw per
account), so a current account always has its debit card and a mortgage has nothing, with
no universal floor inflating low-rate types. Schemes: within each (canonical block, region)
the scheme-bearing instruments get scheme counts by largest remainder of the region's mix,
laid out by prefix sums over the instruments in PRF order (no per-row queues).
"""
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..kernels.allocate import largest_remainder
from ..kernels.csr import ptr_from_counts
from ..kernels.prf import uniform_range
from ..kernels.sample import poisson_range
from ..rng import Substreams
from ..tables import Dataset, block_offsets_for, dictionary_column

STATE = "S3"
INSTRUMENT_PRIORS = "instrument_priors_6A.v1.yaml"
DATASETS = ("s3_instrument_base_6A", "s3_account_instrument_links_6A")
NO_SCHEME = "NONE"
LINK_ROLES = ("PRIMARY", "ADDITIONAL")
_COUNT, _SCHEME_ORDER = "s3.instruments.count", "s3.instruments.scheme_order"


@dataclass(frozen=True)
class Instruments:
    """Instruments as arrays; ``instrument_id`` is the row index.

    Attributes
    ----------
    account_id, owner_party_id : int64 arrays
    instrument_type, scheme : int16 codes into ``instrument_types`` / ``schemes``
        (``schemes`` ends with ``"NONE"`` for schemeless types).
    account_instrument_ptr : int64 array
        CSR ``account -> instruments``.
    """

    account_id: np.ndarray
    owner_party_id: np.ndarray
    instrument_type: np.ndarray
    scheme: np.ndarray
    account_instrument_ptr: np.ndarray
    instrument_types: tuple
    schemes: tuple


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


def run(sealed, parties, accounts, perf):
    """Allocate instruments. Returns ``(Instruments, [Dataset], Substreams)``."""
    rng = Substreams(STATE, sealed.manifest_fingerprint, sealed.parameter_hashes[STATE], sealed.seed)
    with perf.substep(STATE, "load_contracts_inputs"):
        priors = sealed.config[INSTRUMENT_PRIORS]
        instrument_types = tuple(priors["instrument_types"])
        schemes = tuple(priors["schemes"]) + (NO_SCHEME,)
        schemeless = np.array([t in priors["schemeless_instrument_types"] for t in instrument_types])
        mean, floor, cap = count_tables(priors, accounts.account_types)
        scheme_mix = np.array(
            [[priors["scheme_mix_by_region"][region][s] for s in priors["schemes"]]
             for region in parties.regions]
        )
    with perf.substep(STATE, "load_account_base") as event:
        account_type = accounts.account_type
        owner = accounts.owner_party_id
        n_accounts = account_type.shape[0]
        event["rows"] = n_accounts

    with perf.substep(STATE, "plan_counts") as event:
        counts = np.zeros((n_accounts, len(instrument_types)), dtype=np.int64)
        for col in range(len(instrument_types)):
            lam = mean[account_type, col] - floor[account_type, col]
            drawn = poisson_range(rng.key(_COUNT), 0, col, lam)
            counts[:, col] = np.minimum(floor[account_type, col] + drawn, cap[account_type, col])
        rng.record(_COUNT, n_accounts, len(instrument_types))
        event["rows"] = int(counts.sum())

    with perf.substep(STATE, "allocate_instruments") as event:
        flat = np.repeat(np.arange(counts.size, dtype=np.int64), counts.ravel())
        account_id = flat // len(instrument_types)
        instrument_type = (flat % len(instrument_types)).astype(np.int16)
        n = account_id.shape[0]
        # First instrument of its type on an account is PRIMARY, the rest ADDITIONAL.
        first = np.ones(n, dtype=bool)
        first[1:] = flat[1:] != flat[:-1]
        instrument_owner = owner[account_id]
        region = parties.region[instrument_owner]
        block = instrument_owner // sealed.scale.block_size
        scheme = np.full(n, len(schemes) - 1, dtype=np.int16)
        order_key = uniform_range(rng.key(_SCHEME_ORDER), 0, n, 0)
        rng.record(_SCHEME_ORDER, n)
        bearing = np.flatnonzero(~schemeless[instrument_type])
        # Group scheme-bearing instruments by (block, region), each group in PRF order.
        groups = np.lexsort((order_key[bearing], region[bearing], block[bearing]))
        bearing = bearing[groups]
        group_id = block[bearing] * len(parties.regions) + region[bearing]
        edges = np.flatnonzero(np.r_[True, group_id[1:] != group_id[:-1], True])
        for g in range(len(edges) - 1):
            members = bearing[edges[g]:edges[g + 1]]
            mix = scheme_mix[region[members[0]]]
            per_scheme = largest_remainder(members.size, mix, np.zeros_like(mix))
            scheme[members] = np.repeat(np.arange(len(mix), dtype=np.int16), per_scheme)
        account_instrument_ptr = ptr_from_counts(counts.sum(axis=1))
        event["rows"] = n

    instruments = Instruments(account_id, instrument_owner, instrument_type, scheme,
                              account_instrument_ptr, instrument_types, schemes)
    ph = sealed.parameter_hashes[STATE]
    # Canonical blocks are blocks of parties: rows of a block are those of its accounts.
    block_offsets = account_instrument_ptr[
        accounts.party_account_ptr[block_offsets_for(parties.n_parties, sealed.scale.block_size)]
    ]
    with perf.substep(STATE, "emit_instrument_base_links") as event:
        ids = pa.array(np.arange(n, dtype=np.int64))
        base = pa.table(
            {
                "instrument_id": ids,
                "account_id": pa.array(account_id),
                "owner_party_id": pa.array(instrument_owner),
                "instrument_type": dictionary_column(instrument_type, instrument_types),
                "scheme": dictionary_column(scheme, schemes),
            }
        )
        links = pa.table(
            {
                "account_id": pa.array(account_id),
                "instrument_id": ids,
                "link_role": dictionary_column(np.where(first, 0, 1).astype(np.int16), LINK_ROLES),
            }
        )
        event["rows"] = n
    datasets = [Dataset(DATASETS[0], STATE, base, block_offsets, ph),
                Dataset(DATASETS[1], STATE, links, block_offsets, ph)]
    return instruments, datasets, rng
