"""The VLM judge: prompts, parsers and result shapes, on a tiny random Qwen2-VL built offline."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from PIL import Image

pytest.importorskip("transformers")
pytest.importorskip("torchvision")  # the Qwen2-VL image processor needs it

from genagent_env.scorers.base import PairwiseComparator, Scorer  # noqa: E402
from genagent_env.scorers.vlm_judge import (  # noqa: E402
    VLMJudgeScorer,
    checklist_questions,
    parse_checklist_answers,
    parse_preference,
    parse_wise_scores,
    parse_yes_no,
    wiscore,
)

TASK = {
    "tag": "color_pos",
    "prompt": "a red circle on the left, two blue squares right of it, no stars",
    "include": [
        {"class": "circle", "count": 1, "color": "red", "region": "left"},
        {"class": "square", "count": 2, "color": "blue", "position": ["right of", 0], "size": "smaller"},
    ],
    "exclude": [{"class": "star", "count": 1}],
}
RED = Image.new("RGB", (64, 64), (220, 30, 30))
BLUE = Image.new("RGB", (32, 32), (30, 30, 220))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from genagent_env.testing.tiny_vlm import tiny_qwen2_vl

    return tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen2-vl"))  # saved and reloaded offline


class ScriptedJudge(VLMJudgeScorer):
    """The judge with its one text-producing method replaced by canned replies (no model)."""

    def __init__(self, replies: Sequence[str], **kwargs):
        self.replies = list(replies)
        self.asked: list[tuple[list[dict], list]] = []
        super().__init__(model=None, processor=None, **kwargs)

    @staticmethod
    def _load(*args, **kwargs):
        return None, None

    def generate(self, conversations, max_new_tokens):
        self.asked.extend(conversations)
        out, self.replies = self.replies[:len(conversations)], self.replies[len(conversations):]
        return out + [""] * (len(conversations) - len(out))


# ----------------------------------------------------------------------------- parsers


@pytest.mark.parametrize("text, expected", [
    ("yes", True), ("No.", False), ("**YES**", True), ("Yes, there are two.", True),
    ("The answer is no.", False), ("", None), ("maybe", None), ("I cannot tell", None),
    ("`no`", False), ("True", True),
])
def test_parse_yes_no(text, expected):
    assert parse_yes_no(text) is expected


@pytest.mark.parametrize("text, n, expected", [
    ("1. yes\n2. no", 2, [True, False]),
    ("**1.** Yes\n**3.** no", 3, [True, None, False]),
    ("yes\nNo.", 2, [True, False]),
    ("yes\nno\nmaybe", 3, [True, False, None]),
    ('Sure! ```json\n{"1": "yes", "2": "No"}\n``` hope that helps', 2, [True, False]),
    ('{"answers": ["yes", false, {"answer": "no"}]}', 3, [True, False, False]),
    ("", 2, [None, None]),
    ("I think the image is nice", 2, [None, None]),
])
def test_parse_checklist_answers(text, n, expected):
    assert parse_checklist_answers(text, n) == expected


def test_parse_wise_scores_and_wiscore():
    assert parse_wise_scores("Consistency: 2\nRealism: 1.5\nAesthetic: x") == {
        "consistency": 2.0, "realism": 1.5, "aesthetic_quality": None}
    assert parse_wise_scores("**Consistency** (0-2): 1\n**Realism**: 2\n**Aesthetic Quality**: 0") == {
        "consistency": 1.0, "realism": 2.0, "aesthetic_quality": 0.0}
    assert parse_wise_scores('Here: {"consistency": 2, "realism": 1, "aesthetic_quality": 1}')["realism"] == 1.0
    assert parse_wise_scores("Consistency: 3") == dict.fromkeys(["consistency", "realism", "aesthetic_quality"])
    assert wiscore(2, 2, 2) == 1.0 and wiscore(0, 0, 0) == 0.0
    assert wiscore(2, 0, 0) == pytest.approx(0.7) and wiscore(1, 2, 2) == pytest.approx(0.65)


@pytest.mark.parametrize("text, expected", [
    ("first", -1), ("Second.", 1), ("2", 1), ("1", -1), ("B", 1), ("A", -1), ("**Image B**", 1),
    ("tie", 0), ("They are equal", 0), ("The second image is better.", 1), ("", None), ("hmm", None),
])
def test_parse_preference(text, expected):
    assert parse_preference(text) == expected


def test_checklist_questions_cover_every_check():
    questions = checklist_questions(TASK)
    assert [(q["check"], q["item"]) for q in questions] == [
        ("count", 0), ("region", 0), ("count", 1), ("position", 1), ("size", 1), ("exclude", 0)]
    text = " | ".join(q["question"] for q in questions)
    assert "exactly 1 red circle" in text and "exactly 2 blue squares" in text and "left half" in text
    assert "to the right of the red circle" in text and "smaller than the red circle" in text
    assert "free of any star" in text
    bare = checklist_questions({"prompt": "a cat wearing a hat", "include": []})
    assert [q["check"] for q in bare] == ["prompt"] and "a cat wearing a hat" in bare[0]["question"]


# ---------------------------------------------------------------- parsed verdicts


def test_geneval_per_check_verdicts_and_unreadable_answers():
    judge = ScriptedJudge(["Yes.", "**yes**", "no", "maybe", "", "YES", *["yes"] * 6])
    first, second = judge.score([RED, BLUE], [TASK, TASK])
    assert len(judge.asked) == 12 and all(len(images) == 1 for _, images in judge.asked)
    assert first.passed is False and first.score == pytest.approx(3 / 6)
    assert [c["ok"] for c in first.details["checks"]] == [True, True, False, False, False, True]
    assert sum("unreadable" in m for m in first.details["failed"]) == 2
    assert first.details["raw"][3] == "maybe" and len(first.details["failed"]) == 3
    assert second.passed is True and second.score == 1.0 and second.details["failed"] == []


def test_geneval_threshold_and_checklist_style():
    judge = ScriptedJudge(["1. yes\n2. yes\n3. no\n4. yes\n5. yes\n6. yes", "garbage"],
                          question_style="checklist", threshold=0.8)
    good, bad = judge.score([RED, RED], [TASK, TASK])
    assert len(judge.asked) == 2 and "6. " in judge.asked[0][0][-1]["content"][-1]["text"]
    assert good.passed and good.score == pytest.approx(5 / 6)
    assert not bad.passed and bad.score == 0.0 and all("unreadable" in m for m in bad.details["failed"])


def test_wise_procedure_scores_and_threshold():
    task = {"tag": "Cultural knowledge", "prompt": "The plant often gifted on Mother's Day", "include": [],
            "wise": {"Explanation": "a carnation", "prompt_id": 1}}
    judge = ScriptedJudge(["Consistency: 2\nRealism: 1\nAesthetic Quality: 1",
                           "Consistency: 1\nRealism: 2\nAesthetic Quality: 2",
                           "Consistency: 2\nRealism: 1.5\nAesthetic: x"], procedure="wise")
    assert judge.threshold == 0.7
    a, b, c = judge.score([RED] * 3, [task] * 3)
    assert "a carnation" in judge.asked[0][0][-1]["content"][-1]["text"]
    assert a.passed and a.score == pytest.approx((1.4 + 0.2 + 0.1) / 2)
    assert a.details["consistency"] == 2.0 and a.details["wiscore"] == a.score
    assert not b.passed and b.score == pytest.approx(0.65)
    assert c.passed and c.details["unreadable"] == ["aesthetic_quality"] and c.details["aesthetic_quality"] == 0.0


def test_pairwise_parsing_and_both_orders():
    judge = ScriptedJudge(["Second", "A", "tie", "no idea"])
    assert judge.compare([TASK] * 4, [RED] * 4, [BLUE] * 4) == [1, -1, 0, 0]
    assert all(len(images) == 2 for _, images in judge.asked)
    # all pairs in order, then all pairs swapped: pair 2 answers "first" both ways (position bias) -> tie
    both = ScriptedJudge(["second", "first", "first", "first", "second", "first"], pairwise_both_orders=True)
    assert both.compare([TASK] * 3, [RED] * 3, [BLUE] * 3) == [1, -1, 0]
    assert both.asked[3][1][0].getpixel((0, 0)) == (30, 30, 220)  # the swapped question shows the second first


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="procedure"):
        ScriptedJudge([], procedure="clip")
    with pytest.raises(ValueError, match="question_style"):
        ScriptedJudge([], question_style="essay")
    with pytest.raises(ValueError, match="threshold"):
        ScriptedJudge([], threshold=2)
    with pytest.raises(ValueError, match="processor"):
        VLMJudgeScorer(model=object())


# ------------------------------------------------------------------ the tiny model


def test_tiny_vlm_judge_results_have_the_documented_shape(tiny):
    model, processor = tiny
    judge = VLMJudgeScorer(model, processor, device="cpu", max_new_tokens=3, batch_size=4)
    assert isinstance(judge, Scorer) and isinstance(judge, PairwiseComparator)
    scores = judge.score([RED, BLUE], [TASK, judge.parse_prompt("a cat in a hat")])
    for score, n in zip(scores, (6, 1)):
        assert isinstance(score.passed, bool) and 0.0 <= score.score <= 1.0
        assert len(score.details["checks"]) == n and len(score.details["raw"]) == n
        assert set(score.details["checks"][0]) == {"check", "item", "ok", "message"}
        json.dumps(score.to_dict())  # details are plain data
    assert judge.compare([TASK], [RED], [BLUE])[0] in (-1, 0, 1)
    judge.procedure, judge.threshold = "wise", 0.7
    (wise,) = judge.score([RED], [TASK])
    assert {"consistency", "realism", "aesthetic_quality", "wiscore"} <= set(wise.details)
    checklist = VLMJudgeScorer(model, processor, question_style="checklist", max_new_tokens=3)
    assert len(checklist.score([RED], [TASK])[0].details["checks"]) == 6


def test_env_episode_with_the_tiny_judge(tiny):
    from genagent_env.env import GenAgentEnv

    model, processor = tiny
    judge = VLMJudgeScorer(model, processor, max_new_tokens=2)

    def paint(prompt: str, seed: int) -> Image.Image:
        return Image.new("RGB", (32, 32), (200, 30, 30) if "red" in prompt else (30, 30, 200))

    env = GenAgentEnv(suite=[TASK], generators={"paint": paint}, scorer=judge, comparator=judge, max_rounds=2)
    env.reset(seed=0, options={"task_index": 0})

    def call(prompt: str, judged: str = "") -> str:
        return judged + f'<tool_call>{{"name": "paint", "arguments": {{"prompt": "{prompt}", "seed": 1}}}}</tool_call>'

    env.step(call("a blue circle"))
    env.step(call("a red circle on the left", "<judge>wrong colour</judge>"))
    obs, reward, terminated, truncated, info = env.step("<judge>better</judge><answer>done</answer>")
    assert terminated and not truncated
    assert set(info["reward_components"]) == {"outcome", "reflection", "format"}
    assert len(info["scores"]) == 2 and all("checks" in s["details"] for s in info["scores"])
    assert info["reward_components"]["format"] == 0.0
    env.reset(options={"prompt": "a watercolour fox"})  # a bare prompt: one whole-request question
    env.close()
