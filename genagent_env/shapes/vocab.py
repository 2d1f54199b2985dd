"""The ShapesWorld vocabulary: shapes, the colour palette, number words, plurals and synonyms.

Everything here is plain data shared by the prompt reader, the renderer, the verifier and the task
suite, so the four always agree on what a word means and what a colour looks like. Number words and
plurals come from :mod:`genagent_env.tasks.wording`, so the words the reader accepts are the words the
rest of the package writes.

The shapes were picked so that a pixel classifier tells them apart reliably when they are drawn
axis-aligned and without anti-aliasing: each has a distinct silhouette inside its bounding box
(corners, notches, holes, points), and only ``rectangle`` and ``oval`` are wider than tall.
"""

from __future__ import annotations

from genagent_env.tasks.schema import COLORS
from genagent_env.tasks.wording import NUMBER_NAMES, NUMBER_VALUES  # noqa: F401  (NUMBER_NAMES: the suite's)
from genagent_env.tasks.wording import plural_noun as plural  # the suite's name for it

#: The twelve shape classes, in a fixed order (the verifier's class index).
SHAPES: tuple[str, ...] = (
    "circle", "square", "rectangle", "oval", "triangle", "diamond",
    "star", "hexagon", "cross", "heart", "ring", "crescent",
)

#: Width / height of each shape's bounding box (everything else is drawn in a square box).
ASPECT: dict[str, float] = dict.fromkeys(SHAPES, 1.0) | {"rectangle": 2.0, "oval": 2.0}

#: The plural of each shape.
PLURALS: dict[str, str] = {shape: plural(shape) for shape in SHAPES}

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
# Latin plurals people write besides the English ones ("rhombuses", "annuluses").
_LATIN_PLURALS: dict[str, str] = {"rhombi": "diamond", "annuli": "ring"}

#: Every word (singular or plural, canonical or synonym) that names a shape -> (class, is_plural).
SHAPE_WORDS: dict[str, tuple[str, bool]] = {}
for _word, _shape in [(shape, shape) for shape in SHAPES] + list(SHAPE_SYNONYMS.items()):
    SHAPE_WORDS[_word] = (_shape, False)
    SHAPE_WORDS[plural(_word)] = (_shape, True)
SHAPE_WORDS.update({_word: (_shape, True) for _word, _shape in _LATIN_PLURALS.items()})

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

#: The most instances of one class a ShapesWorld task asks for (counts are 1..MAX_COUNT);
#: an exclude item may say "fewer than MAX_COUNT + 1" (GenEval's "exclude count + 1" idiom).
MAX_COUNT = 8

#: Words the reader takes as a count -> value: the number words ("one".."eight" are what the suite
#: writes; :data:`NUMBER_NAMES` maps back) and, read leniently, a few collective ones.
NUMBER_WORDS: dict[str, int] = NUMBER_VALUES | {"single": 1, "pair": 2, "couple": 2, "trio": 3, "dozen": 12}

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
