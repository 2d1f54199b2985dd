"""``ChatHistory``: the chat so far as text in the observation, under a size cap (for LLM agents)."""

from __future__ import annotations

import re
from typing import Any, SupportsFloat

import gymnasium as gym
from gymnasium import spaces

from genagent_env.env import TEXT_CHARSET

_OUTSIDE = re.compile("[^" + re.escape(TEXT_CHARSET) + "]")
_CUT = "...[earlier turns cut]...\n"


class ChatHistory(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Adds the conversation so far (``info["messages"]`` as a plain-text transcript) to the
    observation as ``history``, so a text agent that only reads observations sees the whole chat.

    ## Observation Space

    The env's ``Dict`` plus ``history=Text(max_chars)``: the user's request, then the latest turns
    (``[assistant] ...``, ``[tool] <image> ...``, ``[user] ...``) that fit in ``max_chars``
    characters; older turns are cut with a marker. The system prompt is left out unless
    ``include_system=True``. Characters outside printable ASCII become ``?``.

    ## Arguments

    - ``env``: a ``GenAgent-v0`` env (text level).
    - ``max_chars``: the cap on ``history`` (8192).
    - ``include_system``: keep the system prompt (protocol and tool schemas) at the top (False).
    """

    def __init__(self, env: gym.Env, max_chars: int = 8192, include_system: bool = False) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, max_chars=max_chars, include_system=include_system)
        gym.ObservationWrapper.__init__(self, env)
        if max_chars < 64:
            raise ValueError(f"max_chars must be at least 64, got {max_chars}")
        self.max_chars = max_chars
        self.include_system = include_system
        base = env.observation_space
        if not isinstance(base, spaces.Dict):
            raise TypeError(f"ChatHistory needs a Dict observation space, got {base}")
        self.observation_space = spaces.Dict(
            {**base.spaces, "history": spaces.Text(max_length=max_chars, min_length=0, charset=TEXT_CHARSET)}
        )
        self._messages: list[dict[str, Any]] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._messages = info.get("messages", [])
        return self.observation(observation), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._messages = info.get("messages", [])
        return self.observation(observation), reward, terminated, truncated, info

    def history_text(self, messages: list[dict[str, Any]]) -> str:
        """The capped transcript of ``messages``."""
        from genagent_env.render import message_text

        blocks = [
            _OUTSIDE.sub("?", f"[{m['role']}] {message_text(m)}\n")
            for m in messages
            if self.include_system or m.get("role") != "system"
        ]
        if not blocks:
            return ""
        head, tail = blocks[0], blocks[1:]
        budget = self.max_chars - len(head)
        kept: list[str] = []
        for block in reversed(tail):
            if len(block) > budget - len(_CUT):
                break
            kept.insert(0, block)
            budget -= len(block)
        text = head + ("" if len(kept) == len(tail) else _CUT) + "".join(kept)
        return text[: self.max_chars]

    def observation(self, observation: Any) -> dict[str, Any]:
        return {**observation, "history": self.history_text(self._messages)}
