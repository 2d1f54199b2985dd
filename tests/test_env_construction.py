"""Building a GenAgentEnv checks its arguments at once, with a message that says what is wrong."""

from __future__ import annotations

import pytest

from genagent_env.env import GenAgentEnv
from tests.helpers import COLOUR_TASKS, ColourScorer, paint


def test_constructor_arguments_are_validated(colour_env):
    for bad in ({"reward_weights": {"format_penalty": -0.2}}, {"image_size": True}, {"image_size": "128"},
                {"image_size": (64,)}, {"max_rounds": 0}, {"render_mode": "human"}):
        with pytest.raises(ValueError):
            colour_env(**bad)


def test_an_unnamed_function_as_generators_asks_for_a_name():
    with pytest.raises(ValueError, match="generators="):
        GenAgentEnv(suite=COLOUR_TASKS, generators=lambda p, s: paint(p, s), scorer=ColourScorer())
