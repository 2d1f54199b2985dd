"""Gymnasium wrappers for ``GenAgent-v0`` (one wrapper per module).

- :class:`StrategyActions` — ``Discrete`` choice among named prompt strategies; writes the protocol text.
- :class:`FeatureObservation` — a flat ``Dict`` of ``Box`` features (SB3's ``MultiInputPolicy``).
- :class:`ChatHistory` — the chat so far as text in the observation, under a size cap (LLM agents).
- :class:`RecordTrajectories` — each episode as JSONL + PNGs + a trajectory picture;
  :func:`load_trajectories` reads them back.
- :func:`make_strategy_env` — the SB3-ready stack in one call.
- :mod:`wrappers.sb3_agent` — ``load_sb3_agent(path)``: a saved SB3 model as an ``agents.Agent``
  (imported on demand: ``import wrappers`` never imports torch or SB3).
"""

from wrappers.chat_history import ChatHistory
from wrappers.factory import make_strategy_env
from wrappers.feature_observation import FeatureObservation, FeatureSpec, observation_features
from wrappers.record_trajectories import RecordTrajectories, load_trajectories
from wrappers.strategies import DEFAULT_STRATEGIES, StrategyContext, register_strategy
from wrappers.strategy_actions import StrategyActions

__all__ = [
    "DEFAULT_STRATEGIES",
    "ChatHistory",
    "FeatureObservation",
    "FeatureSpec",
    "RecordTrajectories",
    "StrategyActions",
    "StrategyContext",
    "load_trajectories",
    "make_strategy_env",
    "observation_features",
    "register_strategy",
]
