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
  verdict on the whole; with ``judge_style="lookup"`` the description names each group first
  (``"red square ×2 (left)"``) and each check copies what the description says after the group's
  name before its verdict (:func:`lookup_phrase`: ``"red square ×2 (left), want ×1: no"``); with
  ``judge_style="seen"`` the ``checks`` style whose half, relation and size checks also write what
  the image shows before the verdict, as its count checks write the count found
  (:func:`seen_value`: ``"ring left: right no"``); with
  ``note_rounds`` a failed image's verdict ends with the rounds used (``"(round 1 of 2)"``);
- then ``<answer>done</answer>`` when the image matches, a refined rewrite that restates what
  failed when a tool call is left, or the image with the fewest problems when none is.

:func:`judgment` writes a judgment from any detections, and :func:`perturb_scene` changes a scene
in one way (an object more or fewer, a group gone, recoloured, reshaped, mirrored or resized):
SFT's counterfactual judgments pair the two, so that a student learns checks that follow the
description it wrote, not its belief about the image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import median
from typing import Any, Literal, get_args

from agents.base import Agent, first_tool_name, tool_call
from genagent_env.scorers.base import Score
from genagent_env.scorers.checklist import evaluate_checklist, item_instances
from genagent_env.scorers.registry import make_scorer
from genagent_env.shapes.vocab import PALETTE, SHAPES, plural
from genagent_env.tasks.prompts import explicit_prompt
from genagent_env.tasks.wording import item_noun

#: How much bigger (in area) a group must be than the median of the others to be called "big".
SIZE_RATIO = 1.5


def scene_groups(detections: Sequence[Mapping[str, Any]], width: int = 128, height: int = 128
                 ) -> list[tuple[str, str, int, str, list[str]]]:
    """The groups of objects of one shape and colour as ``(shape, colour, count, size, halves)``,
    most objects first (ties in shape, then colour order): ``size`` is ``"big"``/``"small"`` when the
    group's mean area differs clearly from the other groups', ``halves`` those every object of the
    group is in."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for obj in detections:
        groups.setdefault((str(obj["class"]), str(obj.get("color") or "")), []).append(obj)

    def rank(words: tuple[str, str]) -> tuple[int, int, str, int, str]:
        # ShapesWorld's class order (the student's slot order); other detectors' classes by name.
        shape, colour = words
        colours = list(PALETTE)
        return (-len(groups[words]), SHAPES.index(shape) if shape in SHAPES else len(SHAPES), shape,
                colours.index(colour) if colour in colours else len(colours), colour)

    order = sorted(groups, key=rank)
    areas = {k: sum(float(o["area"]) for o in groups[k]) / len(groups[k]) for k in order}
    out = []
    for key in order:
        objs = groups[key]
        others = [areas[k] for k in order if k != key]
        size = ""
        if others:
            ratio = areas[key] / max(median(others), 1.0)
            size = "big" if ratio >= SIZE_RATIO else "small" if ratio <= 1 / SIZE_RATIO else ""
        xs = [float(o["centroid"][0]) for o in objs]
        ys = [float(o["centroid"][1]) for o in objs]
        halves = [h for h, ok in (("left", max(xs) < width / 2), ("right", min(xs) >= width / 2),
                                  ("top", max(ys) < height / 2), ("bottom", min(ys) >= height / 2)) if ok]
        out.append((key[0], key[1], len(objs), size, halves))
    return out


def describe_scene(detections: Sequence[Mapping[str, Any]], width: int = 128, height: int = 128,
                   key_first: bool = False) -> str:
    """``"3 red circles (left, top), 1 big blue star (right)"``: the :func:`scene_groups` in words.
    With ``key_first`` each group's shape and colour come before what is seen of them,
    ``"red circle ×3 (left, top), blue star ×1 big (right)"``, so that a later check can look a
    group up by its name and copy what follows it."""
    groups = scene_groups(detections, width, height)
    if not groups:
        return "nothing"
    if key_first:
        return ", ".join(f"{group_key(shape, colour)}{group_evidence(count, size, halves)}"
                         for shape, colour, count, size, halves in groups)
    parts = []
    for shape, colour, count, size, halves in groups:
        where = f" ({', '.join(halves)})" if halves else ""
        parts.append(f"{count} {size + ' ' if size else ''}{colour + ' ' if colour else ''}"
                     f"{plural(shape, count)}{where}")
    return ", ".join(parts)


def group_key(shape: str, colour: str = "") -> str:
    """A group's name in a key-first description and in the ``lookup`` checks: ``"red circle"``."""
    return f"{colour} {shape}" if colour else shape


def group_evidence(count: int, size: str = "", halves: Sequence[str] = ()) -> str:
    """What a key-first description says after a group's name: ``" ×3 big (left, top)"``."""
    return f" ×{count}{' ' + size if size else ''}{' (' + ', '.join(halves) + ')' if halves else ''}"


def seen_value(check: Mapping[str, Any], task: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
               width: int = 128, height: int = 128) -> str:
    """What the image shows for a half, relation or size check, in one word: the asked value's
    word when the check holds (``left``, ``top``, ``right`` for "right of", ``big``); the opposite's
    when the opposite would hold (the checklist evaluated with the value flipped, so the same
    margins decide); ``none`` when the object (or, for a relation, either object) is not there;
    else ``both`` (objects in both halves), ``near`` (not clearly on either side) or ``same`` (not
    clearly bigger or smaller). The word equals the asked one exactly when the check holds."""
    kind = str(check["check"])
    index = int(check["item"])
    include = [dict(item) for item in task["include"]]
    item = include[index]
    asked = item[kind][0] if kind == "position" else item[kind]
    if check.get("ok"):
        return _seen_word(kind, str(asked))

    if not item_instances(item, detections) or (
            kind == "position" and not item_instances(include[int(item["position"][1])], detections)):
        return "none"
    opposite = _OPPOSITE.get(str(asked))
    if opposite is not None:
        item[kind] = [opposite, item["position"][1]] if kind == "position" else opposite
        flipped = evaluate_checklist({**task, "include": include}, detections, width, height)
        if any(c.get("check") == kind and c.get("item") == index and c.get("ok") for c in flipped):
            return _seen_word(kind, opposite)
    return _NEITHER[kind]


#: The halves' words in the descriptions, for the checklist's region names.
_HALF_WORDS = {"left": "left", "right": "right", "above": "top", "below": "bottom"}
#: The size words in the descriptions, for the checklist's size labels.
_SIZE_WORDS = {"larger": "big", "smaller": "small"}


#: The kinds of check whose seen value a ``seen``-style check writes, and each value's opposite: a
#: check that fails may hold for the opposite value (the object is in the other half), or for neither.
_SEEN_KINDS = ("region", "position", "size")
_OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above",
             "left of": "right of", "right of": "left of", "larger": "smaller", "smaller": "larger"}
#: A relation's word in a check (``"cross left of star: right no"``).
_RELATION_WORDS = {"left of": "left", "right of": "right", "above": "above", "below": "below"}
#: The word for neither value (both halves, not clearly on either side, not clearly bigger or smaller).
_NEITHER = {"region": "both", "position": "near", "size": "same"}


def _seen_word(kind: str, value: str) -> str:
    words = {"position": _RELATION_WORDS, "size": _SIZE_WORDS}.get(kind, _HALF_WORDS)
    return words.get(value, value)


def check_phrase(check: Mapping[str, Any], task: Mapping[str, Any],
                 detections: Sequence[Mapping[str, Any]], seen: bool = False,
                 width: int = 128, height: int = 128) -> str:
    """One verifier check as a short verdict in the description's words: ``"2 red circles: 3 no"``
    (asked, found, verdict), ``"ring left: yes"``, ``"cross left of star: no"``, ``"cross small: no"``,
    ``"no blue stars: yes"``, ``"fewer than 4 rings: yes"`` (an exact count of 3 excludes a fourth).
    With ``seen``, a half, relation or size check also writes what the image shows before its
    verdict, as a count check writes the count found (:func:`seen_value`): ``"ring left: right no"``,
    ``"cross left of star: near no"``, ``"cross small: big no"``."""
    verdict = "yes" if check.get("ok") else "no"
    if seen and check.get("check") in _SEEN_KINDS:
        verdict = f"{seen_value(check, task, detections, width, height)} {verdict}"
    kind = check.get("check")
    if kind == "exclude":
        item = (task.get("exclude") or [])[int(check["item"])]
        limit = int(item.get("count", 1))  # fewer than this many are allowed
        if limit > 1:
            return f"fewer than {limit} {item_noun(item, limit)}: {verdict}"
        return f"no {item_noun(item, 2)}: {verdict}"
    item = task["include"][int(check["item"])]
    want = int(item.get("count", 1))
    noun = item_noun(item, want)
    if kind == "count":
        return f"{want} {noun}: {len(item_instances(item, detections))} {verdict}"
    if kind == "region":
        return f"{noun} {_HALF_WORDS.get(str(item['region']), item['region'])}: {verdict}"
    if kind == "position":
        relation, j = item["position"]
        other = task["include"][int(j)]
        return f"{noun} {relation} {item_noun(other, int(other.get('count', 1)))}: {verdict}"
    if kind == "size":
        return f"{noun} {_SIZE_WORDS.get(str(item['size']), item['size'])}: {verdict}"
    return f"{check.get('message', kind)}: {verdict}"  # a scorer's own check kinds, by their message


def _checked_groups(check: Mapping[str, Any], task: Mapping[str, Any],
                   groups: Sequence[tuple[str, str, int, str, Sequence[str]]]
                   ) -> tuple[Mapping[str, Any], str, str, list[tuple[str, str, int, str, Sequence[str]]]]:
    """A check's item of the request, its shape and colour (``""`` for any), and the description's
    groups it names (every colour's, when it names none)."""
    items = (task.get("exclude") or []) if check.get("check") == "exclude" else task["include"]
    item = items[int(check["item"])]
    shape, colour = str(item["class"]), str(item.get("color") or "")
    return item, shape, colour, [g for g in groups if g[0] == shape and (not colour or g[1] == colour)]


def lookup_phrase(check: Mapping[str, Any], task: Mapping[str, Any],
                  groups: Sequence[tuple[str, str, int, str, Sequence[str]]]) -> str:
    """One verifier check written as a lookup in a key-first description, then the verdict:
    the group's name, what the description says after it (``×0`` when it is not there), what the
    request wants, and ``yes``/``no`` — ``"red circle ×3 (left), want ×2: no"``,
    ``"red circle ×3 (left), want left: yes"``, ``"blue star ×1 big (right), want small: no"``,
    ``"blue square ×0, want ×0: yes"`` (an excluded object; ``want <3`` when fewer than 3 are
    allowed). An item named without a colour counts
    every colour's group and shows only that count (``"star ×2, want ×1: no"``, and for a region
    or size check too: it has no one group's halves or size to copy); a relation between two
    groups is written as by :func:`check_phrase`, since halves cannot show it."""
    kind = check.get("check")
    if kind not in ("count", "region", "size", "exclude"):
        return check_phrase(check, task, [])
    verdict = "yes" if check.get("ok") else "no"
    item, shape, colour, matched = _checked_groups(check, task, groups)
    if colour and matched:
        evidence = group_evidence(*matched[0][2:])
    else:  # not in the description, or summed over its colours
        evidence = group_evidence(sum(g[2] for g in matched))
    want = {"count": f"×{int(item.get('count', 1))}", "exclude": excluded_count(item),
            "region": _HALF_WORDS.get(str(item.get("region")), str(item.get("region"))),
            "size": _SIZE_WORDS.get(str(item.get("size")), str(item.get("size")))}[str(kind)]
    return f"{group_key(shape, colour)}{evidence}, want {want}: {verdict}"


def excluded_count(item: Mapping[str, Any]) -> str:
    """What an exclude item allows, in a check's words: ``"×0"`` (none), or ``"<3"`` (fewer than 3:
    an exact-count task excludes one more than it asks for)."""
    limit = int(item.get("count", 1))
    return "×0" if limit <= 1 else f"<{limit}"


def adjacent_phrase(check: Mapping[str, Any], task: Mapping[str, Any],
                    groups: Sequence[tuple[str, str, int, str, Sequence[str]]]) -> str:
    """One verifier check written as what the request wants, then the group's name and what a
    key-first description says after that name, then the verdict: ``"×2 red circle ×3: no"``,
    ``"×0 blue square ×0: yes"`` (an excluded object; ``"<9 ring ×8: yes"`` when fewer than 9 are
    allowed), ``"left red circle ×3 small (left): yes"``,
    ``"small blue star ×1 big (right): no"``. What follows the name is copied from the
    description (for a count, only the count), so a count's verdict compares two values a fixed
    few tokens apart. An item named without a colour counts every colour's group and shows only
    that count (``"×1 star ×2: no"``, ``"left star ×2: no"``); a relation between two groups is
    written as by :func:`check_phrase`, since halves cannot show it."""
    kind = check.get("check")
    if kind not in ("count", "region", "size", "exclude"):
        return check_phrase(check, task, [])
    verdict = "yes" if check.get("ok") else "no"
    item, shape, colour, matched = _checked_groups(check, task, groups)
    count = sum(g[2] for g in matched)
    if kind in ("count", "exclude"):
        want = f"×{int(item.get('count', 1))}" if kind == "count" else excluded_count(item)
        seen = group_evidence(count)
    else:
        want = (_HALF_WORDS.get(str(item.get("region")), str(item.get("region"))) if kind == "region"
                else _SIZE_WORDS.get(str(item.get("size")), str(item.get("size"))))
        seen = group_evidence(*matched[0][2:]) if colour and matched else group_evidence(count)
    return f"{want} {group_key(shape, colour)}{seen}: {verdict}"


def problems(score: Score) -> list[str]:
    """The failed checks' messages, without an exclude check that repeats a failed count."""
    return failed_messages(score.details.get("checks", []))


def failed_messages(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The failed ``checks``' messages, without an exclude check that repeats a failed count."""
    counted = {c.get("item") for c in checks if c.get("check") == "count" and not c.get("ok")}
    return [str(c["message"]) for c in checks if not c.get("ok")
            and not (c.get("check") == "exclude" and counted)]


#: How the teacher writes the comparison after the description: the verifier's messages for what
#: failed (``"problems"``: ``It does not match: expected exactly 1 red square, found 0.``), or one
#: short verdict per check (``"checks"``: ``Checks: 3 black crosses: 3 yes; 1 red square: 0 no.``),
#: or the description written key first and each check as a lookup in it (``"lookup"``:
#: ``image_1 shows black cross ×3 (left). Checks: black cross ×3 (left), want ×3: yes; red square ×0,
#: want ×1: no.``): a causal model reads a group's count after its name there, and copies it;
#: or the same description with each check's wanted and seen values side by side (``"adjacent"``:
#: ``Checks: ×3 black cross ×3: yes; ×1 red square ×0: no.``); or ``"checks"`` whose half, relation
#: and size checks also write what the image shows, as its count checks write the count found
#: (``"seen"``: ``Checks: 1 ring: 1 yes; ring left: right no.``).
JudgeStyle = Literal["problems", "checks", "lookup", "adjacent", "seen"]
JUDGE_STYLES: tuple[str, ...] = get_args(JudgeStyle)


class DescribeFirstTeacher(Agent):
    """The privileged teacher whose messages the tiny student is trained on (see the module docstring).

    Args:
        scorer: The verifier that judges each image (its detections are the description's source).
        judge_style: How the comparison with the request is written (:data:`JudgeStyle`).
        note_rounds: End a failed image's verdict with the rounds used, ``(round 1 of 2)``, copied
            from the tool turn next to the choice it decides (retry, or submit when none is left).
    """

    name = "describe-first-teacher"
    privileged = True

    def __init__(self, scorer: str | Any = "shapes", judge_style: JudgeStyle = "problems",
                 note_rounds: bool = False) -> None:
        if judge_style not in JUDGE_STYLES:
            raise ValueError(f"judge_style must be one of {', '.join(JUDGE_STYLES)}, got {judge_style!r}")
        self.scorer = make_scorer(scorer)
        self.judge_style = judge_style
        self.note_rounds = note_rounds

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
        width, height = images[-1].size
        checks = latest.details.get("checks", [])
        # The rounds used, copied from the tool turn, right before the choice they decide.
        rounds = f" (round {info['round']} of {info['max_rounds']})" if self.note_rounds else ""
        judge = judgment(task, latest.details.get("detected", []), checks, len(images), width, height,
                         self.judge_style, rounds, passed=latest.passed)
        if latest.passed:
            return f"{judge}<answer>done</answer>"
        rounds_left = int(info["max_rounds"]) - int(info["round"])
        if rounds_left > 0:
            failed = [c for c in checks if not c.get("ok")]
            return judge + tool_call(tool, explicit_prompt(task, failed))
        best = max(range(len(images)), key=lambda i: (scores[i].score, i))
        return judge + f"<answer>image_{best + 1}</answer>"


def judgment(task: Mapping[str, Any], detections: Sequence[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]],
             k: int, width: int = 128, height: int = 128, style: JudgeStyle = "checks", rounds: str = "",
             passed: bool | None = None) -> str:
    """The teacher's judgment of ``image_k``, from its detections and the checklist's ``checks`` on
    them: ``<judge>image_1 shows 3 red circles (left). Checks: 3 red circles: 3 yes. It matches the
    request.</judge>``; a failed one ends ``It does not match{rounds}.</judge>`` (``rounds``: the
    note ``" (round 1 of 2)"``, or ``""``), in the ``"problems"`` style with the failed checks'
    messages before the note. ``passed``: the scorer's verdict on the image, for scorers whose
    verdict is not "every check holds" (a threshold, or no checks at all); by default, every check
    holds."""
    seen = describe_scene(detections, width, height, key_first=style in ("lookup", "adjacent"))
    text = f"<judge>image_{k} shows {seen}."
    if style in ("checks", "seen"):
        phrases = (check_phrase(c, task, detections, style == "seen", width, height) for c in checks)
        text += f" Checks: {'; '.join(phrases)}."
    elif style in ("lookup", "adjacent"):
        groups = scene_groups(detections, width, height)
        phrase = lookup_phrase if style == "lookup" else adjacent_phrase
        text += f" Checks: {'; '.join(phrase(c, task, groups) for c in checks)}."
    if (all(c.get("ok") for c in checks) if passed is None else passed):
        return f"{text} It matches the request.</judge>"
    if style == "problems":
        return f"{text} It does not match: {'; '.join(failed_messages(checks))}{rounds}.</judge>"
    return f"{text} It does not match{rounds}.</judge>"


#: The one change :func:`perturb_scene` makes, drawn uniformly (an empty scene always gets
#: ``"fix"``): a group gets one object more or
#: fewer, loses all of them, or changes colour, shape, half (mirrored) or size (area ×3 or ÷3);
#: or an item of the request gets the count it asks for (which may make a failing scene pass).
PERTURBATIONS: tuple[str, ...] = ("count", "missing", "colour", "shape", "half", "size", "fix")


def perturb_scene(detections: Sequence[Mapping[str, Any]], task: Mapping[str, Any], rng: Any,
                  width: int = 128, height: int = 128, on_request: float = 0.7) -> list[dict[str, Any]]:
    """``detections`` (``class``, ``color``, ``centroid``, ``area`` per object) with one change of
    :data:`PERTURBATIONS`, the kind of thing a description can get wrong; the group changed is one
    the request names with probability ``on_request`` (so the verdict often turns), else any.
    ``rng`` is a :class:`random.Random`. The result may describe the same as the input (a mirrored
    group that spans both halves): compare the descriptions when that matters."""
    objects = [dict(d) for d in detections]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, obj in enumerate(objects):
        groups.setdefault((str(obj["class"]), str(obj.get("color") or "")), []).append(i)
    include = list(task.get("include", []))
    kind = rng.choice(PERTURBATIONS)
    if kind == "fix" or not groups:
        if not include:
            return objects
        item = rng.choice(include)
        shape, colour = str(item["class"]), str(item.get("color") or "")
        matching = [i for i, o in enumerate(objects)
                    if o["class"] == shape and (not colour or o.get("color") == colour)]
        want = int(item.get("count", 1))
        if len(matching) > want:
            drop = set(matching[want:])
            return [o for i, o in enumerate(objects) if i not in drop]
        model = dict(objects[matching[0]]) if matching else {
            "class": shape, "color": colour or rng.choice(list(PALETTE)),
            "centroid": (rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height),
            "area": median([float(o["area"]) for o in objects]) if objects else 0.04 * width * height}
        return objects + [dict(model) for _ in range(want - len(matching))]
    named = [key for key in groups if any(key[0] == it["class"] and (not it.get("color") or key[1] == it["color"])
                                          for it in include)]
    key = rng.choice(named if named and rng.random() < on_request else list(groups))
    members = groups[key]
    if kind == "count":
        if rng.random() < 0.5:
            return objects + [dict(objects[members[0]])]
        return [o for i, o in enumerate(objects) if i != members[-1]]
    if kind == "missing":
        return [o for i, o in enumerate(objects) if i not in members]
    colour = rng.choice([c for c in PALETTE if c != key[1]])
    shape = rng.choice([s for s in SHAPES if s != key[0]])
    mirror_x, factor = rng.random() < 0.5, rng.choice((3.0, 1 / 3))
    for i in members:
        obj = objects[i]
        if kind == "colour":
            obj["color"] = colour
        elif kind == "shape":
            obj["class"] = shape
        elif kind == "half":
            x, y = obj["centroid"]
            obj["centroid"] = (width - x, y) if mirror_x else (x, height - y)
        else:  # size
            obj["area"] = float(obj["area"]) * factor
    return objects


__all__ = ["JUDGE_STYLES", "PERTURBATIONS", "DescribeFirstTeacher", "JudgeStyle", "adjacent_phrase", "check_phrase",
           "describe_scene", "excluded_count", "failed_messages", "group_evidence", "group_key", "judgment",
           "lookup_phrase", "perturb_scene", "problems", "scene_groups", "seen_value"]
