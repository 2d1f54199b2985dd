"""run_episodes: many agents play their episodes together, with batched tool calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from agents import Agent, PassthroughAgent, run_episode, run_episodes
from agents.base import first_tool_name, tool_call, user_prompt
from agents.scripted import ScriptedAgent
from genagent_env.env import GenAgentEnv
from genagent_env.vector import GenAgentVectorEnv


def test_run_episodes_gives_the_trajectories_run_episode_gives_one_by_one() -> None:
    kwargs: dict[str, Any] = {"privileged": True, "max_rounds": 3}
    vector = GenAgentVectorEnv(5, **kwargs)
    together = run_episodes(vector, [ScriptedAgent() for _ in range(5)], seed=11)
    alone = [run_episode(GenAgentEnv(**kwargs), ScriptedAgent(), seed=11 + i) for i in range(5)]
    for a, b in zip(together, alone):
        assert a.to_dict() == b.to_dict()
    assert len({len(t.turns) for t in together}) > 1  # episodes of different lengths waited for each other


class FixedSeedAgent(Agent):
    """Sends the user's prompt with seed 7, then submits: every rollout makes the same request."""

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        if info["round"] == 0:
            return tool_call(first_tool_name(info), user_prompt(info), seed=7)
        return "<judge>fine</judge><answer>done</answer>"


def test_a_grpo_group_makes_its_shared_first_image_once() -> None:
    vector = GenAgentVectorEnv(8, max_rounds=1)
    trajectories = run_episodes(vector, [FixedSeedAgent() for _ in range(8)], seed=0, options={"task_index": 5})
    assert len({t.task_id for t in trajectories}) == 1 and all(t.terminated for t in trajectories)
    assert {t.rounds[0]["seed"] for t in trajectories} == {7}
    counters = vector.generation_cache.info()
    assert (counters["generator_calls"], counters["misses"], counters["hits"]) == (1, 1, 7)
    assert len({t.reward for t in trajectories}) == 1


def test_run_episodes_checks_its_arguments() -> None:
    vector = GenAgentVectorEnv(2)
    with pytest.raises(ValueError, match="agents"):
        run_episodes(vector, [PassthroughAgent()])
    with pytest.raises(ValueError, match="option"):
        run_episodes(vector, [PassthroughAgent(), PassthroughAgent()], options=[{"task_index": 0}])
