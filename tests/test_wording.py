"""The shared wording: number words, plurals of class names, regions and relations, and the modules
that write tasks in English (checklist, VLM judge, teacher rewrite, SB3 strategies, ShapesWorld)
all saying the same thing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from genagent_env.scorers.checklist import evaluate_checklist
from genagent_env.scorers.vlm_judge import checklist_questions
from genagent_env.shapes.reader import read_prompt, task_from_prompt
from genagent_env.shapes.vocab import PLURALS, SHAPE_SYNONYMS, SHAPE_WORDS, SHAPES
from genagent_env.tasks import schema, wording
from genagent_env.tasks.prompts import explicit_prompt
from genagent_env.tasks.wording import (
    NUMBER_NAMES,
    describe_item,
    digits_and_word,
    number_value,
    number_word,
    plural_noun,
    region_half,
    region_phrase,
    relation_phrase,
)
from wrappers.strategies import compose_prompt

#: The 80 COCO class names GenEval's prompts use.
COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "computer mouse", "tv remote",
    "computer keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
    "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
#: Every COCO class whose plural is not the name plus "s".
COCO_NOT_PLUS_S = {
    "person": "people", "bus": "buses", "bench": "benches", "sheep": "sheep", "skis": "skis",
    "wine glass": "wine glasses", "knife": "knives", "sandwich": "sandwiches", "broccoli": "broccoli",
    "couch": "couches", "computer mouse": "computer mice", "scissors": "scissors", "toothbrush": "toothbrushes",
}


# ------------------------------------------------------------------------------------ numbers


def test_number_words_round_trip() -> None:
    assert [number_word(n) for n in range(4)] == ["zero", "one", "two", "three"]
    for n, word in NUMBER_NAMES.items():
        assert number_value(word) == n and number_word(number_value(word)) == word
    assert number_value(" Seven ") == 7
    assert number_value("dozen") is None and number_value("circle") is None
    assert number_word(13) == "13"  # past the named counts, digits


def test_counts_in_digits_and_words() -> None:
    assert digits_and_word(3) == "3 (three)"
    assert digits_and_word(12) == "12 (twelve)"
    assert digits_and_word(20) == "20"


@pytest.mark.parametrize("n", range(1, 13))
def test_the_reader_reads_every_number_word_written(n: int) -> None:
    (mention,) = read_prompt(f"{number_word(n)} crosses").mentions
    assert (mention.cls, mention.count) == ("cross", n)
    (mention,) = read_prompt(f"exactly {digits_and_word(n)} crosses").mentions
    assert (mention.count, mention.count_digits) == (n, True)


# ------------------------------------------------------------------------------------ plurals


@pytest.mark.parametrize("noun, plural", [
    ("person", "people"), ("sheep", "sheep"), ("mouse", "mice"), ("computer mouse", "computer mice"),
    ("knife", "knives"), ("bus", "buses"), ("wine glass", "wine glasses"), ("skis", "skis"),
    ("scissors", "scissors"), ("giraffe", "giraffes"), ("tie", "ties"), ("hair drier", "hair driers"),
    ("computer keyboard", "computer keyboards"), ("cherry", "cherries"), ("cross", "crosses"), ("box", "boxes"),
    ("child", "children"), ("fish", "fish"),
])
def test_plurals_of_tricky_names(noun: str, plural: str) -> None:
    assert plural_noun(noun, 2) == plural
    assert plural_noun(noun) == plural  # "several" is the default
    assert plural_noun(noun, 1) == noun


def test_plurals_of_all_coco_classes() -> None:
    assert len(set(COCO_CLASSES)) == 80
    for name in COCO_CLASSES:
        assert plural_noun(name, 2) == COCO_NOT_PLUS_S.get(name, name + "s"), name


def test_shape_plurals_read_back_as_their_shape() -> None:
    assert PLURALS["cross"] == "crosses" and PLURALS["circle"] == "circles"
    for word, shape in [(s, s) for s in SHAPES] + list(SHAPE_SYNONYMS.items()):
        assert SHAPE_WORDS[plural_noun(word, 2)] == (shape, True), word
    # Latin plurals are read too.
    assert SHAPE_WORDS["rhombi"] == SHAPE_WORDS["rhombuses"] == ("diamond", True)
    assert SHAPE_WORDS["annuli"] == ("ring", True)


def test_describe_item_is_one_function_everywhere() -> None:
    assert schema.describe_item is describe_item and schema.plural_noun is plural_noun
    assert describe_item({"class": "circle", "count": 2, "color": "red"}) == "2 red circles"
    assert describe_item({"class": "person", "count": 1}) == "1 person"


# -------------------------------------------------------------------- regions and relations


def test_region_and_relation_phrases() -> None:
    assert region_half("left") == "the left half of the image"
    assert region_half("above") == "the top half of the image"
    assert region_phrase("below") == "at the bottom"
    assert region_phrase("right", explicit=True) == "in the right half of the image"
    assert relation_phrase("left of") == "to the left of" and relation_phrase("above") == "above"
    assert relation_phrase("beside") == "beside"  # unknown relations are written as they are
    with pytest.raises(ValueError, match="region"):
        region_half("middle")
    with pytest.raises(ValueError, match="region"):
        region_phrase("middle")


def test_wording_covers_the_schema_words() -> None:
    assert set(wording.REGION_HALVES) == set(schema.REGIONS)
    assert set(wording.RELATION_PHRASES) == set(schema.RELATIONS)


# ------------------------------------------------------------ the writers say the same thing


PEOPLE_TASK = {
    "tag": "custom", "prompt": "two people above a dog, no sheep",
    "include": [{"class": "person", "count": 2, "position": ["above", 1]},
                {"class": "dog", "count": 1, "region": "left"}],
    "exclude": [{"class": "sheep", "count": 1}],
}


def test_every_writer_says_people_and_sheep() -> None:
    questions = [q["question"] for q in checklist_questions(PEOPLE_TASK)]
    assert "Are there exactly 2 people in the image (no more, no fewer)?" in questions
    assert "Is the image free of any sheep?" in questions
    assert "Are the people above the dog?" in questions

    prompt = explicit_prompt(PEOPLE_TASK)
    assert "Exactly 2 (two) people." in prompt and "No sheep." in prompt

    assert compose_prompt(PEOPLE_TASK, frozenset()).startswith("two people above the dog")
    assert "exactly 2 (two) people" in compose_prompt(PEOPLE_TASK, frozenset({"digits"}))

    one_person = [{"class": "person", "color": None, "centroid": (10, 10), "area": 50}]
    messages = [c["message"] for c in evaluate_checklist(PEOPLE_TASK, one_person, 100, 100)]
    assert "expected exactly 2 people, found 1" in messages


def test_every_writer_places_objects_with_the_same_phrases() -> None:
    task = {"tag": "custom", "prompt": "a star on the left of the circle, circle at the top",
            "include": [{"class": "star", "count": 1, "position": ["left of", 1]},
                        {"class": "circle", "count": 1, "region": "above"}]}
    half, relation = region_half("above"), relation_phrase("left of")
    explicit = explicit_prompt(task)
    assert half in explicit and relation in explicit
    questions = " ".join(q["question"] for q in checklist_questions(task))
    assert half in questions and relation in questions
    placed = compose_prompt(task, frozenset({"places"}))
    assert region_phrase("above", explicit=True) in placed and relation in placed
    assert region_phrase("above") in compose_prompt(task, frozenset())
    instances = [{"class": "star", "color": None, "centroid": (10, 80), "area": 50},
                 {"class": "circle", "color": None, "centroid": (50, 80), "area": 50}]
    messages = " ".join(c["message"] for c in evaluate_checklist(task, instances, 100, 100))
    assert half in messages and relation in messages
    # And what the teacher writes reads back to the same checklist.
    assert task_from_prompt(explicit)["include"] == task["include"]


def test_wording_imports_only_the_standard_library() -> None:
    """Every part of the package imports it, so it must stay free of heavy libraries."""
    tree = ast.parse(Path(wording.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported <= {"__future__", "collections.abc", "typing"}
