"""Scorers: pointwise image quality and pairwise preference, and the registry."""

from genagent_env.scorers.base import PairwiseComparator, Score, ScoreComparator, Scorer, compare_scores
from genagent_env.scorers.registry import SCORERS, make_scorer, register_scorer

__all__ = [
    "SCORERS",
    "PairwiseComparator",
    "Score",
    "ScoreComparator",
    "Scorer",
    "compare_scores",
    "make_scorer",
    "register_scorer",
]
