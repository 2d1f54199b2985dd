"""The knowledge table of ``shapes-wise``: facts that name a colour, shape, count or place indirectly.

A fact says, in everyday knowledge, what one attribute of an object is: "the colour of fresh grass"
is green, "a shape with six equal sides" is a hexagon, "as many … as there are days in a week" is
seven, "… up in the sky" is the top half. The table is one JSON file,
``genagent_env/shapes/knowledge.json``; :func:`load_knowledge` reads it (or a file of your own in
the same format) and checks every fact::

    {"id": "grass", "kind": "color", "value": "green", "category": "Biology",
     "phrases": ["the colour of fresh grass", "coloured like fresh grass"]}

- ``kind`` and ``value``: ``color`` (one of the ten GenEval colours), ``shape`` (a ShapesWorld
  shape), ``count`` (1–8) or ``place`` (``left``, ``right``, ``above``, ``below``: a half of the image).
- ``category``: one of WISE's six (``Cultural``, ``Time``, ``Space``, ``Biology``, ``Physics``,
  ``Chemistry``), for reports.
- ``phrases``: how a prompt says it. A colour phrase follows a noun ("a star <phrase>"); a shape
  phrase is a singular noun phrase with its article; a count phrase holds ``{things}`` (the plural
  object words: "as many {things} as there are days in a week"); a place phrase holds ``{object}``.
- ``two_step`` (optional): the fact needs a second step of reasoning ("the colour you get by
  mixing red and yellow paint").

No phrase may name its value in words the ShapesWorld generator reads literally (that would make
the fact a literal prompt): :func:`load_knowledge` reads each phrase as the generator would and
refuses one that gives the value away.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from genagent_env.shapes.vocab import MAX_COUNT, SHAPES
from genagent_env.tasks.schema import COLORS, REGIONS

#: The table shipped with the package.
KNOWLEDGE_FILE = Path(__file__).with_name("knowledge.json")
#: WISE's six categories, in WISE's order.
CATEGORIES = ("Cultural", "Time", "Space", "Biology", "Physics", "Chemistry")
KINDS = ("color", "shape", "count", "place")
#: The share of each (kind, category) group held out of training (groups of 3 facts or more).
HELDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class Fact:
    """One piece of world knowledge that names an attribute of an object (see the module docstring)."""

    id: str
    kind: str
    value: str | int
    category: str
    phrases: tuple[str, ...]
    two_step: bool = False


def _check_value(kind: str, value: Any) -> bool:
    if kind == "color":
        return value in COLORS
    if kind == "shape":
        return value in SHAPES
    if kind == "count":
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_COUNT
    return value in REGIONS


def _fact(raw: Any, where: str) -> Fact:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a fact must be an object, got {type(raw).__name__}")
    unknown = set(raw) - {"id", "kind", "value", "category", "phrases", "two_step"}
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    fact_id, kind, value, category = raw.get("id"), raw.get("kind"), raw.get("value"), raw.get("category")
    if not isinstance(fact_id, str) or not fact_id.strip():
        raise ValueError(f"{where}: 'id' must be a non-empty string")
    where = f"{where} ({fact_id!r})"
    if kind not in KINDS:
        raise ValueError(f"{where}: 'kind' must be one of {list(KINDS)}, got {kind!r}")
    if not _check_value(kind, value):
        allowed = {"color": list(COLORS), "shape": list(SHAPES), "count": f"1..{MAX_COUNT}",
                   "place": list(REGIONS)}[kind]
        raise ValueError(f"{where}: a {kind} fact's 'value' must be one of {allowed}, got {value!r}")
    if category not in CATEGORIES:
        raise ValueError(f"{where}: 'category' must be one of {list(CATEGORIES)}, got {category!r}")
    phrases = raw.get("phrases")
    if not isinstance(phrases, list) or not phrases or not all(isinstance(p, str) and p.strip() for p in phrases):
        raise ValueError(f"{where}: 'phrases' must be a non-empty list of non-empty strings")
    slot = {"count": "{things}", "place": "{object}"}.get(kind)
    for phrase in phrases:
        if slot is not None and phrase.count(slot) != 1:
            raise ValueError(f"{where}: every {kind} phrase must hold {slot} exactly once: {phrase!r}")
        if slot is None and "{" in phrase:
            raise ValueError(f"{where}: a {kind} phrase takes no placeholder: {phrase!r}")
    two_step = raw.get("two_step", False)
    if not isinstance(two_step, bool):
        raise ValueError(f"{where}: 'two_step' must be true or false")
    assert isinstance(value, (str, int))  # _check_value accepted it
    fact = Fact(fact_id.strip(), kind, value, category, tuple(p.strip() for p in phrases), two_step)
    for phrase in fact.phrases:
        leak = literal_reading(fact, phrase)
        if leak is not None:
            raise ValueError(f"{where}: the phrase {phrase!r} names the value literally ({leak}); "
                             "the generator would read it as a plain prompt")
    return fact


def literal_reading(fact: Fact, phrase: str) -> str | None:
    """What a literal reader (the ShapesWorld generator's) takes from ``phrase`` about the fact's
    value, when that is the value itself; ``None`` when the phrase keeps the value hidden."""
    from genagent_env.shapes.reader import read_prompt

    noun = "circle" if fact.value == "square" else "square"  # a shape the fact does not name
    probe = {"color": f"a {noun} {phrase}", "shape": phrase, "count": phrase.replace("{things}", f"{noun}s"),
             "place": phrase.replace("{object}", f"a {noun}")}[fact.kind]
    for mention in read_prompt(probe).mentions:
        if fact.kind == "color" and mention.color == fact.value:
            return f"colour {fact.value}"
        if fact.kind == "shape" and mention.cls == fact.value:
            return f"shape {fact.value}"
        if fact.kind == "count" and mention.cls == noun and mention.count == fact.value and not mention.count_vague:
            return f"count {fact.value}"
        if fact.kind == "place" and mention.region == fact.value:
            return f"region {fact.value}"
    return None


def load_knowledge(path: str | Path | None = None) -> tuple[Fact, ...]:
    """The facts of a knowledge table (the shipped one by default). Raises ``ValueError`` naming the
    file and the fact for anything malformed, a repeated id, or a phrase that gives its value away."""
    return _load(str(Path(path) if path is not None else KNOWLEDGE_FILE))


@lru_cache(maxsize=8)
def _load(path: str) -> tuple[Fact, ...]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: cannot read the knowledge table ({type(error).__name__}: {error})") from None
    facts_raw = data.get("facts") if isinstance(data, dict) else None
    if not isinstance(facts_raw, list) or not facts_raw:
        raise ValueError(f"{path}: expected an object with a non-empty list 'facts'")
    facts: list[Fact] = []
    seen: set[str] = set()
    for index, raw in enumerate(facts_raw):
        fact = _fact(raw, f"{path}: fact {index}")
        if fact.id in seen:
            raise ValueError(f"{path}: fact {index}: the id {fact.id!r} repeats")
        seen.add(fact.id)
        facts.append(fact)
    return tuple(facts)


def heldout_ids(facts: Sequence[Fact], fraction: float = HELDOUT_FRACTION) -> frozenset[str]:
    """The facts kept out of training: in every (kind, category) group of 3 facts or more, the
    ``fraction`` (at least one) whose ids hash lowest. Fixed by the ids alone, so it does not change
    with the order of the table; adding facts to a group may move that group's choice."""
    groups: dict[tuple[str, str], list[Fact]] = {}
    for fact in facts:
        groups.setdefault((fact.kind, fact.category), []).append(fact)
    held: set[str] = set()
    for members in groups.values():
        if len(members) < 3:
            continue
        ranked = sorted(members, key=lambda f: hashlib.blake2b(f.id.encode(), digest_size=8).digest())
        held.update(f.id for f in ranked[: max(1, round(fraction * len(members)))])
    return frozenset(held)


__all__ = ["CATEGORIES", "HELDOUT_FRACTION", "KINDS", "KNOWLEDGE_FILE", "Fact", "heldout_ids", "literal_reading",
           "load_knowledge"]
