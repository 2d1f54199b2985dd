"""Packaging promises: light import, registration, make without a prior import."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def test_import_is_light():
    out = _run(
        "import sys, genagent_env, agents, wrappers\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'open_clip', 'scipy', 'PIL') if m in sys.modules]\n"
        "print(heavy)"
    )
    assert out.strip() == "[]"


def test_gym_make_without_a_prior_import():
    out = _run(
        "import gymnasium as gym\n"
        "env = gym.make('genagent_env:GenAgent-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(type(env.unwrapped).__name__, len(env.unwrapped.tasks), info['tag'] != '')"
    )
    assert out.split() == ["GenAgentEnv", "280", "True"]


def test_variants_are_registered():
    import gymnasium as gym

    import genagent_env

    for env_id in genagent_env.ENV_VARIANTS:
        assert env_id in gym.registry
    env = gym.make("GenAgent-Strong-v0")
    assert list(env.unwrapped.tools) == ["shapes-strong"]
    env.close()
