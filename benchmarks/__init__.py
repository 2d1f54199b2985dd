"""Benchmarks: speed scripts and (later) leaderboard runs. Run from the repository root."""
