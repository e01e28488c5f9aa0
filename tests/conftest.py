"""Hypothesis settings shared by the kernel tests.

``deadline=None`` because the first call of a kernel compiles it (seconds), which would
trip hypothesis's per-example deadline; ``max_examples`` is moderate to keep the suite fast.
"""
from hypothesis import settings

settings.register_profile("seg6a", deadline=None, max_examples=60)
settings.load_profile("seg6a")
