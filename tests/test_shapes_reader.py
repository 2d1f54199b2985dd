"""The ShapesWorld prompt reader: lenient parsing, clarity features, hostile text."""

from __future__ import annotations

import pytest

from genagent_env.shapes.reader import MAX_READ_CHARS, read_prompt, task_from_prompt
from genagent_env.tasks.prompts import explicit_prompt


def items(prompt: str) -> list[dict]:
    return task_from_prompt(prompt)["include"]


def test_the_example_from_the_brief():
    assert items("a photo of three red circles on the left and 2 blue squares to the right of them") == [
        {"class": "circle", "count": 3, "color": "red", "region": "left"},
        {"class": "square", "count": 2, "color": "blue", "position": ["right of", 0]},
    ]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("five stars", [("star", 5)]),
        ("5 stars", [("star", 5)]),
        ("exactly 5 (five) stars", [("star", 5)]),
        ("a star", [("star", 1)]),
        ("an oval and one ring", [("oval", 1), ("ring", 1)]),
        ("a single heart", [("heart", 1)]),
        ("a pair of crosses", [("cross", 2)]),
        ("eight hexagons", [("hexagon", 8)]),
        ("two balls and a box", [("circle", 2), ("square", 1)]),
        ("three moons, a rhombus and 4 donuts", [("crescent", 3), ("diamond", 1), ("ring", 4)]),
        ("hearts", [("heart", 2)]),
        ("Three Red CIRCLES!!!", [("circle", 3)]),
    ],
)
def test_counts_plurals_and_synonyms(prompt, expected):
    assert [(i["class"], i["count"]) for i in items(prompt)] == expected


def test_colours_before_and_after_the_noun():
    assert items("a star that is red next to a blue ring") == [
        {"class": "star", "count": 1, "color": "red"},
        {"class": "ring", "count": 1, "color": "blue"},
    ]
    assert items("a crimson heart")[0]["color"] == "red"


def test_regions_relations_and_sizes():
    assert items("a big star on the left and a small heart on the right") == [
        {"class": "star", "count": 1, "region": "left", "size": "larger"},
        {"class": "heart", "count": 1, "region": "right", "size": "smaller"},
    ]
    assert items("a circle above a square") == [
        {"class": "circle", "count": 1, "position": ["above", 1]},
        {"class": "square", "count": 1},
    ]
    assert items("On the left, a red circle; at the bottom, a blue square")[1]["region"] == "below"
    assert items("two triangles in the upper half of the image")[0]["region"] == "above"


def test_sentences_without_objects_refer_to_the_previous_ones():
    prompt = "Exactly 3 red circles. All of them on the left half of the image. Exactly 1 blue star."
    assert items(prompt) == [
        {"class": "circle", "count": 3, "color": "red", "region": "left"},
        {"class": "star", "count": 1, "color": "blue"},
    ]


def test_references_and_emphasis_do_not_add_objects():
    prompt = ("Exactly 3 red circles. The circles are on the left half of the image. Exactly 2 blue squares. "
              "Make sure there are exactly 3 red circles, not more. "
              "Make sure every square is to the right of every circle.")
    reading = read_prompt(prompt)
    assert [(m.cls, m.count) for m in reading.mentions] == [("circle", 3), ("square", 2)]
    assert reading.mentions[0].region == "left"
    assert reading.mentions[1].relation == ("right of", 0)
    assert {"count", "presence"} <= reading.mentions[0].emphasis
    assert "place" in reading.mentions[1].emphasis


def test_negation_is_an_exclude():
    task = task_from_prompt("two circles and no stars")
    assert task["include"] == [{"class": "circle", "count": 2}]
    assert task["exclude"] == [{"class": "star", "count": 1}]


def test_clarity_features():
    crowded = read_prompt("three red hearts, two blue stars and a green ring on the left")
    assert [m.crowd for m in crowded.mentions] == [3, 3, 3]
    assert not any(m.count_digits or m.count_exact for m in crowded.mentions)
    assert not crowded.mentions[2].region_explicit
    clear = read_prompt("Exactly 3 (three) red hearts. Exactly 1 (one) green ring. "
                        "It is in the left half of the image. "
                        "Nothing else in the image.")
    assert [m.crowd for m in clear.mentions] == [1, 1]
    assert all(m.count_digits and m.count_exact for m in clear.mentions)
    assert clear.mentions[1].region_explicit and clear.nothing_else
    assert read_prompt("maybe several stars, roughly").vague_words == 3


def test_a_prompt_with_no_known_shape_is_a_value_error():
    for prompt in ["", "   ", "a photo of a dog", "ünïcödé ☃ 🚀", "\x00\x01\x02"]:
        with pytest.raises(ValueError, match="no known shape"):
            task_from_prompt(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "a" * 3_000_000,
        "three circles " * 200_000,
        "☃ 🚀 三个红色圆圈 три круга \u202e\u200b circles",
        "999999999999999999999 circles and 0 squares",
        "left of left of the the of circles above below them it",
        "(((3))) (three) [circles] {squares} \"stars\" <hearts>",
        "\n\n;;;...!!!???",
        "make sure. ensure. the. them. it.",
    ],
)
def test_hostile_text_never_crashes(prompt):
    reading = read_prompt(prompt)
    assert reading.n_words <= MAX_READ_CHARS
    for mention in reading.mentions:
        assert mention.count >= 0
    try:
        task = task_from_prompt(prompt)
    except ValueError:
        return
    assert all(isinstance(item["count"], int) for item in task["include"])


def test_explicit_prompts_read_back_to_their_checklist():
    task = {"tag": "pos_size", "prompt": "x", "include": [
        {"class": "ring", "count": 1, "region": "below", "size": "smaller"},
        {"class": "star", "count": 2, "color": "red", "region": "above", "size": "larger"}]}
    failed = [{"check": c, "item": i, "message": "expected exactly 2 red stars, found 1"}
              for c in ("count", "region", "size") for i in (0, 1)]
    for checks in (None, failed):
        assert items(explicit_prompt(task, checks)) == task["include"]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a crescent moon", [("crescent", 1)]),
        ("three crescent moons and a ring donut", [("crescent", 3), ("ring", 1)]),
        ("a red diamond rhombus", [("diamond", 1)]),
        ("a circle and a moon", [("circle", 1), ("crescent", 1)]),
    ],
)
def test_a_shape_word_modifying_a_synonym_is_one_object(prompt, expected):
    assert [(i["class"], i["count"]) for i in items(prompt)] == expected


def test_one_after_a_colour_stands_for_the_previous_shape():
    assert items("a red circle and a blue one") == [
        {"class": "circle", "count": 1, "color": "red"},
        {"class": "circle", "count": 1, "color": "blue"},
    ]
    assert items("two red circles and three blue ones") == [
        {"class": "circle", "count": 2, "color": "red"},
        {"class": "circle", "count": 3, "color": "blue"},
    ]
    # "one" as a count is still a count
    assert items("a red circle and one blue square") == [
        {"class": "circle", "count": 1, "color": "red"},
        {"class": "square", "count": 1, "color": "blue"},
    ]
    # "the red one" names the red object already mentioned
    assert items("a red circle and a blue square to the right of the red one")[1]["position"] == ["right of", 0]


@pytest.mark.parametrize(
    "prompt",
    [
        "a circle, and right of it a square",
        "a circle and to the right of it a square",
        "a red circle with a blue square to its right",
        "a circle with a square right of it",
        "A circle. To its right, a square.",
    ],
)
def test_pronoun_relations_refer_to_the_previous_object(prompt):
    include = items(prompt)
    assert [i["class"] for i in include] == ["circle", "square"]
    assert include[1]["position"] == ["right of", 0]
    assert "region" not in include[1] and "position" not in include[0]


def test_fronted_pronoun_relations_bind_to_the_last_object():
    assert items("a circle and a square, and above it a heart")[2]["position"] == ["above", 1]
    assert items("a circle, and below it a square")[1]["position"] == ["below", 0]


def test_chained_relations_each_bind_to_the_next_object():
    assert items("a star left of a heart left of a hexagon") == [
        {"class": "star", "count": 1, "position": ["left of", 1]},
        {"class": "heart", "count": 1, "position": ["left of", 2]},
        {"class": "hexagon", "count": 1},
    ]
    assert [i.get("position") for i in items("a ring above a cross above a dot")] == [
        ["above", 1], ["above", 2], None]
