"""Merge several benchmark runs into one leaderboard and report.

    python -m benchmarks.leaderboard runs/a runs/b --out runs/merged

Reads each run folder's ``results.jsonl``; rows are keyed by (agent, generator, max_rounds,
benchmark), and episodes with the same record key in two runs count once (the first run given
wins). Writes the same files as :func:`benchmarks.report.write_reports` into ``<out>/report/``
(the HTML report links to the images in the original run folders) and prints the Markdown table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from benchmarks.report import build_report, render_markdown


@dataclass
class Args:
    """Merge run folders into one leaderboard."""

    runs: tyro.conf.Positional[list[Path]]
    """run folders (each holding results.jsonl)"""
    out: Path
    """output folder; the report goes to <out>/report/"""


def main(args: Args) -> dict[str, Path]:
    """Build the merged report; returns the files written."""
    report = build_report(args.out, args.runs)
    print(render_markdown(report.rows))
    print(f"{len(report.records)} episodes from {len(args.runs)} run(s); written to {args.out / 'report'}/")
    return report.files


if __name__ == "__main__":
    main(tyro.cli(Args))
