"""The scorer interfaces: pointwise (does this image satisfy the task?) and pairwise (which is better?).

Both are batch-first. A pointwise :class:`Scorer` returns one :class:`Score` per (image, task) pair;
a :class:`PairwiseComparator` says, per pair, whether the second image is better, worse, or tied.
The environment uses the first for the outcome reward and the second for reflection accuracy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True)
class Score:
    """How well one image satisfies one task.

    Attributes:
        passed: Whether the image satisfies the whole task (the benchmark's pass/fail).
        score: A graded value in [0, 1]; for checklist scorers, the fraction of checks passed.
        details: What was checked and why it failed, e.g. ``{"checks": [...], "failed": [...]}``.
    """

    passed: bool
    score: float
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must lie in [0, 1], got {self.score}")

    def to_dict(self) -> dict[str, Any]:
        return {"passed": bool(self.passed), "score": float(self.score), "details": dict(self.details)}


class Scorer(ABC):
    """Pointwise image-quality scorer."""

    name: str = "scorer"

    @abstractmethod
    def score(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        """Score ``images[i]`` against ``tasks[i]`` for every i."""

    def parse_prompt(self, prompt: str) -> dict[str, Any]:
        """Turn a bare prompt into a task dict this scorer can check.

        The default keeps the prompt alone (scorers that judge the prompt text, such as CLIP or a VLM
        judge, need nothing more). Checklist scorers override this and raise ``ValueError`` for a
        prompt they cannot check.
        """
        return {"tag": "prompt", "include": [], "prompt": prompt}

    def validate_task(self, task: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` if this scorer cannot check ``task`` (say, a class it does not know).

        The environment calls it for every task of its suite and every task passed to ``reset``,
        so that a task that could never pass is a clear error up front, not a silent zero.
        """

    def close(self) -> None:
        """Release held models. Safe to call twice."""


class PairwiseComparator(ABC):
    """Pairwise preference between two images for the same task."""

    @abstractmethod
    def compare(
        self, tasks: Sequence[Mapping[str, Any]], first: Sequence[Image], second: Sequence[Image]
    ) -> list[int]:
        """Per pair: ``1`` if ``second[i]`` is strictly better than ``first[i]``, ``-1`` if strictly
        worse, ``0`` for a tie."""


def compare_scores(first: Score, second: Score) -> int:
    """Order two scores by (passed, score): 1 when ``second`` is strictly better, -1 when worse, 0 on a tie."""
    key_first = (bool(first.passed), float(first.score))
    key_second = (bool(second.passed), float(second.score))
    return (key_second > key_first) - (key_second < key_first)


class ScoreComparator(PairwiseComparator):
    """Derives a pairwise preference from a pointwise scorer: the image that passes, or else the
    one with the higher score, is better. The environment applies the same rule to scores it has
    already computed, so this costs no extra scorer calls there."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def compare(
        self, tasks: Sequence[Mapping[str, Any]], first: Sequence[Image], second: Sequence[Image]
    ) -> list[int]:
        scores = self.scorer.score([*first, *second], [*tasks, *tasks])
        n = len(first)
        return [compare_scores(scores[i], scores[n + i]) for i in range(n)]
