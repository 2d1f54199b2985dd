"""Console scripts: each one parses its module's ``Args`` with tyro and runs its ``main``, exactly as
``python -m benchmarks.<module>`` does, from any folder once the package is installed.

==========================  =====================================================
``genagent-bench``          :func:`benchmarks.run.main` (its own entry point)
``genagent-leaderboard``    :mod:`benchmarks.leaderboard`: merge runs, write the report
``genagent-export``         :mod:`benchmarks.export`: images for an official evaluator
``genagent-perf``           :mod:`benchmarks.perf`: vector envs against the raw batched call
``genagent-perf-env``       :mod:`benchmarks.perf_env`: env overhead, ShapesWorld throughput
``genagent-calibrate``      :mod:`benchmarks.calibrate_shapes`: ShapesWorld calibration table
==========================  =====================================================

Each module is imported inside its function: ``perf_env`` pins the process to one core on import,
which only its own script should do.
"""

from __future__ import annotations

import tyro


def leaderboard() -> None:
    from benchmarks import leaderboard

    leaderboard.main(tyro.cli(leaderboard.Args))


def export() -> None:
    from benchmarks import export

    export.main(tyro.cli(export.Args))


def compare() -> None:
    from benchmarks import compare

    compare.main(tyro.cli(compare.Args))


def perf() -> None:
    from benchmarks import perf

    perf.main(tyro.cli(perf.Args))


def perf_env() -> None:
    from benchmarks import perf_env

    perf_env.main(tyro.cli(perf_env.Args))


def calibrate() -> None:
    from benchmarks import calibrate_shapes

    calibrate_shapes.main(tyro.cli(calibrate_shapes.Args))
