"""A saved Stable-Baselines3 policy as an :class:`agents.Agent` (``sb3:model.zip`` in the benchmark).

The policy was trained on ``FeatureObservation(StrategyActions(env))``; the agent acts on the plain
text env by rebuilding the same features from the ``(observation, info)`` it is given
(:func:`wrappers.feature_observation.observation_features`) and turning the chosen strategy into
the protocol message with the same :class:`wrappers.strategies.StrategyPlayer` the wrapper uses.
Importing this module imports SB3 only when a model is loaded.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents.base import Agent
from wrappers.feature_observation import FeatureSpec, observation_features
from wrappers.strategies import Strategy, StrategyPlayer


class SB3Agent(Agent):
    """Acts with an SB3 model through the strategy and feature wrappers' logic.

    Args:
        model: A loaded SB3 model (anything with ``predict(observation, deterministic=...)``) whose
            observation space is :meth:`FeatureSpec.space` and action space ``Discrete(len(strategies))``.
        strategies: The strategy set the model was trained with (``None``: the built-in set).
        deterministic: Take the most likely action (True) or sample.
    """

    name = "sb3"

    def __init__(
        self,
        model: Any,
        strategies: Sequence[str | tuple[str, Strategy]] | None = None,
        deterministic: bool = True,
    ) -> None:
        self.model = model
        self.player = StrategyPlayer(strategies)
        self.deterministic = deterministic
        space = model.observation_space
        image, words = space["image"].shape, space["task_words"].shape
        side = image[1] if image[0] in (1, 3) and image[-1] not in (1, 3) else image[0]  # SB3 saves it channel-first
        self.spec = FeatureSpec(image_size=int(side), text_bins=int(words[0]))
        n_actions = int(getattr(model.action_space, "n", len(self.player.names)))
        if n_actions != len(self.player.names):
            raise ValueError(
                f"the model has {n_actions} actions but {len(self.player.names)} strategies were given"
            )

    def reset(self, seed: int | None = None) -> None:
        self.player.reset()

    def spawn(self) -> SB3Agent:
        """A copy sharing the model, with its own strategy player (whose state ``reset`` changes in place)."""
        clone = copy.copy(self)
        clone.player = copy.deepcopy(self.player)
        return clone

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        features = observation_features(observation, info, self.spec)
        action, _ = self.model.predict(features, deterministic=self.deterministic)
        return self.player.message(int(action), info)


def load_sb3_agent(
    path: str | Path, strategies: Sequence[str | tuple[str, Strategy]] | None = None, algorithm: str | None = None
) -> SB3Agent:
    """Load a saved SB3 model (``model.zip``) as an agent. The algorithm is found from the file
    (PPO, A2C, DQN tried in turn) unless ``algorithm`` names it."""
    import stable_baselines3

    path = Path(path)
    if not path.exists() and not path.with_suffix(".zip").exists():
        raise FileNotFoundError(f"no SB3 model at {path}")
    names = [algorithm] if algorithm else ["PPO", "A2C", "DQN"]
    errors = []
    for name in names:
        cls = getattr(stable_baselines3, name)
        try:
            model = cls.load(str(path), device="cpu")
        except Exception as error:  # the wrong algorithm's load fails: try the next
            errors.append(f"{name}: {type(error).__name__}: {error}")
            continue
        agent = SB3Agent(model, strategies=strategies)
        agent.name = f"sb3:{path.name}"
        return agent
    raise ValueError(f"could not load {path} as an SB3 model ({'; '.join(errors)})")
