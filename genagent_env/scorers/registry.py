"""Scorers by name: ``scorer="shapes"`` and :func:`register_scorer` for your own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genagent_env.registry import Registry
from genagent_env.scorers.base import Scorer

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
    raise TypeError(f"a scorer must be a registered name or a Scorer, got {spec!r}")
