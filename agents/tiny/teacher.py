"""The SFT teacher of ``genagent-tiny``: the scripted teacher, writing what a student can learn to write.

It reads the hidden checklist (``privileged=True``) and the ShapesWorld verifier's detections, as
:class:`~agents.scripted.ScriptedAgent` does, but every message it writes can be produced from what
the student sees:

- turn 1: the explicit rewrite of the request (:func:`~genagent_env.tasks.prompts.explicit_prompt`),
  which depends only on what the request asks for; no seed (the env draws one);
- after each image, a judgment written *describe-first*: what the image shows — every group of
  objects of one shape and colour, its count, the halves of the image it is in, and whether it is
  clearly bigger or smaller than the rest (:func:`describe_scene`, from the detections) — then how
  that compares with the request: by default the verifier's messages for the failed checks
  (:func:`problems`), which the student learns to find by comparing its description with the
  request it rewrote; with ``judge_style="checks"`` the request checked item by item, one short
  verdict per check (:func:`check_phrase`: ``"1 red square: 0 no"``, ``"ring left: yes"``), then the
  verdict on the whole;
- then ``<answer>done</answer>`` when the image matches, a refined rewrite that restates what
  failed when a tool call is left, or the image with the fewest problems when none is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import median
from typing import Any, Literal

from agents.base import Agent, first_tool_name, tool_call
from genagent_env.scorers.base import Score
from genagent_env.scorers.registry import make_scorer
from genagent_env.shapes.vocab import PALETTE, SHAPES, plural
from genagent_env.tasks.prompts import explicit_prompt
from genagent_env.tasks.wording import item_noun

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


#: The halves' words in the descriptions, for the checklist's region names.
_HALF_WORDS = {"left": "left", "right": "right", "above": "top", "below": "bottom"}
#: The size words in the descriptions, for the checklist's size labels.
_SIZE_WORDS = {"larger": "big", "smaller": "small"}


def check_phrase(check: Mapping[str, Any], task: Mapping[str, Any],
                 detections: Sequence[Mapping[str, Any]]) -> str:
    """One verifier check as a short verdict in the description's words: ``"2 red circles: 3 no"``
    (asked, found, verdict), ``"ring left: yes"``, ``"cross left of star: no"``, ``"cross small: no"``,
    ``"no blue stars: yes"``."""
    verdict = "yes" if check.get("ok") else "no"
    kind = check.get("check")
    if kind == "exclude":
        item = (task.get("exclude") or [])[int(check["item"])]
        return f"no {item_noun(item, 2)}: {verdict}"
    item = task["include"][int(check["item"])]
    want = int(item.get("count", 1))
    noun = item_noun(item, want)
    if kind == "count":
        found = sum(1 for d in detections if d["class"] == item["class"]
                    and (not item.get("color") or d.get("color") == item["color"]))
        return f"{want} {noun}: {found} {verdict}"
    if kind == "region":
        return f"{noun} {_HALF_WORDS.get(str(item['region']), item['region'])}: {verdict}"
    if kind == "position":
        relation, j = item["position"]
        other = task["include"][int(j)]
        return f"{noun} {relation} {item_noun(other, int(other.get('count', 1)))}: {verdict}"
    if kind == "size":
        return f"{noun} {_SIZE_WORDS.get(str(item['size']), item['size'])}: {verdict}"
    return f"{check.get('message', kind)}: {verdict}"  # a scorer's own check kinds, by their message


def problems(score: Score) -> list[str]:
    """The failed checks' messages, without an exclude check that repeats a failed count."""
    checks = score.details.get("checks", [])
    counted = {c.get("item") for c in checks if c.get("check") == "count" and not c.get("ok")}
    return [str(c["message"]) for c in checks if not c.get("ok")
            and not (c.get("check") == "exclude" and counted)]


#: How the teacher writes the comparison after the description: the verifier's messages for what
#: failed (``"problems"``: ``It does not match: expected exactly 1 red square, found 0.``), or one
#: short verdict per check (``"checks"``: ``Checks: 3 black crosses: 3 yes; 1 red square: 0 no.``).
JudgeStyle = Literal["problems", "checks"]


class DescribeFirstTeacher(Agent):
    """The privileged teacher whose messages the tiny student is trained on (see the module docstring).

    Args:
        scorer: The verifier that judges each image (its detections are the description's source).
        judge_style: How the comparison with the request is written (:data:`JudgeStyle`).
    """

    name = "describe-first-teacher"
    privileged = True

    def __init__(self, scorer: str | Any = "shapes", judge_style: JudgeStyle = "problems") -> None:
        if judge_style not in ("problems", "checks"):
            raise ValueError(f"judge_style must be 'problems' or 'checks', got {judge_style!r}")
        self.scorer = make_scorer(scorer)
        self.judge_style = judge_style

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
        detected = latest.details.get("detected", [])
        seen = describe_scene(detected, *images[-1].size)
        k = len(images)
        described = f"<judge>image_{k} shows {seen}."
        if self.judge_style == "checks":
            checks = latest.details.get("checks", [])
            described += f" Checks: {'; '.join(check_phrase(c, task, detected) for c in checks)}."
        if latest.passed:
            return f"{described} It matches the request.</judge><answer>done</answer>"
        if self.judge_style == "checks":
            judge = f"{described} It does not match.</judge>"
        else:
            judge = f"{described} It does not match: {'; '.join(problems(latest))}.</judge>"
        rounds_left = int(info["max_rounds"]) - int(info["round"])
        if rounds_left > 0:
            failed = [c for c in latest.details.get("checks", []) if not c.get("ok")]
            return judge + tool_call(tool, explicit_prompt(task, failed))
        best = max(range(k), key=lambda i: (scores[i].score, i))
        return judge + f"<answer>image_{best + 1}</answer>"


__all__ = ["DescribeFirstTeacher", "JudgeStyle", "check_phrase", "describe_scene", "problems"]
