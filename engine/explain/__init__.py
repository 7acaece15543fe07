"""Analyses and explainers: one module per method, listed in :mod:`engine.registry`."""
