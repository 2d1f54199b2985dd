"""Baseline agents and rollouts."""

from __future__ import annotations

import json

import pytest

from agents import PassthroughAgent, RandomAgent, make_agent, run_episode


def test_passthrough_sends_the_user_prompt_unchanged_once(colour_env):
    env = colour_env()
    trajectory = run_episode(env, PassthroughAgent(), seed=0, options={"task_index": 0})
    assert len(trajectory.images) == 1 and trajectory.terminated
    first = trajectory.turns[0]["action"]
    payload = json.loads(first.removeprefix("<tool_call>").removesuffix("</tool_call>"))
    assert payload == {"name": "paint", "arguments": {"prompt": "something red"}}
    assert trajectory.violations == 0 and trajectory.final_image == 1


def test_random_agent_is_seeded_and_episodes_end(colour_env):
    env = colour_env()
    runs = [run_episode(env, RandomAgent(), seed=s, options={"task_index": 0}) for s in (1, 1, 2)]
    assert [t["action"] for t in runs[0].turns] == [t["action"] for t in runs[1].turns]
    assert all(t.terminated or t.truncated for t in runs)
    assert all(len(t.turns) <= env.max_turns for t in runs)


def test_trajectory_serialises_with_images(colour_env, tmp_path):
    env = colour_env()
    trajectory = run_episode(env, PassthroughAgent(), seed=0, options={"task_index": 0})
    data = trajectory.to_dict(image_dir=tmp_path)
    assert json.loads(json.dumps(data)) == data
    assert data["images"] and all((tmp_path / p).exists() for p in data["images"])
    assert data["reward_components"] == trajectory.reward_components
    assert sum(data["reward_components"].values()) == pytest.approx(data["reward"])
    assert data["rounds"][0]["prompt"] == "something red"


def test_make_agent_names():
    assert make_agent("passthrough").name == "passthrough"
    with pytest.raises(KeyError):
        make_agent("nobody")
