"""Benchmarks against the issues' targets: `python -m bench [NAME ...]` prints a table and writes JSON."""
