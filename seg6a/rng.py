"""Substream keys of the PRF and the ledger of draws behind the RNG audit."""
import hashlib
from dataclasses import dataclass, field

import numpy as np

from .kernels.prf import PRF_VERSION

SEED_MAX = 2**63  # seeds are in [0, 2**63)


def substream_key(manifest_fingerprint, parameter_hash, seed, label):
    """The 64-bit PRF key of one substream.

    ``key = SHA-256(prf_version, manifest_fingerprint, parameter_hash, seed, label)``
    truncated to its first 8 bytes (little endian). Fields are joined with a unit
    separator, which none of them can contain.
    """
    payload = "\x1f".join([PRF_VERSION, manifest_fingerprint, parameter_hash, str(seed), label])
    digest = hashlib.sha256(payload.encode("utf-8")).digest()
    return np.uint64(int.from_bytes(digest[:8], "little"))


def key_fingerprint(key):
    """A short public fingerprint of a key (the key itself is not written to the audit)."""
    return hashlib.sha256(int(key).to_bytes(8, "little")).hexdigest()[:16]


@dataclass
class Substreams:
    """Keys of one state's substreams, and a record of the draws made from each.

    Every draw of a state goes through ``key(label)`` and is recorded with ``record``,
    so the RNG audit (``rng_audit_6A.json``, ``rng_trace_6A.jsonl``) lists exactly the
    substreams used and the number of PRF values drawn.
    """

    state: str
    manifest_fingerprint: str
    parameter_hash: str
    seed: int
    trace: list = field(default_factory=list)
    _keys: dict = field(default_factory=dict)

    def key(self, label):
        """The key of ``label``; labels are namespaced by state (``s1.party.type``)."""
        if label not in self._keys:
            self._keys[label] = substream_key(
                self.manifest_fingerprint, self.parameter_hash, self.seed, label
            )
        return self._keys[label]

    def record(self, label, entities, draws_per_entity=1):
        """Note ``entities * draws_per_entity`` PRF values drawn from ``label``."""
        self.trace.append(
            {
                "state": self.state,
                "substream": label,
                "entities": int(entities),
                "draws": int(entities) * int(draws_per_entity),
            }
        )

    def branch(self):
        """An empty ledger of the same substreams (same keys), for work run concurrently;
        ``merge`` the branches back in a fixed order so the trace does not depend on timing."""
        return Substreams(self.state, self.manifest_fingerprint, self.parameter_hash, self.seed)

    def merge(self, branch):
        """Append a branch's records (and the keys it derived) to this ledger."""
        self.trace.extend(branch.trace)
        self._keys.update(branch._keys)

    def audit(self):
        """Audit records: one per substream with its key fingerprint and total draws."""
        totals = {}
        for row in self.trace:
            totals[row["substream"]] = totals.get(row["substream"], 0) + row["draws"]
        return [
            {
                "state": self.state,
                "substream": label,
                "key_fingerprint": key_fingerprint(self._keys[label]),
                "draws": totals.get(label, 0),
            }
            for label in sorted(self._keys)
        ]
