"""A saved Stable-Baselines3 policy as an :class:`agents.Agent` (``sb3:model.zip`` in the benchmark).

The policy was trained on ``FeatureObservation(StrategyActions(env))``; the agent acts on the plain
text env by rebuilding the same features from the ``(observation, info)`` it is given
(:func:`wrappers.feature_observation.observation_features`) and turning the chosen strategy into
the protocol message with the same :class:`wrappers.strategies.StrategyPlayer` the wrapper uses.
Importing this module imports SB3 only when a model is loaded (a missing stable-baselines3 is a
``ModuleNotFoundError`` naming the ``sb3`` extra).

**Security:** a Stable-Baselines3 ``.zip`` holds pickled Python objects, and loading one runs
whatever code they name: :func:`load_sb3_agent` (and ``--agents sb3:model.zip`` in the benchmark)
must only be given files you trust. It says so on stderr each time it loads one.
"""

from __future__ import annotations

import copy
import sys
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
    (PPO, A2C, DQN tried in turn) unless ``algorithm`` names it.

    **Only load files you trust:** SB3's zip format stores pickled objects, and unpickling runs the
    code they name; a one-line warning saying so goes to stderr. Raises ``ModuleNotFoundError``
    with the install command when stable-baselines3 (the ``sb3`` extra) is missing.
    """
    from genagent_env.extras import needs

    with needs("sb3", "loading an SB3 policy"):
        import stable_baselines3

    path = Path(path)
    if not path.exists() and not path.with_suffix(".zip").exists():
        raise FileNotFoundError(f"no SB3 model at {path}")
    print(f"sb3:{path}: loading a Stable-Baselines3 zip runs pickled code; only load files you trust",
          file=sys.stderr)
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
