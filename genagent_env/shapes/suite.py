"""The ``shapes-geneval`` suite: GenEval++-style tasks over the ShapesWorld vocabulary.

Tasks use the GenEval++ schema and its seven tags. What each tag asks for here:

=============  ==================================================================================
``color``       2–4 single objects of different shapes, each in a different colour.
``count``       one shape, 2–8 of them, colour-free; GenEval-style ``exclude`` of count + 1.
``color_count`` two shapes, each with a colour and a count of 1–4 (at least one count > 1).
``color_pos``   two single objects, each with a colour, in opposite halves (left/right or top/bottom).
``pos_count``   two shapes, each with a count of 1–4, in opposite halves.
``pos_size``    two single objects in opposite halves, one ``larger`` and one ``smaller``.
``multi_count`` three shapes, each with a count of 1–4.
=============  ==================================================================================

Prompts read like GenEval++ user prompts: one natural sentence, counts in words (now and then in
digits), placement as "on the left" / "at the top" — compressed, so a clearer rewrite helps.

Splits: ``test`` has 280 tasks (40 per tag), always drawn with :data:`TEST_SEED`; ``train`` has
:data:`TRAIN_PER_TAG` per tag (5 250), drawn with the ``seed`` argument. The two share no prompt
text, and no checklist (the canonical include/exclude, order-free): the ``count`` and ``pos_size``
tags have few checklists (84 and 1 056), so train keeps only those the test split does not use,
each written in several ways. Each task has an ``id`` like ``"shapes-geneval/test/0007"``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np

from genagent_env.shapes.vocab import NUMBER_NAMES, SHAPES, plural
from genagent_env.tasks.schema import COLORS, GENEVAL_PP_TAGS

#: The seed of the fixed test split.
TEST_SEED = 2601_18543
TEST_PER_TAG = 40
TRAIN_PER_TAG = 750
_AXES = (("left", "right"), ("right", "left"), ("above", "below"), ("below", "above"))
_PLACE_WORDS = {
    "left": ("on the left", "on the left side", "to the left"),
    "right": ("on the right", "on the right side", "to the right"),
    "above": ("at the top", "in the upper part", "on top"),
    "below": ("at the bottom", "in the lower part", "at the bottom of the picture"),
}
_SIZE_WORDS = {"larger": ("big", "large", "huge"), "smaller": ("small", "little", "tiny")}
_OPENERS = ("a photo of ", "", "an image of ", "a picture with ", "a simple drawing of ", "an illustration of ")


def _number(n: int, rng: np.random.Generator, digits_chance: float = 0.15) -> str:
    return str(n) if rng.random() < digits_chance else NUMBER_NAMES[n]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _phrase(item: dict[str, Any], rng: np.random.Generator, size_word: str = "") -> str:
    """ "three red circles", "a red circle", "an orange star", "a big heart"."""
    words = " ".join(w for w in (size_word, item.get("color", "")) if w)
    noun = plural(item["class"], item["count"])
    head = f"{words} {noun}" if words else noun
    if item["count"] == 1:
        return f"{_article(head)} {head}"
    return f"{_number(item['count'], rng)} {head}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _pick(rng: np.random.Generator, options: tuple[Any, ...] | list[Any]) -> Any:
    return options[int(rng.integers(len(options)))]


# -- checklists, one sampler per tag -------------------------------------------------------------

def _classes(rng: np.random.Generator, k: int) -> list[str]:
    return [SHAPES[i] for i in rng.choice(len(SHAPES), size=k, replace=False)]


def _colors(rng: np.random.Generator, k: int) -> list[str]:
    return [COLORS[i] for i in rng.choice(len(COLORS), size=k, replace=False)]


def _counts(rng: np.random.Generator, k: int) -> list[int]:
    while True:
        counts = [int(c) for c in rng.integers(1, 5, size=k)]
        if max(counts) > 1:
            return counts


def _sample_color(rng: np.random.Generator) -> dict[str, Any]:
    k = int(rng.integers(2, 5))
    return {"include": [{"class": c, "count": 1, "color": col} for c, col in zip(_classes(rng, k), _colors(rng, k))]}


def _sample_count(rng: np.random.Generator) -> dict[str, Any]:
    cls, n = _pick(rng, SHAPES), int(rng.integers(2, 9))
    return {"include": [{"class": cls, "count": n}], "exclude": [{"class": cls, "count": n + 1}]}


def _sample_color_count(rng: np.random.Generator) -> dict[str, Any]:
    return {"include": [{"class": c, "count": n, "color": col}
                        for c, n, col in zip(_classes(rng, 2), _counts(rng, 2), _colors(rng, 2))]}


def _sample_color_pos(rng: np.random.Generator) -> dict[str, Any]:
    regions = _pick(rng, _AXES)
    return {"include": [{"class": c, "count": 1, "color": col, "region": r}
                        for c, col, r in zip(_classes(rng, 2), _colors(rng, 2), regions)]}


def _sample_pos_count(rng: np.random.Generator) -> dict[str, Any]:
    regions = _pick(rng, _AXES)
    return {"include": [{"class": c, "count": n, "region": r}
                        for c, n, r in zip(_classes(rng, 2), _counts(rng, 2), regions)]}


def _sample_pos_size(rng: np.random.Generator) -> dict[str, Any]:
    regions = _pick(rng, _AXES)
    sizes = ("larger", "smaller") if rng.random() < 0.5 else ("smaller", "larger")
    return {"include": [{"class": c, "count": 1, "region": r, "size": s}
                        for c, r, s in zip(_classes(rng, 2), regions, sizes)]}


def _sample_multi_count(rng: np.random.Generator) -> dict[str, Any]:
    return {"include": [{"class": c, "count": n} for c, n in zip(_classes(rng, 3), _counts(rng, 3))]}


# -- prompts, one writer per tag -----------------------------------------------------------------

def _write_list(task: dict[str, Any], rng: np.random.Generator) -> str:
    return _pick(rng, _OPENERS) + _join([_phrase(item, rng) for item in task["include"]])


_COUNT_TEMPLATES = (
    "a photo of {}", "{}", "an image with {}", "there are {} in the picture", "a picture showing {}",
    "{} scattered on a grey background", "a group of {}", "a drawing of {}", "{} in the image",
    "a simple picture of {}", "draw {}", "an illustration with {}",
)


def _write_count(task: dict[str, Any], rng: np.random.Generator) -> str:
    return _pick(rng, _COUNT_TEMPLATES).format(_phrase(task["include"][0], rng))


def _write_pair(task: dict[str, Any], rng: np.random.Generator) -> str:
    a, b = (_phrase(item, rng) for item in task["include"])
    return _pick(rng, ("a photo of {} and {}", "{} and {}", "an image with {} and {}", "{} together with {}",
                       "a picture of {} next to {}")).format(a, b)


def _write_placed(task: dict[str, Any], rng: np.random.Generator) -> str:
    items = task["include"]
    sizes = [_pick(rng, _SIZE_WORDS[item["size"]]) if item.get("size") else "" for item in items]
    a, b = (_phrase(item, rng, size) for item, size in zip(items, sizes))
    pa, pb = (_pick(rng, _PLACE_WORDS[item["region"]]) for item in items)
    template = _pick(rng, ("a photo of {a} {pa} and {b} {pb}", "{a} {pa} and {b} {pb}",
                           "{a} {pa}, {b} {pb}", "an image with {a} {pa} and {b} {pb}",
                           "{pa_cap}, {a}; {pb}, {b}"))
    return template.format(a=a, b=b, pa=pa, pb=pb, pa_cap=pa[0].upper() + pa[1:])


_SAMPLERS: dict[str, Callable[[np.random.Generator], dict[str, Any]]] = {
    "color": _sample_color, "count": _sample_count, "color_count": _sample_color_count,
    "color_pos": _sample_color_pos, "pos_count": _sample_pos_count, "pos_size": _sample_pos_size,
    "multi_count": _sample_multi_count,
}
_WRITERS: dict[str, Callable[[dict[str, Any], np.random.Generator], str]] = {
    "color": _write_list, "count": _write_count, "color_count": _write_pair, "color_pos": _write_placed,
    "pos_count": _write_placed, "pos_size": _write_placed, "multi_count": _write_list,
}


def checklist_key(task: dict[str, Any]) -> tuple[Any, ...]:
    """The task's checklist, independent of item order and prompt (used for split disjointness)."""
    def items(key: str) -> tuple[Any, ...]:
        return tuple(sorted(tuple(sorted((k, str(v)) for k, v in item.items())) for item in task.get(key, [])))
    return (items("include"), items("exclude"))


def _draw(tag: str, n: int, rng: np.random.Generator, banned_checklists: set[tuple[Any, ...]],
          banned_prompts: set[str], distinct_checklists: bool) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    seen_checklists: set[tuple[Any, ...]] = set()
    seen_prompts: set[str] = set()
    for _ in range(200 * n):
        if len(tasks) == n:
            break
        task = {"tag": tag, **_SAMPLERS[tag](rng)}
        key = checklist_key(task)
        if key in banned_checklists or (distinct_checklists and key in seen_checklists):
            continue
        prompt = _WRITERS[tag](task, rng)
        if prompt in banned_prompts or prompt in seen_prompts:
            continue
        seen_checklists.add(key)
        seen_prompts.add(prompt)
        tasks.append({**task, "prompt": prompt})
    if len(tasks) < n:
        raise RuntimeError(f"could only draw {len(tasks)} of {n} distinct {tag!r} tasks")
    return tasks


@lru_cache(maxsize=1)
def _test_split() -> tuple[dict[str, Any], ...]:
    tasks = []
    for t, tag in enumerate(GENEVAL_PP_TAGS):
        rng = np.random.default_rng([TEST_SEED, t])
        tasks += _draw(tag, TEST_PER_TAG, rng, set(), set(), distinct_checklists=True)
    return tuple(_finish(tasks, "test"))


@lru_cache(maxsize=4)
def _train_split(seed: int) -> tuple[dict[str, Any], ...]:
    test = _test_split()
    banned_checklists = {checklist_key(t) for t in test}
    banned_prompts = {t["prompt"] for t in test}
    tasks = []
    for t, tag in enumerate(GENEVAL_PP_TAGS):
        rng = np.random.default_rng([int(seed), 1000 + t])
        tasks += _draw(tag, TRAIN_PER_TAG, rng, banned_checklists, banned_prompts, distinct_checklists=False)
    return tuple(_finish(tasks, "train"))


def _finish(tasks: list[dict[str, Any]], split: str) -> list[dict[str, Any]]:
    # The samplers already write canonical tasks (the tests check normalize_task leaves them as they are).
    return [{**task, "id": f"shapes-geneval/{split}/{index:04d}", "split": split} for index, task in enumerate(tasks)]


def _copy(task: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a suite task (flat items, lists of scalars), much faster than copy.deepcopy."""
    out = dict(task)
    for key in ("include", "exclude"):
        if key in task:
            out[key] = [{k: list(v) if isinstance(v, list) else v for k, v in item.items()} for item in task[key]]
    return out


def make_shapes_geneval(split: str, seed: int = 0) -> list[dict[str, Any]]:
    """The ``shapes-geneval`` suite: ``"test"`` (280 tasks, fixed) or ``"train"`` (5 250 tasks drawn
    with ``seed``, disjoint from test). Returns fresh copies the caller may modify."""
    if split == "test":
        tasks = _test_split()
    elif split == "train":
        tasks = _train_split(int(seed))
    else:
        raise ValueError(f"unknown split {split!r}; choose 'test' or 'train'")
    return [_copy(task) for task in tasks]
