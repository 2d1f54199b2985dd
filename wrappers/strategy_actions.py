"""``StrategyActions``: choose a named prompt strategy; the wrapper writes the protocol text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium import spaces

from wrappers.strategies import Strategy, StrategyPlayer


class StrategyActions(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Replaces ``GenAgent-v0``'s ``Text`` action with ``Discrete(n)``: action ``i`` picks the
    ``i``-th prompt strategy and the wrapper writes the whole message (``<judge>`` after a new
    image, ``<think>``, then a ``<tool_call>`` with the strategy's prompt or an ``<answer>``).

    ## Action Space

    ``Discrete(len(strategies))``, in the order of ``strategies`` (default
    :data:`wrappers.strategies.DEFAULT_STRATEGIES`: ``as_is``, ``clauses``, ``digits``, ``places``,
    ``focus``, ``resample``, ``submit``; ``self.strategy_names`` lists them). Strategies see only
    public information (:class:`wrappers.strategies.StrategyContext`: the user's request and its
    reading by the ShapesWorld reader, the episode's earlier moves). A generating strategy chosen
    when no tool calls are left submits the latest image instead, so every action is meaningful;
    ``submit`` before any image is a format violation, as in the env.

    ## Info

    Adds ``info["strategy"]`` (the name chosen this step) and ``info["strategy_message"]`` (the text
    sent to the env).

    ## Arguments

    - ``env``: a ``GenAgent-v0`` env (the ``Text`` action level).
    - ``strategies``: ``None`` for the built-in set, or a list of registered names and
      ``(name, fn)`` pairs, ``fn(context) -> prompt | None`` (``None`` submits).
    - ``judge_template``: the neutral judge after each image (``{image}``, ``{strategy}``).

    Example::

        >>> import gymnasium as gym, genagent_env
        >>> env = StrategyActions(gym.make("GenAgent-v0"))
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(env.strategy_names.index("clauses"))
        >>> info["strategy"]
        'clauses'
    """

    def __init__(
        self,
        env: gym.Env,
        strategies: Sequence[str | tuple[str, Strategy]] | None = None,
        judge_template: str = "image_{image} is noted; the next move follows the {strategy} strategy.",
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, strategies=strategies, judge_template=judge_template)
        gym.ActionWrapper.__init__(self, env)
        self.player = StrategyPlayer(strategies, judge_template=judge_template)
        self.strategy_names: list[str] = list(self.player.names)
        self.action_space = spaces.Discrete(len(self.strategy_names))
        self._info: Mapping[str, Any] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        self.player.reset()
        self._info = info
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        message = self.action(action)
        observation, reward, terminated, truncated, info = self.env.step(message)
        self._info = info
        info = dict(info)
        info["strategy"] = self.player.history[-1]["strategy"]
        info["strategy_message"] = message
        return observation, reward, terminated, truncated, info

    def action(self, action: Any) -> str:
        """The protocol message for strategy ``action`` in the current episode."""
        if self._info is None:
            raise RuntimeError("call reset() before step()")
        return self.player.message(int(action), self._info)
