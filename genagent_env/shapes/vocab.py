"""The ShapesWorld vocabulary: shapes, the colour palette, number words, plurals and synonyms.

Everything here is plain data shared by the prompt reader, the renderer, the verifier and the task
suite, so the four always agree on what a word means and what a colour looks like.

The shapes were picked so that a pixel classifier tells them apart reliably when they are drawn
axis-aligned and without anti-aliasing: each has a distinct silhouette inside its bounding box
(corners, notches, holes, points), and only ``rectangle`` and ``oval`` are wider than tall.
"""

from __future__ import annotations

from genagent_env.tasks.schema import COLORS

#: The twelve shape classes, in a fixed order (the verifier's class index).
SHAPES: tuple[str, ...] = (
    "circle", "square", "rectangle", "oval", "triangle", "diamond",
    "star", "hexagon", "cross", "heart", "ring", "crescent",
)

#: Width / height of each shape's bounding box (everything else is drawn in a square box).
ASPECT: dict[str, float] = {shape: 1.0 for shape in SHAPES} | {"rectangle": 2.0, "oval": 2.0}

#: Plural forms that are not "add -s".
_IRREGULAR_PLURALS: dict[str, str] = {"cross": "crosses"}
PLURALS: dict[str, str] = {shape: _IRREGULAR_PLURALS.get(shape, shape + "s") for shape in SHAPES}

#: Other words a prompt may use for a shape (singular -> canonical class).
SHAPE_SYNONYMS: dict[str, str] = {
    "ball": "circle", "dot": "circle", "disc": "circle", "disk": "circle", "sphere": "circle",
    "box": "square", "cube": "square", "block": "square", "tile": "square",
    "bar": "rectangle", "brick": "rectangle", "strip": "rectangle",
    "ellipse": "oval", "egg": "oval",
    "pyramid": "triangle",
    "rhombus": "diamond", "lozenge": "diamond",
    "hex": "hexagon",
    "plus": "cross",
    "donut": "ring", "doughnut": "ring", "hoop": "ring", "annulus": "ring",
    "moon": "crescent",
}
_SYNONYM_PLURALS: dict[str, str] = {"box": "boxes", "rhombus": "rhombi", "plus": "pluses", "hex": "hexes",
                                    "ellipse": "ellipses"}

#: Every word (singular or plural, canonical or synonym) that names a shape -> (class, is_plural).
SHAPE_WORDS: dict[str, tuple[str, bool]] = {}
for _shape in SHAPES:
    SHAPE_WORDS[_shape] = (_shape, False)
    SHAPE_WORDS[PLURALS[_shape]] = (_shape, True)
for _word, _shape in SHAPE_SYNONYMS.items():
    SHAPE_WORDS[_word] = (_shape, False)
    SHAPE_WORDS[_SYNONYM_PLURALS.get(_word, _word + "s")] = (_shape, True)
SHAPE_WORDS["rhombuses"] = ("diamond", True)
SHAPE_WORDS["crosses"] = ("cross", True)

#: The exact RGB of each GenEval colour. Pairwise distances are >= 90, so a tolerance of 45 maps
#: slightly compressed or resized pixels back to the right colour and never to a wrong one.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 25),
    "orange": (255, 140, 0),
    "yellow": (255, 230, 0),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "purple": (130, 40, 180),
    "pink": (255, 130, 200),
    "brown": (120, 70, 20),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
}
assert tuple(PALETTE) == COLORS

#: Mid grey: none of the ten colours, so white and black objects both stand out.
BACKGROUND: tuple[int, int, int] = (128, 128, 128)

#: Other words for the ten colours.
COLOR_SYNONYMS: dict[str, str] = {
    "crimson": "red", "scarlet": "red", "violet": "purple", "magenta": "pink", "rose": "pink",
    "gold": "yellow", "golden": "yellow", "lime": "green", "navy": "blue", "cyan": "blue",
    "azure": "blue", "chocolate": "brown", "tan": "brown", "grey": "", "gray": "",
}
#: Every word that names a palette colour -> colour (grey is the background, so it names none).
COLOR_WORDS: dict[str, str] = {c: c for c in COLORS} | {w: c for w, c in COLOR_SYNONYMS.items() if c}

#: The most instances of one class a ShapesWorld task asks for (counts are 1..MAX_COUNT, design.md §6);
#: an exclude item may say "fewer than MAX_COUNT + 1" (GenEval's "exclude count + 1" idiom).
MAX_COUNT = 8

#: Number words -> value. "one".."eight" are what the suite uses; the rest are read leniently.
NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "single": 1, "pair": 2,
    "couple": 2, "trio": 3, "dozen": 12,
}
#: Value -> the word the suite and the teacher write.
NUMBER_NAMES: dict[int, str] = {v: w for w, v in list(NUMBER_WORDS.items())[:13]}

#: Words that make a prompt vague (a diffusion model reads them as "anything goes").
VAGUE_WORDS: frozenset[str] = frozenset({
    "some", "several", "few", "many", "various", "maybe", "perhaps", "possibly", "kind", "sort",
    "roughly", "about", "around", "approximately", "assorted", "bunch", "lots", "numerous", "random",
    "somewhere", "ish", "probably", "etc",
})

#: Size words -> the schema's size label.
SIZE_WORDS: dict[str, str] = {
    "big": "larger", "large": "larger", "larger": "larger", "bigger": "larger", "huge": "larger",
    "giant": "larger", "largest": "larger", "biggest": "larger",
    "small": "smaller", "smaller": "smaller", "little": "smaller", "tiny": "smaller",
    "smallest": "smaller", "mini": "smaller",
}


def plural(shape: str, count: int = 2) -> str:
    """``plural("cross") == "crosses"``; the singular when ``count == 1``."""
    return shape if count == 1 else PLURALS.get(shape, shape + "s")
