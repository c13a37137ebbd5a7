"""Benchmarks for tinyrnn (not tests, not part of the wheel).

Run from the repository root, e.g. ``python -m bench.throughput --quick``.
See bench/README.md.
"""
