"""Benchmarks: leaderboard runs, reports, exports for official evaluators, and speed scripts.

Each script runs as ``python -m benchmarks.<module>`` or, installed, as its console script from any
folder (``genagent-bench``, ``genagent-leaderboard``, ...; see :mod:`benchmarks.cli`).
"""
