"""The GenEval / GenEval++ checklist, checked against a list of object instances.

:func:`evaluate_checklist` is shared by the ShapesWorld verifier (:mod:`genagent_env.shapes.verifier`,
instances read from pixels) and GenEval's detector-based scorer (:mod:`genagent_env.scorers.detector`,
instances from a zero-shot detector's kept boxes). An instance is a dict with ``class``, ``color``
(``None`` where unknown), ``centroid`` ``(x, y)`` and ``area`` in pixels.

Checks, as GenEval / GenEval++ define them (an item's *instances* are the objects of its class, and
of its colour where it names one):

- ``count``: exactly ``count`` instances;
- ``region``: at least one instance and every instance's centroid in that half of the image;
- ``position`` (GenEval ``[relation, index]``): for every pair of instances, the relation holds by a
  margin of ``position_margin`` (0.1) of the image width (left/right) or height (above/below);
- ``size``: a ``larger`` item's smallest instance covers at least ``size_ratio`` (1.5) times the
  largest instance of the items it is compared with (those with the opposite label, else all other
  items); ``smaller`` the other way round;
- ``exclude``: fewer than ``count`` instances.

Each check is a dict ``{"check", "item", "ok", "message"}``: ``item`` is the index of the include
(or, for ``exclude``, exclude) item and ``message`` says in words what passed or what went wrong.

:func:`error_types` names the kinds of mistake an image's failed checks show (:data:`ERROR_TYPES`:
missing object, count, colour, position, size), for the teacher's words and the reports' diagnostics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from genagent_env.tasks.wording import item_noun, plural_noun, region_half, relation_phrase

#: GenEval's position margin, as a fraction of the image size.
POSITION_MARGIN = 0.1
#: How many times the area a "larger" object must cover.
SIZE_RATIO = 1.5


def _every(item: Mapping[str, Any]) -> str:
    """ "the red circle" for a single object, "every red circle" for several."""
    return f"{'the' if int(item['count']) == 1 else 'every'} {item_noun(item, 1)}"


def item_instances(item: Mapping[str, Any], instances: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ``instances`` a checklist item names: its class, and its colour when it names one."""
    colour = item.get("color")
    return [d for d in instances if d["class"] == item["class"] and (not colour or d.get("color") == colour)]


def _count_check(i: int, item: Mapping[str, Any], instances: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    found = item_instances(item, instances)
    want = int(item["count"])
    ok = len(found) == want
    if ok:
        message = f"there {'is' if want == 1 else 'are'} exactly {want} {item_noun(item, want)}, as asked"
    else:
        message = f"expected exactly {want} {item_noun(item, want)}, found {len(found)}"
        if item.get("color"):
            others = [d for d in instances if d["class"] == item["class"] and d.get("color") != item["color"]]
            if others:
                colours = sorted({str(d.get("color")) for d in others})
                nouns = plural_noun(str(item["class"]), len(others))
                message += f" (and {len(others)} {nouns} in {' and '.join(colours)})"
    return {"check": "count", "item": i, "ok": ok, "message": message}


def _in_region(instance: Mapping[str, Any], region: str, width: int, height: int) -> bool:
    x, y = instance["centroid"]
    return {"left": x < width / 2, "right": x > width / 2, "above": y < height / 2, "below": y > height / 2}[region]


def _region_check(i: int, item: Mapping[str, Any], instances: Sequence[Mapping[str, Any]],
                  width: int, height: int) -> dict[str, Any]:
    found = item_instances(item, instances)
    region = str(item["region"])
    outside = [d for d in found if not _in_region(d, region, width, height)]
    ok = bool(found) and not outside
    where = region_half(region)
    if not found:
        message = f"expected {_every(item)} in {where}, but there is no {item_noun(item, 1)}"
    elif ok:
        message = f"{_every(item)} is in {where}"
    elif len(found) == 1:
        message = f"expected {_every(item)} in {where}, but it is not"
    else:
        verb = "is" if len(outside) == 1 else "are"
        message = f"expected {_every(item)} in {where}; {len(outside)} of {len(found)} {verb} not"
    return {"check": "region", "item": i, "ok": ok, "message": message}


def _holds(a: Mapping[str, Any], b: Mapping[str, Any], relation: str, width: int, height: int,
           margin: float) -> bool:
    (ax, ay), (bx, by) = a["centroid"], b["centroid"]
    if relation == "left of":
        return ax < bx - margin * width
    if relation == "right of":
        return ax > bx + margin * width
    if relation == "above":
        return ay < by - margin * height
    return ay > by + margin * height


def _position_check(i: int, item: Mapping[str, Any], include: Sequence[Mapping[str, Any]],
                    instances: Sequence[Mapping[str, Any]], width: int, height: int,
                    margin: float) -> dict[str, Any]:
    relation, j = item["position"]
    other = include[j]
    found, reference = item_instances(item, instances), item_instances(other, instances)
    pairs = [(a, b) for a in found for b in reference if a is not b]  # an object is never beside itself
    bad = [p for p in pairs if not _holds(p[0], p[1], relation, width, height, margin)]
    ok = bool(pairs) and not bad
    phrase = f"{_every(item)} {{}} {relation_phrase(relation)} {_every(other)}"
    if not pairs:
        missing = item_noun(item, 1) if not found else item_noun(other, 1)
        message = f"expected {phrase.format('to be')}, but there is no {missing}"
    elif ok:
        message = phrase.format("is")
    else:
        axis = "width" if relation in ("left of", "right of") else "height"
        by = f"by at least {margin:.0%} of the image {axis}"
        if len(pairs) == 1:
            message = f"expected {phrase.format('to be')} ({by}), but it is not"
        else:
            message = f"expected {phrase.format('to be')} ({by}); {len(bad)} of {len(pairs)} pairs are not"
    return {"check": "position", "item": i, "ok": ok, "message": message}


def _size_check(i: int, item: Mapping[str, Any], include: Sequence[Mapping[str, Any]],
                instances: Sequence[Mapping[str, Any]], ratio: float) -> dict[str, Any]:
    label = str(item["size"])
    opposite = "smaller" if label == "larger" else "larger"
    compared = [j for j, other in enumerate(include) if j != i and other.get("size") == opposite]
    compared = compared or [j for j in range(len(include)) if j != i]
    found = item_instances(item, instances)
    others = [d for j in compared for d in item_instances(include[j], instances) if all(d is not f for f in found)]
    subject = f"the {item_noun(item, int(item['count']))}"
    names = " and ".join(f"the {item_noun(include[j], int(include[j]['count']))}" for j in compared)
    names = names or "the other objects"
    if not found or not others:
        missing = item_noun(item, 2) if not found else " or ".join(item_noun(include[j], 2) for j in compared)
        missing = missing or "other objects"
        message = f"expected {subject} to be clearly {label} than {names}, but there are no {missing}"
        return {"check": "size", "item": i, "ok": False, "message": message}
    if label == "larger":
        ok = min(d["area"] for d in found) >= ratio * max(d["area"] for d in others)
    else:
        ok = ratio * max(d["area"] for d in found) <= min(d["area"] for d in others)
    verb = "is" if int(item["count"]) == 1 else "are"
    if ok:
        message = f"{subject} {verb} clearly {label} than {names}"
    else:
        message = (f"expected {subject} to be clearly {label} than {names} (at least {ratio:g} times the area), "
                   f"but {'it is' if verb == 'is' else 'they are'} not")
    return {"check": "size", "item": i, "ok": ok, "message": message}


def _exclude_check(i: int, item: Mapping[str, Any], instances: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    found = item_instances(item, instances)
    limit = int(item["count"])
    ok = len(found) < limit
    if limit == 1:
        none = item_noun(item, 2)
        message = f"there are no {none}" if ok else f"expected no {none}, found {len(found)}"
    else:
        message = (f"there are fewer than {limit} {item_noun(item, limit)}" if ok
                   else f"expected fewer than {limit} {item_noun(item, limit)}, found {len(found)}")
    return {"check": "exclude", "item": i, "ok": ok, "message": message}


def evaluate_checklist(
    task: Mapping[str, Any],
    instances: Sequence[Mapping[str, Any]],
    width: int,
    height: int,
    *,
    position_margin: float = POSITION_MARGIN,
    size_ratio: float = SIZE_RATIO,
) -> list[dict[str, Any]]:
    """Every check of the task's checklist against the instances in a ``width`` x ``height`` image
    (see the module docstring), in order: per include item its ``count``, then ``region``,
    ``position`` and ``size`` where it has them; then each exclude item's ``exclude``.
    A ``position`` check never pairs an instance with itself ("a red circle left of a circle").
    """
    include = list(task.get("include", []))
    checks = []
    for i, item in enumerate(include):
        checks.append(_count_check(i, item, instances))
        if item.get("region"):
            checks.append(_region_check(i, item, instances, width, height))
        if item.get("position"):
            checks.append(_position_check(i, item, include, instances, width, height, position_margin))
        if item.get("size"):
            checks.append(_size_check(i, item, include, instances, size_ratio))
    for i, item in enumerate(task.get("exclude", []) or []):
        checks.append(_exclude_check(i, item, instances))
    return checks


# ------------------------------------------------------------------------------------ error types

#: The kinds of mistake a failed check shows (the paper's error types), in the order reports list them.
ERROR_TYPES: tuple[str, ...] = ("missing object", "count", "colour", "position", "size")
#: The error type of a failed check that is none of :data:`ERROR_TYPES` (a VLM judge's whole-prompt
#: question, a scorer with no checks), so that every failing image has at least one type.
OTHER_ERROR = "other"


def check_error_type(check: Mapping[str, Any], task: Mapping[str, Any],
                     detected: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The error type (one of :data:`ERROR_TYPES`, else :data:`OTHER_ERROR`) of one *failed* check of
    ``task``'s checklist, given the instances the scorer ``detected`` (its ``details["detected"]``;
    ``None`` when the scorer reports none, as a VLM judge):

    - ``count``: ``"colour"`` when the item names a colour, too few of its instances (of its colour)
      were found, and at least the asked number of its shape is there counting every colour (the right
      objects, some in the wrong colour); else ``"missing object"`` when none of the item's instances
      was found; else ``"count"``. Without ``detected``: ``"count"``;
    - ``exclude``: ``"count"`` (too many of an object asked to be fewer);
    - ``region``, ``position``: ``"position"``; ``size``: ``"size"``.
    """
    kind = str(check.get("check"))
    if kind == "count":
        include = list(task.get("include", []))
        index = check.get("item")
        if detected is None or not isinstance(index, int) or not 0 <= index < len(include):
            return "count"
        item = include[index]
        shapes = [d for d in detected if isinstance(d, Mapping) and d.get("class") == item.get("class")]
        found = sum(1 for d in shapes if not item.get("color") or d.get("color") == item["color"])
        want = int(item.get("count", 1))
        same_shape = len(shapes)
        if item.get("color") and found < want <= same_shape:
            return "colour"
        return "missing object" if not found else "count"
    if kind == "exclude":
        return "count"
    if kind in ("region", "position"):
        return "position"
    if kind == "size":
        return "size"
    return OTHER_ERROR


def error_types(details: Mapping[str, Any], task: Mapping[str, Any], passed: bool | None = None) -> list[str]:
    """The error types of an image, from its score's ``details`` (``checks`` and, when the scorer
    reports them, ``detected``) on ``task``: the type of each failed check (:func:`check_error_type`),
    each once, in the order of the checks. ``passed``: the score's verdict, when known: a passing
    image has no error type, and a failing one whose details name no failed check (an unreadable
    image, a WiScore under the bar) has ``["other"]``."""
    if passed is True:
        return []
    checks = details.get("checks")
    detected = details.get("detected")
    found = list(detected) if isinstance(detected, list) else None
    types: list[str] = []
    for check in checks if isinstance(checks, list) else []:
        if isinstance(check, Mapping) and not check.get("ok"):
            kind = check_error_type(check, task, found)
            if kind not in types:
                types.append(kind)
    if passed is False and not types:
        types.append(OTHER_ERROR)
    return types
