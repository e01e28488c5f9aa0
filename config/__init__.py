"""Embedded configuration of seg6a: policies, priors, contracts and the default world.

Read with ``importlib.resources`` (see ``seg6a.policies``), never by checkout paths.
"""
