"""The shared wording: number words, plurals of class names, regions and relations in English.

The checklist's messages, the VLM judge's questions, the teacher's prompt rewrite, the SB3 prompt
strategies and the ShapesWorld vocabulary all write the same phrases, and the ShapesWorld reader reads
them back; they take them from here so that the phrases stay the same everywhere::

    >>> number_word(3), number_value("three"), digits_and_word(3)
    ('three', 3, '3 (three)')
    >>> plural_noun("person", 2), plural_noun("sheep", 2), plural_noun("wine glass", 2)
    ('people', 'sheep', 'wine glasses')
    >>> describe_item({"class": "circle", "count": 2, "color": "red"})
    '2 red circles'
    >>> region_half("above"), region_phrase("left"), relation_phrase("left of")
    ('the top half of the image', 'on the left', 'to the left of')

The plurals are right for the 80 COCO class names GenEval uses (``person``, ``sheep``, ``mouse``,
``knife``, ``skis``, ``scissors``...) and the ShapesWorld shapes and their synonyms. Standard library
only: every part of the package may import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Value -> number word, for the counts a task may ask for (larger counts are written in digits).
NUMBER_NAMES: dict[int, str] = dict(enumerate((
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
)))
#: Number word -> value (the inverse of :data:`NUMBER_NAMES`).
NUMBER_VALUES: dict[str, int] = {word: n for n, word in NUMBER_NAMES.items()}

# Plurals that the spelling rules in plural_noun get wrong. Only the last word of a class name is
# inflected ("wine glass" -> "wine glasses", "computer mouse" -> "computer mice").
_IRREGULAR_PLURALS: dict[str, str] = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "goose": "geese", "tooth": "teeth", "foot": "feet", "knife": "knives", "leaf": "leaves",
    "wolf": "wolves", "loaf": "loaves", "shelf": "shelves", "potato": "potatoes", "tomato": "tomatoes",
}
# Nouns whose plural is the word itself: same-form plurals, and class names that are already plural
# (COCO's "skis" and "scissors"), which the "-s -> -es" rule would otherwise turn into "skises".
_SAME_PLURALS: frozenset[str] = frozenset({
    "sheep", "deer", "fish", "moose", "aircraft", "broccoli", "skis", "scissors", "glasses", "pants",
    "jeans", "shorts",
})

#: Region (the schema's ``region``) -> the half of the image it names.
REGION_HALVES: dict[str, str] = {"left": "left half", "right": "right half", "above": "top half",
                                 "below": "bottom half"}
# The casual way a prompt places a group; region_phrase(..., explicit=True) spells the half out instead.
_REGION_SHORT: dict[str, str] = {"left": "on the left", "right": "on the right", "above": "at the top",
                                 "below": "at the bottom"}
#: Relation (GenEval's ``position[0]``) -> how a sentence says it ("a circle to the left of a star").
RELATION_PHRASES: dict[str, str] = {"left of": "to the left of", "right of": "to the right of",
                                    "above": "above", "below": "below"}


def number_word(n: int) -> str:
    """``3`` -> ``"three"``; a count without a name in :data:`NUMBER_NAMES` stays in digits (``"13"``)."""
    return NUMBER_NAMES.get(n, str(n))


def number_value(word: str) -> int | None:
    """``"three"`` -> ``3`` (case and surrounding spaces ignored); ``None`` when ``word`` is no number word."""
    return NUMBER_VALUES.get(word.strip().lower())


def digits_and_word(n: int) -> str:
    """``3`` -> ``"3 (three)"``: a count stated both ways, so no reader can miss it; ``"13"`` past twelve."""
    return f"{n} ({NUMBER_NAMES[n]})" if n in NUMBER_NAMES else str(n)


def plural_noun(noun: str, count: int = 2) -> str:
    """The English plural of a lowercase class name (of its last word), or ``noun`` itself when
    ``count == 1``: ``"cross"`` -> ``"crosses"``, ``"person"`` -> ``"people"``, ``"sheep"`` -> ``"sheep"``.
    """
    if count == 1:
        return noun
    head, _, last = noun.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        last = _IRREGULAR_PLURALS[last]
    elif last in _SAME_PLURALS:
        pass
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def item_noun(item: Mapping[str, Any], count: int) -> str:
    """A task item's colour and class, inflected for ``count``: ``"red circle"``, ``"red circles"``."""
    colour = f"{item['color']} " if item.get("color") else ""
    return colour + plural_noun(str(item["class"]), count)


def describe_item(item: Mapping[str, Any]) -> str:
    """``{"class": "circle", "count": 2, "color": "red"}`` -> ``"2 red circles"`` (for messages)."""
    return f"{item['count']} {item_noun(item, int(item['count']))}"


def region_half(region: str) -> str:
    """``"above"`` -> ``"the top half of the image"``. Raises ``ValueError`` for an unknown region."""
    if region not in REGION_HALVES:
        raise ValueError(f"region must be one of {tuple(REGION_HALVES)}, got {region!r}")
    return f"the {REGION_HALVES[region]} of the image"


def region_phrase(region: str, explicit: bool = False) -> str:
    """Where a group goes, as a prompt says it: ``"on the left"``, or with ``explicit``
    ``"in the left half of the image"`` (text-to-image models follow the spelled-out form better).
    Raises ``ValueError`` for an unknown region."""
    if region not in _REGION_SHORT:
        raise ValueError(f"region must be one of {tuple(_REGION_SHORT)}, got {region!r}")
    return f"in {region_half(region)}" if explicit else _REGION_SHORT[region]


def relation_phrase(relation: str) -> str:
    """``"left of"`` -> ``"to the left of"``; a relation this module does not know is written as it is."""
    return RELATION_PHRASES.get(relation, relation)
