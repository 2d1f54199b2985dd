"""Hostile actions never raise, stay inside the spaces, say what was wrong, and end on time."""

from __future__ import annotations

import json

import numpy as np
import pytest

import genagent_env  # noqa: F401  (registers the envs)
from genagent_env.env import GenAgentEnv

N_ACTIONS = 2400


def _unicode(rng: np.random.Generator, n: int) -> str:
    # Any code point, lone surrogates and control characters included.
    return "".join(chr(int(c)) for c in rng.integers(0, 0x110000, size=n))


def hostile_actions(rng: np.random.Generator, tool: str, n: int) -> list[str]:
    """A seeded mix of everything a broken or adversarial policy might send."""
    seeds = [-1, 2**32, 2**64, 10**400, "7", 7.5, True, None, [], {}, "NaN", 1e308]
    answers = ["", "done", "DONE", "0", "-1", "1e3", "image_", "image_1.5", "99999999999"]
    makers = [
        lambda: _unicode(rng, int(rng.integers(0, 200))),
        lambda: "x" * 1_000_000 if rng.random() < 0.05 else "<think>" + "y" * 100_000 + "</think>",
        lambda: "<tool_call>" + "{" * int(rng.integers(1, 50_000)) + "</tool_call>",
        lambda: "<tool_call>" + "[" * 200_000 + "]" * 200_000 + "</tool_call>",
        lambda: (
            "<tool_call>"
            + json.dumps({"name": tool, "arguments": {"prompt": {"nested": [1, {"a": None}]}}})
            + "</tool_call>"
        ),
        lambda: (
            "<judge><think><tool_call>"
            + json.dumps({"name": tool, "arguments": {"prompt": "a"}})
            + "</tool_call></think></judge>"
        ),
        lambda: "<tool_call><answer>done</answer></tool_call>",
        lambda: "<answer><tool_call>{}</tool_call></answer>",
        lambda: '<tool_call>{"name": "' + tool + '", "arguments": {"prompt": "two red circles", "seed": '
        + json.dumps(seeds[int(rng.integers(len(seeds)))], default=str).replace('"NaN"', "NaN") + "}}</tool_call>",
        lambda: '<tool_call>{"name": "' + tool + '", "arguments": {"prompt": "x", "seed": NaN}}</tool_call>',
        lambda: '<tool_call>{"name": "' + tool + '", "arguments": {"prompt": "x", "seed": Infinity}}</tool_call>',
        lambda: '<tool_call>{"name": "' + tool + '", "arguments": {"prompt": "' + "p" * 50_000 + '"}}</tool_call>',
        lambda: (
            '<tool_call>{"name": "' + _unicode(rng, 5).replace('"', "") + '", "arguments": {"prompt": "x"}}</tool_call>'
        ),
        lambda: '<tool_call>{"name": "../../etc/passwd", "arguments": {"prompt": "__import__(\'os\')"}}</tool_call>',
        lambda: '<tool_call>{"name": "' + tool + '", "arguments": "{\\"prompt\\": 3}"}</tool_call>',
        lambda: f"<answer>image_{int(rng.integers(-5, 10))}</answer>",
        lambda: f"<answer>{rng.choice(answers)}</answer>",
        lambda: "<judge>ok</judge>" * int(rng.integers(1, 4)) + "<answer>done</answer>",
        lambda: "</think></judge><answer>",
        lambda: (
            "<TOOL_CALL>"
            + json.dumps(
                {"name": tool, "arguments": {"prompt": "three blue stars", "seed": int(rng.integers(0, 2**32))}}
            )
            + "</tool_call>"
        ),
        lambda: "<judge>fine</judge><answer>done</answer>",
    ]
    return [makers[int(rng.integers(len(makers)))]() for _ in range(n)]


@pytest.fixture(scope="module")
def env() -> GenAgentEnv:
    return GenAgentEnv(max_rounds=2)


def test_hostile_actions_raise_nothing_and_stay_in_the_spaces(env):
    rng = np.random.default_rng(2024)
    tool = next(iter(env.tools))
    actions = hostile_actions(rng, tool, N_ACTIONS)
    episodes = 0
    obs, info = env.reset(seed=0)
    steps = 0
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        steps += 1
        assert env.observation_space.contains(obs), obs["text"][:200]
        assert np.isfinite(reward)
        if info["format_errors"]:
            assert obs["text"], "a violation must say what was wrong"
            assert all(isinstance(e, str) and len(e) < 2000 for e in info["format_errors"])
        assert steps <= env.max_turns
        if terminated or truncated:
            assert set(info["reward_components"]) == {"outcome", "reflection", "format"}
            assert reward == pytest.approx(sum(info["reward_components"].values()))
            episodes += 1
            steps = 0
            obs, info = env.reset(seed=episodes)
    assert episodes > N_ACTIONS // (env.max_turns + 1)


def test_same_seed_and_actions_give_the_same_observations_and_rewards(env):
    actions = hostile_actions(np.random.default_rng(7), next(iter(env.tools)), 60)
    runs = []
    for _ in range(2):
        env.reset(seed=11)
        record = []
        for action in actions:
            obs, reward, terminated, truncated, _ = env.step(action)
            record.append((obs["text"], obs["image"].tobytes(), reward, terminated, truncated))
            if terminated or truncated:
                env.reset(seed=len(record))
        runs.append(record)
    assert runs[0] == runs[1]


def test_env_checker_passes_on_the_default_env():
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env

    env = gym.make("GenAgent-v0")
    check_env(env.unwrapped)
    env.close()


def test_duplicate_keys_and_huge_numbers_are_explained(colour_env):
    env = colour_env()
    env.reset(seed=0)
    obs, *_ = env.step('<tool_call>{"name": "nope", "name": "paint", "arguments": {"prompt": "red"}}</tool_call>')
    assert "appears twice" in obs["text"]
    huge = "9" * 5000
    obs, *_ = env.step('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": ' + huge + "}}</tool_call>")
    assert "too many digits" in obs["text"] and "sys." not in obs["text"]


def test_truncation_says_the_episode_is_over(colour_env):
    env = colour_env(max_turns=1)
    env.reset(seed=0)
    obs, _, _, truncated, _ = env.step('<tool_call>{"name": "paint", "arguments": {"prompt": "red"}}</tool_call>')
    assert truncated and "episode is over" in obs["text"] and "image_1 counts as submitted" in obs["text"]
