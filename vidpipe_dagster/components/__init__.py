"""Dagster components of vidpipe: the state-backed component compiling the pipeline tables."""
