"""An action that is not a string (whatever it is, even one whose ``repr`` raises or is huge) is a
format violation with a short description in the chat, in ``GenAgent-v0`` and in the vector env;
it never raises."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from genagent_env.vector import GenAgentVectorEnv
from tests.helpers import COLOUR_TASKS, ColourScorer, paint


class ReprRaises:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


class ReprNotAString:
    def __repr__(self) -> Any:
        return 42


class HugeRepr:
    def __repr__(self) -> str:
        return "x" * 10_000_000


def hostile_values() -> list[Any]:
    return [10**5000, -(10**5000), ReprRaises(), ReprNotAString(), HugeRepr(), None, b"<answer>done</answer>",
            3.5, float("nan"), ["<answer>done</answer>"], {"a": 1}, np.zeros(3), object()]


def test_a_non_string_action_is_a_format_violation_whatever_its_repr(colour_env):
    env = colour_env()
    for action in hostile_values():
        env.reset(seed=0, options={"task_index": 0})
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert info["violations"] == 1 and not terminated and reward == 0.0
        assert info["format_errors"][0].startswith("An action must be a string")
        recorded = info["messages"][-2]
        assert recorded["role"] == "assistant" and len(recorded["content"]) <= 210


def test_the_vector_env_takes_them_too():
    values = hostile_values()
    envs = GenAgentVectorEnv(len(values), suite=COLOUR_TASKS, generators={"paint": paint}, scorer=ColourScorer())
    envs.reset(seed=0)
    obs, rewards, terminated, truncated, infos = envs.step(values)
    assert list(infos["violations"]) == [1] * len(values)
    assert not terminated.any() and not truncated.any() and (rewards == 0).all()
    assert envs.observation_space.contains(obs)
    envs.close()


@pytest.mark.parametrize("action", [10**5000, ReprRaises()], ids=["huge-int", "repr-raises"])
def test_the_episode_goes_on_after_one(colour_env, action):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    env.step(action)
    *_, info = env.step('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": 2}}</tool_call>')
    assert info["round"] == 1 and info["violations"] == 1
