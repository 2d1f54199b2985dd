"""agents.tiny.consistency: reading the teacher-format judgments of a benchmark run back."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

from agents import run_episode
from agents.tiny.consistency import Args, consistency, main, read_judgment
from agents.tiny.teacher import DescribeFirstTeacher


def _record(agent: str, rounds: list[tuple[str, bool]]) -> dict:
    return {"agent": agent, "rounds": [{"judge": text, "passed": passed} for text, passed in rounds]}


@pytest.mark.parametrize("style", ["checks", "seen"])
def test_the_teachers_own_judgments_read_back_as_fully_consistent(style: str):
    env = gym.make("genagent_env:GenAgent-v0", max_rounds=2, privileged=True)
    teacher = DescribeFirstTeacher(judge_style=style)  # type: ignore[arg-type]
    records = []
    for task_index in range(0, 280, 7):
        trajectory = run_episode(env, teacher, seed=task_index, options={"task_index": task_index})
        records.append(_record("teacher", [(r["judge"], bool(s["passed"]))
                                           for r, s in zip(trajectory.rounds, trajectory.scores) if r.get("judge")]))
    result = consistency(records)
    assert result.judgments > 40 and result.unread == 0 and result.count_checks > 40
    assert result.copied == result.follows_counts == result.count_checks
    assert result.verdict_follows == result.judgments and result.unequal_yes == 0
    assert result.failing_images > 0 and result.failing_all_yes == 0


def test_a_check_that_contradicts_its_description_is_caught():
    text = ("<judge>image_1 shows 5 black circles (left), 1 big red star. Checks: 4 black circles: 4 yes; "
            "1 red star: 1 yes; circles left: yes. It matches the request.</judge>")
    judgment = read_judgment(text)
    assert judgment is not None and judgment.described("circle", "black") == 5 and judgment.described("star") == 1
    assert [(c.want, c.colour, c.shape, c.found, c.says_yes) for c in judgment.count_checks] == [
        (4, "black", "circle", 4, True), (1, "red", "star", 1, True)]
    garbled = "<judge>image_K an with 1 (right, top), nothing. It does not match.</judge>"
    other = _record("other", [("image_1 shows 1 red star. Checks: 2 red stars: 1 yes. It matches the request.", False)])
    result = consistency([_record("a", [(text, False), (garbled, False)]), other], agent="a")
    assert (result.judgments, result.unread) == (1, 1)  # the other agent's episode is left out
    assert (result.copied, result.count_checks) == (1, 2)  # "4 black circles: 4" after "shows 5 black circles"
    assert result.failing_all_yes == result.failing_images == 1
    both = consistency([other])
    assert (both.unequal, both.unequal_yes, both.follows_counts) == (1, 1, 0)


def test_the_command_reads_a_run_folder_and_refuses_a_missing_one(tmp_path: Path, capsys):
    text = "image_2 shows 3 blue rings. Checks: 3 blue rings: 3 yes. It matches the request."
    (tmp_path / "results.jsonl").write_text(json.dumps(_record("x", [(text, True)])) + "\n")
    result = main(Args(run=tmp_path))
    assert result.copied == result.count_checks == 1
    assert "| count = own description | 1.000 (1 / 1) |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no results"):
        main(Args(run=tmp_path / "missing"))
