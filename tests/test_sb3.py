"""Stable-Baselines3 on the wrapped env: PPO trains through DummyVecEnv and SubprocVecEnv, and a
saved model acts as an ``agents.Agent``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import genagent_env  # noqa: F401
from agents.rollout import run_episode
from wrappers import make_strategy_env

sb3 = pytest.importorskip("stable_baselines3")


def _make() -> gym.Env:
    return make_strategy_env("train", image_size=36, text_bins=32)


def _strategy_messages(env: gym.Env, choose, seed: int, options: dict) -> list[str]:  # type: ignore[no-untyped-def]
    """Play one episode on the strategy env, ``choose(features) -> action``; the protocol messages sent."""
    obs, _ = env.reset(seed=seed, options=options)
    messages = []
    while True:
        obs, _, terminated, truncated, info = env.step(choose(obs))
        messages.append(info["strategy_message"])
        if terminated or truncated:
            return messages


@pytest.mark.parametrize("vec", ["dummy", "subproc"])
def test_ppo_trains_through_vec_envs(tmp_path, vec: str) -> None:  # type: ignore[no-untyped-def]
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    torch.set_num_threads(1)
    venv = DummyVecEnv([_make, _make]) if vec == "dummy" else SubprocVecEnv([_make, _make], start_method="fork")
    try:
        model = sb3.PPO("MultiInputPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
        before = {name: value.clone() for name, value in model.policy.state_dict().items()}
        model.learn(total_timesteps=256)
        assert model.num_timesteps == 256  # 2 rollouts of 64 steps x 2 envs
        changed = [name for name, value in model.policy.state_dict().items() if not torch.equal(before[name], value)]
        # the gradient steps reached the action head, the value head and the feature extractor
        assert any(name.startswith("action_net") for name in changed), changed
        assert any(name.startswith("value_net") for name in changed), changed
        assert any("features_extractor" in name for name in changed), changed
        # PPO's update saw real episodes: finite losses were logged
        assert np.isfinite(model.logger.name_to_value["train/value_loss"])
        model.save(tmp_path / "model.zip")
    finally:
        venv.close()

    from wrappers.sb3_agent import load_sb3_agent

    agent = load_sb3_agent(tmp_path / "model.zip")
    # The saved agent on the plain text env sends exactly what the trained model chooses on the
    # strategy env it was trained on, turn by turn.
    for seed, task in ((0, 0), (3, 7)):
        options = {"task_index": task}
        trajectory = run_episode(gym.make("GenAgent-v0", split="test"), agent, seed=seed, options=options)
        assert trajectory.terminated or trajectory.truncated
        assert len(trajectory.turns) <= 6
        expected = _strategy_messages(make_strategy_env("test", image_size=36, text_bins=32),
                                      lambda obs: int(model.predict(obs, deterministic=True)[0]), seed, options)
        assert [turn["action"] for turn in trajectory.turns] == expected


class _ScriptedModel:
    """Stands in for an SB3 model: plays a fixed action sequence and records the features it is given."""

    def __init__(self, actions: list[int], n_actions: int) -> None:
        from wrappers.feature_observation import FeatureSpec

        self.observation_space = FeatureSpec(image_size=36, text_bins=32).space()
        self.action_space = gym.spaces.Discrete(n_actions)
        self.actions, self.seen = list(actions), []  # type: ignore[var-annotated]

    def predict(self, observation, deterministic: bool = True):  # type: ignore[no-untyped-def]
        self.seen.append(observation)
        return np.int64(self.actions[min(len(self.seen) - 1, len(self.actions) - 1)]), None


def test_the_agent_plays_its_models_actions_on_the_features_it_was_trained_on() -> None:
    from wrappers.sb3_agent import SB3Agent

    n_actions = int(make_strategy_env("test").action_space.n)
    for actions in ([1, 4, 6], [2, 2, n_actions - 1]):
        model = _ScriptedModel(actions, n_actions)
        trajectory = run_episode(gym.make("GenAgent-v0", split="test"), SB3Agent(model), seed=5,
                                 options={"task_index": 2})
        strategy_env = make_strategy_env("test", image_size=36, text_bins=32)
        features: list[dict] = []

        def choose(obs, features=features, actions=actions):  # type: ignore[no-untyped-def]
            features.append(obs)
            return actions[min(len(features) - 1, len(actions) - 1)]

        expected = _strategy_messages(strategy_env, choose, 5, {"task_index": 2})
        assert [turn["action"] for turn in trajectory.turns] == expected
        assert len(model.seen) == len(features) == len(expected)
        for got, want in zip(model.seen, features):
            assert set(got) == set(want)
            for key in want:
                np.testing.assert_array_equal(got[key], want[key])


def test_benchmark_runner_loads_sb3_agents(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stable_baselines3.common.vec_env import DummyVecEnv

    from benchmarks.run import _sb3_agent

    model = sb3.A2C("MultiInputPolicy", DummyVecEnv([_make]), n_steps=8, seed=0, device="cpu")
    model.save(tmp_path / "a2c.zip")
    agent = _sb3_agent(str(tmp_path / "a2c.zip"))
    trajectory = run_episode(gym.make("GenAgent-v0", split="test"), agent, seed=1)
    assert trajectory.turns and agent.name == "sb3:a2c.zip"
