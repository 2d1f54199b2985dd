"""Every bad constructor value fails at ``gym.make`` (and in the vector env) with ``ValueError`` or
``TypeError`` naming the argument; unknown registered names raise an error that is both a
``ValueError`` and a ``KeyError``, with a readable message and a "did you mean" hint."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

import genagent_env  # noqa: F401  (registers the envs)
from genagent_env.checks import short_repr
from genagent_env.registry import UnknownNameError
from genagent_env.scorers.base import PairwiseComparator
from genagent_env.scorers.registry import register_scorer
from genagent_env.tools.base import call_with_timeout
from genagent_env.vector import GenAgentVectorEnv
from tests.helpers import COLOUR_TASKS, ColourScorer, paint

BASE: dict[str, Any] = {"suite": COLOUR_TASKS, "generators": {"paint": paint}, "scorer": ColourScorer()}


def make(**kwargs: Any) -> Any:
    return gym.make("genagent_env:GenAgent-v0", **{**BASE, **kwargs})


#: (keyword arguments, the exception type, what the message must say). The first word of the
#: pattern is the argument's name.
BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"privileged": "no"}, ValueError, r"privileged must be True or False, got 'no'"),
    ({"privileged": 1}, ValueError, r"privileged must be True or False"),
    ({"privileged": None}, ValueError, r"privileged must be True or False"),
    ({"strict_format": "yes"}, ValueError, r"strict_format must be True or False"),
    ({"reward_weights": {"continuous_outcome": "no"}}, ValueError, r"continuous_outcome must be True or False"),
    ({"reward_weights": {"outcome": float("inf")}}, ValueError, r"reward_weights.outcome must be a number in \[0"),
    ({"reward_weights": {"reflection": float("nan")}}, ValueError, r"reward_weights.reflection must be a number"),
    ({"reward_weights": {"format_penalty": -0.2}}, ValueError, r"reward_weights.format_penalty must be a number"),
    ({"reward_weights": {"outcome": 10**5000}}, ValueError, r"reward_weights.outcome .* got <int object>"),
    ({"reward_weights": {"outcome": "0.7"}}, ValueError, r"reward_weights.outcome must be a number"),
    ({"reward_weights": {"outcom": 0.7}}, ValueError, r"unknown reward weight\(s\) \['outcom'\]"),
    ({"reward_weights": [0.7, 0.3]}, TypeError, r"reward_weights must be a RewardWeights or a dict"),
    ({"tool_timeout_s": float("inf")}, ValueError, r"tool_timeout_s must be a number of seconds in \(0, 604800\]"),
    ({"tool_timeout_s": 1e10}, ValueError, r"tool_timeout_s must be"),
    ({"tool_timeout_s": float("nan")}, ValueError, r"tool_timeout_s must be"),
    ({"tool_timeout_s": 0}, ValueError, r"tool_timeout_s must be"),
    ({"tool_timeout_s": "5"}, ValueError, r"tool_timeout_s must be"),
    ({"tool_timeout_s": True}, ValueError, r"tool_timeout_s must be"),
    ({"comparator": "colour-no-compare"}, ValueError, r"comparator 'colour-no-compare' names a scorer that cannot"),
    ({"comparator": "clpi"}, UnknownNameError, r"unknown scorer 'clpi'.*Did you mean 'clip'\?"),
    ({"comparator": object()}, TypeError, r"comparator must be None, a PairwiseComparator or the name"),
    ({"comparator": ColourScorer()}, TypeError, r"comparator must be None, a PairwiseComparator"),
    ({"max_text_length": 0}, ValueError, r"max_text_length must be an integer in \[64, 1048576\] \(shorter cuts"),
    ({"max_text_length": 63}, ValueError, r"max_text_length must be an integer in \[64"),
    ({"max_text_length": 10**9}, ValueError, r"max_text_length must be an integer in \[64"),
    ({"max_text_length": 4096.0}, ValueError, r"max_text_length must be an integer"),
    ({"max_action_length": 0}, ValueError, r"max_action_length must be an integer in \[1"),
    ({"image_size": 100_000}, ValueError, r"image_size must be an integer or \(height, width\), each side in \[1,"),
    ({"image_size": (64, 5000)}, ValueError, r"image_size must be"),
    ({"image_size": 128.0}, ValueError, r"image_size must be"),
    ({"image_size": "128"}, ValueError, r"image_size must be"),
    ({"image_size": (0, 64)}, ValueError, r"image_size must be"),
    ({"max_rounds": 10**6}, ValueError, r"max_rounds must be an integer in \[1, 1000\]"),
    ({"max_rounds": 2**63}, ValueError, r"max_rounds must be an integer in \[1, 1000\]"),
    ({"max_rounds": 0}, ValueError, r"max_rounds must be an integer in \[1, 1000\]"),
    ({"max_turns": 10**9}, ValueError, r"max_turns must be an integer in \[1, 10000\]"),
    ({"max_turns": 2.0}, ValueError, r"max_turns must be an integer"),
    ({"generation_cache": "yes"}, TypeError, r"generation_cache must be a bool, a dict"),
    ({"generation_cache": 1}, TypeError, r"generation_cache must be a bool, a dict"),
    ({"generation_cache": {"max_entrys": 3}}, ValueError, r"generation_cache: unknown argument\(s\) .max_entrys."),
    ({"generation_cache": {"max_entries": -1}}, ValueError, r"generation_cache: max_entries must be"),
    ({"generation_cache": {"max_bytes": "1GB"}}, ValueError, r"generation_cache: max_bytes must be"),
    ({"generation_cache": {"directory": 5}}, TypeError, r"generation_cache: directory must be a path"),
    ({"split": 3}, ValueError, r"split must be a string"),
    ({"suite": 5}, ValueError, r"suite must be a registered suite name, a path to a task file, or a list"),
    ({"suite": COLOUR_TASKS[0]}, ValueError, r"suite must be .* \(wrap one task in a list\)"),
    ({"suite": [COLOUR_TASKS[0], {"prompt": ""}]}, ValueError, r"suite\[1\]: task.prompt must be a non-empty string"),
    ({"generators": 5}, TypeError, r"a generator must be a registered name"),
    ({"scorer": 5}, TypeError, r"a scorer must be a registered name or a Scorer"),
]


class NoCompare(ColourScorer):
    """A registered scorer that cannot compare pairs."""


class ColourJudge(ColourScorer, PairwiseComparator):
    """A registered scorer that also compares pairs, counting its calls."""

    compared = 0

    def compare(self, tasks: Sequence[Mapping[str, Any]], first: Sequence[Image.Image],
                second: Sequence[Image.Image]) -> list[int]:
        ColourJudge.compared += len(first)
        return [0] * len(first)


register_scorer("colour-no-compare", NoCompare, overwrite=True)
register_scorer("colour-judge", ColourJudge, overwrite=True)


def case_id(kwargs: dict[str, Any]) -> str:
    return re.sub(r"\W+", "-", short_repr(kwargs, 60))


@pytest.mark.parametrize("kwargs, error, message", BAD, ids=[case_id(b[0]) for b in BAD])
def test_a_bad_value_fails_at_gym_make_naming_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        make(**kwargs)


@pytest.mark.parametrize("kwargs, error, message", BAD[::4], ids=[case_id(b[0]) for b in BAD[::4]])
def test_the_vector_env_checks_the_same_way(kwargs, error, message):
    with pytest.raises(error, match=message):
        GenAgentVectorEnv(2, **{**BASE, **kwargs})


def test_good_values_at_the_bounds_are_accepted():
    env = make(privileged=np.bool_(False), strict_format=True, max_text_length=64, max_action_length=1,
               image_size=(4096, 1), max_rounds=np.int64(1000), max_turns=10_000, tool_timeout_s=604800,
               reward_weights={"outcome": np.float32(1), "continuous_outcome": np.bool_(True)},
               generation_cache={"max_entries": 2})
    config = env.unwrapped.config
    assert config.privileged is False and config.max_rounds == 1000 and type(config.max_rounds) is int
    assert config.reward_weights.continuous_outcome is True and config.image_size == (4096, 1)
    env.close()


def test_privileged_false_never_shows_the_checklist():
    env = make(privileged=False)
    _, info = env.reset(seed=0)
    assert "task" not in info
    env.close()


def test_a_timeout_beyond_what_threads_can_wait_still_works():
    # threading's join() raises OverflowError past TIMEOUT_MAX; a batch multiplies the per-request deadline.
    assert call_with_timeout(lambda: 7, 1e12) == 7
    assert call_with_timeout(lambda: 7, float("inf")) == 7


def test_a_comparator_named_by_a_registered_scorer_is_built_and_used():
    env = make(comparator="colour-judge", max_rounds=2)
    assert isinstance(env.unwrapped.comparator, ColourJudge)
    env.reset(seed=0, options={"task_index": 0})
    before = ColourJudge.compared
    for seed in (1, 2):
        env.step(f'<judge>hm</judge><tool_call>{{"name": "paint", "arguments": {{"prompt": "red", "seed": {seed}}}}}'
                 "</tool_call>")
    *_, terminated, _, info = env.step("<judge>good</judge><answer>image_2</answer>")
    assert terminated and ColourJudge.compared == before + 1 and "reward_components" in info
    env.close()


def test_the_same_name_for_scorer_and_comparator_builds_one_object():
    env = make(scorer="colour-judge", comparator="colour-judge", suite=COLOUR_TASKS)
    assert env.unwrapped.comparator is env.unwrapped.scorer
    env.close()


@pytest.mark.parametrize("kwargs, hint", [
    ({"generators": "shapes-strnog"}, "Did you mean 'shapes-strong'"),
    ({"scorer": "shapez", "suite": "shapes-geneval"}, "Did you mean 'shapes'"),
    ({"suite": "shapes-genevel"}, "Did you mean 'shapes-geneval'"),
])
def test_unknown_registered_names_are_value_errors_and_key_errors(kwargs, hint):
    for error_type in (ValueError, KeyError, UnknownNameError):
        with pytest.raises(error_type) as caught:
            make(**kwargs)
    text = str(caught.value)
    assert hint in text and not text.startswith(('"', "'")), text  # KeyError's str() would quote it


def test_unknown_agent_names_are_value_errors_and_key_errors():
    from agents import make_agent

    with pytest.raises(UnknownNameError) as caught:
        make_agent("scriptd")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, KeyError)
    assert str(caught.value).startswith("unknown agent 'scriptd'") and "Did you mean 'scripted'" in str(caught.value)
