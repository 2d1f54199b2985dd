"""The ``shapes-wise`` suite: ShapesWorld tasks whose prompts say what to draw through world knowledge.

WISE in miniature. Each prompt names one or two of its attributes through a fact of the knowledge
table (:mod:`genagent_env.shapes.knowledge`) instead of literally — "a star the colour of fresh
grass", "as many circles as there are days in a week", "the usual symbol of love up in the sky
and a square on the ground" — while the checklist (GenEval++ schema, checked to the pixel by the
ShapesWorld verifier) holds the literal answer. The ShapesWorld generator reads prompts literally,
as FLUX does: passed through unchanged, a knowledge prompt mostly fails; rewritten into literal
terms, it succeeds at the usual rates.

Each task carries, beside its checklist, a ``wise`` block in WISE's field names: ``Category``
(the WISE category of its first fact: Cultural, Time, Space, Biology, Physics, Chemistry),
``Subcategory`` (that fact's kind), ``prompt_id``, ``Explanation`` (the prompt in literal terms),
and ours: ``facts`` (the fact ids), ``heldout_fact`` (a fact never seen in training) and
``two_step``. Its ``tag`` is the GenEval++ tag of its checklist.

Splits:

- ``test``: 240 tasks, 40 per category, fixed by :data:`TEST_SEED`. 30 per category combine facts
  that all appear in training, in combinations training never has (same facts, other objects,
  counts, colours or pairings); 10 per category use a fact held out of training
  (``wise["heldout_fact"]``): what a model without that knowledge cannot do.
- ``train``: :data:`TRAIN_PER_CATEGORY` per category (3 600), drawn with ``seed`` from the
  non-held-out facts; no combination (facts + checklist) and no prompt of the test split.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from genagent_env.shapes.knowledge import CATEGORIES, Fact, heldout_ids, load_knowledge
from genagent_env.shapes.reader import task_from_prompt
from genagent_env.shapes.suite import checklist_key
from genagent_env.shapes.vocab import NUMBER_NAMES, SHAPES, plural
from genagent_env.tasks.schema import COLORS

TEST_SEED = 2503_07265  # WISE's arXiv number
TEST_SEEN_PER_CATEGORY = 30
TEST_HELDOUT_PER_CATEGORY = 10
TRAIN_PER_CATEGORY = 600
#: The most objects of a group whose count comes from a fact when another group is in the image.
_PAIRED_COUNT_MAX = 5
_AXES = (("left", "right"), ("right", "left"), ("above", "below"), ("below", "above"))
_PLACE_WORDS = {"left": "on the left", "right": "on the right", "above": "at the top", "below": "at the bottom"}
_OPENERS = ("", "a picture of ", "an image of ", "a simple drawing of ", "draw ")
#: How often each kind of fact leads a task (place facts need two objects, shapes a single one).
_KIND_WEIGHTS = {"color": 0.35, "count": 0.3, "shape": 0.2, "place": 0.15}


def _article(words: str) -> str:
    return "an" if words[0] in "aeiou" else "a"


class _Builder:
    """Draws one task: the objects, which attributes come from facts, and both wordings."""

    def __init__(self, rng: np.random.Generator, facts: dict[str, list[Fact]]) -> None:
        self.rng, self.facts = rng, facts

    def pick(self, options: list[Any] | tuple[Any, ...]) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def draw(self, lead: Fact) -> dict[str, Any] | None:
        """A task led by ``lead`` (its first fact), maybe with a second fact; ``None`` if the draw
        cannot be completed (the caller draws again)."""
        rng = self.rng
        two_groups = lead.kind == "place" or rng.random() < 0.45
        n = 2 if two_groups else 1
        classes = [SHAPES[i] for i in rng.choice(len(SHAPES), size=n, replace=False)]
        colours = [COLORS[i] for i in rng.choice(len(COLORS), size=n, replace=False)]
        items: list[dict[str, Any]] = [{"class": c, "count": 1} for c in classes]
        for item, colour in zip(items, colours):
            if rng.random() < 0.6:
                item["color"] = colour
        for item in items:
            if rng.random() < 0.35:
                item["count"] = int(rng.integers(2, 4 if two_groups else 7))
        if two_groups and (lead.kind == "place" or rng.random() < 0.3):
            first, second = self.pick(_AXES)
            items[0]["region"], items[1]["region"] = first, second

        slots: list[tuple[int, Fact]] = []  # (item index, fact)
        if not self.assign(items, 0, lead, slots):
            return None
        if rng.random() < 0.3:  # a second fact, on any object
            kind = self.pick([k for k in _KIND_WEIGHTS if k != "place" or "region" in items[0]])
            second = self.pick(self.facts[kind]) if self.facts.get(kind) else None
            if second is not None and second.id != lead.id:
                target = int(rng.integers(n))
                self.assign(items, target, second, slots)
        colours_used = [item["color"] for item in items if "color" in item]
        if len({item["class"] for item in items}) < n or len(set(colours_used)) < len(colours_used):
            return None
        return self.finish(items, slots)

    def assign(self, items: list[dict[str, Any]], index: int, fact: Fact, slots: list[tuple[int, Fact]]) -> bool:
        """Let ``fact`` set one attribute of ``items[index]``; False when it cannot."""
        item = items[index]
        taken = {f.kind for i, f in slots if i == index}
        if fact.kind in taken:
            return False
        if fact.kind == "color":
            item["color"] = fact.value
        elif fact.kind == "shape":  # a shape phrase names one object
            if "count" in taken:
                return False
            item["count"] = 1
            item["class"] = fact.value
        elif fact.kind == "count":
            limit = _PAIRED_COUNT_MAX if len(items) > 1 else 8
            if int(fact.value) > limit or "shape" in taken:
                return False
            item["count"] = int(fact.value)
        else:
            if "region" not in item:
                return False
            other = items[1 - index]
            item["region"] = fact.value
            other["region"] = {"left": "right", "right": "left", "above": "below", "below": "above"}[str(fact.value)]
        slots.append((index, fact))
        return True

    def phrase(self, item: dict[str, Any], facts: dict[str, Fact], literal: bool) -> str:
        """How the prompt names one object group (with facts, or literally for the rewrite)."""
        rng, n = self.rng, int(item["count"])
        colour_fact = None if literal else facts.get("color")
        colour_word = item.get("color", "") if colour_fact is None else ""
        shape_fact = None if literal else facts.get("shape")
        count_fact = None if literal else facts.get("count")
        if shape_fact is not None:
            text = self.pick(shape_fact.phrases)
            if colour_fact is not None:
                text += ", " + self.pick(colour_fact.phrases)
            elif colour_word:
                text += f", in {colour_word}"
        else:
            noun = " ".join(w for w in (colour_word, plural(item["class"], n)) if w)
            if count_fact is not None:
                text = self.pick(count_fact.phrases).replace("{things}", noun)
            elif n == 1:
                text = f"{_article(noun)} {noun}"
            else:
                text = f"{NUMBER_NAMES[n] if literal or rng.random() < 0.8 else n} {noun}"
            if colour_fact is not None:
                text += (" " if n == 1 and count_fact is None else ", all ") + self.pick(colour_fact.phrases)
        region = item.get("region")
        place_fact = None if literal else facts.get("place")
        if place_fact is not None:
            text = self.pick(place_fact.phrases).replace("{object}", text)
        elif region is not None:
            text = f"{text} {_PLACE_WORDS[region]}"
        return text

    def finish(self, items: list[dict[str, Any]], slots: list[tuple[int, Fact]]) -> dict[str, Any]:
        per_item: list[dict[str, Fact]] = [{} for _ in items]
        for index, fact in slots:
            per_item[index][fact.kind] = fact
        opener = self.pick(_OPENERS)
        parts = [self.phrase(item, per_item[i], literal=False) for i, item in enumerate(items)]
        literal = [self.phrase(item, {}, literal=True) for item in items]
        prompt = opener + " and ".join(parts)
        lead = slots[0][1]
        order = ("class", "count", "color", "region")  # the schema's canonical key order
        task: dict[str, Any] = {
            "tag": _tag(items),
            "include": [{key: item[key] for key in order if key in item} for item in items],
            "prompt": prompt[0].upper() + prompt[1:] + ".",
            "wise": {
                "Category": lead.category,
                "Subcategory": f"{lead.kind} knowledge",
                "Explanation": (" and ".join(literal)).capitalize() + ".",
                "facts": [fact.id for _, fact in slots],
                "two_step": any(fact.two_step for _, fact in slots),
            },
        }
        return task


def _tag(items: list[dict[str, Any]]) -> str:
    """The GenEval++ tag of a checklist."""
    counted = any(item["count"] > 1 for item in items)
    coloured = any("color" in item for item in items)
    if any("region" in item for item in items):
        return "pos_count" if counted else "color_pos"
    if len(items) == 1:
        return ("color_count" if coloured else "count") if counted else "color"
    if counted:
        return "color_count" if coloured else "multi_count"
    return "color"


def asks_for_the_same(prompt: str, explanation: str) -> bool:
    """Whether ``prompt`` asks for exactly what ``explanation`` asks for, as the ShapesWorld prompt
    reader reads both: the same objects with the same counts, colours and places.

    With a task's ``wise["Explanation"]`` (its request in literal terms) and the prompt an agent
    sent to the tool, this tells whether the agent resolved the task's facts: a wrong answer here
    is a knowledge error, made before any image was drawn. ``False`` when ``prompt`` names no shape.
    """
    try:
        return checklist_key(task_from_prompt(prompt)) == checklist_key(task_from_prompt(explanation))
    except ValueError:
        return False


def combination_key(task: dict[str, Any]) -> tuple[Any, ...]:
    """What a split must not share with another: the facts used and the checklist."""
    return (tuple(sorted(task["wise"]["facts"])), checklist_key(task))


def _by_kind(facts: list[Fact]) -> dict[str, list[Fact]]:
    out: dict[str, list[Fact]] = {}
    for fact in facts:
        out.setdefault(fact.kind, []).append(fact)
    return out


def _draw(rng: np.random.Generator, leads: list[Fact], support: list[Fact], n: int,
          banned: set[tuple[Any, ...]], banned_prompts: set[str]) -> list[dict[str, Any]]:
    """``n`` tasks led by facts drawn from ``leads`` (weighted by kind), second facts from ``support``."""
    builder = _Builder(rng, _by_kind(support))
    by_kind = _by_kind(leads)
    kinds = [k for k in _KIND_WEIGHTS if by_kind.get(k)]
    weights = np.array([_KIND_WEIGHTS[k] for k in kinds])
    tasks: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for _ in range(400 * n):
        if len(tasks) == n:
            return tasks
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        task = builder.draw(builder.pick(by_kind[kind]))
        if task is None:
            continue
        key = combination_key(task)
        if key in banned or key in seen or task["prompt"] in banned_prompts:
            continue
        seen.add(key)
        tasks.append(task)
    raise RuntimeError(f"could only draw {len(tasks)} of {n} distinct shapes-wise tasks")


def _categories(facts: tuple[Fact, ...]) -> list[str]:
    return [c for c in CATEGORIES if any(f.category == c for f in facts)]


@lru_cache(maxsize=4)
def _test_split(path: str) -> tuple[dict[str, Any], ...]:
    facts = load_knowledge(path)
    held = heldout_ids(facts)
    seen_facts = [f for f in facts if f.id not in held]
    tasks: list[dict[str, Any]] = []
    for c, category in enumerate(_categories(facts)):
        rng = np.random.default_rng([TEST_SEED, c])
        leads = [f for f in seen_facts if f.category == category]
        for task in _draw(rng, leads, seen_facts, TEST_SEEN_PER_CATEGORY, set(), set()):
            tasks.append({**task, "wise": {**task["wise"], "heldout_fact": False}})
        held_leads = [f for f in facts if f.category == category and f.id in held]
        if held_leads:
            for task in _draw(rng, held_leads, seen_facts, TEST_HELDOUT_PER_CATEGORY, set(), set()):
                tasks.append({**task, "wise": {**task["wise"], "heldout_fact": True}})
    return tuple(_finish(tasks, "test"))


@lru_cache(maxsize=4)
def _train_split(path: str, seed: int) -> tuple[dict[str, Any], ...]:
    facts = load_knowledge(path)
    held = heldout_ids(facts)
    seen_facts = [f for f in facts if f.id not in held]
    test = _test_split(path)
    banned = {combination_key(task) for task in test}
    banned_prompts = {task["prompt"] for task in test}
    tasks: list[dict[str, Any]] = []
    for c, category in enumerate(_categories(facts)):
        rng = np.random.default_rng([int(seed), 1000 + c])
        leads = [f for f in seen_facts if f.category == category]
        for task in _draw(rng, leads, seen_facts, TRAIN_PER_CATEGORY, banned, banned_prompts):
            tasks.append({**task, "wise": {**task["wise"], "heldout_fact": False}})
    return tuple(_finish(tasks, "train"))


def _finish(tasks: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    out = []
    for index, task in enumerate(tasks):
        task_id = f"shapes-wise/{split}/{index:04d}"
        out.append({**task, "id": task_id, "split": split, "wise": {**task["wise"], "prompt_id": task_id}})
    return out


def make_shapes_wise(split: str, seed: int = 0, knowledge: str | Path | None = None) -> list[dict[str, Any]]:
    """The ``shapes-wise`` suite: ``"test"`` (240 tasks, fixed) or ``"train"`` (3 600 tasks drawn with
    ``seed``), from the shipped knowledge table or the file ``knowledge`` (same format). Returns
    fresh copies the caller may modify."""
    import copy

    from genagent_env.shapes.knowledge import KNOWLEDGE_FILE

    path = str(Path(knowledge) if knowledge is not None else KNOWLEDGE_FILE)
    if split == "test":
        tasks = _test_split(path)
    elif split == "train":
        tasks = _train_split(path, int(seed))
    else:
        raise ValueError(f"unknown split {split!r}; choose 'test' or 'train'")
    return copy.deepcopy(list(tasks))


__all__ = ["TEST_SEED", "TRAIN_PER_CATEGORY", "combination_key", "make_shapes_wise"]
