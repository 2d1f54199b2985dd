"""The shapes-geneval suite and the teacher's explicit prompts."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from genagent_env.shapes.failures import TRUNCATION_WORDS
from genagent_env.shapes.reader import read_prompt, task_from_prompt
from genagent_env.shapes.suite import checklist_key, make_shapes_geneval
from genagent_env.tasks.prompts import explicit_prompt
from genagent_env.tasks.schema import GENEVAL_PP_TAGS, normalize_task


@pytest.fixture(scope="module")
def test_split() -> list[dict]:
    return make_shapes_geneval("test")


@pytest.fixture(scope="module")
def train_split() -> list[dict]:
    return make_shapes_geneval("train")


def test_sizes_tags_and_ids(test_split, train_split):
    assert len(test_split) == 280
    assert Counter(t["tag"] for t in test_split) == dict.fromkeys(GENEVAL_PP_TAGS, 40)
    assert len(train_split) >= 5000
    assert set(Counter(t["tag"] for t in train_split)) == set(GENEVAL_PP_TAGS)
    assert test_split[7]["id"] == "shapes-geneval/test/0007"
    assert all(re.fullmatch(r"shapes-geneval/train/\d{4}", t["id"]) for t in train_split)
    assert len({t["id"] for t in test_split + train_split}) == len(test_split) + len(train_split)


def test_tasks_are_valid_schema(test_split, train_split):
    for task in test_split + train_split[::10]:
        assert normalize_task(task) == task


def test_splits_share_no_prompt_and_no_checklist(test_split, train_split):
    assert not {t["prompt"] for t in test_split} & {t["prompt"] for t in train_split}
    assert not {checklist_key(t) for t in test_split} & {checklist_key(t) for t in train_split}
    assert len({t["prompt"] for t in train_split}) == len(train_split)
    assert len({checklist_key(t) for t in test_split}) == len(test_split)


def test_splits_are_deterministic_and_copies(test_split):
    again = make_shapes_geneval("test")
    assert again == test_split
    again[0]["include"][0]["count"] = 99
    assert make_shapes_geneval("test")[0] == test_split[0]
    assert make_shapes_geneval("train", seed=1) != make_shapes_geneval("train", seed=0)
    with pytest.raises(ValueError):
        make_shapes_geneval("validation")


def test_tags_mean_what_the_docs_say(test_split):
    for task in test_split:
        items, tag = task["include"], task["tag"]
        if tag == "color":
            assert 2 <= len(items) <= 4 and all(i["count"] == 1 and i.get("color") for i in items)
        elif tag == "count":
            assert len(items) == 1 and 2 <= items[0]["count"] <= 8
            assert task["exclude"] == [{"class": items[0]["class"], "count": items[0]["count"] + 1}]
        elif tag == "color_count":
            assert len(items) == 2 and all(i.get("color") for i in items)
        elif tag == "color_pos":
            assert len(items) == 2 and all(i.get("color") and i.get("region") for i in items)
        elif tag == "pos_count":
            assert len(items) == 2 and all(i.get("region") for i in items)
        elif tag == "pos_size":
            assert {i["size"] for i in items} == {"larger", "smaller"} and all(i.get("region") for i in items)
        else:
            assert len(items) == 3


def test_every_prompt_reads_back_to_its_checklist(test_split, train_split):
    for task in test_split + train_split:
        assert checklist_key({"include": task_from_prompt(task["prompt"])["include"]}) == checklist_key(
            {"include": task["include"]}), task["prompt"]


def test_explicit_prompts_read_back_and_stay_short(test_split):
    failed_sets = [None, [{"check": c, "item": i, "message": "found 9"} for c in ("count", "region", "size", "position")
                          for i in range(3)] + [{"check": "exclude", "item": 0}]]
    for task in test_split:
        for failed in failed_sets:
            prompt = explicit_prompt(task, failed)
            assert checklist_key({"include": task_from_prompt(prompt)["include"]}) == checklist_key(
                {"include": task["include"]}), prompt
            reading = read_prompt(prompt)
            assert all(m.crowd == 1 and m.word_index <= TRUNCATION_WORDS for m in reading.mentions)


def test_explicit_prompt_is_world_agnostic():
    task = {"tag": "counting", "prompt": "a photo of three dogs",
            "include": [{"class": "dog", "count": 3, "color": "brown"},
                        {"class": "bench", "count": 1, "position": ["left of", 0]}],
            "exclude": [{"class": "dog", "count": 4}, {"class": "person", "count": 1}]}
    assert explicit_prompt(task) == (
        "Exactly 3 (three) brown dogs. Exactly 1 (one) bench. Every bench is to the left of every brown dog, "
        "with a clear gap. No people. Nothing else in the image.")
    emphatic = explicit_prompt(task, [{"check": "count", "item": 0, "ok": False,
                                       "message": "expected exactly 3 brown dogs, found 4"},
                                      {"check": "exclude", "item": 0, "ok": False, "message": ""}])
    assert "Make sure there are exactly 3 (three) brown dogs, not more." in emphatic
    assert "Make sure there are at most 3 (three) dogs." in emphatic
