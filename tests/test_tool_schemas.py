"""A tool's JSON schema is shown to the agent, but the env's own argument rules hold whatever it says:
the prompt is required and not blank, and a seed is an integer in ``[0, 2**32 - 1]``."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from PIL import Image

from genagent_env.env import GenAgentEnv
from genagent_env.tools.base import GenerationRequest, Generator
from tests.helpers import COLOUR_TASKS, ColourScorer


class LooseSchema(Generator):
    """A tool whose schema forgets that the prompt is required and seeds have a range."""

    name = "loose"

    def parameters(self) -> dict:
        return {"type": "object", "properties": {"prompt": {"type": "string"}, "seed": {"type": "integer"}}}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        return [Image.new("RGB", (16, 16), (220, 30, 30)) for _ in requests]


@pytest.mark.parametrize("arguments, fragment", [({}, "'prompt' is required"), ({"prompt": "  "}, "must not be empty"),
                                                 ({"prompt": "red", "seed": -5}, "at least 0"),
                                                 ({"prompt": "red", "seed": 2**40}, "at most 4294967295")])
def test_prompt_and_seed_rules_hold_whatever_the_tool_schema_says(arguments, fragment):
    env = GenAgentEnv(suite=COLOUR_TASKS, generators=LooseSchema(), scorer=ColourScorer())
    env.reset(seed=0)
    call = json.dumps({"name": "loose", "arguments": arguments})
    obs, _, _, _, info = env.step(f"<tool_call>{call}</tool_call>")
    assert info["violations"] == 1 and info["images"] == [] and fragment in obs["text"]
