"""benchmarks/perf.py runs every env kind on the same workload, reports ratios, and resumes."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import perf


def _args(tmp_path: Path, **overrides: object) -> perf.Args:
    options = {
        "worlds": ("shapes",),
        "nums": (1, 2),
        "modes": ("sync", "async", "genagent", "raw"),
        "seconds": 0.05,
        "repeats": 1,
        "out": tmp_path / "perf.jsonl",
    }
    options.update(overrides)
    return perf.Args(**options)  # type: ignore[arg-type]


def test_perf_table_has_every_env_and_the_ratios(tmp_path: Path) -> None:
    lines = perf.main(_args(tmp_path))
    table = [line for line in lines if line.split()[:2] == ["shapes", "128"]]  # the rows, not the notes
    for name in ("SyncVectorEnv", "AsyncVectorEnv", "GenAgentVectorEnv", "raw batched call"):
        assert sum(name in line for line in table) == 2, name  # N = 1 and N = 2
    rows = [json.loads(line) for line in (tmp_path / "perf.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and all(row["images_per_s"] > 0 and row["images"] > 0 for row in rows)
    sync_rows = [line for line in table if "SyncVectorEnv" in line and "Async" not in line]
    assert all(line.split()[6] == "1.00" for line in sync_rows)  # each row's x Sync is its own ratio
    assert any("pipeline batching gain" in line for line in lines)


def test_the_diffusers_row_times_the_real_pipeline_and_checks_the_target(tmp_path: Path) -> None:
    args = _args(tmp_path, worlds=("diffusers",), sizes=(32,), nums=(1, 8), modes=("sync", "genagent", "raw"), steps=1)
    lines = perf.main(args)
    verdicts = [line for line in lines if line.startswith("target: diffusers 32x32 N=8")]
    assert len(verdicts) == 1 and ("PASS" in verdicts[0] or "FAIL" in verdicts[0])


def test_an_interrupted_run_resumes_from_the_rows_already_measured(tmp_path: Path) -> None:
    args = _args(tmp_path, nums=(1,), modes=("genagent", "raw"))
    perf.main(args)
    first = (tmp_path / "perf.jsonl").read_text().splitlines()
    (tmp_path / "perf.jsonl").write_text(first[0] + "\n" + first[1][:10])  # killed while writing row 2
    lines = perf.main(_args(tmp_path, nums=(1,), modes=("genagent", "raw"), resume=True))
    again = (tmp_path / "perf.jsonl").read_text().splitlines()
    assert json.loads(again[0]) == json.loads(first[0])  # kept, not re-measured
    assert any(line.rstrip().endswith("*") for line in lines)  # and marked as resumed
    assert len([line for line in again if line.strip().startswith("{") and line.endswith("}")]) == 2


def test_the_runner_row_plays_whole_episodes_and_is_compared_with_run_episodes(tmp_path: Path) -> None:
    args = _args(tmp_path, worlds=("diffusers",), sizes=(32,), nums=(2,), modes=("rollout", "runner"), steps=1)
    lines = perf.main(args)
    rows = {row["setting"]["mode"]: row for row in map(json.loads, (tmp_path / "perf.jsonl").read_text().splitlines())}
    assert set(rows) == {"rollout", "runner"}
    for row in rows.values():  # passthrough: one image per episode, at least one chunk of 8 x N episodes
        assert row["images"] >= 16 and row["images"] % 16 == 0
        assert row["episodes_per_s"] == row["images_per_s"] > 0
    runner_line = next(line for line in lines if "leaderboard runner" in line)
    ratio = rows["runner"]["episodes_per_s"] / rows["rollout"]["episodes_per_s"]
    assert runner_line.split()[-1] == f"{ratio:.2f}"
    assert any(line.startswith("target: diffusers 32x32 N=2 leaderboard runner / run_episodes") for line in lines)
