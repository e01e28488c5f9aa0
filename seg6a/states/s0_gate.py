"""S0 — gate and seal: validate every input, seal the world, fix the run's hashes."""
import operator
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..judging import Judging, judging_of
from ..policies import JUDGING_POLICY, Config, check_against_world, load_config
from ..policies import parameter_hashes, policy_hashes, resolve_scale
from ..errors import ParameterError
from ..kernels.prf import PRF_VERSION
from ..perf import PerfRecorder
from ..rng import SEED_MAX
from ..world import load_world

STATE = "S0"


@dataclass(frozen=True)
class Sealed:
    """Everything later states stand on: validated config, sealed world, run identity.

    Attributes
    ----------
    seed : int
    scale : seg6a.policies.Scale
    config : seg6a.policies.Config
    world : seg6a.world.World
    manifest_fingerprint : str
        SHA-256 of the sealed inputs (their names and content hashes).
    parameter_hashes : dict
        Cumulative parameter hash per state ``S1..S5`` and ``segment``.
    sealed_inputs : dict
        The ``sealed_inputs_6A.json`` document.
    receipt : dict
        The ``s0_gate_receipt_6A.json`` document.
    judging : seg6a.judging.Judging
        The validation policy in force, its hash, and its waivers and overrides against the
        embedded policy (it judges; it shapes no data and enters no parameter hash).
    """

    seed: int
    scale: object
    config: Config
    world: object
    manifest_fingerprint: str
    parameter_hashes: dict
    sealed_inputs: dict
    receipt: dict
    judging: Judging

    @property
    def parameter_hash(self):
        """The segment's parameter hash (every policy that shapes the data)."""
        return self.parameter_hashes["segment"]


def check_seed(seed):
    """Return ``seed`` as an int if it is an integer in ``[0, 2**63)``."""
    try:
        if isinstance(seed, bool):  # bool is an int subclass, never a meant seed
            raise TypeError
        seed = operator.index(seed)  # int and NumPy integers; not floats or strings
    except TypeError:
        raise ParameterError(f"seed {seed!r} must be an integer in [0, 2**63)") from None
    if not 0 <= seed < SEED_MAX:
        raise ParameterError(f"seed {seed} is out of range; expected an integer in [0, 2**63)")
    return seed


def run(seed, scale=None, config=None, perf=None, waive=None):
    """Validate and seal. Raises an ``InputError`` subclass on any bad input.

    Parameters
    ----------
    seed : int
        In ``[0, 2**63)``.
    scale : str, optional
        A preset of ``scales.yaml`` (default: its ``default_scale``).
    config : Config or path-like, optional
        A loaded config, or a folder to overlay on the embedded defaults.
    perf : seg6a.perf.PerfRecorder, optional
    waive : str, optional
        The reason for accepting an overlay that loosens the judging policy (refused
        without it; see ``seg6a.judging``).
    """
    seed = check_seed(seed)
    perf = perf if perf is not None else PerfRecorder()
    with perf.substep(STATE, "load_contracts_inputs"):
        if not isinstance(config, Config):
            config = load_config(config)
        resolved = resolve_scale(config, scale)
        judging = judging_of(config, waive)
    with perf.substep(STATE, "seal_inputs"):
        world = load_world(config.world_dir)
        check_against_world(config, world)
        manifest_fingerprint = world.fingerprint
        hashes = parameter_hashes(config, resolved)
    sealed_inputs = {
        "manifest_fingerprint": manifest_fingerprint,
        "inputs": world.inputs,
    }
    receipt = {
        "state": STATE,
        "status": "PASS",
        "seed": seed,
        "scale": resolved.canonical(),
        "manifest_fingerprint": manifest_fingerprint,
        "parameter_hash": hashes["segment"],
        "state_parameter_hashes": {k: v for k, v in hashes.items() if k != "segment"},
        "policies": policy_hashes(config),
        # Where a policy came from, without the user's folder, which must not change bytes.
        "policy_sources": {name: config.origin(name) for name in sorted(config.sources)
                           if name != JUDGING_POLICY},
        "prf_version": PRF_VERSION,
        "seg6a_version": __version__,
    }
    return Sealed(
        seed=seed,
        scale=resolved,
        config=config,
        world=world,
        manifest_fingerprint=manifest_fingerprint,
        parameter_hashes=hashes,
        sealed_inputs=sealed_inputs,
        receipt=receipt,
        judging=judging,
    )




MERCHANT_BASE = "s0_merchant_base_6A"
CONFIG_FOLDER = "config"


def published_files(sealed, folder, merchants_folder):
    """What S0 publishes for a seed: ``{path: bytes}``.

    In ``folder`` (S0's partition): its receipt, the sealed inputs and the run's effective
    config (every YAML after overlay and the world's files, byte for byte, in the embedded
    layout: ``--config`` with it reproduces the run). In ``merchants_folder``: the upstream
    world's merchants as a dataset, so that merchant roles join in SQL.
    """
    from ..policies import WORLD_FOLDER, effective_files
    from ..runs.layout import part_name
    from ..runs.publish import json_bytes
    from ..tables import dictionary_column, encode_part

    files = {folder / "sealed_inputs_6A.json": json_bytes(sealed.sealed_inputs),
             folder / "s0_gate_receipt_6A.json": json_bytes(sealed.receipt)}
    config = folder / CONFIG_FOLDER
    files.update({config / relative: data
                  for relative, data in effective_files(sealed.config).items()})
    files.update({config / WORLD_FOLDER / name: data
                  for name, data in sealed.world.files.items()})
    world = sealed.world
    merchants = world.merchants
    iso = {code: i for i, code in enumerate(world.countries_vocab)}
    sizes = sorted(set(merchants.column("size_class").to_pylist()))
    size_code = {size: i for i, size in enumerate(sizes)}
    files[merchants_folder / part_name(0)] = encode_part({
        "merchant_id": merchants.column("merchant_id"),
        "mcc": merchants.column("mcc"),
        "size_class": dictionary_column(np.array([size_code[v] for v in merchants.column(
            "size_class").to_pylist()], dtype=np.int16), sizes),
        "country_iso": dictionary_column(np.array([iso[v] for v in merchants.column(
            "country_iso").to_pylist()], dtype=np.int16), world.countries_vocab),
    })
    return files
