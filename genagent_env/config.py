"""``EnvConfig``: everything an episode needs that does not change while it runs.

One configuration is built (suite loaded, tools and scorer built, system prompt written) and then
shared, read-only, by every episode that uses it: the one episode of a ``GenAgentEnv`` and the N
sub-environments of a ``GenAgentVectorEnv`` hold the same object, so nothing is built or loaded
twice and no episode can change another's settings.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from genagent_env import protocol
from genagent_env.checks import check_bool, check_int, is_int, is_real, short_repr
from genagent_env.rewards import RewardWeights
from genagent_env.scorers.base import PairwiseComparator, Scorer
from genagent_env.scorers.registry import make_comparator, make_scorer
from genagent_env.tasks.schema import normalize_task
from genagent_env.tasks.suites import resolve_suite_with_sources
from genagent_env.tools.base import Generator
from genagent_env.tools.cache import GenerationCache
from genagent_env.tools.registry import make_generator

_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: Bounds of the constructor arguments (see :meth:`EnvConfig.build`).
MAX_ROUNDS = 1_000
MAX_TURNS = 10_000
_WHY_TURN_BOUND = "an episode's chat must fit an agent's context, and info counters fit an int64 array"
MAX_IMAGE_SIDE = 4096
MIN_TEXT_LENGTH = 64
MAX_TEXT_LENGTH = 1 << 20
MAX_TOOL_TIMEOUT_S = 7 * 24 * 3600
#: The keys a reset's ``options`` may hold (exactly one of them, or none).
RESET_OPTIONS = ("prompt", "task", "task_index")


@dataclass(frozen=True, eq=False)
class EnvConfig:
    """The fixed settings and shared resources of GenAgent episodes (frozen: build a new one to change).

    Build it with :meth:`build`, which takes the ``GenAgentEnv`` arguments and checks them. The
    tools, scorer, comparator and cache are shared by every episode that uses this configuration;
    :meth:`close` releases those built here from names.
    """

    tasks: tuple[dict[str, Any], ...]
    tools: Mapping[str, Generator]
    scorer: Scorer
    comparator: PairwiseComparator | None
    max_rounds: int
    max_turns: int
    image_size: tuple[int, int]
    reward_weights: RewardWeights
    privileged: bool
    strict_format: bool
    max_text_length: int
    max_action_length: int
    tool_timeout_s: float | None
    generation_cache: GenerationCache | None
    schemas: Mapping[str, protocol.ArgumentValidator]  # each tool's argument schema, compiled once
    tool_specs_json: str
    system_prompt: str
    owned: tuple[Any, ...] = field(default=(), repr=False)  # built here from names, closed by close()

    @classmethod
    def build(
        cls,
        suite: str | Path | Sequence[Mapping[str, Any]] = "shapes-geneval",
        split: str = "test",
        generators: str | Generator | Callable[..., Any] | Mapping[str, Any] | Sequence[Any] = "shapes",
        scorer: str | Scorer = "shapes",
        comparator: PairwiseComparator | str | None = None,
        max_rounds: int = 2,
        max_turns: int | None = None,
        image_size: int | tuple[int, int] = 128,
        reward_weights: RewardWeights | dict[str, Any] | None = None,
        privileged: bool = False,
        strict_format: bool = False,
        max_text_length: int = 4096,
        max_action_length: int = 16384,
        tool_timeout_s: float | None = None,
        generation_cache: GenerationCache | bool | Mapping[str, Any] | None = False,
    ) -> EnvConfig:
        """Check the arguments (``ValueError`` or ``TypeError`` names the bad one and what is
        allowed), load the suite, build the tools and scorer, and write the system prompt. The
        arguments are ``GenAgentEnv``'s; the bounds are the ``MAX_*`` / ``MIN_*`` constants of this
        module."""
        max_rounds = check_int("max_rounds", max_rounds, 1, MAX_ROUNDS, _WHY_TURN_BOUND)
        if max_turns is None:
            max_turns = 2 * max_rounds + 2
        max_turns = check_int("max_turns", max_turns, 1, MAX_TURNS, _WHY_TURN_BOUND)
        sides = _image_sides(image_size)
        max_text_length = check_int(
            "max_text_length", max_text_length, MIN_TEXT_LENGTH, MAX_TEXT_LENGTH,
            "shorter cuts every message the env sends to a few words; longer cannot be sampled from the space",
        )
        max_action_length = check_int(
            "max_action_length", max_action_length, 1, MAX_TEXT_LENGTH,
            "the Text action space's max_length; longer messages are still accepted",
        )
        if tool_timeout_s is not None and (not is_real(tool_timeout_s) or not 0 < tool_timeout_s <= MAX_TOOL_TIMEOUT_S):
            raise ValueError(
                f"tool_timeout_s must be a number of seconds in (0, {MAX_TOOL_TIMEOUT_S}] (a week), or None to wait "
                f"without a deadline; got {short_repr(tool_timeout_s)}"
            )
        privileged = check_bool("privileged", privileged)
        strict_format = check_bool("strict_format", strict_format)
        if not isinstance(split, str):
            raise ValueError(f"split must be a string such as 'test' or 'train', got {short_repr(split)}")
        weights = RewardWeights.from_any(reward_weights)
        cache = GenerationCache.from_any(generation_cache)

        sourced = resolve_suite_with_sources(suite, split)
        tasks = tuple(task for task, _ in sourced)
        owned: list[Any] = []
        try:
            tools = _build_tools(generators, owned)
            built_scorer = make_scorer(scorer)
            if isinstance(scorer, str):  # built here from a name, so closed here too
                owned.append(built_scorer)
            for task, source in sourced:
                try:
                    built_scorer.validate_task(task)
                except ValueError as error:
                    raise ValueError(
                        f"{source}: task {task.get('id')} ({task['prompt'][:60]!r}): {error}"
                    ) from None
            if isinstance(comparator, str) and comparator == scorer and isinstance(built_scorer, PairwiseComparator):
                built_comparator: PairwiseComparator | None = built_scorer  # one model serves both
            else:
                built_comparator = make_comparator(comparator)
                if isinstance(comparator, str) and callable(getattr(built_comparator, "close", None)):
                    owned.append(built_comparator)
        except BaseException:  # nothing built here may outlive a failed build
            for resource in owned:
                with contextlib.suppress(Exception):
                    resource.close()
            raise
        specs = protocol.tool_specs(tools)
        return cls(
            tasks=tasks,
            tools=MappingProxyType(tools),
            scorer=built_scorer,
            comparator=built_comparator,
            max_rounds=max_rounds,
            max_turns=max_turns,
            image_size=sides,
            reward_weights=weights,
            privileged=privileged,
            strict_format=strict_format,
            max_text_length=max_text_length,
            max_action_length=max_action_length,
            tool_timeout_s=tool_timeout_s,
            generation_cache=cache,
            schemas=MappingProxyType(protocol.compile_tool_schemas(tools)),
            tool_specs_json=json.dumps(specs),
            system_prompt=protocol.system_prompt(specs, max_rounds),
            owned=tuple(owned),
        )

    def tool_specs(self) -> list[dict[str, Any]]:
        """The tool specs as announced in the system prompt (a fresh copy)."""
        return list(json.loads(self.tool_specs_json))

    def check_reset_options(self, options: Any) -> None:
        """Raise ``ValueError`` if ``options`` is not a valid reset option dict (see :meth:`choose_task`)."""
        self._task_from_options(options, rng=None)

    def choose_task(self, options: Mapping[str, Any] | None, rng: np.random.Generator) -> dict[str, Any]:
        """The task a reset starts: ``{"task_index": i}`` from the suite, ``{"task": dict}`` in the
        GenEval++ schema, ``{"prompt": str}`` parsed into a checklist by the scorer, or, with no
        options, a task drawn with ``rng``. Always a fresh copy. A bad option raises ``ValueError``."""
        task = self._task_from_options(options or {}, rng)
        assert task is not None
        return task

    def _task_from_options(self, options: Any, rng: np.random.Generator | None) -> dict[str, Any] | None:
        """The task, or (with no ``rng``: only checking) ``None`` when the task would be drawn."""
        if not isinstance(options, Mapping):
            raise ValueError(f"options must be a dict, got {type(options).__name__}")
        unknown = set(options) - set(RESET_OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(map(str, unknown))}; use exactly one of {list(RESET_OPTIONS)}"
            )
        if len(options) > 1:
            raise ValueError(f"pass exactly one of {list(RESET_OPTIONS)}, got {sorted(options)}")
        if not options:
            return None if rng is None else copy.deepcopy(self.tasks[int(rng.integers(len(self.tasks)))])
        if "task_index" in options:
            index = options["task_index"]
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.tasks):
                raise ValueError(f"task_index must be an integer in [0, {len(self.tasks) - 1}], got {index!r}")
            return copy.deepcopy(self.tasks[int(index)])
        if "task" in options:
            task = normalize_task(options["task"])
            task.setdefault("id", "custom")
        else:
            prompt = options["prompt"]
            if not isinstance(prompt, str) or not prompt or prompt.isspace():  # no strip(): it copies a huge prompt
                raise ValueError("options['prompt'] must be a non-empty string")
            task = normalize_task({**self.scorer.parse_prompt(prompt), "prompt": prompt})
            task.setdefault("id", "prompt")
        self.scorer.validate_task(task)
        return task

    def close(self) -> None:
        """Close the tools and scorer that :meth:`build` made from names (not those passed in)."""
        for resource in self.owned:
            resource.close()


def _image_sides(image_size: Any) -> tuple[int, int]:
    """``image_size`` (an int, or ``(height, width)``) as two ints in ``[1, MAX_IMAGE_SIDE]``."""
    sides = (image_size, image_size) if is_int(image_size) else image_size
    if (
        not isinstance(sides, (tuple, list))
        or len(sides) != 2
        or not all(is_int(side) and 1 <= side <= MAX_IMAGE_SIDE for side in sides)
    ):
        raise ValueError(
            f"image_size must be an integer or (height, width), each side in [1, {MAX_IMAGE_SIDE}] pixels "
            f"(an observation holds height x width x 3 bytes per sub-environment), got {short_repr(image_size)}"
        )
    return int(sides[0]), int(sides[1])


def _build_tools(generators: Any, owned: list[Any]) -> dict[str, Generator]:
    """The tools by name; those built from registered names are added to ``owned``."""
    if isinstance(generators, Mapping):
        pairs: list[tuple[str | None, Any]] = [(str(name), spec) for name, spec in generators.items()]
    elif isinstance(generators, (list, tuple)):
        pairs = [(None, spec) for spec in generators]
    else:
        pairs = [(None, generators)]
    if not pairs:
        raise ValueError("at least one generator is needed")
    tools: dict[str, Generator] = {}
    for name, spec in pairs:
        tool = make_generator(spec, name=name)
        name = name or tool.name
        if not _TOOL_NAME.fullmatch(name):
            raise ValueError(f"tool name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if name in tools:
            raise ValueError(f"two tools are named {name!r}; pass a dict to name them")
        tools[name] = tool
        if isinstance(spec, str):
            owned.append(tool)
    return tools


__all__ = ["RESET_OPTIONS", "EnvConfig"]
