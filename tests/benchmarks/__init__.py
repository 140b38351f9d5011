"""Benchmarks: run as scripts (``python -m tests.benchmarks.bench_x``), never by pytest.

Each prints its numbers side by side with a baseline measured in the same run, and writes
only into a temporary folder or one given on its command line (``bench-out/`` is ignored by
git).
"""
