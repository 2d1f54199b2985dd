"""benchmarks.compare: episodes paired by task and seed, differences with cluster-bootstrap intervals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.compare import Args, bootstrap_interval, compare, main
from tests.helpers import make_record, write_run


def grid(agent: str, passed: Any, tasks: int = 10, seeds: int = 3, **kwargs: Any) -> list[dict[str, Any]]:
    """One record per (task, seed); ``passed(task, seed)`` says which pass."""
    return [make_record(task_id=f"t{t}", task_index=t, tag="count", prompt=f"task {t}", passed=passed(t, s),
                        seed=s, agent=agent, **kwargs) for t in range(tasks) for s in range(seeds)]


def test_difference_is_the_mean_over_paired_episodes_with_per_seed_values() -> None:
    base = grid("sft", lambda t, s: t < 5)                 # 0.5
    better = grid("grpo", lambda t, s: t < 5 or s == 1)   # + the 5 failing tasks on seed 1
    (row,) = compare(base + better, base="sft")
    assert (row.agent, row.paired, row.unpaired, row.tasks) == ("grpo", 30, 0, 10)
    assert row.base_mean == pytest.approx(0.5)
    assert row.agent_mean == pytest.approx(20 / 30)
    assert row.difference == pytest.approx(5 / 30)
    assert row.per_seed == pytest.approx({0: 0.0, 1: 0.5, 2: 0.0})
    assert row.low <= row.difference <= row.high
    assert row.low > 0  # a resample of the 10 tasks misses all 5 improved ones with odds 0.5**10, far below 2.5 %
    assert row.low < row.high


def test_identical_differences_give_a_zero_width_interval() -> None:
    rows = compare(grid("a", lambda t, s: False) + grid("b", lambda t, s: True), base="a")
    assert (rows[0].difference, rows[0].low, rows[0].high) == (1.0, 1.0, 1.0)


def test_the_bootstrap_resamples_whole_tasks() -> None:
    # Two tasks: one with 9 episodes of +1, one with 1 episode of 0. Resampling tasks (not episodes)
    # can draw the second task twice, so the low end reaches 0; resampling episodes never would.
    low, high = bootstrap_interval([[1.0] * 9, [0.0]], 4000, 0.95, np.random.default_rng(0))
    assert low == 0.0 and high == 1.0


def test_unpaired_episodes_are_left_out_and_counted() -> None:
    base = grid("sft", lambda t, s: True, seeds=2)
    other = grid("grpo", lambda t, s: True, seeds=3)  # seed 2 has no partner
    (row,) = compare(base + other, base="sft")
    assert (row.paired, row.unpaired) == (20, 10)
    assert set(row.per_seed) == {0, 1}


def test_generators_and_round_budgets_are_compared_apart() -> None:
    records = (grid("sft", lambda t, s: False) + grid("sft", lambda t, s: False, generator="shapes-weak")
               + grid("sft", lambda t, s: False, max_rounds=1)
               + grid("rl", lambda t, s: True) + grid("rl", lambda t, s: t < 5, generator="shapes-weak"))
    rows = compare(records, base="sft")
    by_generator = {(r.generator, r.max_rounds): r.difference for r in rows}
    assert by_generator == {("shapes-medium", 2): 1.0, ("shapes-weak", 2): 0.5}


def test_component_metrics_are_read_from_the_reward_components() -> None:
    base = grid("sft", lambda t, s: True)
    other = grid("rl", lambda t, s: True)
    for record in other:
        record["reward_components"]["reflection"] = 0.1
    (row,) = compare(base + other, base="sft", metric="reflection")
    assert row.base_mean == pytest.approx(0.3) and row.difference == pytest.approx(-0.2)


def test_the_rewrite_metric_compares_first_tool_prompts_on_knowledge_tasks_only() -> None:
    explanation = "A black cross on the left and a yellow hexagon on the right."
    wise = {"Explanation": explanation, "Category": "Cultural", "Subcategory": "shape knowledge"}

    base = grid("sft", lambda t, s: False)
    other = grid("rl", lambda t, s: False)
    for record in base:
        record.update(wise=wise, rounds=[{"prompt": "a black heart on the left and a yellow hexagon on the right"}])
    for record in other:
        prompt = explanation if record["task_index"] < 4 else "the emblem on a first-aid kit"
        record.update(wise=wise, rounds=[{"prompt": prompt}])
    geneval = grid("sft", lambda t, s: True, generator="shapes-weak")  # no literal request: left out
    (row,) = compare(base + other + geneval, base="sft", metric="rewrite")
    assert (row.base_mean, row.agent_mean, row.generator) == (0.0, pytest.approx(0.4), "shapes-medium")
    with pytest.raises(ValueError, match="shapes-wise episodes"):
        compare(geneval + grid("rl", lambda t, s: True, generator="shapes-weak"), base="sft", metric="rewrite")


def test_unknown_agents_and_disjoint_runs_are_clear_errors() -> None:
    records = grid("sft", lambda t, s: True) + grid("rl", lambda t, s: True, generator="shapes-weak")
    with pytest.raises(ValueError, match="base agent 'nope'"):
        compare(records, base="nope")
    with pytest.raises(ValueError, match=r"no episodes of \['ghost'\]"):
        compare(records, base="sft", agents=["ghost"])
    with pytest.raises(ValueError, match="share no episode"):
        compare(records, base="sft")


def test_cli_reads_several_run_folders_and_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "a", grid("sft", lambda t, s: t < 2, tasks=4, seeds=2))
    # The same sft episodes again in a later folder (first folder wins) beside the new agent's.
    write_run(tmp_path / "b", grid("sft", lambda t, s: True, tasks=4, seeds=2)
              + grid("rl", lambda t, s: True, tasks=4, seeds=2))
    (row,) = main(Args(runs=[tmp_path / "a", tmp_path / "b"], base="sft", resamples=200))
    assert row.base_mean == pytest.approx(0.5)  # folder a's sft episodes, not folder b's
    out = capsys.readouterr().out
    assert "| rl | shapes-geneval | shapes-medium | 2 | 8 (4) | 0.500 | 1.000 | +0.500 |" in out
    with pytest.raises(FileNotFoundError, match="run folder"):
        main(Args(runs=[tmp_path / "missing"], base="sft"))


def test_a_pool_of_training_seeds_gets_the_mean_of_their_differences() -> None:
    base = grid("sft", lambda t, s: t < 5)
    seeds = [grid("grpo-s0", lambda t, s: t < 6), grid("grpo-s1", lambda t, s: t < 8),
             grid("grpo-s2", lambda t, s: t < 5, seeds=2)]  # seed 2 of grpo-s2 was not played
    rows = compare(base + [r for run in seeds for r in run], base="sft", pool="grpo")
    by_agent = {row.agent: row for row in rows}
    assert [row.agent for row in rows] == ["grpo-s0", "grpo-s1", "grpo-s2", "grpo"]  # the pool last
    pooled = by_agent["grpo"]
    # Episodes every member played: seeds 0 and 1; there the differences are +0.1, +0.3 and 0.
    assert (pooled.paired, pooled.unpaired, pooled.tasks) == (20, 10, 10)
    assert pooled.difference == pytest.approx((0.1 + 0.3 + 0.0) / 3)
    assert pooled.agent_mean == pytest.approx(0.5 + (0.1 + 0.3) / 3)
    assert pooled.per_seed == pytest.approx({0: 0.4 / 3, 1: 0.4 / 3})
    assert pooled.low <= pooled.difference <= pooled.high
    with pytest.raises(ValueError, match="at least two agents"):
        compare(base + seeds[0], base="sft", pool="grpo")


def test_cli_prints_the_pool_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "a", grid("sft", lambda t, s: False) + grid("x", lambda t, s: True))
    write_run(tmp_path / "b", grid("y", lambda t, s: t < 5))
    main(Args(runs=[tmp_path / "a", tmp_path / "b"], base="sft", pool="method"))
    table = capsys.readouterr().out
    assert "| method |" in table and "+0.750" in table
