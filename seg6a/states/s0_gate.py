"""S0 — gate and seal: validate every input, seal the world, fix the run's hashes."""
import operator
from dataclasses import dataclass

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
        check_against_world(config, world.regions_vocab)
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
        "policy_sources": {
            name: "embedded" if source == "embedded" else "user"
            for name, source in sorted(config.sources.items()) if name != JUDGING_POLICY
        },
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


