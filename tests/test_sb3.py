"""Stable-Baselines3 on the wrapped env: PPO trains through DummyVecEnv and SubprocVecEnv, and a
saved model acts as an ``agents.Agent``."""

from __future__ import annotations

import gymnasium as gym
import pytest

import genagent_env  # noqa: F401
from agents.rollout import run_episode
from wrappers import make_strategy_env

sb3 = pytest.importorskip("stable_baselines3")


def _make() -> gym.Env:
    return make_strategy_env("train", image_size=36, text_bins=32)


@pytest.mark.parametrize("vec", ["dummy", "subproc"])
def test_ppo_trains_through_vec_envs(tmp_path, vec: str) -> None:  # type: ignore[no-untyped-def]
    import torch
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    torch.set_num_threads(1)
    venv = DummyVecEnv([_make, _make]) if vec == "dummy" else SubprocVecEnv([_make, _make], start_method="fork")
    try:
        model = sb3.PPO("MultiInputPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
        model.learn(total_timesteps=256)
        assert model.num_timesteps >= 256
        model.save(tmp_path / "model.zip")
    finally:
        venv.close()

    from wrappers.sb3_agent import load_sb3_agent

    agent = load_sb3_agent(tmp_path / "model.zip")
    trajectory = run_episode(gym.make("GenAgent-v0", split="test"), agent, seed=0)
    assert trajectory.terminated or trajectory.truncated
    assert len(trajectory.turns) <= 6


def test_benchmark_runner_loads_sb3_agents(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stable_baselines3.common.vec_env import DummyVecEnv

    from benchmarks.run import _sb3_agent

    model = sb3.A2C("MultiInputPolicy", DummyVecEnv([_make]), n_steps=8, seed=0, device="cpu")
    model.save(tmp_path / "a2c.zip")
    agent = _sb3_agent(str(tmp_path / "a2c.zip"))
    trajectory = run_episode(gym.make("GenAgent-v0", split="test"), agent, seed=1)
    assert trajectory.turns and agent.name == "sb3:a2c.zip"
