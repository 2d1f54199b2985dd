"""benchmarks/perf.py runs every env kind on the same workload, reports ratios, and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import perf


def _args(tmp_path: Path, **overrides: object) -> perf.Args:
    options = {
        "worlds": ("shapes",),
        "nums": (1, 2),
        "modes": ("sync", "async", "genagent", "raw"),
        "seconds": 0.05,
        "repeats": 1,
        "out": tmp_path / "perf.jsonl",
        "llm_agent": None,  # the LLM rollout rows have a test of their own
    }
    options.update(overrides)
    return perf.Args(**options)  # type: ignore[arg-type]


NAME_END = 10 + 5 + 4 + 2 + 20  # world, size, N, gap, env name: the numeric columns follow


def table_rows(lines: list[str]) -> dict[tuple[str, int, str], list[str]]:
    """The printed table: (world, N, env name) -> [steps/s, images/s, x Sync, x limit, episodes/s,
    x run_episodes] as printed."""
    out = {}
    for line in lines:
        head = line[:NAME_END].split(None, 3)
        if len(head) == 4 and head[0] in ("shapes", "diffusers") and head[1].isdigit():
            out[(head[0], int(head[2]), head[3].strip())] = line[NAME_END:].split()[:6]
    return out


def measured(path: Path) -> dict[tuple[str, int, str], dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {(r["setting"]["world"], r["setting"]["num_envs"], perf.MODE_NAMES[r["setting"]["mode"]]): r for r in rows}


def _row(world: str, n: int, mode: str, images_per_s: float, episodes: bool = False) -> perf.Row:
    setting = perf.Setting(world, 32 if world == "diffusers" else 128, n, mode, "cpu", 1)
    if episodes:
        return perf.Row(setting, None, images_per_s, 1.0, 16, episodes_per_s=images_per_s)
    return perf.Row(setting, 4 * images_per_s, images_per_s, 1.0, 16)


def test_the_report_computes_each_ratio_and_verdict_from_the_rows() -> None:
    rows = [
        _row("diffusers", 1, "sync", 10.0), _row("diffusers", 1, "genagent", 10.0), _row("diffusers", 1, "raw", 12.0),
        _row("diffusers", 8, "sync", 10.0), _row("diffusers", 8, "genagent", 30.0), _row("diffusers", 8, "raw", 40.0),
        _row("diffusers", 8, "rollout", 5.0, episodes=True), _row("diffusers", 8, "runner", 4.5, episodes=True),
    ]
    by_key = {row.setting.key(): row for row in rows}

    def report(target: float) -> list[str]:
        args = perf.Args(worlds=("diffusers",), sizes=(32,), nums=(1, 8), steps=1, target=target)
        return perf.report(args, by_key, "test device")

    lines = report(0.8)
    table = table_rows(lines)
    assert table[("diffusers", 8, "GenAgentVectorEnv")][:4] == ["120.0", "30.0", "3.00", "0.75"]
    assert table[("diffusers", 8, "SyncVectorEnv")][2:4] == ["1.00", "0.25"]
    assert table[("diffusers", 8, "raw batched call")][2:4] == ["4.00", "1.00"]
    assert table[("diffusers", 8, "leaderboard runner")][4:6] == ["4.5", "0.90"]
    assert "diffusers 32x32 N=8: pipeline batching gain 3.33x, GenAgentVectorEnv over Sync 3.00x (0.90 of the gain)" \
        in lines
    verdicts = [line for line in lines if line.startswith("target:")]
    assert verdicts == [
        "target: diffusers 32x32 N=8 leaderboard runner / run_episodes = 0.90 (>= 0.8): PASS",
        "target: diffusers 32x32 N=8 GenAgentVectorEnv / limit = 0.75 (>= 0.8): FAIL",
    ]
    assert [line.rsplit(" ", 1)[1] for line in report(0.7) if line.startswith("target:")] == ["PASS", "PASS"]
    assert [line.rsplit(" ", 1)[1] for line in report(0.95) if line.startswith("target:")] == ["FAIL", "FAIL"]


def test_perf_table_has_every_env_and_the_ratios(tmp_path: Path) -> None:
    lines = perf.main(_args(tmp_path))
    table = table_rows(lines)
    rows = measured(tmp_path / "perf.jsonl")
    assert len(rows) == 8 and all(row["images_per_s"] > 0 and row["images"] > 0 for row in rows.values())
    names = ("SyncVectorEnv", "AsyncVectorEnv", "GenAgentVectorEnv", "raw batched call")
    assert set(table) == set(rows) == {("shapes", n, name) for n in (1, 2) for name in names}
    for (world, n, name), printed in table.items():
        row, sync, raw = rows[(world, n, name)], rows[(world, n, "SyncVectorEnv")], rows[(world, n, "raw batched call")]
        assert printed[1] == f"{row['images_per_s']:.1f}"
        assert printed[2] == f"{row['images_per_s'] / sync['images_per_s']:.2f}", (name, n)  # x Sync
        assert printed[3] == f"{row['images_per_s'] / raw['images_per_s']:.2f}", (name, n)  # x limit
    def speed(n: int, name: str) -> float:
        return float(rows[("shapes", n, name)]["images_per_s"])

    gain = speed(2, "raw batched call") / speed(1, "raw batched call")
    speedup = speed(2, "GenAgentVectorEnv") / speed(2, "SyncVectorEnv")
    (note,) = [line for line in lines if "pipeline batching gain" in line]
    assert note.startswith(f"shapes 128x128 N=2: pipeline batching gain {gain:.2f}x, "
                           f"GenAgentVectorEnv over Sync {speedup:.2f}x")


def test_the_diffusers_row_times_the_real_pipeline_and_checks_the_target(tmp_path: Path) -> None:
    args = _args(tmp_path, worlds=("diffusers",), sizes=(32,), nums=(1, 8), modes=("sync", "genagent", "raw"), steps=1)
    lines = perf.main(args)
    rows = measured(tmp_path / "perf.jsonl")
    ratio = rows[("diffusers", 8, "GenAgentVectorEnv")]["images_per_s"] / rows[("diffusers", 8, "raw batched call")][
        "images_per_s"]
    verdicts = [line for line in lines if line.startswith("target: diffusers 32x32 N=8")]
    verdict = "PASS" if ratio >= args.target else "FAIL"
    assert verdicts == [f"target: diffusers 32x32 N=8 GenAgentVectorEnv / limit = {ratio:.2f} (>= {args.target}): "
                        f"{verdict}"]
    assert table_rows(lines)[("diffusers", 8, "GenAgentVectorEnv")][3] == f"{ratio:.2f}"


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
    ratio = rows["runner"]["episodes_per_s"] / rows["rollout"]["episodes_per_s"]
    assert table_rows(lines)[("diffusers", 2, "leaderboard runner")][4:6] == [
        f"{rows['runner']['episodes_per_s']:.1f}", f"{ratio:.2f}"]
    verdict = "PASS" if ratio >= args.target else "FAIL"
    verdicts = [line for line in lines if line.startswith("target:")]
    assert verdicts == [f"target: diffusers 32x32 N=2 leaderboard runner / run_episodes = {ratio:.2f} "
                        f"(>= {args.target}): {verdict}"]


def test_the_llm_rollout_rows_compare_the_agent_with_raw_generate_on_the_same_batches(tmp_path):
    from benchmarks import perf_rollout

    lines = perf_rollout.main(perf_rollout.Args(num_envs=(4,), episodes=6, threads=1))
    row = next(line for line in lines if line.startswith("| 4 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    acting, whole, raw, acting_ratio, whole_ratio = (float(cell) for cell in cells[1:6])
    assert raw > 0 and acting > 0 and whole <= acting + 1  # the whole rollout adds the env's time
    assert acting_ratio == pytest.approx(acting / raw, abs=0.01) and whole_ratio == pytest.approx(whole / raw, abs=0.01)
    assert cells[6].endswith("PASS" if acting / raw >= 0.8 else "FAIL")


def test_the_sft_speed_table_times_bf16_against_float32_on_the_same_batches():
    from benchmarks import perf_sft

    lines = perf_sft.main(perf_sft.Args(episodes=24, steps=2, repeats=1, batch_size=4, threads=1))
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")]
            for line in lines if line.startswith("| ") and "setting" not in line}
    assert set(rows) == {"float32 (baseline)", "bf16 autocast"}
    base, bf16 = (float(rows[name][1]) for name in ("float32 (baseline)", "bf16 autocast"))
    assert rows["float32 (baseline)"][4] == "1.00×"
    assert float(rows["bf16 autocast"][4].rstrip("×")) == pytest.approx(bf16 / base, abs=0.02)
    assert float(rows["bf16 autocast"][2]) == pytest.approx(4 * bf16, abs=0.1)
    # the same batches: the losses agree to bf16's precision
    assert float(rows["bf16 autocast"][3]) == pytest.approx(float(rows["float32 (baseline)"][3]), rel=0.05)
