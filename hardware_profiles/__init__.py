"""Shipped hardware profiles (YAML, one file per target), installed as package data.

Read them with :func:`cmru_neuro.energy.available_profiles` (``importlib.resources``);
``docs/energy.md`` lists them with their sources.
"""
