"""Combine scorers: a weighted blend of several, or a pointwise scorer paired with a pairwise judge.

:class:`WeightedScorer` blends scorers (say an exact checklist verifier and a VLM judge)::

    blend = WeightedScorer([(ShapesVerifier(), 0.7), (VLMJudgeScorer(model, processor), 0.3)],
                           pass_rule="weighted", threshold=0.8)

:class:`ScorerWithComparator` keeps pointwise and pairwise judging apart — the outcome from one
scorer, reflection preference from another — in one object. :class:`~genagent_env.env.GenAgentEnv`
takes the two separately, so pass the same object twice::

    judged = ScorerWithComparator(ShapesVerifier(), VLMJudgeScorer(model, processor))
    env = GenAgentEnv(scorer=judged, comparator=judged)   # or comparator=judged.comparator
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from genagent_env.scorers.base import PairwiseComparator, Score, Scorer

if TYPE_CHECKING:
    from PIL.Image import Image

PassRule = Literal["all", "weighted"]


def _unique_names(scorers: Sequence[Scorer]) -> list[str]:
    names: list[str] = []
    for scorer in scorers:
        base = str(getattr(scorer, "name", type(scorer).__name__))
        name, n = base, 2
        while name in names:
            name, n = f"{base}#{n}", n + 1
        names.append(name)
    return names


class WeightedScorer(Scorer):
    """The weighted mean of several scorers' scores.

    Args:
        parts: ``[(scorer, weight), ...]`` or ``{name: (scorer, weight)}``; weights are positive and
            need not sum to 1 (they are normalised).
        pass_rule: ``"all"`` — passed when every part passes; ``"weighted"`` — passed when the
            weighted score reaches ``threshold``.
        threshold: The pass mark of the weighted score for ``pass_rule="weighted"``.

    ``details`` holds ``parts`` (per part, by name: ``passed``, ``score``, ``weight``, ``details``)
    and ``failed`` (every part's failure messages, prefixed with the part's name). A bare prompt
    is parsed by the first part; a task must be valid for every part.
    """

    name = "weighted"

    def __init__(
        self,
        parts: Sequence[tuple[Scorer, float]] | Mapping[str, tuple[Scorer, float]],
        *,
        pass_rule: PassRule = "all",
        threshold: float = 0.5,
    ) -> None:
        pairs = list(parts.values()) if isinstance(parts, Mapping) else list(parts)
        if not pairs:
            raise ValueError("WeightedScorer needs at least one (scorer, weight) part")
        for i, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(f"part {i} must be a (scorer, weight) pair, got {pair!r}")
            scorer, weight = pair
            if not isinstance(scorer, Scorer):
                raise TypeError(f"part {i}: {scorer!r} is not a Scorer")
            numeric = isinstance(weight, (int, float)) and not isinstance(weight, bool)
            if not numeric or not math.isfinite(weight) or weight <= 0:
                raise ValueError(f"part {i}: the weight must be a positive finite number, got {weight!r}")
        if pass_rule not in ("all", "weighted"):
            raise ValueError(f"pass_rule must be 'all' or 'weighted', got {pass_rule!r}")
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
        total = float(sum(weight for _, weight in pairs))
        names = [str(name) for name in parts] if isinstance(parts, Mapping) else _unique_names([s for s, _ in pairs])
        self.names = names
        self.scorers = [scorer for scorer, _ in pairs]
        self.weights = [float(weight) / total for _, weight in pairs]
        self.pass_rule: PassRule = pass_rule
        self.threshold = float(threshold)

    def score(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        per_part = [scorer.score(images, tasks) for scorer in self.scorers]
        out = []
        for i in range(len(images)):
            scores = [part[i] for part in per_part]
            value = min(1.0, max(0.0, sum(w * s.score for w, s in zip(self.weights, scores))))
            if self.pass_rule == "all":
                passed = all(s.passed for s in scores)
            else:
                passed = value >= self.threshold - 1e-12
            failed = [
                f"{name}: {message}"
                for name, s in zip(self.names, scores)
                for message in (s.details.get("failed") or ([] if s.passed else ["did not pass"]))
            ]
            parts = {
                name: {"passed": bool(s.passed), "score": float(s.score), "weight": w, "details": dict(s.details)}
                for name, w, s in zip(self.names, self.weights, scores)
            }
            out.append(Score(passed=passed, score=value, details={"parts": parts, "failed": failed}))
        return out

    def parse_prompt(self, prompt: str) -> dict[str, Any]:
        return self.scorers[0].parse_prompt(prompt)

    def validate_task(self, task: Mapping[str, Any]) -> None:
        for name, scorer in zip(self.names, self.scorers):
            try:
                scorer.validate_task(task)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None

    def close(self) -> None:
        closed: set[int] = set()
        for scorer in self.scorers:
            if id(scorer) not in closed:
                closed.add(id(scorer))
                scorer.close()


class ScorerWithComparator(Scorer, PairwiseComparator):
    """A pointwise scorer and a separate pairwise comparator as one object.

    ``score``, ``parse_prompt`` and ``validate_task`` go to ``pointwise``; ``compare`` goes to
    ``comparator``. Pass it as both ``scorer=`` and ``comparator=`` to ``GenAgentEnv``.
    """

    def __init__(self, pointwise: Scorer, comparator: PairwiseComparator) -> None:
        if not isinstance(pointwise, Scorer):
            raise TypeError(f"pointwise must be a Scorer, got {pointwise!r}")
        if not isinstance(comparator, PairwiseComparator):
            raise TypeError(f"comparator must be a PairwiseComparator, got {comparator!r}")
        self.pointwise = pointwise
        self.comparator = comparator
        self.name = str(getattr(pointwise, "name", "scorer"))

    def score(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        return self.pointwise.score(images, tasks)

    def compare(
        self, tasks: Sequence[Mapping[str, Any]], first: Sequence[Image], second: Sequence[Image]
    ) -> list[int]:
        return self.comparator.compare(tasks, first, second)

    def parse_prompt(self, prompt: str) -> dict[str, Any]:
        return self.pointwise.parse_prompt(prompt)

    def validate_task(self, task: Mapping[str, Any]) -> None:
        self.pointwise.validate_task(task)

    def close(self) -> None:
        self.pointwise.close()
        if self.comparator is not self.pointwise and isinstance(self.comparator, Scorer):
            self.comparator.close()
