"""A random agent: the floor of the leaderboard and a fuzzer of the protocol."""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from typing import Any

import numpy as np

from agents.base import Agent, first_tool_name, tool_call

_WORDS = ("red", "blue", "green", "two", "three", "circle", "squares", "star", "left", "right", "a", "photo", "of")


class RandomAgent(Agent):
    """Writes random messages: about half well-formed tool calls or answers with random prompts,
    seeds and indices, the rest malformed (garbage text, broken JSON, unknown tools, missing
    judges, answers pointing nowhere). Seeded by ``reset(seed)``.
    """

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        rng = self.rng
        tool = first_tool_name(info)
        prompt = " ".join(rng.choice(_WORDS, size=int(rng.integers(1, 8))))
        judge = "<judge>It may or may not fit.</judge>" if rng.random() < 0.7 else ""
        n_images = len(info["images"])
        kind = int(rng.integers(8))
        if kind <= 2:
            return judge + tool_call(tool, prompt, int(rng.integers(0, 2**32)) if rng.random() < 0.5 else None)
        if kind <= 4:
            return judge + f"<answer>image_{int(rng.integers(0, n_images + 2))}</answer>"
        if kind == 5:
            return "".join(rng.choice(list(string.printable), size=int(rng.integers(0, 60))))
        if kind == 6:
            truncated = json.dumps({"name": tool, "arguments": {"prompt": prompt}})[:-3]
            return judge + "<tool_call>" + truncated + "</tool_call>"
        return judge + tool_call("no_such_tool", prompt)
