"""The episode reward, paid once when the episode ends: pointwise outcome + pairwise reflection
accuracy − format penalty.

Defaults follow the GenAgent paper: ``0.7 × pass(final image) + 0.3 × reflection accuracy − 0.2``
once if any format violation happened.

A *decision* is made on the latest image I_k each time an accepted turn answers or calls a tool
after I_k was shown:

- it answered → correct iff the image it submitted passes;
- it called the tool again, giving I_{k+1} → correct iff I_k does not pass **and** the pairwise
  comparator strictly prefers I_{k+1} to I_k (a tie is not a preference);
- the episode was truncated with I_k undecided → incorrect.

Reflection accuracy is the mean over decisions (0 when there were none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from genagent_env.scorers.base import Score


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the three reward components (paper defaults).

    Attributes:
        outcome: Paid when the final image passes (or times its score, with ``continuous_outcome``).
        reflection: Paid times the reflection accuracy.
        format_penalty: Subtracted once if any turn broke the protocol.
        continuous_outcome: Pay ``outcome × score`` instead of ``outcome × passed``.
    """

    outcome: float = 0.7
    reflection: float = 0.3
    format_penalty: float = 0.2
    continuous_outcome: bool = False

    @classmethod
    def from_any(cls, value: RewardWeights | dict[str, Any] | None) -> RewardWeights:
        if value is None:
            return cls()
        if isinstance(value, RewardWeights):
            return value
        if isinstance(value, dict):
            unknown = set(value) - set(asdict(cls()))
            if unknown:
                raise ValueError(f"unknown reward weight(s) {sorted(unknown)}; known: {sorted(asdict(cls()))}")
            weights = cls(**value)
            for name in ("outcome", "reflection", "format_penalty"):
                amount = getattr(weights, name)
                if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not amount >= 0:
                    raise ValueError(
                        f"reward weight {name} must be a number >= 0 (the penalty is subtracted), got {amount!r}"
                    )
            return weights
        raise TypeError(f"reward_weights must be a RewardWeights or a dict, got {type(value).__name__}")


@dataclass(frozen=True)
class Decision:
    """One reflection decision on image ``image`` (1-based).

    ``kind`` is ``"answer"`` (submitted ``submitted``), ``"retry"`` (called the tool, which produced
    image ``image + 1``) or ``"undecided"`` (the episode was truncated first).
    """

    image: int
    kind: Literal["answer", "retry", "undecided"]
    submitted: int | None = None


def decision_correct(decision: Decision, scores: Sequence[Score], preference: int | None) -> bool:
    """Whether a decision was right. ``preference`` is the comparator's verdict on (I_k, I_{k+1})
    for a retry: 1 when the new image is strictly better."""
    if decision.kind == "answer":
        assert decision.submitted is not None
        return bool(scores[decision.submitted - 1].passed)
    if decision.kind == "retry":
        return (not scores[decision.image - 1].passed) and preference == 1
    return False


def episode_reward(
    weights: RewardWeights,
    final_score: Score | None,
    decisions_correct: Sequence[bool],
    violations: int,
) -> dict[str, float]:
    """The three components; the total reward is their sum."""
    if final_score is None:
        outcome = 0.0
    elif weights.continuous_outcome:
        outcome = weights.outcome * float(final_score.score)
    else:
        outcome = weights.outcome * float(bool(final_score.passed))
    accuracy = sum(decisions_correct) / len(decisions_correct) if decisions_correct else 0.0
    return {
        "outcome": outcome,
        "reflection": weights.reflection * accuracy,
        "format": -weights.format_penalty if violations else 0.0,
    }
