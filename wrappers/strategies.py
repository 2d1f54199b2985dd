"""Prompt strategies: named, public-information policies that turn the task text into the next move.

A *strategy* is a function ``(context: StrategyContext) -> str | None`` returning the prompt for the
next tool call, or ``None`` to stop and submit the latest image. It sees only what an agent sees:
the user's request (``context.task_text``), a checklist-like reading of that text made by the
ShapesWorld prompt reader (``context.task``, from :func:`genagent_env.shapes.reader.task_from_prompt`;
never the env's hidden checklist), and the history of earlier moves (``context.history``).

The built-in set (:data:`DEFAULT_STRATEGIES`, in this order, so ``Discrete`` action ``i`` is the
``i``-th):

=============  ===========================================================================
``as_is``      send the user's prompt unchanged (drops earlier rewrites)
``clauses``    rewrite it with one sentence per object group
``digits``     state every count in digits with "exactly" ("exactly 3 (three) stars")
``places``     spell placement out ("in the left half of the image", "clearly larger than ...")
``focus``      restate every requirement in "Make sure ..." sentences and ask for nothing else
``resample``   send the previous prompt again; the env draws a new seed
``submit``     stop and submit the latest image
=============  ===========================================================================

The rewriting strategies are *edits*: each adds its edit to the edits made in earlier rounds
(``clauses`` then ``digits`` gives a prompt with both), so with a budget of two tool calls the
best *sequence* depends on the task — counting tasks profit from ``digits`` and ``focus``, spatial
tasks from ``places``, crowded multi-colour tasks from ``clauses`` — and a learned policy can beat
any single fixed strategy. Extend the set with :func:`register_strategy` or pass your own list
``[(name, fn), ...]`` to :class:`wrappers.StrategyActions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genagent_env.tasks.prompts import explicit_prompt
from genagent_env.tasks.wording import (
    REGION_HALVES,
    RELATION_PHRASES,
    digits_and_word,
    item_noun,
    number_word,
    region_phrase,
    relation_phrase,
)

#: The rewriting edits a strategy may add to the running style.
EDITS = ("clauses", "digits", "places", "focus")


@dataclass
class StrategyContext:
    """What a strategy may look at: only public information.

    Attributes:
        task_text: The user's request, verbatim.
        task: A checklist-like reading of ``task_text`` (GenEval++ schema, tag ``custom``) by the
            ShapesWorld reader, or ``None`` when the text names no known shape. Never the hidden
            checklist.
        history: Earlier moves of this episode, oldest first: dicts with ``strategy`` (its name),
            ``prompt`` (sent, or ``None`` for a submit) and ``edits`` (the running style after it).
        round: Tool calls made so far.
        max_rounds: The most tool calls that produce images.
        n_images: Images made so far.
    """

    task_text: str
    task: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    round: int = 0
    max_rounds: int = 2
    n_images: int = 0

    @property
    def edits(self) -> frozenset[str]:
        """The rewriting edits made so far (the running style)."""
        for move in reversed(self.history):
            if move.get("edits") is not None:
                return frozenset(move["edits"])
        return frozenset()

    @property
    def last_prompt(self) -> str | None:
        """The latest prompt sent to a tool, if any."""
        for move in reversed(self.history):
            if move.get("prompt"):
                return str(move["prompt"])
        return None


#: A strategy: the next prompt, or ``None`` to submit.
Strategy = Callable[[StrategyContext], "str | None"]


def _count(n: int, digits: bool) -> str:
    """ "exactly 3 (three)" in the ``digits`` style, else "three" ("a" for one)."""
    if digits:
        return f"exactly {digits_and_word(n)}"
    return "a" if n == 1 else number_word(n)


def _group(item: Mapping[str, Any], include: Sequence[Mapping[str, Any]], edits: frozenset[str]) -> str:
    n = int(item.get("count", 1))
    places = "places" in edits
    size = ""
    if item.get("size"):
        size = {"larger": "large ", "smaller": "small "}.get(str(item["size"]), "")
    phrase = f"{_count(n, 'digits' in edits)} {size}{item_noun(item, n)}"
    if item.get("size") and places:
        phrase += f", clearly {item['size']} than all other objects"
    if item.get("region") in REGION_HALVES:
        phrase += " " + region_phrase(str(item["region"]), explicit=places)
    position = item.get("position")
    if position and 0 <= int(position[1]) < len(include) and position[0] in RELATION_PHRASES:
        other = include[int(position[1])]
        gap = ", with a clear gap" if places else ""
        phrase += f" {relation_phrase(position[0])} the {item_noun(other, 1)}{gap}"
    return phrase


def _join(parts: Sequence[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def compose_prompt(task: Mapping[str, Any], edits: frozenset[str] | set[str]) -> str:
    """Write a prompt for a checklist-like ``task`` in the style given by ``edits`` (see :data:`EDITS`).

    >>> task = {"include": [{"class": "star", "count": 3, "color": "red", "region": "left"}]}
    >>> compose_prompt(task, frozenset())
    'three red stars on the left.'
    >>> compose_prompt(task, frozenset({"digits", "places"}))
    'exactly 3 (three) red stars in the left half of the image.'
    """
    edits = frozenset(edits)
    include = list(task.get("include", []))
    groups = [_group(item, include, edits) for item in include]
    if "clauses" in edits:
        sentences = [g[0].upper() + g[1:] + "." for g in groups]
    else:
        sentences = [_join(groups) + "."] if groups else []
    for item in task.get("exclude", []) or []:
        sentences.append(f"No {item_noun(item, 2)}.")
    if "focus" in edits:
        restated = explicit_prompt(task).split(". ")
        sentences += ["Make sure: " + s.rstrip(".") + "." for s in restated if s and not s.startswith("Nothing")]
        sentences.append("Nothing else in the image.")
    if not sentences:
        return str(task.get("prompt", ""))
    return " ".join(sentences)


def edit_strategy(edit: str) -> Strategy:
    """A strategy that adds ``edit`` (one of :data:`EDITS`) to the running style and writes the
    prompt in that style; when the text could not be read, it re-sends the user's prompt."""
    if edit not in EDITS:
        raise ValueError(f"unknown edit {edit!r}; use one of {EDITS}")

    def strategy(context: StrategyContext) -> str | None:
        if context.task is None:
            return context.task_text
        return compose_prompt(context.task, context.edits | {edit})

    strategy.__name__ = edit
    strategy.edit = edit  # type: ignore[attr-defined]
    return strategy


def as_is(context: StrategyContext) -> str | None:
    """Send the user's prompt unchanged."""
    return context.task_text


def resample(context: StrategyContext) -> str | None:
    """Send the previous prompt again (the user's prompt before any); the env draws a new seed."""
    return context.last_prompt or context.task_text


def submit(context: StrategyContext) -> str | None:
    """Stop and submit the latest image."""
    return None


as_is.edit = None  # type: ignore[attr-defined]  # resets the running style

#: The built-in strategies, in action order.
DEFAULT_STRATEGIES: list[tuple[str, Strategy]] = [
    ("as_is", as_is),
    ("clauses", edit_strategy("clauses")),
    ("digits", edit_strategy("digits")),
    ("places", edit_strategy("places")),
    ("focus", edit_strategy("focus")),
    ("resample", resample),
    ("submit", submit),
]

_REGISTRY: dict[str, Strategy] = dict(DEFAULT_STRATEGIES)


def register_strategy(name: str, strategy: Strategy) -> None:
    """Make ``strategy`` available by ``name`` (for :func:`resolve_strategies`)."""
    if not callable(strategy):
        raise TypeError(f"a strategy must be callable, got {type(strategy).__name__}")
    _REGISTRY[name] = strategy


def resolve_strategies(spec: Sequence[str | tuple[str, Strategy]] | None) -> list[tuple[str, Strategy]]:
    """``None`` -> :data:`DEFAULT_STRATEGIES`; else each entry a registered name or ``(name, fn)``."""
    if spec is None:
        return list(DEFAULT_STRATEGIES)
    out: list[tuple[str, Strategy]] = []
    for entry in spec:
        if isinstance(entry, str):
            if entry not in _REGISTRY:
                raise ValueError(f"unknown strategy {entry!r}; registered: {sorted(_REGISTRY)}")
            out.append((entry, _REGISTRY[entry]))
        else:
            name, fn = entry
            if not callable(fn):
                raise TypeError(f"strategy {name!r} is not callable")
            out.append((str(name), fn))
    if not out:
        raise ValueError("at least one strategy is needed")
    names = [name for name, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy names must be unique, got {names}")
    return out


def read_task(task_text: str) -> dict[str, Any] | None:
    """The checklist-like reading of the public task text, or ``None`` when it names no known shape."""
    from genagent_env.shapes.reader import task_from_prompt

    try:
        return task_from_prompt(task_text)
    except ValueError:
        return None


class StrategyPlayer:
    """Turns strategy choices into protocol messages, keeping the episode's history.

    Used by :class:`wrappers.StrategyActions` and by the SB3 agent (:mod:`wrappers.sb3_agent`), so
    a policy acts the same way inside and outside the wrapper.

    Args:
        strategies: ``None`` (the built-in set), or names / ``(name, fn)`` pairs.
        judge_template: The neutral judge written after each new image; ``{image}`` and
            ``{strategy}`` are filled in.
    """

    def __init__(
        self,
        strategies: Sequence[str | tuple[str, Strategy]] | None = None,
        judge_template: str = "image_{image} is noted; the next move follows the {strategy} strategy.",
    ) -> None:
        self.strategies = resolve_strategies(strategies)
        self.names = [name for name, _ in self.strategies]
        self.judge_template = judge_template
        self.history: list[dict[str, Any]] = []
        self._task_text: str | None = None
        self._task: dict[str, Any] | None = None

    def reset(self) -> None:
        """Forget the episode."""
        self.history = []
        self._task_text = None
        self._task = None

    def context(self, info: Mapping[str, Any]) -> StrategyContext:
        """The :class:`StrategyContext` for the env's latest ``info``."""
        from agents.base import user_prompt

        text = user_prompt(info)
        if text != self._task_text:
            self._task_text, self._task = text, read_task(text)
        return StrategyContext(
            task_text=text,
            task=self._task,
            history=list(self.history),
            round=int(info.get("round", 0)),
            max_rounds=int(info.get("max_rounds", 1)),
            n_images=len(info.get("images", [])),
        )

    def message(self, action: int, info: Mapping[str, Any]) -> str:
        """The protocol message for strategy ``action`` given the env's latest ``info``.

        A generating strategy with no tool calls left submits the latest image instead."""
        from agents.base import first_tool_name, tool_call

        index = int(action)
        if not 0 <= index < len(self.strategies):
            raise ValueError(f"action {action!r} is not in [0, {len(self.strategies) - 1}]")
        name, strategy = self.strategies[index]
        context = self.context(info)
        prompt = strategy(context)
        if prompt is not None and context.round >= context.max_rounds and context.n_images > 0:
            prompt = None  # no rounds left: the only move that can work is to submit
        judge = ""
        if context.n_images > 0:
            judge = "<judge>" + self.judge_template.format(image=context.n_images, strategy=name) + "</judge>"
        edit = getattr(strategy, "edit", "keep")
        edits = context.edits if edit == "keep" else (frozenset() if edit is None else context.edits | {edit})
        if prompt is None:
            self.history.append({"strategy": name, "prompt": None, "edits": sorted(context.edits)})
            return judge + f"<think>Strategy {name}: submit the latest image.</think><answer>done</answer>"
        prompt = prompt.strip() or context.task_text
        self.history.append({"strategy": name, "prompt": prompt, "edits": sorted(edits)})
        return judge + f"<think>Strategy {name}.</think>" + tool_call(first_tool_name(info), prompt)
