"""genagent-env: text-to-image generation as a reinforcement-learning environment.

``import genagent_env`` registers the environments and stays light: it imports gymnasium, and
nothing that loads a model. Heavy libraries load when a tool or scorer that needs them is built.

    >>> import gymnasium as gym
    >>> env = gym.make("genagent_env:GenAgent-v0")  # ShapesWorld, offline
    >>> envs = gym.make_vec("genagent_env:GenAgent-v0", num_envs=8, vectorization_mode="vector_entry_point")
"""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register as _register
from gymnasium.envs.registration import registry as _registry

from genagent_env.rewards import RewardWeights
from genagent_env.scorers.base import PairwiseComparator, Score, Scorer
from genagent_env.scorers.registry import SCORERS, make_scorer, register_scorer
from genagent_env.tasks import GENEVAL_PP_TAGS, load_tasks, normalize_task, register_suite
from genagent_env.tools.base import FunctionGenerator, GenerationRequest, Generator
from genagent_env.tools.registry import GENERATORS, make_generator, register_generator

__version__ = "0.1.0"

#: Registered environment ids and the keyword arguments that make each variant.
ENV_VARIANTS: dict[str, dict[str, Any]] = {
    "GenAgent-v0": {},
    "GenAgent-Weak-v0": {"generators": "shapes-weak"},
    "GenAgent-Strong-v0": {"generators": "shapes-strong"},
    "GenAgent-Train-v0": {"split": "train"},
}
for _env_id, _kwargs in ENV_VARIANTS.items():
    if _env_id not in _registry:
        _register(
            id=_env_id,
            entry_point="genagent_env.env:GenAgentEnv",
            vector_entry_point="genagent_env.vector:GenAgentVectorEnv",
            kwargs=_kwargs,
        )


def __getattr__(name: str) -> Any:
    # The env class pulls in numpy-heavy modules; load it on first use.
    if name == "GenAgentEnv":
        from genagent_env.env import GenAgentEnv

        return GenAgentEnv
    if name == "GenAgentVectorEnv":
        from genagent_env.vector import GenAgentVectorEnv

        return GenAgentVectorEnv
    if name == "GenerationCache":
        from genagent_env.tools.cache import GenerationCache

        return GenerationCache
    raise AttributeError(f"module 'genagent_env' has no attribute {name!r}")


__all__ = [
    "ENV_VARIANTS",
    "GENERATORS",
    "GENEVAL_PP_TAGS",
    "SCORERS",
    "FunctionGenerator",
    "GenAgentEnv",
    "GenAgentVectorEnv",
    "GenerationCache",
    "GenerationRequest",
    "Generator",
    "PairwiseComparator",
    "RewardWeights",
    "Score",
    "Scorer",
    "load_tasks",
    "make_generator",
    "make_scorer",
    "normalize_task",
    "register_generator",
    "register_scorer",
    "register_suite",
]
