"""The ShapesWorld prompt reader: free text -> object mentions + how clearly the prompt is written.

Both the generator (what should I draw, and how likely am I to get it wrong?) and the verifier's
``parse_prompt`` (what should I check?) read prompts through :func:`read_prompt`.

Reading is lenient. ``"a photo of three red circles on the left and 2 blue squares to the right of
them"`` gives two mentions: 3 red circles in the left half, and 2 blue squares right of mention 0.
The reader understands

- shapes, plurals and synonyms (``"balls"`` -> circle, ``"box"`` -> square), see :mod:`.vocab`; a
  shape word before a synonym of itself is one object (``"a crescent moon"``), and ``one``/``ones``
  after a colour or size stands for the last shape named (``"a red circle and two blue ones"``);
- counts as digits, number words, ``a``/``an``/``single``/``a pair of``, ``exactly``; a plural with
  no number is read as 2 and a vague quantity (``some`` 2, ``several``/``a few`` 3, ``many`` 5) as a
  rough number, both flagged ``count_vague``;
- colours and sizes written before the noun (``"a big red star"``) or after it (``"a star that is
  red"``, ``"a star larger than the heart"``);
- regions (``"on the left"``, ``"in the upper half of the image"``) and relations to other
  objects (``"to the right of the circle"``, ``"above them"``, ``"to its right"``): a direction
  word followed by an object or a pronoun (or after ``its``/``their``) is a relation, otherwise a
  region. A pronoun relation written right before an object (``"a circle, and right of it a
  square"``) places that object relative to the one before; in a chain (``"a star left of a heart
  left of a hexagon"``) each relation places the object just named. Otherwise a spatial phrase
  belongs to the object before it in its sentence, else the first object after it, else (in a
  sentence with no object, e.g. ``"All of them on the left half of the image."``) to the objects
  of the previous sentence;
- references: ``"the circles"`` / ``"every circle"`` name an object already mentioned, and
  sentences starting with *make sure*, *ensure*, *remember*, *important*... restate objects
  instead of adding new ones (they mark the restated aspects as *emphasised*);
- negation: ``"no squares"``, ``"without a star"``, ``"zero hearts"`` -> an exclude item.

Besides the content, the reader measures **clarity features** that the failure model uses, per
mention: how many objects share its sentence (``crowd``), whether its count is written in digits or
with ``exactly``, whether its region is spelled out (``"... half/side of the image"``), whether a
size is stated as a comparison, which aspects a later sentence emphasises, and where in the prompt
it appears (``word_index``: text encoders truncate long prompts); per prompt: vague words and
whether it asks for nothing else (``"nothing else"``, ``"no other objects"``, ``"only"``).

Only the first :data:`MAX_READ_CHARS` characters are read, as a text encoder would truncate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from genagent_env.shapes.vocab import COLOR_WORDS, NUMBER_WORDS, SHAPE_WORDS, SHAPES, SIZE_WORDS, VAGUE_WORDS

#: Characters of a prompt the reader looks at; the rest is ignored, as a text encoder truncates.
MAX_READ_CHARS = 4000

_TOKEN = re.compile(r"[a-z]+|\d+|[.;!?\n]")
_DIGIT_THEN_WORD = re.compile(r"(\d+)\s*\(\s*([a-z]+)\s*\)")
_SENTENCE_END = frozenset(".;!?\n")

_DEFINITE = frozenset({"the", "these", "those", "that", "this", "each", "every", "all", "both"})
_ARTICLES = frozenset({"a", "an"})
_VAGUE_COUNTS = {"several": 3, "few": 3, "some": 2, "many": 5, "multiple": 3, "numerous": 5, "lots": 5}
#: Words that may sit between a determiner/number and the noun without ending the modifier span.
_SPAN_FILLERS = frozenset({
    "of", "exactly", "precisely", "just", "only", "no", "any", "without", "zero", "other", "more",
    "solid", "colored", "coloured", "plain", "simple", "flat", "bright", "dark", "light", "filled",
    "shaped", "shape", "identical", "separate", "distinct", "individual", "total", "same",
}) | _DEFINITE | _ARTICLES | set(_VAGUE_COUNTS)
_NEGATIONS = frozenset({"no", "without", "zero"})
_PRONOUNS = frozenset({"it", "them", "they", "those", "these", "ones", "one", "that"})
_POSSESSIVES = frozenset({"its", "their"})
#: "one"/"ones" after a colour or size stands for the previous shape class.
_ONE_NOUNS = {"one": False, "ones": True}
_EMPHASIS_OPENERS = frozenset({"make", "ensure", "remember", "important", "note", "again", "really", "definitely",
                               "be", "check", "crucially", "critically", "please", "must"})
_REGION_OF = {"left": "left", "right": "right", "top": "above", "above": "above", "upper": "above", "over": "above",
              "bottom": "below", "below": "below", "lower": "below", "under": "below", "beneath": "below",
              "underneath": "below"}
_RELATION_OF = {"left": "left of", "right": "right of", "above": "above", "below": "below"}
_EXPLICIT_REGION_WORDS = frozenset({"half", "side", "part", "image", "picture", "canvas", "frame"})
_NOTHING_ELSE = (" nothing else ", " no other ", " only ", " plain background ", " empty background ")
_SIZE_EXPLICIT_WORDS = frozenset({"than", "clearly", "much", "twice", "noticeably", "visibly", "obviously"})


@dataclass
class Mention:
    """One group of objects the prompt asks for, and how clearly it asks.

    Attributes:
        cls: The shape class.
        count: How many (vague quantities are approximated, see ``count_vague``).
        color: The colour, or ``None`` when the prompt gives none.
        region: ``left``/``right``/``above``/``below``: the half of the image every instance is in.
        relation: ``(relation, index)``: placed ``relation`` of mention ``index`` (GenEval position).
        size: ``larger``/``smaller`` than the other objects.
        sentence: Index of the sentence that introduced it.
        word_index: Position of its noun in the prompt, in words.
        crowd: Number of objects introduced in the same sentence (1 = its own clause).
        count_digits: The count is written in digits.
        count_exact: The count is stated with ``exactly`` (or ``precisely``/``only``).
        count_vague: The count is a vague quantity or an unnumbered plural.
        region_explicit: The region or relation is spelled out (``"the left half of the image"``).
        size_explicit: The size is stated as a comparison (``"clearly larger than ..."``).
        emphasis: Aspects restated by a later sentence: ``count``, ``color``, ``place``, ``size``, ``presence``.
    """

    cls: str
    count: int = 1
    color: str | None = None
    region: str | None = None
    relation: tuple[str, int] | None = None
    size: str | None = None
    sentence: int = 0
    word_index: int = 0
    crowd: int = 1
    count_digits: bool = False
    count_exact: bool = False
    count_vague: bool = False
    region_explicit: bool = False
    size_explicit: bool = False
    emphasis: set[str] = field(default_factory=set)


@dataclass
class Reading:
    """What a prompt asks for (``mentions``, ``excludes``) and prompt-level clarity features."""

    mentions: list[Mention]
    excludes: list[dict[str, Any]]
    n_words: int
    n_sentences: int
    vague_words: int
    nothing_else: bool


@dataclass
class _Noun:
    pos: int
    cls: str
    plural: bool
    span_start: int
    pronoun: bool = False  # "one"/"ones" standing for the previous shape ("a red circle and a blue one")


def _same_number(match: re.Match[str]) -> str:
    digits, word = match.group(1), match.group(2)
    return digits if NUMBER_WORDS.get(word) == int(digits) else match.group(0)


def _tokens(text: str) -> list[str]:
    text = text[:MAX_READ_CHARS].lower().replace("-", " ")
    # "3 (three)" states one number twice: keep the digits.
    text = _DIGIT_THEN_WORD.sub(_same_number, text)
    return _TOKEN.findall(text)


def _sentences(tokens: list[str]) -> list[tuple[int, int]]:
    """(start, end) token ranges of the sentences (the end tokens themselves excluded)."""
    out, start = [], 0
    for i, token in enumerate(tokens):
        if token in _SENTENCE_END:
            if i > start:
                out.append((start, i))
            start = i + 1
    if start < len(tokens):
        out.append((start, len(tokens)))
    return out


def _is_span_word(token: str) -> bool:
    return (token in _SPAN_FILLERS or token in COLOR_WORDS or token in SIZE_WORDS or token in NUMBER_WORDS
            or token.isdigit())


def _span_start(tokens: list[str], pos: int, lower: int) -> int:
    i = pos
    while i - 1 >= lower and _is_span_word(tokens[i - 1]):
        i -= 1
    return i


class _Parser:
    """One pass over the tokens, sentence by sentence (see the module docstring for the rules)."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.mentions: list[Mention] = []
        self.excludes: list[dict[str, Any]] = []
        self.previous_group: list[int] = []
        self.last_cls: str | None = None  # the class of the last shape noun read, for "a blue one"

    def _is_one_noun(self, pos: int, start: int, end: int) -> bool:
        """Whether "one"/"ones" at pos stands for the last shape: after a colour or size word
        ("a blue one", "three big red ones"), and not itself a count of a following noun."""
        tokens = self.tokens
        if tokens[pos] not in _ONE_NOUNS or self.last_cls is None or pos == start:
            return False
        if tokens[pos - 1] not in COLOR_WORDS and tokens[pos - 1] not in SIZE_WORDS:
            return False
        following = tokens[pos + 1] if pos + 1 < end else ""
        return following not in SHAPE_WORDS and following not in COLOR_WORDS and following not in SIZE_WORDS

    # -- nouns -------------------------------------------------------------------------------
    def _modifiers(self, span: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"count": None, "digits": False, "exact": False, "vague": False, "color": None,
                               "size": None, "definite": False, "negated": False, "article": False}
        for token in span:
            if token.isdigit():
                out["count"], out["digits"] = min(int(token[:4]), 1000), True
            elif token in NUMBER_WORDS:
                out["count"], out["digits"] = NUMBER_WORDS[token], False
            elif token in _VAGUE_COUNTS and out["count"] is None:
                out["count"], out["vague"] = _VAGUE_COUNTS[token], True
            elif token in COLOR_WORDS:
                out["color"] = COLOR_WORDS[token]
            elif token in SIZE_WORDS:
                out["size"] = SIZE_WORDS[token]
            elif token in ("exactly", "precisely", "only"):
                out["exact"] = True
            elif token in _DEFINITE:
                out["definite"] = True
            elif token in _ARTICLES:
                out["article"] = True
            if token in _NEGATIONS:
                out["negated"] = True
        if out["count"] == 0:
            out["negated"] = True
        return out

    def _find_existing(self, cls: str, color: str | None) -> int | None:
        candidates = [i for i, m in enumerate(self.mentions) if m.cls == cls]
        if color is not None:
            candidates = [i for i in candidates if self.mentions[i].color in (color, None)] or candidates
        return candidates[0] if candidates else None

    def _noun(self, noun: _Noun, sentence: int, emphasis: bool, as_target: bool = False) -> int | None:
        """Resolve a noun to a mention index (new or referenced); ``None`` for an exclude."""
        mods = self._modifiers(self.tokens[noun.span_start : noun.pos])
        if mods["negated"]:
            exclude: dict[str, Any] = {"class": noun.cls, "count": 1}
            if mods["color"]:
                exclude["color"] = mods["color"]
            if exclude not in self.excludes:
                self.excludes.append(exclude)
            return None
        existing = self._find_existing(noun.cls, mods["color"])
        if noun.pronoun and mods["definite"] and mods["color"]:  # "the red one": whichever object is red
            by_colour = [i for i, m in enumerate(self.mentions) if m.color == mods["color"]]
            existing = by_colour[-1] if by_colour else existing
        if existing is not None and (emphasis or mods["definite"] or (as_target and not mods["article"])):
            mention = self.mentions[existing]
            if emphasis:
                mention.emphasis.add("presence")
                if mods["count"] is not None:
                    mention.emphasis.add("count")
                if mods["color"]:
                    mention.emphasis.add("color")
                if mods["size"]:
                    mention.emphasis.add("size")
            if mention.color is None and mods["color"]:
                mention.color = mods["color"]
            if mention.size is None and mods["size"]:
                mention.size = mods["size"]
            return existing
        count, vague = mods["count"], mods["vague"]
        if count is None:
            count, vague = (2, True) if noun.plural else (1, False)
        self.mentions.append(Mention(
            cls=noun.cls, count=count, color=mods["color"], size=mods["size"], sentence=sentence,
            word_index=noun.pos, count_digits=mods["digits"], count_exact=mods["exact"], count_vague=vague,
        ))
        return len(self.mentions) - 1

    # -- spatial phrases ---------------------------------------------------------------------
    def _target(self, start: int, end: int, nouns: dict[int, _Noun]) -> tuple[str, int] | None:
        """What a relation points at: ("noun", pos) or ("pronoun", pos), within a few tokens."""
        for i in range(start, min(end, start + 5)):
            token = self.tokens[i]
            if i in nouns:
                return ("noun", i)
            if token in _PRONOUNS and not (token == "that" and i + 1 < end and self.tokens[i + 1] in ("is", "are")):
                return ("pronoun", i)
            if not _is_span_word(token):
                return None
        return None

    def _spatial(self, i: int, end: int, nouns: dict[int, _Noun]) -> dict[str, Any] | None:
        """The spatial phrase at token i (a direction word), or None when it is not one."""
        token = self.tokens[i]
        following = self.tokens[i + 1 : min(end, i + 5)]
        explicit = any(t in _EXPLICIT_REGION_WORDS for t in following)
        if token in ("left", "right", "top", "bottom"):
            relation = _RELATION_OF[_REGION_OF[token]]
            if i + 1 < end and self.tokens[i + 1] == "of":
                target = self._target(i + 2, end, nouns)
                if target is not None:
                    return {"relation": relation, "target": target, "explicit": True, "end": target[1]}
            if i - 1 >= 0 and self.tokens[i - 1] in _POSSESSIVES:  # "to its right": of the object before
                return {"relation": relation, "target": ("pronoun", i - 1), "explicit": True, "end": i}
            return {"region": _REGION_OF[token], "explicit": explicit}
        if token in ("above", "below", "over", "under", "beneath", "underneath"):
            target = self._target(i + 1, end, nouns)
            if target is not None:
                return {"relation": _RELATION_OF[_REGION_OF[token]], "target": target, "explicit": True,
                        "end": target[1]}
            return {"region": _REGION_OF[token], "explicit": explicit}
        if token in ("upper", "lower"):
            return {"region": _REGION_OF[token], "explicit": explicit}
        return None

    def _apply_spatial(self, phrase: dict[str, Any], owners: list[int]) -> None:
        for owner in owners:
            mention = self.mentions[owner]
            if "region" in phrase:
                if mention.region is None and mention.relation is None:
                    mention.region = phrase["region"]
                    mention.region_explicit = phrase["explicit"]
                elif mention.region == phrase["region"]:
                    mention.region_explicit |= phrase["explicit"]
                continue
            target = phrase.get("target_index")
            if mention.relation is None and mention.region is None and target not in (None, owner):
                mention.relation = (phrase["relation"], target)
                mention.region_explicit = True

    # -- sentences ---------------------------------------------------------------------------
    def sentence(self, index: int, start: int, end: int) -> None:
        tokens = self.tokens
        nouns: dict[int, _Noun] = {}
        for pos in range(start, end):
            lower = max([p + 1 for p in nouns] + [start])
            if tokens[pos] in SHAPE_WORDS:
                cls, is_plural = SHAPE_WORDS[tokens[pos]]
                if pos + 1 < end and SHAPE_WORDS.get(tokens[pos + 1], ("",))[0] == cls:
                    continue  # "crescent moon", "ring donut": a shape word modifying the same shape
                first = pos - 1 if pos - 1 >= lower and SHAPE_WORDS.get(tokens[pos - 1], ("",))[0] == cls else pos
                nouns[pos] = _Noun(pos, cls, is_plural, _span_start(tokens, first, lower))
                self.last_cls = cls
            elif self.last_cls is not None and self._is_one_noun(pos, start, end):
                nouns[pos] = _Noun(pos, self.last_cls, _ONE_NOUNS[tokens[pos]], _span_start(tokens, pos, lower),
                                   pronoun=True)
        span_tokens = {p for n in nouns.values() for p in range(n.span_start, n.pos)}
        emphasis = bool(end > start and tokens[start] in _EMPHASIS_OPENERS)
        n_before = len(self.mentions)
        anchors: list[int] = []  # mention indices named in this sentence, in order
        pending: list[dict[str, Any]] = []  # spatial phrases seen before any object of the sentence
        resolved: dict[int, int | None] = {}
        emphasised_aspects: set[str] = set()

        def resolve(pos: int, as_target: bool = False) -> int | None:
            if pos not in resolved:
                resolved[pos] = self._noun(nouns[pos], index, emphasis, as_target)
            return resolved[pos]

        last_target: int | None = None  # the mention just named as a relation's object, for chains

        pos = start
        while pos < end:
            token = tokens[pos]
            if pos in nouns:
                was_target = pos in resolved  # named as the object of a relation: not an anchor
                mention = resolve(pos)
                last_target = mention if was_target else None
                if mention is not None and mention not in anchors and not was_target:
                    anchors.append(mention)
                    for waiting in pending:
                        self._attach(waiting, [mention], anchors, resolve)
                    pending = []
                pos += 1
                continue
            if pos in span_tokens:
                pos += 1
                continue
            phrase = self._spatial(pos, end, nouns)
            if phrase is not None:
                emphasised_aspects.add("place")
                before = anchors[-1] if anchors else (self.previous_group[-1] if self.previous_group else None)
                if "relation" in phrase and phrase["target"][0] == "pronoun" and before is not None \
                        and self._fronted(phrase["end"], end, nouns):
                    # "a circle, and right of it a square": the next object, placed relative to the last one
                    pending.append({**phrase, "target_index": before})
                elif anchors:
                    owner_index = anchors[-1]
                    placed = (
                        self.mentions[owner_index].relation is not None or self.mentions[owner_index].region is not None
                    )
                    if "relation" in phrase and placed and last_target is not None:
                        owner_index = last_target  # "a star left of a heart left of a hexagon": the heart's relation
                    self._attach(phrase, [owner_index], anchors, resolve)
                else:
                    pending.append(phrase)
                pos += 1
                continue
            if token in COLOR_WORDS and anchors:
                emphasised_aspects.add("color")
                owner = self.mentions[anchors[-1]]
                if owner.color is None:
                    owner.color = COLOR_WORDS[token]
            elif token in SIZE_WORDS and anchors:
                emphasised_aspects.add("size")
                owner = self.mentions[anchors[-1]]
                owner.size = owner.size or SIZE_WORDS[token]
                tail = tokens[pos + 1 : min(end, pos + 3)]
                owner.size_explicit |= "than" in tail or (pos > start and tokens[pos - 1] in _SIZE_EXPLICIT_WORDS)
                if "than" in tail:  # "larger than the heart": the heart is a reference, not a new object
                    target = self._target(pos + 1 + tail.index("than") + 1, end, nouns)
                    if target is not None and target[0] == "noun":
                        resolve(target[1], as_target=True)
            elif token in ("exactly", "precisely") and emphasis:
                emphasised_aspects.add("count")
            pos += 1

        if not anchors and pending and self.previous_group:
            for phrase in pending:
                self._attach(phrase, self.previous_group, self.previous_group, resolve)
            anchors_for_emphasis = self.previous_group
        else:
            anchors_for_emphasis = anchors
        if emphasis:
            for mention in anchors_for_emphasis:
                self.mentions[mention].emphasis |= emphasised_aspects | {"presence"}
        new = list(range(n_before, len(self.mentions)))
        for mention in new:
            self.mentions[mention].crowd = len(new)
        if anchors:
            self.previous_group = anchors

    def _fronted(self, phrase_end: int, end: int, nouns: dict[int, _Noun]) -> bool:
        """Whether a spatial phrase ending at phrase_end comes right before the object it places
        ("right of it a square"), i.e. only modifier words lie between it and the next noun."""
        i = phrase_end + 1
        while i < end and i not in nouns and _is_span_word(self.tokens[i]):
            i += 1
        return i in nouns

    def _attach(self, phrase: dict[str, Any], owners: list[int], anchors: list[int], resolve: Any) -> None:
        phrase = dict(phrase)
        if "relation" in phrase and "target_index" not in phrase:
            kind, pos = phrase["target"]
            if kind == "noun":
                phrase["target_index"] = resolve(pos, as_target=True)
            else:  # a pronoun: the object named just before the owner
                owner_first = min(owners)
                earlier = [a for a in anchors if a < owner_first] or [m for m in self.previous_group if m < owner_first]
                if not earlier:
                    earlier = [m for m in range(len(self.mentions)) if m < owner_first]
                phrase["target_index"] = earlier[-1] if earlier else None
        self._apply_spatial(phrase, owners)


@lru_cache(maxsize=4096)
def _read_cached(prompt: str) -> Reading:
    tokens = _tokens(prompt)
    parser = _Parser(tokens)
    sentences = _sentences(tokens)
    for index, (start, end) in enumerate(sentences):
        parser.sentence(index, start, end)
    return Reading(
        mentions=parser.mentions,
        excludes=parser.excludes,
        n_words=sum(1 for t in tokens if t not in _SENTENCE_END),
        n_sentences=len(sentences),
        vague_words=sum(1 for t in tokens if t in VAGUE_WORDS),
        nothing_else=_asks_for_nothing_else(tokens),
    )


def _asks_for_nothing_else(tokens: list[str]) -> bool:
    joined = " " + " ".join(tokens) + " "
    return any(p in joined for p in _NOTHING_ELSE)


def read_prompt(prompt: str) -> Reading:
    """Read a prompt into mentions and clarity features. Never raises on any string."""
    if not isinstance(prompt, str):
        prompt = str(prompt)
    cached = _read_cached(prompt[:MAX_READ_CHARS])  # only this much is read, so only this much is a cache key
    # Callers may not mutate the cached reading: hand out copies of the mutable parts.
    return Reading(
        mentions=[Mention(**{**m.__dict__, "emphasis": set(m.emphasis)}) for m in cached.mentions],
        excludes=[dict(e) for e in cached.excludes],
        n_words=cached.n_words, n_sentences=cached.n_sentences, vague_words=cached.vague_words,
        nothing_else=cached.nothing_else,
    )


def task_from_prompt(prompt: str) -> dict[str, Any]:
    """The GenEval++ task (tag ``custom``) a prompt asks for. Raises ``ValueError`` when the
    prompt names no known shape."""
    reading = read_prompt(prompt)
    if not reading.mentions and not reading.excludes:
        raise ValueError(f"the prompt names no known shape (known shapes: {', '.join(SHAPES)})")
    include = []
    for mention in reading.mentions:
        item: dict[str, Any] = {"class": mention.cls, "count": mention.count}
        if mention.color:
            item["color"] = mention.color
        if mention.region:
            item["region"] = mention.region
        if mention.relation:
            item["position"] = [mention.relation[0], mention.relation[1]]
        if mention.size:
            item["size"] = mention.size
        include.append(item)
    task: dict[str, Any] = {"tag": "custom", "include": include, "prompt": prompt}
    if reading.excludes:
        task["exclude"] = reading.excludes
    return task
