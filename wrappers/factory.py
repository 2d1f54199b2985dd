"""``make_strategy_env``: the ``GenAgent-v0`` stack an SB3 policy trains on, in one call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from wrappers.feature_observation import FeatureObservation
from wrappers.strategies import Strategy
from wrappers.strategy_actions import StrategyActions


def make_strategy_env(
    split: str = "train",
    suite: str = "shapes-geneval",
    strategies: Sequence[str | tuple[str, Strategy]] | None = None,
    image_size: int = 48,
    text_bins: int = 128,
    record_dir: str | None = None,
    **env_kwargs: Any,
) -> gym.Env:
    """``FeatureObservation(StrategyActions([RecordTrajectories](gym.make("GenAgent-v0", ...))))``:
    ``Discrete`` strategy actions and ``Dict``-of-``Box`` observations, ready for SB3's
    ``MultiInputPolicy``. ``env_kwargs`` go to ``gym.make`` (e.g. ``generators``, ``max_rounds``);
    ``record_dir`` records every episode there (:class:`wrappers.RecordTrajectories`)."""
    import genagent_env  # noqa: F401  # registers GenAgent-v0

    env = gym.make("GenAgent-v0", suite=suite, split=split, **env_kwargs)
    if record_dir is not None:
        from wrappers.record_trajectories import RecordTrajectories

        env = RecordTrajectories(env, record_dir)
    env = StrategyActions(env, strategies=strategies)
    return FeatureObservation(env, image_size=image_size, text_bins=text_bins)
