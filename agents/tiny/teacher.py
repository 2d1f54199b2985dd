"""The SFT teacher of ``genagent-tiny``: the scripted teacher, writing what a student can learn to write.

It reads the hidden checklist (``privileged=True``) and the ShapesWorld verifier's detections, as
:class:`~agents.scripted.ScriptedAgent` does, but every message it writes can be produced from what
the student sees:

- turn 1: the explicit rewrite of the request (:func:`~genagent_env.tasks.prompts.explicit_prompt`),
  which depends only on what the request asks for; no seed (the env draws one);
- after each image, a judgment written *describe-first*: what the image shows — every group of
  objects of one shape and colour, its count, the halves of the image it is in, and whether it is
  clearly bigger or smaller than the rest (:func:`describe_scene`, from the detections) — then how
  that compares with the request (the verifier's failed checks, which the student learns to find by
  comparing its description with the request it rewrote);
- then ``<answer>done</answer>`` when the image matches, a refined rewrite that restates what
  failed when a tool call is left, or the image with the fewest problems when none is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import median
from typing import Any

from agents.base import Agent, first_tool_name, tool_call
from genagent_env.scorers.base import Score
from genagent_env.scorers.registry import make_scorer
from genagent_env.shapes.vocab import PALETTE, SHAPES, plural
from genagent_env.tasks.prompts import explicit_prompt

#: How much bigger (in area) a group must be than the median of the others to be called "big".
SIZE_RATIO = 1.5


def describe_scene(detections: Sequence[Mapping[str, Any]], width: int = 128, height: int = 128) -> str:
    """``"3 red circles (left, top), 1 big blue star (right)"``: the groups of one shape and colour,
    most objects first (ties in shape, then colour order), with the halves every object of the
    group is in and ``big``/``small`` when its mean area differs clearly from the other groups'."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for obj in detections:
        groups.setdefault((str(obj["class"]), str(obj.get("color") or "")), []).append(obj)
    if not groups:
        return "nothing"

    def rank(words: tuple[str, str]) -> tuple[int, int, str, int, str]:
        # ShapesWorld's class order (the student's slot order); other detectors' classes by name.
        shape, colour = words
        colours = list(PALETTE)
        return (-len(groups[words]), SHAPES.index(shape) if shape in SHAPES else len(SHAPES), shape,
                colours.index(colour) if colour in colours else len(colours), colour)

    order = sorted(groups, key=rank)
    areas = {k: sum(float(o["area"]) for o in groups[k]) / len(groups[k]) for k in order}
    parts = []
    for key in order:
        objs = groups[key]
        others = [areas[k] for k in order if k != key]
        size = ""
        if others:
            ratio = areas[key] / max(median(others), 1.0)
            size = "big " if ratio >= SIZE_RATIO else "small " if ratio <= 1 / SIZE_RATIO else ""
        xs = [float(o["centroid"][0]) for o in objs]
        ys = [float(o["centroid"][1]) for o in objs]
        halves = [h for h, ok in (("left", max(xs) < width / 2), ("right", min(xs) >= width / 2),
                                  ("top", max(ys) < height / 2), ("bottom", min(ys) >= height / 2)) if ok]
        where = f" ({', '.join(halves)})" if halves else ""
        colour = f"{key[1]} " if key[1] else ""
        parts.append(f"{len(objs)} {size}{colour}{plural(key[0], len(objs))}{where}")
    return ", ".join(parts)


def problems(score: Score) -> list[str]:
    """The failed checks' messages, without an exclude check that repeats a failed count."""
    checks = score.details.get("checks", [])
    counted = {c.get("item") for c in checks if c.get("check") == "count" and not c.get("ok")}
    return [str(c["message"]) for c in checks if not c.get("ok")
            and not (c.get("check") == "exclude" and counted)]


class DescribeFirstTeacher(Agent):
    """The privileged teacher whose messages the tiny student is trained on (see the module docstring).

    Args:
        scorer: The verifier that judges each image (its detections are the description's source).
    """

    name = "describe-first-teacher"
    privileged = True

    def __init__(self, scorer: str | Any = "shapes") -> None:
        self.scorer = make_scorer(scorer)

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        task = info.get("task")
        if task is None:
            raise ValueError("the teacher reads the task's checklist: make the env with privileged=True")
        tool = first_tool_name(info)
        images = info["images"]
        if not images:
            return tool_call(tool, explicit_prompt(task))
        scores = self.scorer.score(list(images), [task] * len(images))
        latest = scores[-1]
        seen = describe_scene(latest.details.get("detected", []), *images[-1].size)
        k = len(images)
        if latest.passed:
            return f"<judge>image_{k} shows {seen}. It matches the request.</judge><answer>done</answer>"
        judge = f"<judge>image_{k} shows {seen}. It does not match: {'; '.join(problems(latest))}.</judge>"
        rounds_left = int(info["max_rounds"]) - int(info["round"])
        if rounds_left > 0:
            failed = [c for c in latest.details.get("checks", []) if not c.get("ok")]
            return judge + tool_call(tool, explicit_prompt(task, failed))
        best = max(range(k), key=lambda i: (scores[i].score, i))
        return judge + f"<answer>image_{best + 1}</answer>"


__all__ = ["DescribeFirstTeacher", "describe_scene", "problems"]
