"""Config: the embedded YAML policies, overlaid by a user folder, validated against contracts.

Embedded files are read with ``importlib.resources`` from the ``seg6a.config`` package; a user folder
(``--config DIR``) replaces embedded files by file name and may hold a ``world/`` folder
that replaces the embedded upstream world. Every document is checked against its JSON
Schema contract (``config/contracts/``) and for self-contradictions
(``seg6a.config_checks``); checks against the world happen in S0.
"""
import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

from . import config_checks
from .errors import ConfigError, ParameterError
from .runs.store import location

# Policy file name -> folder inside the embedded config package.
POLICY_FILES = {
    "scales.yaml": "",
    "party_priors_6A.v1.yaml": "priors",
    "account_per_party_priors_6A.v1.yaml": "priors",
    "instrument_priors_6A.v1.yaml": "priors",
    "device_ip_priors_6A.v1.yaml": "priors",
    "fraud_role_taxonomy_6A.v1.yaml": "policy",
    "risk_propagation_coeffs_6A.v1.yaml": "policy",
    "validation_policy_6A.v1.yaml": "policy",
    "perf_budget_6A.v1.yaml": "policy",
}

# The policies each data-producing state reads. A state's parameter hash covers its own
# policies and those of every upstream state, so a change re-keys and re-partitions exactly
# the states the rerun matrix names (change S2 -> S2..S5, S4 -> S4..S5, S5 -> S5).
STATE_POLICIES = {
    "S1": ("party_priors_6A.v1.yaml",),
    "S2": ("account_per_party_priors_6A.v1.yaml",),
    "S3": ("instrument_priors_6A.v1.yaml",),
    "S4": ("device_ip_priors_6A.v1.yaml",),
    "S5": ("fraud_role_taxonomy_6A.v1.yaml", "risk_propagation_coeffs_6A.v1.yaml"),
}
# The policy that judges the data and generates none of it: it has its own hash
# (``validation_hash``) and enters no parameter hash, so changing a gate never changes a
# dataset byte (SPEC section 4).
JUDGING_POLICY = "validation_policy_6A.v1.yaml"
STATES = ("S0", "S1", "S2", "S3", "S4", "S5")

WORLD_FOLDER = "world"
_EMBEDDED = "seg6a.config"


@dataclass(frozen=True)
class Scale:
    """A resolved scale preset."""

    name: str
    n_parties: int
    block_size: int

    def canonical(self):
        return {"name": self.name, "n_parties": self.n_parties, "block_size": self.block_size}


@dataclass(frozen=True)
class Config:
    """Validated policy documents and where each came from.

    Attributes
    ----------
    documents : dict
        File name -> parsed YAML document.
    sources : dict
        File name -> ``"embedded"`` or the user file's path.
    user_dir : pathlib.Path or None
        The overlay folder, if any.
    texts : dict
        File name -> the YAML text each document was parsed from (the effective config a
        run publishes, byte for byte).
    """

    documents: dict
    sources: dict
    user_dir: Path = None
    texts: dict = None

    def origin(self, file_name):
        """``"embedded"`` when the document's text is the embedded file's (wherever it was
        read from), else ``"user"``: what a receipt records, so that an exported and
        unedited config reproduces a run without one byte for byte."""
        return "embedded" if self.texts[file_name] == _embedded_text(file_name) else "user"

    def __getitem__(self, file_name):
        return self.documents[file_name]

    @property
    def world_dir(self):
        """The user's world folder, or None for the embedded world."""
        if self.user_dir is not None and (self.user_dir / WORLD_FOLDER).is_dir():
            return self.user_dir / WORLD_FOLDER
        return None


# libyaml's safe loader when PyYAML has it (the same documents, ~6x faster than pure Python).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

def embedded_file(*parts):
    """A Traversable for a file of the embedded config package."""
    node = resources.files(_EMBEDDED)
    for part in parts:
        node = node.joinpath(part)
    return node


@functools.lru_cache(maxsize=None)
def _embedded_text(name):
    # Bytes decoded, not read_text: universal newlines would not be the file's bytes.
    return embedded_file(*filter(None, (POLICY_FILES[name], name))).read_bytes().decode("utf-8")


def embedded_document(name):
    """A fresh copy of the embedded document ``name`` (e.g. the judging policy an overlay is
    compared with), parsed and validated."""
    return parse_document(name, _embedded_text(name))


def load_config(config_dir=None):
    """Load the embedded policies, overlay ``config_dir`` by file name, and validate.

    Parameters
    ----------
    config_dir : str or os.PathLike, optional
        A folder of YAML files named like the embedded ones (and optionally a ``world/``
        folder). Unknown YAML file names are an error, so a typo never goes unnoticed.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        Naming the file, and the key or line, of the first problem found.
    """
    user_dir = None
    overlay = {}
    if config_dir is not None:
        user_dir = location(config_dir)  # a run's published config may be in an object store
        overlay = overlay_files(user_dir)

    documents, sources, texts = {}, {}, {}
    for name, folder in POLICY_FILES.items():
        if name in overlay:
            source = overlay[name]
            text = read_config_text(source)
            sources[name] = str(source)
        else:
            text = _embedded_text(name)
            sources[name] = "embedded"
        shown = overlay.get(name, name)
        documents[name] = parse_document(name, text, shown)
        texts[name] = text
    if JUDGING_POLICY in overlay:
        # Owners, metric names and the set of gates and components are the reference plan's.
        from .judging import fixed_problems

        problems = fixed_problems(embedded_document(JUDGING_POLICY), documents[JUDGING_POLICY])
        if problems:
            key, message = problems[0]
            raise ConfigError(message, file=overlay[JUDGING_POLICY], key=key)
    return Config(documents=documents, sources=sources, user_dir=user_dir, texts=texts)


# Config files are small; a bigger one is a mistake (or an attack on the parser).
MAX_CONFIG_BYTES = 1 << 20
# Files of an overlay folder that are documentation, not config.
DOCUMENTATION = ("README.md", "README.txt")


def overlay_files(user_dir):
    """``{policy file name: path}`` of an overlay folder, in the flat layout (every file at
    the top) or the embedded one (``scales.yaml``, ``priors/``, ``policy/``, ``world/``).

    Anything it does not recognise is an error naming it: an overlay file that went unread
    would be a setting silently ignored.
    """
    if not user_dir.is_dir():
        raise ConfigError("config folder does not exist or is not a folder", file=user_dir)
    known = ", ".join(sorted(POLICY_FILES))
    folders = sorted({f for f in POLICY_FILES.values() if f})
    overlay = {}
    for path in sorted(user_dir.iterdir()):
        if path.name.startswith(".") or path.name in DOCUMENTATION:
            continue
        if path.is_dir():
            if path.name == WORLD_FOLDER:
                continue  # checked by the world's loader
            if path.name not in folders:
                raise ConfigError(
                    f"unknown config folder; an overlay holds YAML files named like the "
                    f"embedded ones, at the top or in {' or '.join(f + '/' for f in folders)}, "
                    f"and a "
                    f"{WORLD_FOLDER}/ folder (`seg6a config export DIR` writes that layout)",
                    file=path)
            entries = [(child, path.name) for child in sorted(path.iterdir())
                       if not child.name.startswith(".") and child.name not in DOCUMENTATION]
        else:
            entries = [(path, None)]
        for entry, folder in entries:
            if entry.name not in POLICY_FILES or entry.is_dir():
                raise ConfigError(f"unknown config file; expected one of: {known} (`seg6a "
                                  "config export DIR` writes an overlay to edit)", file=entry)
            if folder is not None and POLICY_FILES[entry.name] != folder:
                raise ConfigError(f"belongs in {POLICY_FILES[entry.name] or 'the top'}/ of "
                                  "the overlay, not in " + folder + "/", file=entry)
            if entry.name in overlay:
                raise ConfigError(f"given twice, also as {overlay[entry.name]}", file=entry)
            overlay[entry.name] = entry
    return overlay


def effective_files(config):
    """The effective config as files in the embedded layout: ``{relative path: bytes}`` of
    every YAML document after overlay, byte for byte (what a run publishes, and what
    ``--config`` reads back)."""
    return {"/".join(filter(None, (POLICY_FILES[name], name))): config.texts[name].encode("utf-8")
            for name in POLICY_FILES}


def export_config(folder):
    """Write the embedded config (policies, priors, scales and the world) into ``folder`` in
    the embedded layout, for a user to edit and pass back with ``--config``; returns the
    paths written. ``folder`` must not exist yet, or be empty."""
    from .runs.publish import publish_bytes
    from .world import EMBEDDED_WORLD

    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError("exists and is not an empty folder; export into a new one",
                          file=folder)
    files = effective_files(load_config())
    files.update({f"{WORLD_FOLDER}/{name}": embedded_file(WORLD_FOLDER, name).read_bytes()
                  for name in EMBEDDED_WORLD})
    written = []
    for relative, data in sorted(files.items()):
        publish_bytes(folder / relative, data)
        written.append(folder / relative)
    return written


def read_config_text(path):
    """The text of a user's config file, refused over ``MAX_CONFIG_BYTES``."""
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"is {size:,} bytes; config files are at most "
                              f"{MAX_CONFIG_BYTES:,} bytes", file=path)
        return path.read_bytes().decode("utf-8")  # byte for byte (no newline translation)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=path) from exc


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, first, second):
        super().__init__()
        self.key, self.first, self.second = key, first, second


class _StrictLoader(_YAML_LOADER):
    """The safe loader, refusing a key given twice in one mapping (the last would win)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(key, seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _check_no_anchors(text, shown_as):
    """Refuse anchors and aliases: a value shared by reference hides where it is set."""
    for event in yaml.parse(text, Loader=_YAML_LOADER):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ConfigError("anchors and aliases are not allowed in config files (write the "
                              "value out)", file=shown_as, line=event.start_mark.line + 1)


def parse_document(name, text, shown_as=None):
    """Parse YAML text (the safe loader) and check it against its contract.

    ``name`` selects the contract; ``shown_as`` is how errors name the file.
    """
    shown_as = shown_as if shown_as is not None else name
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"is over {MAX_CONFIG_BYTES:,} bytes; config files are smaller",
                          file=shown_as)
    try:
        doc = yaml.load(text, Loader=_StrictLoader)
    except _DuplicateKey as exc:
        raise ConfigError(f"duplicate key {exc.key!r} (lines {exc.first} and {exc.second}): "
                          "the last would silently win", file=shown_as, line=exc.second) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", file=shown_as, line=line) from exc
    _check_no_anchors(text, shown_as)
    if not isinstance(doc, dict):
        raise ConfigError("expected a mapping at the top of the file", file=shown_as)
    validate_contract(name, doc, shown_as)
    problems = config_checks.check_document(name, doc)
    if problems:
        key, message = problems[0]
        raise ConfigError(message, file=shown_as, key=key)
    return doc


def validate_contract(name, doc, shown_as):
    """Raise ConfigError for the most relevant JSON Schema violation of ``doc``."""
    contract = name[: -len(".yaml")] + ".schema.json"
    schema = json.loads(embedded_file("contracts", contract).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        key = config_checks.key_path(*error.absolute_path)
        message = f"violates its contract: {error.message}"
        # A list entry that names itself (a raw role, a rule) is named in the message too.
        if isinstance(error.instance, dict) and "raw_role" in error.instance:
            message += f" (raw role {error.instance['raw_role']})"
        raise ConfigError(message, file=shown_as, key=key)


def check_against_world(config, world):
    """Cross-file checks and checks against the world's regions and indicators (run by
    S0)."""
    problems = config_checks.check_across(config.documents, world.regions_vocab,
                                          world.indicators)
    if problems:
        name, key, message = problems[0]
        source = config.sources.get(name, "embedded")
        raise ConfigError(message, file=name if source == "embedded" else source, key=key)


def resolve_scale(config, name=None):
    """The scale preset ``name`` (default: ``default_scale`` of scales.yaml).

    Examples
    --------
    >>> scale = resolve_scale(load_config(), "tiny")
    >>> scale.name, scale.n_parties
    ('tiny', 20000)
    """
    doc = config["scales.yaml"]
    name = doc["default_scale"] if name is None else name
    presets = doc["scales"]
    if name not in presets:
        known = ", ".join(presets)
        source = config.sources.get("scales.yaml", "embedded")
        raise ParameterError(f"unknown scale {name!r}; known scales: {known}",
                             file="scales.yaml" if source == "embedded" else source)
    preset = presets[name]
    return Scale(
        name=name,
        n_parties=int(preset["n_parties"]),
        block_size=int(doc["block_size"]),
    )


def canonical_hash(obj):
    """SHA-256 hex of the canonical JSON of ``obj`` (sorted keys, no whitespace).

    Key order does not matter, values do:

    >>> canonical_hash({"a": 1, "b": [2, 3]}) == canonical_hash({"b": [2, 3], "a": 1})
    True
    >>> canonical_hash({"a": 1}) == canonical_hash({"a": 1.5})
    False
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def policy_hashes(config):
    """``{file name: canonical hash}`` of every policy document but the judging policy (S0's
    receipt records it; the judging policy has ``validation_hash``)."""
    return {name: canonical_hash(doc) for name, doc in sorted(config.documents.items())
            if name != JUDGING_POLICY}


def validation_hash(config):
    """The canonical hash of the judging policy: it keys the gates' bootstrap resampling and
    is recorded on every gateboard, the certification summary and S5's receipt."""
    return canonical_hash(config[JUDGING_POLICY])


def parameter_hashes(config, scale):
    """Cumulative parameter hash per data state, and the segment's ``parameter_hash``.

    Returns a dict ``{"S1": ..., ..., "S5": ..., "segment": ...}``; ``segment`` equals the
    S5 hash, which covers every policy that shapes the published data.
    """
    hashes = {}
    covered = {"scale": scale.canonical()}
    for state, files in STATE_POLICIES.items():
        for name in files:
            covered[name] = config[name]
        hashes[state] = canonical_hash(covered)
    hashes["segment"] = hashes["S5"]
    return hashes
