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


def test_teacher_judges_the_images_it_is_shown_after_set_state():
    from genagent_env.env import GenAgentEnv

    env = GenAgentEnv(max_rounds=3, privileged=True)
    agent = make_agent("scripted")
    obs, info = env.reset(seed=0, options={"task_index": 0})
    agent.reset(0)
    obs, _, _, _, info = env.step(agent.act(obs, info))
    state = env.get_state()
    obs, _, _, _, info = env.step("<judge>x</judge><tool_call>" + json.dumps(
        {"name": "shapes-medium", "arguments": {"prompt": "three yellow stars", "seed": 1}}) + "</tool_call>")
    agent.act(obs, info)  # the agent has now judged image_2 of this branch
    env.set_state(state)
    obs, _, _, _, info = env.step("<judge>x</judge><tool_call>" + json.dumps(
        {"name": "shapes-medium", "arguments": {"prompt": "a cat", "seed": 2}}) + "</tool_call>")
    verdict = agent.act(obs, info)
    assert verdict.startswith("<judge>image_2 does not satisfy") and "What is right" not in verdict.split("</judge>")[0]


def test_teacher_names_colour_mistakes_as_colour_mistakes():
    import numpy as np
    from PIL import Image

    from genagent_env.env import GenAgentEnv
    from genagent_env.shapes.vocab import PALETTE

    task = {"tag": "color", "prompt": "an orange rectangle",
            "include": [{"class": "rectangle", "count": 1, "color": "orange"}]}
    pixels = np.full((128, 128, 3), 128, dtype=np.uint8)
    pixels[50:70, 30:90] = PALETTE["green"]  # the right shape in the wrong colour
    green_rectangle = Image.fromarray(pixels)
    env = GenAgentEnv(suite=[task], generators={"paint": lambda prompt, seed: green_rectangle}, privileged=True)
    agent = make_agent("scripted")
    obs, info = env.reset(seed=0, options={"task_index": 0})
    agent.reset(0)
    obs, _, _, _, info = env.step(agent.act(obs, info))
    reply = agent.act(obs, info)
    assert "<judge>image_1 does not satisfy" in reply and "The problems are the colours." in reply
