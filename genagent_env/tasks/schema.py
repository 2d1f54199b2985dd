"""The task schema: GenEval++ metadata, which also covers GenEval's.

A task is a dict::

    {"tag": "color_pos",
     "include": [{"class": "circle", "count": 1, "color": "red", "region": "left"},
                 {"class": "square", "count": 2, "position": ["right of", 0]}],
     "exclude": [{"class": "star", "count": 1}],          # optional
     "prompt": "a photo of a red circle on the left and two squares right of it"}

Item fields: ``class`` and ``count`` are required; ``color`` is one word; ``region`` is the half of
the image every instance must lie in (GenEval++); ``position`` is GenEval's ``[relation, index]``, a
relation to another included item; ``size`` says this item is ``larger`` or ``smaller`` than the
other items. An ``exclude`` item means "fewer than ``count`` instances". Other keys (``id``,
``split``...) are kept as they are.

:func:`normalize_task` validates a task and returns a normalised deep copy (synonyms mapped to the
canonical words below), raising ``ValueError`` with a precise message for anything else. How a task is
written in English (plurals, number words, regions) lives in :mod:`genagent_env.tasks.wording`;
:func:`describe_item` and :func:`plural_noun` are importable from here as well.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from genagent_env.checks import short_repr
from genagent_env.tasks.wording import describe_item, plural_noun

__all__ = ["COLORS", "GENEVAL_PP_TAGS", "MAX_ITEM_COUNT", "REGIONS", "RELATIONS", "SIZES", "describe_item",
           "normalize_task", "plural_noun"]

#: The seven GenEval++ categories (the columns of the paper's GenEval++ table).
GENEVAL_PP_TAGS = ("color", "count", "color_count", "color_pos", "pos_count", "pos_size", "multi_count")
#: The ten GenEval colours.
COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white")
REGIONS = ("left", "right", "above", "below")
RELATIONS = ("left of", "right of", "above", "below")
SIZES = ("larger", "smaller")
#: The largest item count a task may ask for (GenEval's are single digits).
MAX_ITEM_COUNT = 10_000

_REGION_SYNONYMS = {
    "left": "left", "right": "right",
    "above": "above", "top": "above", "upper": "above", "up": "above",
    "below": "below", "bottom": "below", "lower": "below", "down": "below",
}
_SIZE_SYNONYMS = {
    "larger": "larger", "large": "larger", "big": "larger", "bigger": "larger",
    "smaller": "smaller", "small": "smaller", "little": "smaller",
}
_RELATION_SYNONYMS = {
    "left of": "left of", "left": "left of", "to the left of": "left of",
    "right of": "right of", "right": "right of", "to the right of": "right of",
    "above": "above", "over": "above", "on top of": "above",
    "below": "below", "under": "below", "beneath": "below",
}


def _word(value: Any, synonyms: Mapping[str, str]) -> str | None:
    """The canonical word for ``value`` (a string), or ``None``."""
    return synonyms.get(value.strip().lower()) if isinstance(value, str) else None


def _item(raw: Any, where: str, n_include: int | None) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object, got {type(raw).__name__}")
    item = dict(raw)
    name = item.get("class")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}.class must be a non-empty string")
    item["class"] = name.strip().lower()
    count = item.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_ITEM_COUNT:
        raise ValueError(f"{where}.count must be an integer from 1 to {MAX_ITEM_COUNT}, got {short_repr(count)}")
    item["count"] = count
    if "color" in item:
        if not isinstance(item["color"], str) or not item["color"].strip():
            raise ValueError(f"{where}.color must be a non-empty string")
        item["color"] = item["color"].strip().lower()
    if n_include is None:  # exclude items carry class, count and colour only
        return item
    if "region" in item:
        region = _word(item["region"], _REGION_SYNONYMS)
        if region is None:
            raise ValueError(f"{where}.region must be one of {REGIONS}, got {short_repr(item['region'])}")
        item["region"] = region
    if "size" in item:
        size = _word(item["size"], _SIZE_SYNONYMS)
        if size is None:
            raise ValueError(f"{where}.size must be one of {SIZES}, got {short_repr(item['size'])}")
        item["size"] = size
    if "position" in item:
        position = item["position"]
        if not isinstance(position, (list, tuple)) or len(position) != 2:
            raise ValueError(f"{where}.position must be [relation, index], got {short_repr(position)}")
        relation = _word(position[0], _RELATION_SYNONYMS)
        index = position[1]
        if relation is None:
            raise ValueError(f"{where}.position relation must be one of {RELATIONS}, got {short_repr(position[0])}")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_include:
            raise ValueError(f"{where}.position index must point at another include item, got {short_repr(index)}")
        item["position"] = [relation, index]
    return item


def normalize_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a task in the GenEval++ / GenEval schema and return a normalised deep copy."""
    if not isinstance(task, Mapping):
        raise ValueError(f"a task must be a dict, got {type(task).__name__}")
    try:
        out = copy.deepcopy(dict(task))
    except RecursionError:
        raise ValueError("the task is nested too deeply to copy") from None
    prompt = out.get("prompt")
    if not isinstance(prompt, str) or not prompt or prompt.isspace():  # no strip(): it copies a huge prompt
        raise ValueError("task.prompt must be a non-empty string")
    tag = out.get("tag", "custom")
    if not isinstance(tag, (str, int, float, type(None))):  # str() of a nested container can recurse
        raise ValueError(f"task.tag must be a string, got {type(tag).__name__}")
    out["tag"] = tag if isinstance(tag, str) else short_repr(tag)  # repr, unlike str, never fails on a huge int
    include = out.get("include", [])
    if not isinstance(include, list):
        raise ValueError("task.include must be a list")
    out["include"] = [_item(item, f"include[{i}]", len(include)) for i, item in enumerate(include)]
    for i, item in enumerate(out["include"]):
        if "position" in item and item["position"][1] == i:
            raise ValueError(f"include[{i}].position refers to the item itself")
    if "exclude" in out:
        exclude = out["exclude"]
        if not isinstance(exclude, list):
            raise ValueError("task.exclude must be a list")
        out["exclude"] = [_item(item, f"exclude[{i}]", None) for i, item in enumerate(exclude)]
    return out
