"""Adapters to other toolchains (installed as ``cmru_neuro.adapters``)."""
