"""Test helpers for config overlays: the embedded YAML documents and folders overriding them."""
from importlib import resources
from pathlib import Path

import yaml


def embedded(name, folder="policy"):
    """The embedded document ``config/<folder>/<name>``, parsed."""
    return yaml.safe_load(resources.files("seg6a.config").joinpath(folder, name).read_text())


def overlay(folder, name, doc):
    """A ``--config`` folder holding ``doc`` as ``name``; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(doc))
    return folder


BLOCK_SIZE = 4096  # tiny's 20,000 parties in 5 canonical blocks: blocks really are separate


def small_blocks(folder, block_size=BLOCK_SIZE):
    """A ``--config`` folder of the embedded scales with canonical blocks of ``block_size``
    parties; returns the folder."""
    doc = yaml.safe_load(resources.files("seg6a.config").joinpath("scales.yaml").read_text())
    doc["block_size"] = block_size
    return overlay(folder, "scales.yaml", doc)

