"""The PRF: exact agreement with the reference, uniformity, independence, determinism."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

import reference as ref
from seg6a.kernels import prf
from seg6a.rng import substream_key

N = 10**6
# Fixed keys for the statistical tests: each test is deterministic, and its p-value floor
# is the chance that a correct PRF would fail it for one key.
FIXED_KEYS = (
    np.uint64(0),
    np.uint64(0x0123456789ABCDEF),
    substream_key("manifest-a", "params-a", 7, "tests.prf.fixed"),
)

keys = st.integers(0, 2**64 - 1)
id_starts = st.integers(0, 2**62)
counts = st.integers(0, 300)
draw_indices = st.integers(0, 2**64 - 1)


@given(keys, st.integers(0, 2**64 - 1), draw_indices)
def test_prf_u64_scalar_matches_reference(key, entity_id, draw_index):
    got = prf.prf_u64(np.uint64(key), np.uint64(entity_id), np.uint64(draw_index))
    assert int(got) == ref.prf_u64(key, entity_id, draw_index)


@given(keys, id_starts, counts, draw_indices)
def test_u64_range_matches_reference(key, id_start, count, draw_index):
    got = prf.u64_range(np.uint64(key), id_start, count, np.uint64(draw_index))
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, ref.u64_range(key, id_start, count, draw_index))


@given(keys, id_starts, counts, draw_indices)
def test_uniform_range_matches_reference(key, id_start, count, draw_index):
    got = prf.uniform_range(np.uint64(key), id_start, count, np.uint64(draw_index))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ref.uniform_range(key, id_start, count, draw_index))


@given(keys, st.lists(st.integers(0, 2**64 - 1), max_size=200), draw_indices)
def test_uniform_ids_matches_reference(key, entity_ids, draw_index):
    ids = np.array(entity_ids, dtype=np.uint64)
    got = prf.uniform_ids(np.uint64(key), ids, np.uint64(draw_index))
    np.testing.assert_array_equal(got, ref.uniform_ids(key, entity_ids, draw_index))


def test_uniform_ids_agrees_with_uniform_range():
    key = FIXED_KEYS[1]
    ids = np.arange(1000, 3000, dtype=np.uint64)
    np.testing.assert_array_equal(
        prf.uniform_ids(key, ids, np.uint64(3)), prf.uniform_range(key, 1000, 2000, np.uint64(3))
    )


def test_reference_unit_is_exact_top_53_bits():
    # A hand check of the reference itself: the float is the top 53 bits, scaled exactly.
    u64 = ref.prf_u64(1, 2, 3)
    assert ref.prf_unit(1, 2, 3) == (u64 >> 11) / 2**53


@pytest.mark.parametrize("key", FIXED_KEYS, ids=["zero", "pattern", "substream"])
def test_uniform_is_uniform_ks(key):
    u = prf.uniform_range(key, 0, N, np.uint64(0))
    # Floor 1e-4: a correct PRF fails this with probability 1e-4 for a given key.
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_uniform_lies_in_unit_interval():
    u = prf.uniform_range(FIXED_KEYS[1], 2**40, N, np.uint64(0))
    assert u.min() >= 0.0
    assert u.max() < 1.0


def pearson(a, b):
    return float(np.corrcoef(a, b)[0, 1])


def test_substreams_are_uncorrelated():
    bound = 4.0 / np.sqrt(N)  # four standard errors of r under independence
    key_a = substream_key("mf", "ph", 42, "s1.party.type")
    key_b = substream_key("mf", "ph", 42, "s1.party.segment")
    assert key_a != key_b
    a = prf.uniform_range(key_a, 0, N, np.uint64(0))
    b = prf.uniform_range(key_b, 0, N, np.uint64(0))
    assert abs(pearson(a, b)) < bound


def test_draw_indices_are_uncorrelated():
    bound = 4.0 / np.sqrt(N)
    key = substream_key("mf", "ph", 42, "s2.accounts.count")
    a = prf.uniform_range(key, 0, N, np.uint64(0))
    b = prf.uniform_range(key, 0, N, np.uint64(1))
    assert abs(pearson(a, b)) < bound


def test_adjacent_entities_are_uncorrelated():
    key = substream_key("mf", "ph", 42, "s3.instrument.kind")
    u = prf.uniform_range(key, 0, N + 1, np.uint64(0))
    assert abs(pearson(u[:-1], u[1:])) < 4.0 / np.sqrt(N)


SUBSTREAM_ARGS = dict(manifest_fingerprint="mf0", parameter_hash="ph0", seed=1, label="s1.x")


def test_substream_key_is_deterministic():
    first = substream_key(**SUBSTREAM_ARGS)
    assert isinstance(first, np.uint64)
    assert substream_key(**SUBSTREAM_ARGS) == first


@pytest.mark.parametrize(
    "field, value",
    [
        ("manifest_fingerprint", "mf1"),
        ("parameter_hash", "ph1"),
        ("seed", 2),
        ("label", "s1.y"),
    ],
)
def test_substream_key_changes_with_each_input(field, value):
    changed = dict(SUBSTREAM_ARGS, **{field: value})
    assert substream_key(**changed) != substream_key(**SUBSTREAM_ARGS)


# Run both in this process and in subprocesses with a fixed thread count: the bytes must
# not depend on the number of threads (the engine's block threads are tested in
# tests/test_engines.py).
THREAD_SCRIPT = """
import hashlib

import numba
import numpy as np
from seg6a.kernels.prf import uniform_range
from seg6a.kernels.sample import categorical_range, normalised_cdf, poisson_range


def thread_digests():
    n = 10**6
    key = np.uint64(0x5EED5EED5EED5EED)
    ids = np.arange(n, dtype=np.int64)
    cdf = normalised_cdf(np.array([[5.0, 3.0, 0.0, 2.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 1.0, 9.0]]))
    rows = ids % 3
    lam = (ids % 50) * 0.37
    arrays = {
        "uniform": uniform_range(key, 0, n, np.uint64(0)),
        "categorical": categorical_range(key, 0, 1, cdf, rows),
        "poisson": poisson_range(key, 0, 2, lam),
    }
    out = {name: hashlib.sha256(a.tobytes()).hexdigest() for name, a in arrays.items()}
    out["threads"] = numba.get_num_threads()
    return out
"""


def digests_in_subprocess(threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    code = THREAD_SCRIPT + "\nimport json\nprint(json.dumps(thread_digests()))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_outputs_do_not_depend_on_thread_count():
    namespace = {}
    exec(THREAD_SCRIPT, namespace)
    here = namespace["thread_digests"]()
    here.pop("threads")
    one = digests_in_subprocess(1)
    two = digests_in_subprocess(2)
    assert one.pop("threads") == 1
    assert two.pop("threads") == 2
    assert one == two == here
    assert len(set(here.values())) == 3  # three different arrays, not one digest thrice
