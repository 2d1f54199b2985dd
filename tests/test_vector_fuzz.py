"""The vector env under random mixtures of valid calls, answers and garbage: no exception, every
observation in its space, every end-of-episode info key readable whichever sub-environments end,
and the same env still usable after ``run_episodes``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents import PassthroughAgent, run_episodes
from genagent_env.vector import GenAgentVectorEnv, unbatch_info
from tests.test_robustness import hostile_actions

N_ENVS = 8
STEPS = 300
TOOL = "shapes-medium"


def call(rng: np.random.Generator) -> str:
    arguments = {"prompt": str(rng.choice(["two red circles", "a blue star above a green square", "three hearts"]))}
    if rng.random() < 0.5:
        arguments["seed"] = int(rng.integers(0, 2**32))
    return "<judge>not yet</judge><tool_call>" + json.dumps({"name": TOOL, "arguments": arguments}) + "</tool_call>"


def mixed_action(rng: np.random.Generator) -> str:
    """Mostly protocol moves (so episodes end at different moments), garbage and lone surrogates."""
    kind = rng.random()
    if kind < 0.35:
        return call(rng)
    if kind < 0.55:
        return f"<judge>ok</judge><answer>{rng.choice(['done', '1', 'image_2', 'image_0'])}</answer>"
    if kind < 0.65:
        lone_surrogates = {"name": TOOL, "arguments": {"prompt": "\ud800 lone \udfff"}}
        return "<tool_call>" + json.dumps(lone_surrogates) + "</tool_call>"
    if kind < 0.7:
        return "\udc80" * int(rng.integers(1, 50))
    return hostile_actions(rng, TOOL, 1)[0]


@pytest.mark.parametrize("mode", ["next_step", "same_step", "disabled"])
def test_random_mixtures_never_raise_and_every_info_key_stays_readable(mode: str) -> None:
    envs = GenAgentVectorEnv(N_ENVS, max_rounds=2, autoreset_mode=mode)
    rng = np.random.default_rng(7)
    obs, infos = envs.reset(seed=0)
    ended = np.zeros(N_ENVS, dtype=bool)
    endings, partial_endings = 0, 0
    for _ in range(STEPS):
        if mode == "disabled" and ended.any():
            obs, infos = envs.reset(seed=int(rng.integers(1000)), options={"reset_mask": ended.copy()})
            ended[:] = False
        obs, rewards, terminated, truncated, infos = envs.step([mixed_action(rng) for _ in range(N_ENVS)])
        assert envs.observation_space.contains(obs)
        assert np.isfinite(rewards).all()
        done = terminated | truncated
        ended = done.copy()
        if done.any():
            endings += int(done.sum())
            partial_endings += int(not done.all())
            source = infos["final_info"] if mode == "same_step" else infos
            for i in np.flatnonzero(done):
                info = unbatch_info(source, int(i))
                assert set(info["reward_components"]) == {"outcome", "reflection", "format"}
                assert rewards[i] == pytest.approx(sum(info["reward_components"].values()))
                assert info["final_image"] is None or 1 <= info["final_image"] <= len(info["images"])
                assert isinstance(info["passed"], bool) and len(info["decisions"]) >= (info["final_image"] is not None)
            for i in np.flatnonzero(~done):
                if mode != "same_step":
                    assert not infos["_reward_components"][i]
    assert endings > STEPS and partial_endings > STEPS // 4  # episodes ended at different moments, often


def test_an_end_with_an_image_beside_an_end_without_one_merges() -> None:
    """Sub-env 0 submits an image while sub-env 1 is truncated with none: ``final_image`` is 1 and None."""
    envs = GenAgentVectorEnv(2, max_rounds=1, max_turns=2)
    envs.reset(seed=0)
    envs.step([call(np.random.default_rng(0)), "garbage"])
    _, _, terminated, truncated, infos = envs.step(["<judge>ok</judge><answer>done</answer>", "garbage"])
    assert terminated.tolist() == [True, False] and truncated.tolist() == [False, True]
    assert list(infos["final_image"]) == [1, None]
    assert unbatch_info(infos, 0)["final_image"] == 1 and unbatch_info(infos, 1)["final_image"] is None


def test_the_vector_env_steps_on_after_run_episodes() -> None:
    envs = GenAgentVectorEnv(2, max_rounds=1)
    envs.reset(seed=0)
    trajectories = run_episodes(envs, PassthroughAgent(), seed=3)
    assert all(t.terminated for t in trajectories)
    obs, rewards, terminated, truncated, infos = envs.step(["x", "x"])  # next_step autoreset: new episodes
    assert rewards.tolist() == [0.0, 0.0] and infos["turn"].tolist() == [0, 0]
    obs, rewards, terminated, truncated, infos = envs.step(["x", "x"])
    assert infos["violations"].tolist() == [1, 1]
