"""The agent interface: anything that turns an observation into the next message."""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any


class Agent(ABC):
    """A policy for ``GenAgent-v0``: one message per step.

    ``reset(seed)`` is called at the start of each episode; ``act`` receives the observation and
    info of the latest step and returns the agent's message: ``[<judge>…</judge>] [<think>…</think>]``
    then one ``<tool_call>{"name": …, "arguments": {"prompt": …}}</tool_call>`` or
    ``<answer>done | K | image_K</answer>`` (the ``GenAgentEnv`` docstring has the whole protocol).

    An agent that can act for several episodes at once (an LLM batching its generation) also
    defines ``act_batch(observations, infos) -> list[str]``; rollouts use it when present.
    """

    name: str = "agent"

    def reset(self, seed: int | None = None) -> None:  # noqa: B027 - stateless agents need nothing
        """Start a new episode."""

    def spawn(self) -> Agent:
        """An agent like this one for another episode played at the same time (rollouts give each
        sub-environment its own). The default is a shallow copy: models, scorers and settings are
        shared, and :meth:`reset` must give the copy per-episode state of its own. Override it when
        :meth:`reset` changes shared state in place."""
        return copy.copy(self)

    @abstractmethod
    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        """The next message."""


def user_prompt(info: Mapping[str, Any]) -> str:
    """The user's request: the first user message of the chat (never truncated, unlike the text
    observation)."""
    for message in info["messages"]:
        if message["role"] == "user":
            content = message["content"]
            return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
    raise ValueError("info['messages'] has no user message")


def first_tool_name(info: Mapping[str, Any]) -> str:
    """The name of the first tool offered."""
    return str(info["tools"][0]["function"]["name"])


def tool_call(name: str, prompt: str, seed: int | None = None) -> str:
    """A well-formed ``<tool_call>`` block."""
    arguments: dict[str, Any] = {"prompt": prompt}
    if seed is not None:
        arguments["seed"] = int(seed)
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"
