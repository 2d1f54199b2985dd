"""Merge several benchmark runs into one leaderboard and report.

    python -m benchmarks.leaderboard runs/a runs/b --out runs/merged
    python -m benchmarks.leaderboard runs/a --out /tmp/share --copy-images   # a folder that stands alone

Reads each run folder's ``results.jsonl``; rows are keyed by (agent, generator, max_rounds,
benchmark), and episodes with the same record key in two runs count once (the first run given
wins). Writes the same files as :func:`benchmarks.report.write_reports` into ``<out>/report/``
(the front page ``index.html``, the task browser ``tasks.html``, the tables and plots) and prints
the Markdown table. The task browser links to the images in the original run folders (it says so
on the page), unless ``--copy-images`` puts them into ``<out>/report/images/``: then the report
folder can be copied or moved on its own.
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
    copy_images: bool = False
    """copy (hard-link where possible) the round images into <out>/report/images/, so the report folder
    works when copied elsewhere; without it the task browser reads them from the run folders"""
    quiet: bool = False
    """print nothing (the report is written all the same)"""


def main(args: Args) -> dict[str, Path]:
    """Build the merged report; returns the files written."""
    report = build_report(args.out, args.runs, copy_images=args.copy_images)
    if not args.quiet:
        print(render_markdown(report.rows))
        print(f"{len(report.records)} episodes from {len(args.runs)} run(s); written to {args.out / 'report'}/ "
              f"(open index.html)")
    return report.files


if __name__ == "__main__":
    main(tyro.cli(Args))
