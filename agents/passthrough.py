"""The "base generator" row: the user's prompt goes to the tool unchanged, once, and is submitted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.base import Agent, first_tool_name, tool_call, user_prompt


class PassthroughAgent(Agent):
    """Sends the user's prompt to the first tool unchanged, then submits whatever came back.

    Its score is the generator's own score on the suite: the baseline every agent must beat.
    The tool's seed is left to the environment (drawn from ``env.np_random``).
    """

    name = "passthrough"

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        if not info["images"]:
            return tool_call(first_tool_name(info), user_prompt(info))
        return "<judge>Submitting the image as generated, without review.</judge><answer>done</answer>"
