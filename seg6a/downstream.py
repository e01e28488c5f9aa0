"""The 6B probe (T10): does segment 6A serve a downstream transaction generator?

Contract: every dataset a 6B consumer reads has its columns and types, unique keys,
resolvable references and exactly one role row per entity, and ids carry no role
information: an entity's id (its rank in its stratum, its canonical block, its place in the
block) says nothing of its role, which the leakage audit ``L1_LABEL_LEAKAGE`` measures on
the entities and the probe checks on its flows (``id_positions``: the fraud label against
the place of each of the flow's ids in its canonical block). Sensitivity: flows drawn along
the 6A graph (payer -> account -> instrument, device -> IP, merchant) and labelled by a
fixed probe model on the 6A roles must show a fraud-label lift of flows touching a risky
entity over clean flows.

The probe model is fixed here, not in config: it stands for "a 6B that reads roles", and
moving it would move the gate. Log-odds of fraud: ``PROBE_BASE_LOGIT`` plus
``PROBE_WEIGHTS[kind]`` for each risky entity the flow touches.
"""
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from .engine import BlockResult
from .gates.data import increasing, ints
from .gates.leakage import block_places
from .kernels.flows import label_flows, sample_flows
from .tables import part_columns

PROBE_BASE_LOGIT = -5.5
# Flow column (party, account, instrument, device, ip, merchant) and weight per role kind.
PROBE_WEIGHTS = {"party": (0, 1.5), "account": (1, 1.5), "device": (3, 1.0), "ip": (4, 0.8),
                 "merchant": (5, 1.2)}

_STRING = "string"  # a category: a dictionary of strings or plain strings
CONTRACT = {
    "s1_party_base_6A": {"party_id": "int64", "party_type": _STRING, "segment_id": _STRING,
                         "country_iso": _STRING, "region_id": _STRING},
    "s2_account_base_6A": {"account_id": "int64", "owner_party_id": "int64",
                           "account_type": _STRING, "party_type": _STRING,
                           "country_iso": _STRING, "region_id": _STRING},
    "s3_instrument_base_6A": {"instrument_id": "int64", "account_id": "int64",
                              "owner_party_id": "int64", "instrument_type": _STRING,
                              "scheme": _STRING},
    "s4_device_base_6A": {"device_id": "int64", "primary_party_id": "int64",
                          "device_type": _STRING, "os_family": _STRING, "region_id": _STRING},
    "s4_device_party_links_6A": {"device_id": "int64", "party_id": "int64", "link_role": _STRING},
    "s4_ip_base_6A": {"ip_id": "int64", "ip_type": _STRING, "region_id": _STRING,
                      "country_iso": _STRING, "asn_class": _STRING},
    "s4_device_ip_links_6A": {"device_id": "int64", "ip_id": "int64", "link_role": _STRING},
    **{f"s5_{kind}_fraud_roles_6A": {f"{kind}_id": "int64", "raw_role": _STRING,
                                     "canonical_role_family": _STRING, "is_risky": "bool",
                                     "risk_logit": "float"}
       for kind in ("party", "account", "merchant", "device", "ip")},
}
# (dataset, column) -> (dataset, key): each reference must resolve.
REFERENCES = {
    ("s2_account_base_6A", "owner_party_id"): ("s1_party_base_6A", "party_id"),
    ("s3_instrument_base_6A", "account_id"): ("s2_account_base_6A", "account_id"),
    ("s3_instrument_base_6A", "owner_party_id"): ("s1_party_base_6A", "party_id"),
    ("s4_device_base_6A", "primary_party_id"): ("s1_party_base_6A", "party_id"),
    ("s4_device_party_links_6A", "device_id"): ("s4_device_base_6A", "device_id"),
    ("s4_device_party_links_6A", "party_id"): ("s1_party_base_6A", "party_id"),
    ("s4_device_ip_links_6A", "device_id"): ("s4_device_base_6A", "device_id"),
    ("s4_device_ip_links_6A", "ip_id"): ("s4_ip_base_6A", "ip_id"),
}
ROLE_BASES = {"party": "s1_party_base_6A", "account": "s2_account_base_6A",
              "device": "s4_device_base_6A", "ip": "s4_ip_base_6A"}


def _type_ok(arrow_type, expected):
    if expected == _STRING:
        value = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
        return pa.types.is_string(value) or pa.types.is_large_string(value)
    if expected == "float":
        return pa.types.is_floating(arrow_type)
    return str(arrow_type) == expected


def _has_repeats(ids):
    if increasing(ids):  # the canonical layout: no sort needed
        return False
    ordered = np.sort(ids)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def _one_each(ids, first, n):
    """Whether ``ids`` hold every id ``first .. first + n - 1`` exactly once (in any order)."""
    if ids.size != n:
        return False
    if n == 0 or (ids[0] == first and ids[-1] == first + n - 1 and increasing(ids)):
        return True  # the canonical layout: no count needed
    ids = ids - first
    return bool(ids.min() >= 0 and ids.max() < n and np.all(np.bincount(ids, minlength=n) == 1))


def _unresolved(values, keys):
    """How many ``values`` are not among ``keys``."""
    if keys.size == 0:
        return int(values.size)
    if keys[-1] - keys[0] == keys.size - 1 and increasing(keys):
        # Dense ids (the canonical layout): a range check, first over the extremes.
        if values.size == 0 or (values.min() >= keys[0] and values.max() <= keys[-1]):
            return 0
        return int(np.count_nonzero((values < keys[0]) | (values > keys[-1])))
    keys = keys if increasing(keys) else np.unique(keys)
    found = np.minimum(np.searchsorted(keys, values), keys.size - 1)
    return int(np.count_nonzero(keys[found] != values))


def contract_violations(tables, n_merchants, bases=None, columns=None):
    """Every violation of the 6B contract, as human-readable strings (empty: it holds).

    With ``bases`` (kind -> first id), ``tables`` are one canonical block's parts, held to
    the contract on their own: references resolve inside the block, and each role part
    holds one row per entity of its base part. The merchant roles, which are global, may
    be left out of a block.

    ``columns`` (dataset name -> ``seg6a.tables.part_columns``) gives every column's type
    and null count; the tables then need only their id columns. By default they are read
    from the tables.
    """
    if columns is None:
        columns = {name: part_columns(table) for name, table in tables.items()}
    problems = []
    for name, expected_columns in CONTRACT.items():
        present = columns.get(name)
        if present is None and bases is not None and name == "s5_merchant_fraud_roles_6A":
            continue
        if present is None:
            problems.append(f"{name}: missing")
            continue
        for column, expected in expected_columns.items():
            if column not in present:
                problems.append(f"{name}.{column}: missing column")
                continue
            arrow_type, nulls = present[column]
            if not _type_ok(arrow_type, expected):
                problems.append(f"{name}.{column}: type {arrow_type}, expected {expected}")
            elif nulls:
                problems.append(f"{name}.{column}: {nulls} nulls")
    if problems:
        return problems  # keys and references need the columns
    for name in ("s1_party_base_6A", "s2_account_base_6A", "s3_instrument_base_6A",
                 "s4_device_base_6A", "s4_ip_base_6A"):
        key = next(iter(CONTRACT[name]))
        if _has_repeats(ints(tables[name], key)):
            problems.append(f"{name}.{key}: keys not unique")
    for (name, column), (target, key) in REFERENCES.items():
        missing = _unresolved(ints(tables[name], column), ints(tables[target], key))
        if missing:
            problems.append(f"{name}.{column}: {missing} rows reference no {target}.{key}")
    sizes = {kind: tables[base].num_rows for kind, base in ROLE_BASES.items()}
    sizes["merchant"] = n_merchants
    for kind, n in sizes.items():
        name = f"s5_{kind}_fraud_roles_6A"
        if name not in tables:
            continue  # a block without the merchants
        ids = ints(tables[name], f"{kind}_id")
        if not _one_each(ids, 0 if bases is None else bases.get(kind, 0), n):
            problems.append(f"{name}: not exactly one row per {kind}")
    return problems


@dataclass
class FlowGraph(BlockResult):
    """What the probe draws flows along, of one block's (or a run's) gate data: the CSR
    relations in the block's own ids, each role kind's risky flags, and the global id of
    the block's first party. The gates keep it per block between measuring and probing
    (a sixth of the gate data's bytes)."""

    party_account_ptr: np.ndarray
    account_instrument_ptr: np.ndarray
    party_device_ptr: np.ndarray
    party_device_ids: np.ndarray
    device_ip_ptr: np.ndarray
    device_ip_ids: np.ndarray
    risky: dict
    bases: dict  # kind -> the global id of the block's first entity

    @classmethod
    def of(cls, data):
        """The flow graph of a ``seg6a.gates.data.GateData``, its relations as int32 when
        every id and pointer fits (a block's always do): half the bytes it is kept in."""
        relations = (data.party_account_ptr, data.account_instrument_ptr,
                     data.party_device_ptr, data.party_device_ids, data.device_ip_ptr,
                     data.device_ip_ids)
        pointers = (data.party_account_ptr, data.account_instrument_ptr,
                    data.party_device_ptr, data.device_ip_ptr)
        largest = max(data.n_parties, data.n_ips, *(int(p[-1]) for p in pointers if p.size))
        if largest < 2**31:
            relations = tuple(r.astype(np.int32) for r in relations)
        return cls(*relations, {kind: roles.is_risky for kind, roles in data.roles.items()},
                   dict(data.bases))

    @property
    def party_base(self):
        return self.bases["party"]

    @property
    def payers(self):
        """The parties with an account: the block's ids, in order."""
        return np.flatnonzero(np.diff(self.party_account_ptr) > 0)


def block_flows(graph, key, flow_ids, payer_rank, merchant_risky):
    """Sample and label the probe flows ``flow_ids`` of one block's ``FlowGraph``, whose
    payers are its ``payer_rank``-th payers; returns ``(flows, fraud, touches)`` with the
    block's ids."""
    flows = sample_flows(key, flow_ids, graph.payers[payer_rank], graph.party_account_ptr,
                         graph.account_instrument_ptr, graph.party_device_ptr,
                         graph.party_device_ids, graph.device_ip_ptr, graph.device_ip_ids,
                         merchant_risky.shape[0])
    kinds = list(PROBE_WEIGHTS)
    flags = [merchant_risky if kind == "merchant" else graph.risky[kind] for kind in kinds]
    offsets = np.concatenate([[0], np.cumsum([f.size for f in flags])[:-1]]).astype(np.int64)
    columns = np.array([[PROBE_WEIGHTS[k][0], o] for k, o in zip(kinds, offsets)], dtype=np.int64)
    weights = np.array([PROBE_WEIGHTS[k][1] for k in kinds])
    fraud, touches = label_flows(key, flow_ids, flows, columns, np.concatenate(flags), weights,
                                 PROBE_BASE_LOGIT)
    return flows, fraud, touches


# The flow columns whose ids the "no role information" clause checks, and its band: a
# column breaks the clause when the whole 95% CI of its AUC lies outside 0.5 +- ID_BAND
# (L1's B band). Fixed, as the probe model is: it is part of the contract.
ID_COLUMNS = {"party": 0, "account": 1, "device": 3, "ip": 4}
ID_BAND = 0.02


def id_positions(flows, bases, starts, quanta):
    """``{kind: each flow's id's place in its canonical block, in [0, quanta)}`` for the id
    columns of a block's flows (block ids; ``bases`` its first global ids; ``starts`` per
    kind the first id of every canonical block, then the number of entities); -1 where a
    flow has no such id.

    >>> id_positions(np.array([[0, 1, 0, -1, 2, 0]]), dict.fromkeys(ID_COLUMNS, 10),
    ...              dict.fromkeys(ID_COLUMNS, np.array([0, 10, 14])), 4)["account"].tolist()
    [1]
    """
    out = {}
    for kind, column in ID_COLUMNS.items():
        local = flows[:, column]
        _, place = block_places(bases[kind] + np.maximum(local, 0), starts[kind], quanta)
        out[kind] = np.where(local >= 0, place, -1)
    return out


def lift(touch_fraud, touch_flows, clean_fraud, clean_flows):
    """Fraud rate of flows touching a risky entity over that of clean flows (NaN if undefined).

    Examples
    --------
    >>> lift(touch_fraud=25, touch_flows=100, clean_fraud=125, clean_flows=1000)
    2.0
    >>> lift([25, 1], [100, 10], [125, 0], [1000, 10]).tolist()  # no clean fraud: undefined
    [2.0, nan]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (np.asarray(touch_fraud, float) / touch_flows) / (
            np.asarray(clean_fraud, float) / clean_flows)
    ok = (np.asarray(touch_flows) > 0) & (np.asarray(clean_flows) > 0) & (
        np.asarray(clean_fraud) > 0)
    value = np.where(ok, value, np.nan)
    return float(value) if np.ndim(value) == 0 else value
