"""Numba kernels of seg6a: pure functions over contiguous NumPy arrays.

Kernels take and return arrays and scalars only; no I/O, no config, no Python objects.
Every kernel has a plain NumPy reference in ``tests/reference.py``.
"""
