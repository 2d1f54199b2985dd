"""The teacher's prompt rewrite: a task checklist -> one explicit, unambiguous prompt.

Text-to-image models bind attributes and counts badly when a prompt packs everything into one
clause. :func:`explicit_prompt` writes one sentence per object group with the count in digits and
words ("Exactly 3 (three) red circles."), placement spelled out ("All of them in the left half of
the image."), relations and sizes stated as comparisons, and closes with "Nothing else in the
image.". Given the failed checks of the previous image it restates those requirements ("Make sure
there are exactly 3 (three) circles, not more."). It reads only the task dict, so it works for any
world and any generator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from genagent_env.tasks.wording import (
    REGION_HALVES,
    RELATION_PHRASES,
    digits_and_word,
    item_noun,
    region_half,
    relation_phrase,
)

# The verifier's count message ("expected exactly 3 circles, found 4") says which way the count was off.
_FOUND = re.compile(r"found (\d+)")


def _group_sentences(item: Mapping[str, Any]) -> list[str]:
    n = int(item.get("count", 1))
    size = {"larger": "large ", "smaller": "small "}.get(str(item.get("size")), "")
    sentence = f"Exactly {digits_and_word(n)} {size}{item_noun(item, n)}"
    if item.get("size"):
        sentence += f", clearly {item['size']} than all other objects"
    out = [sentence + "."]
    if item.get("region") in REGION_HALVES:
        subject = "It is" if n == 1 else "All of them are"
        out.append(f"{subject} in {region_half(item['region'])}.")
    return out


def _relation_sentence(item: Mapping[str, Any], include: Sequence[Mapping[str, Any]]) -> str | None:
    relation, index = item["position"]
    if relation not in RELATION_PHRASES or not 0 <= int(index) < len(include):
        return None
    other = item_noun(include[int(index)], 1)
    return f"Every {item_noun(item, 1)} is {relation_phrase(relation)} every {other}, with a clear gap."


def _emphasis(check: Mapping[str, Any], task: Mapping[str, Any]) -> str | None:
    """One "Make sure ..." sentence for a failed check, or None when the check names no item."""
    kind, index = check.get("check"), check.get("item")
    items = task.get("exclude", []) if kind == "exclude" else task.get("include", [])
    if not isinstance(index, int) or not 0 <= index < len(items):
        return None
    item = items[index]
    n = int(item.get("count", 1))
    if kind == "count":
        found = _FOUND.search(str(check.get("message", "")))
        bound = ", not more and not fewer"
        if found:
            bound = ", not more" if int(found.group(1)) > n else ", not fewer"
        return f"Make sure there {'is' if n == 1 else 'are'} exactly {digits_and_word(n)} {item_noun(item, n)}{bound}."
    if kind == "region" and item.get("region") in REGION_HALVES:
        return f"Make sure every {item_noun(item, 1)} is in {region_half(item['region'])}."
    if kind == "position" and item.get("position"):
        sentence = _relation_sentence(item, task.get("include", []))
        return "Make sure e" + sentence[1:] if sentence else None
    if kind == "size" and item.get("size"):
        verb = "is" if n == 1 else "are"
        return f"Make sure the {item_noun(item, n)} {verb} much {item['size']} than all other objects."
    if kind == "exclude":
        if n == 1:
            return f"Make sure there are no {item_noun(item, 2)}."
        return f"Make sure there are at most {digits_and_word(n - 1)} {item_noun(item, n - 1)}."
    return None


def explicit_prompt(task: Mapping[str, Any], failed_checks: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The teacher's explicit rewrite of a task (GenEval++ schema), restating ``failed_checks`` (the
    verifier's failed check dicts: ``{"check", "item", "message"...}``) when given.

    >>> explicit_prompt({"include": [{"class": "circle", "count": 3, "color": "red", "region": "left"}]})
    'Exactly 3 (three) red circles. All of them are in the left half of the image. Nothing else in the image.'
    """
    include = list(task.get("include", []))
    sentences: list[str] = []
    for item in include:
        sentences += _group_sentences(item)
    for item in include:
        if item.get("position"):
            relation = _relation_sentence(item, include)
            if relation:
                sentences.append(relation)
    included = {(str(i["class"]), i.get("color")) for i in include}
    for item in task.get("exclude", []) or []:
        if (str(item["class"]), item.get("color")) not in included and int(item.get("count", 1)) == 1:
            sentences.append(f"No {item_noun(item, 2)}.")
    for check in failed_checks or []:
        sentence = _emphasis(check, task)
        if sentence and sentence not in sentences:
            sentences.append(sentence)
    if not sentences:
        return str(task.get("prompt", ""))
    sentences.append("Nothing else in the image.")
    return " ".join(sentences)
