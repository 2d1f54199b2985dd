"""Scorers by name: ``scorer="shapes"`` and :func:`register_scorer` for your own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genagent_env.checks import short_repr
from genagent_env.registry import Registry
from genagent_env.scorers.base import PairwiseComparator, Scorer

SCORERS: Registry[Scorer] = Registry("scorer", entry_point_group="genagent_env.scorers")
SCORERS.register("shapes", "genagent_env.shapes.verifier:ShapesVerifier")
SCORERS.register("clip", "genagent_env.scorers.clip:CLIPScorer")
SCORERS.register("detector", "genagent_env.scorers.detector:DetectorScorer")
SCORERS.register("vlm-judge", "genagent_env.scorers.vlm_judge:VLMJudgeScorer")


def register_scorer(name: str, factory: Callable[..., Scorer] | str, **defaults: Any) -> None:
    """Register a scorer factory (a class, a function, or a lazy ``"module:attribute"``) by name."""
    SCORERS.register(name, factory, **defaults)


def make_scorer(spec: str | Scorer) -> Scorer:
    """A scorer from a registered name or an instance."""
    if isinstance(spec, Scorer):
        return spec
    if isinstance(spec, str):
        return SCORERS.make(spec)
    raise TypeError(f"a scorer must be a registered name or a Scorer, got {short_repr(spec)}")


def make_comparator(spec: str | PairwiseComparator | None) -> PairwiseComparator | None:
    """A pairwise comparator: ``None`` (the env derives preference from the scores), a
    :class:`PairwiseComparator`, or the registered name of a scorer that is also one (``"clip"``,
    ``"vlm-judge"``). Another name raises ``ValueError`` before anything is built (an unknown one
    raises :class:`~genagent_env.registry.UnknownNameError`); another type raises ``TypeError``."""
    if spec is None or isinstance(spec, PairwiseComparator):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            "comparator must be None, a PairwiseComparator or the name of a registered scorer that is one "
            f"(such as 'clip' or 'vlm-judge'), got {short_repr(spec)}"
        )
    factory = SCORERS.factory(spec)
    if isinstance(factory, type) and not issubclass(factory, PairwiseComparator):
        raise ValueError(
            f"comparator {spec!r} names a scorer that cannot compare two images (not a PairwiseComparator); "
            "pass None (preference from the scores), a PairwiseComparator, or a scorer name such as 'clip' "
            "or 'vlm-judge'"
        )
    built = SCORERS.make(spec)
    if not isinstance(built, PairwiseComparator):
        close = getattr(built, "close", None)
        if callable(close):
            close()
        raise ValueError(f"comparator {spec!r} built a {type(built).__name__}, which is not a PairwiseComparator")
    return built
