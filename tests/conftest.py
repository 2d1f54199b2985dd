"""Shared fixtures. The helpers they use live in ``tests/helpers.py``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import COLOUR_TASKS, ColourScorer, paint


@pytest.fixture
def colour_env():
    from genagent_env.env import GenAgentEnv

    def make(**kwargs: Any) -> GenAgentEnv:
        defaults: dict[str, Any] = {"suite": COLOUR_TASKS, "generators": {"paint": paint}, "scorer": ColourScorer()}
        return GenAgentEnv(**{**defaults, **kwargs})

    return make
