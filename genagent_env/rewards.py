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

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from genagent_env.checks import check_bool, is_real, short_repr
from genagent_env.scorers.base import Score

#: The largest reward weight: far beyond any use, and small enough that the reward stays finite.
MAX_REWARD_WEIGHT = 1e6


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

    def __post_init__(self) -> None:
        for name in ("outcome", "reflection", "format_penalty"):
            amount = getattr(self, name)
            if not is_real(amount) or not 0 <= amount <= MAX_REWARD_WEIGHT:  # NaN fails this too
                raise ValueError(
                    f"reward_weights.{name} must be a number in [0, {MAX_REWARD_WEIGHT:g}] (the penalty is "
                    f"subtracted; a larger weight could make the summed reward overflow), got {short_repr(amount)}"
                )
            object.__setattr__(self, name, float(amount))
        flag = check_bool("reward_weights.continuous_outcome", self.continuous_outcome)
        object.__setattr__(self, "continuous_outcome", flag)

    @classmethod
    def from_any(cls, value: RewardWeights | Mapping[str, Any] | None) -> RewardWeights:
        """``None`` → the defaults, a :class:`RewardWeights` → itself, a dict → its fields. Raises
        ``ValueError`` for an unknown field, a weight outside [0, :data:`MAX_REWARD_WEIGHT`] or a
        ``continuous_outcome`` that is not a bool; ``TypeError`` for a value of another type."""
        if value is None:
            return cls()
        if isinstance(value, RewardWeights):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - set(asdict(cls()))
            if unknown:
                raise ValueError(
                    f"unknown reward weight(s) {sorted(map(str, unknown))}; known: {sorted(asdict(cls()))}"
                )
            return cls(**value)
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
