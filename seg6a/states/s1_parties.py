"""S1 — party base: countries by population weight, party type by region, segment by type.

Party ids are dense and canonical: countries in ``country_iso`` order each own a contiguous
id range (largest-remainder split of ``n_parties`` over population weights), and a party's
type and segment are PRF draws keyed by its id. A block of ids can therefore be computed
alone, and the whole-range computation equals the concatenation of its blocks.
"""
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter

import numpy as np
import pyarrow as pa

from ..kernels.allocate import largest_remainder
from ..kernels.csr import ptr_from_counts
from ..kernels.sample import categorical_range, normalised_cdf
from ..engine import LOCAL, BlockResult, join, spans
from ..modulation import country_segment_counts
from ..rng import Substreams
from ..tables import Dataset, block_offsets_for, dictionary_column, encode_part

STATE = "S1"
PARTY_PRIORS = "party_priors_6A.v1.yaml"
DATASET = "s1_party_base_6A"


class PartyBase:
    """The party population, kept per canonical block; the run's arrays (codes index the
    vocabularies, rows are ``party_id``) are joined from the blocks on first use, so a
    run's own process holds only what its passes add up.

    Attributes
    ----------
    party_type, segment, country, region : numpy.ndarray
        int16 codes per party, indexed by ``party_id``.
    n_parties : int
    population : numpy.ndarray
        int64 parties per (country code, segment code).
    country_ptr : numpy.ndarray
        Parties of country code ``c`` are ids ``country_ptr[c]:country_ptr[c+1]``.
    party_types, segments, countries, regions : tuple of str
        The vocabularies.
    segment_party_type : numpy.ndarray
        int16 party-type code of each segment code.
    blocks : list
        Per canonical block, the handle of its ``PartyBlock`` where the engine keeps it: the
        later states' block tasks read their parties from there.
    """

    def __init__(self, blocks, n_parties, population, country_ptr, party_types, segments,
                 countries, regions, segment_party_type, engine=LOCAL):
        self.blocks = blocks  # handles on the engine
        self._engine = engine
        self.n_parties = n_parties
        self.population = population
        self.country_ptr = country_ptr
        self.party_types = party_types
        self.segments = segments
        self.countries = countries
        self.regions = regions
        self.segment_party_type = segment_party_type

    def _join(self, name):
        return join(self._engine.map(attrgetter(name), self.blocks))

    @cached_property
    def party_type(self):
        return self._join("party_type")

    @cached_property
    def segment(self):
        return self._join("segment")

    @cached_property
    def country(self):
        return self._join("country")

    @cached_property
    def region(self):
        return self._join("region")


@dataclass(frozen=True)
class PartyBlock(BlockResult):
    """The parties of one canonical block: int16 codes per party of the block."""

    party_type: np.ndarray
    segment: np.ndarray
    country: np.ndarray
    region: np.ndarray


def party_type_weights(priors, regions):
    """Party type mix per region code (rows: regions, columns: party types)."""
    types = priors["party_types"]
    mixes = priors["party_type_mix"]
    by_region = mixes.get("by_region") or {}
    # A party type left out of a mix has share 0 (config_checks allows it).
    rows = [by_region.get(region, mixes["default"]) for region in regions]
    return np.array([[row.get(t, 0.0) for t in types] for row in rows], dtype=np.float64)


def segment_weights(priors):
    """Segment vocabulary, each segment's party type code, and the segment mix per type."""
    types = priors["party_types"]
    segments = [seg for t in types for seg in priors["segments"][t]]
    owner = np.array(
        [code for code, t in enumerate(types) for _ in priors["segments"][t]], dtype=np.int16
    )
    weights = np.zeros((len(types), len(segments)), dtype=np.float64)
    for j, seg in enumerate(segments):
        weights[owner[j], j] = priors["segments"][types[owner[j]]][seg]
    return tuple(segments), owner, weights


def _countries(country_ptr, lo, hi):
    """int16 country code of party ids ``lo .. hi - 1``."""
    per_country = np.diff(np.clip(country_ptr, lo, hi))
    return np.repeat(np.arange(per_country.shape[0], dtype=np.int16), per_country)


def party_block(lo, hi, *, country_ptr, country_region, type_key, type_cdf, segment_key,
                segment_cdf, vocabularies):
    """Party ids ``lo .. hi - 1`` of one canonical block: ``(PartyBlock, part)``, its
    parties' codes and its part of the party base."""
    lo, hi = int(lo), int(hi)
    country = _countries(country_ptr, lo, hi)
    region = country_region[country]
    party_type = categorical_range(type_key, lo, 0, type_cdf, region)
    segment = categorical_range(segment_key, lo, 0, segment_cdf, party_type)
    party_types, segments, countries, regions = vocabularies
    part = encode_part({
        "party_id": pa.array(np.arange(lo, hi, dtype=np.int64)),
        "party_type": dictionary_column(party_type, party_types),
        "segment_id": dictionary_column(segment, segments),
        "country_iso": dictionary_column(country, countries),
        "region_id": dictionary_column(region, regions),
    })
    return PartyBlock(party_type, segment, country, region), part


def _population(parties, *, n_countries, n_segments):
    """A block's parties per (country, segment) code pair."""
    return country_segment_counts(parties.country, parties.segment, n_countries, n_segments)


def run(sealed, perf, engine=LOCAL):
    """Build the party base. Returns ``(PartyBase, [Dataset], Substreams)``."""
    rng = Substreams(STATE, sealed.manifest_fingerprint, sealed.parameter_hashes[STATE], sealed.seed)
    with perf.substep(STATE, "load_contracts_inputs"):
        priors = sealed.config[PARTY_PRIORS]
        world = sealed.world
        n_parties = sealed.scale.n_parties
        type_cdf = normalised_cdf(party_type_weights(priors, world.regions_vocab))
        segments, segment_owner, seg_weights = segment_weights(priors)
        segment_cdf = normalised_cdf(seg_weights)

    with perf.substep(STATE, "allocate_parties") as event:
        per_country = largest_remainder(
            n_parties, world.country_weight, np.zeros_like(world.country_weight)
        )
        country_ptr = ptr_from_counts(per_country)
        bounds = block_offsets_for(n_parties, sealed.scale.block_size)
        party_types = tuple(priors["party_types"])
        blocks = engine.map(party_block, *spans(bounds), gather=False,
                            country_ptr=country_ptr,
                            country_region=world.country_region,
                            type_key=rng.key("s1.party.type"), type_cdf=type_cdf,
                            segment_key=rng.key("s1.party.segment"), segment_cdf=segment_cdf,
                            vocabularies=(party_types, segments, world.countries_vocab,
                                          world.regions_vocab))
        rng.record("s1.party.type", n_parties)
        rng.record("s1.party.segment", n_parties)
        party_blocks = engine.pick(blocks, 0)
        # What the later states need of the whole population: its counts per (country,
        # segment), added up from the blocks'.
        population = sum(engine.map(_population, party_blocks,
                                    n_countries=len(world.countries_vocab),
                                    n_segments=len(segments)))
        event["rows"] = n_parties

    parties = PartyBase(party_blocks, n_parties, population, country_ptr, party_types,
                        segments, world.countries_vocab, world.regions_vocab, segment_owner,
                        engine)
    with perf.substep(STATE, "emit_party_base") as event:
        # The parts were built by the block tasks, and stay where they ran.
        dataset = Dataset(DATASET, STATE, engine.pick(blocks, 1),
                          np.diff(bounds), sealed.parameter_hashes[STATE], engine)
        event["rows"] = n_parties
    return parties, [dataset], rng
