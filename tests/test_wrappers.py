"""The Gymnasium wrappers: spaces, protocol text, features, chat history, recording."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.wrappers import RecordEpisodeStatistics, TimeLimit

import genagent_env  # noqa: F401
from agents.base import Agent
from agents.rollout import run_episode
from wrappers import (
    ChatHistory,
    FeatureObservation,
    RecordTrajectories,
    StrategyActions,
    load_trajectories,
    make_strategy_env,
    observation_features,
)
from wrappers.strategies import StrategyContext, compose_prompt, read_task


def test_sb3_and_gymnasium_checkers_pass_without_space_warnings() -> None:
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(make_strategy_env("test"), warn=True)
    assert not caught, [str(w.message) for w in caught]  # no warning at all, about spaces or anything else
    gym_check_env(make_strategy_env("test"), skip_render_check=True)
    gym_check_env(ChatHistory(gym.make("GenAgent-v0")), skip_render_check=True)


def test_strategy_actions_write_the_protocol() -> None:
    env = StrategyActions(gym.make("GenAgent-v0"))
    names = env.strategy_names
    assert env.action_space == gym.spaces.Discrete(len(names))
    _, info = env.reset(seed=3, options={"task_index": 5})
    _, _, _, _, info = env.step(names.index("clauses"))
    assert info["strategy"] == "clauses" and "<tool_call>" in info["strategy_message"]
    assert not info["format_errors"] and len(info["images"]) == 1
    _, _, _, _, info = env.step(names.index("digits"))
    assert info["strategy_message"].startswith("<judge>") and not info["format_errors"]
    prompt = info["rounds"][-1]["prompt"]
    assert "exactly" in prompt.lower() and prompt.count(".") > 1  # the edits accumulate: clauses + digits
    # No rounds left: a generating strategy submits instead.
    _, reward, terminated, _, info = env.step(names.index("places"))
    assert terminated and "<answer>done</answer>" in info["strategy_message"] and info["violations"] == 0


def test_submit_before_any_image_is_a_violation_and_custom_strategies_work() -> None:
    seen: list[StrategyContext] = []

    def shout(context: StrategyContext) -> str:
        seen.append(context)
        return context.task_text.upper()

    env = StrategyActions(gym.make("GenAgent-v0"), strategies=[("shout", shout), "submit"])
    _, info = env.reset(seed=0)
    _, _, terminated, _, info = env.step(1)
    assert not terminated and info["violations"] == 1
    _, _, _, _, info = env.step(0)
    assert info["rounds"][-1]["prompt"] == seen[0].task_text.upper()
    assert seen[0].task is not None and seen[0].task["tag"] == "custom"  # the reader's reading, not the checklist


def test_strategies_read_only_the_public_text() -> None:
    env = gym.make("GenAgent-v0", privileged=True)
    _, info = env.reset(seed=0, options={"task_index": 0})
    reading = read_task(info["messages"][1]["content"])
    assert reading is not None and reading["include"] == info["task"]["include"]  # same content, own reading
    assert compose_prompt(reading, frozenset()) != compose_prompt(reading, frozenset({"clauses", "digits", "focus"}))


def test_feature_observation_matches_the_standalone_function() -> None:
    base = StrategyActions(gym.make("GenAgent-v0"))
    env = FeatureObservation(base, image_size=40, text_bins=32)
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs) and obs["image"].shape == (40, 40, 3)
    obs, _, _, _, info = env.step(1)
    assert env.observation_space.contains(obs)
    assert obs["image"].any() and obs["state"][3] == 1.0  # an image exists now
    raw = base.env.unwrapped.episode.observation()
    again = observation_features(raw, info, env.spec_features)
    for key in obs:
        np.testing.assert_array_equal(obs[key], again[key])
    assert "task" not in info  # nothing privileged reached the features
    with pytest.raises(ValueError):
        FeatureObservation(base, image_size=20)


def test_chat_history_is_capped() -> None:
    env = ChatHistory(StrategyActions(gym.make("GenAgent-v0")), max_chars=600)
    full = ChatHistory(StrategyActions(gym.make("GenAgent-v0")), max_chars=100_000)
    obs, info = env.reset(seed=0)
    whole, _ = full.reset(seed=0)
    request = info["messages"][1]["content"]
    assert obs["history"] == whole["history"] == f"[user] {request}\n"  # short: nothing cut yet
    for action in (1, 4):
        obs, *_ = env.step(action)
        whole, *_ = full.step(action)
        assert len(obs["history"]) <= 600 and env.observation_space.contains(obs)
    # The whole transcript is longer than the cap, so the capped one keeps the request and the
    # latest turns that fit, with the cut marked between them.
    assert len(whole["history"]) > 600 and "earlier turns cut" not in whole["history"]
    head, _, kept = obs["history"].partition("...[earlier turns cut]...\n")
    assert head == f"[user] {request}\n" and kept and whole["history"].endswith(kept)
    assert kept.startswith("[") and len(kept) < len(whole["history"]) - len(head)


class _Fixed(Agent):
    def __init__(self, actions: list[int]) -> None:
        self.env = StrategyActions(gym.make("GenAgent-v0"))
        self.actions = actions

    def reset(self, seed: int | None = None) -> None:
        self.env.player.reset()
        self.step = 0

    def act(self, observation, info) -> str:  # type: ignore[no-untyped-def]
        message = self.env.player.message(self.actions[min(self.step, len(self.actions) - 1)], info)
        self.step += 1
        return message


def test_recorded_trajectories_load_back_identical(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = RecordTrajectories(gym.make("GenAgent-v0"), tmp_path, keep=True)
    expected = [run_episode(gym.make("GenAgent-v0"), _Fixed([1, 4, 6]), seed=s) for s in range(3)]
    recorded = [run_episode(env, _Fixed([1, 4, 6]), seed=s) for s in range(3)]
    loaded = load_trajectories(tmp_path)
    assert loaded == env.trajectories
    assert [t.to_dict() for t in loaded] == [t.to_dict() for t in expected] == [t.to_dict() for t in recorded]
    assert loaded[0].images[0].tobytes() == expected[0].images[0].tobytes()
    assert (tmp_path / sorted(p.name for p in tmp_path.iterdir() if p.is_dir())[0] / "trajectory.png").exists()
    assert load_trajectories(env.path) == loaded


def test_wrappers_compose_with_gymnasium_wrappers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = RecordEpisodeStatistics(
        FeatureObservation(StrategyActions(RecordTrajectories(TimeLimit(gym.make("GenAgent-v0"), 2), tmp_path)))
    )
    env.reset(seed=0)
    _, _, _, truncated, info = env.step(0)
    _, _, _, truncated, info = env.step(5)
    assert truncated and "episode" in info
    (trajectory,) = load_trajectories(tmp_path)
    assert trajectory.truncated and len(trajectory.turns) == 2
    # TimeLimit outside the recorder: the cut episode is written at the next reset.
    outer = TimeLimit(RecordTrajectories(gym.make("GenAgent-v0"), tmp_path / "outer"), 1)
    outer.reset(seed=0)
    assert outer.step("<think>hm</think>")[3]
    outer.reset(seed=1)
    (cut,) = load_trajectories(tmp_path / "outer")
    assert cut.truncated and len(cut.turns) == 1


@pytest.mark.parametrize("vector", [gym.vector.SyncVectorEnv, gym.vector.AsyncVectorEnv])
def test_recording_inside_vector_envs(tmp_path, vector) -> None:  # type: ignore[no-untyped-def]
    envs = vector([lambda: make_strategy_env("test", record_dir=str(tmp_path)) for _ in range(2)])
    envs.reset(seed=0)
    for _ in range(7):  # two 3-step episodes per env, with the autoreset step between them
        envs.step(np.array([1, 4]))
    envs.close()
    trajectories = load_trajectories(tmp_path)
    assert len(trajectories) == 4 and all(t.terminated and len(t.images) == 2 for t in trajectories)
    assert len(list(tmp_path.glob("episodes-*.jsonl"))) == 2


def test_import_wrappers_is_light() -> None:
    code = "import sys, wrappers; print(any(m in sys.modules for m in ('torch', 'stable_baselines3')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
