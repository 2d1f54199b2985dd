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


class Steer:
    """Makes the tiny model say chosen words: in each ``model.generate`` call (the next entry of
    ``calls``, the last one repeating), row r of the batch says ``words[r % len(words)]`` and then
    stops. A hook adds a large logit to the wanted token, so the real generate, left padding and
    decoding all run."""

    def __init__(self, model, processor, calls: list[list[str]]) -> None:
        import torch

        tokenizer = processor.tokenizer
        self.calls = [[tokenizer.encode(word, add_special_tokens=False) for word in words] for words in calls]
        self.eos, self.model, self.torch = tokenizer.eos_token_id, model, torch
        self.words: list[list[int]] = []
        self.step = 0
        original = model.generate

        def generate(*args, **kwargs):
            self.words = self.calls.pop(0) if len(self.calls) > 1 else self.calls[0]
            self.step = 0
            return original(*args, **kwargs)

        model.generate = generate
        self.handle = model.lm_head.register_forward_hook(self.hook)

    def hook(self, module, inputs, output):
        output = output.clone()
        for row in range(output.shape[0]):
            tokens = self.words[row % len(self.words)]
            output[row, -1, tokens[self.step] if self.step < len(tokens) else self.eos] += 1e4
        self.step += 1
        return output

    def close(self) -> None:
        self.handle.remove()
        del self.model.generate  # the class's own again


@pytest.fixture
def steer(tiny):
    made: list[Steer] = []

    def make(calls: list[list[str]]) -> Steer:
        if made:  # one steering at a time
            made.pop().close()
        made.append(Steer(*tiny, calls))
        return made[-1]

    yield make
    if made:
        made.pop().close()


class Recording(VLMJudgeScorer):
    """The real judge on the tiny model, keeping every reply it generated."""

    def generate(self, conversations, max_new_tokens):
        replies = super().generate(conversations, max_new_tokens)
        self.replies = getattr(self, "replies", []) + replies
        return replies


def assert_checklist_score_follows_the_answers(score, answers: list, raw: list[str], threshold=None) -> None:
    """The verdicts, score, pass and messages are what the parsed answers say."""
    assert [c["ok"] for c in score.details["checks"]] == [a is True for a in answers]
    assert score.details["raw"] == raw
    fraction = sum(a is True for a in answers) / len(answers)
    assert score.score == pytest.approx(fraction)
    assert score.passed is (all(a is True for a in answers) if threshold is None else fraction >= threshold)
    assert score.details["failed"] == [c["message"] for c in score.details["checks"] if not c["ok"]]
    for check, answer in zip(score.details["checks"], answers):
        said = "unreadable" if answer is None else ("said yes" if answer else "said no")
        assert said in check["message"]


def test_tiny_vlm_judge_results_follow_its_replies(tiny):
    model, processor = tiny
    judge = Recording(model, processor, device="cpu", max_new_tokens=3, batch_size=4)
    assert isinstance(judge, Scorer) and isinstance(judge, PairwiseComparator)
    bare = judge.parse_prompt("a cat in a hat")
    scores = judge.score([RED, BLUE], [TASK, bare])
    assert len(judge.replies) == 6 + 1  # one question per check, one for the bare prompt
    replies = iter(judge.replies)
    for score, task, n in zip(scores, (TASK, bare), (6, 1)):
        raw = [next(replies) for _ in range(n)]
        assert [(c["check"], c["item"]) for c in score.details["checks"]] == [
            (q["check"], q["item"]) for q in checklist_questions(task)]
        assert_checklist_score_follows_the_answers(score, [parse_yes_no(r) for r in raw], raw)
        assert score.details["procedure"] == "geneval++"
        assert json.loads(json.dumps(score.to_dict())) == score.to_dict()  # details are plain data

    # Batching changes nothing: the same replies one conversation at a time.
    one_by_one = Recording(model, processor, device="cpu", max_new_tokens=3, batch_size=1)
    assert [s.to_dict() for s in one_by_one.score([RED, BLUE], [TASK, bare])] == [s.to_dict() for s in scores]

    judge.replies = []
    verdicts = judge.compare([TASK, bare], [RED, BLUE], [BLUE, RED])
    assert verdicts == [parse_preference(r) or 0 for r in judge.replies] and len(judge.replies) == 2

    wise = Recording(model, processor, device="cpu", max_new_tokens=3, procedure="wise")
    (score,) = wise.score([RED], [TASK])
    (reply,) = wise.replies
    parsed = parse_wise_scores(reply)
    sub = {name: value or 0.0 for name, value in parsed.items()}
    assert {name: score.details[name] for name in sub} == sub
    assert score.details["unreadable"] == [name for name, value in parsed.items() if value is None]
    assert score.score == score.details["wiscore"] == pytest.approx(wiscore(*sub.values()))
    assert score.passed is (score.score >= 0.7 - 1e-9) and score.details["raw"] == [reply]

    checklist = Recording(model, processor, question_style="checklist", max_new_tokens=3)
    (score,) = checklist.score([RED], [TASK])
    (reply,) = checklist.replies
    assert len(score.details["checks"]) == 6
    assert_checklist_score_follows_the_answers(score, parse_checklist_answers(reply, 6), [reply])


@pytest.mark.parametrize("batch_size", [1, 4, 8])
def test_steered_tiny_judge_verdicts_go_to_the_right_checks(tiny, steer, batch_size):
    model, processor = tiny
    judge = Recording(model, processor, device="cpu", batch_size=batch_size)
    bare = judge.parse_prompt("a cat in a hat")
    steer([["yes", "no"]] if batch_size > 1 else [["yes"], ["no"]] * 3 + [["yes"]])
    first, second = judge.score([RED, BLUE], [TASK, bare])
    assert judge.replies == ["yes", "no"] * 3 + ["yes"]
    assert [c["ok"] for c in first.details["checks"]] == [True, False] * 3
    assert first.score == pytest.approx(0.5) and first.passed is False and len(first.details["failed"]) == 3
    assert second.score == 1.0 and second.passed is True and second.details["failed"] == []


def test_steered_tiny_judge_preferences_and_wise_scores(tiny, steer):
    model, processor = tiny
    judge = Recording(model, processor, device="cpu")
    steer([["second", "first", "tie"]])
    assert judge.compare([TASK] * 3, [RED] * 3, [BLUE] * 3) == [1, -1, 0]
    wise = Recording(model, processor, device="cpu", procedure="wise")
    steer([["Consistency: 2 Realism: 1 Aesthetic Quality: 0", "Consistency: 1 Realism: 2 Aesthetic Quality: 2"]])
    good, bad = wise.score([RED, BLUE], [TASK, TASK])
    assert (good.details["consistency"], good.details["realism"], good.details["aesthetic_quality"]) == (2, 1, 0)
    assert good.score == pytest.approx(wiscore(2, 1, 0)) and good.passed
    assert bad.score == pytest.approx(wiscore(1, 2, 2)) and not bad.passed


@pytest.mark.parametrize("steered", [False, True])
def test_env_episode_with_the_tiny_judge(tiny, steer, steered):
    from genagent_env.env import GenAgentEnv

    model, processor = tiny
    judge = VLMJudgeScorer(model, processor)
    if steered:  # image 1 fails, image 2 passes, the judge prefers image 2: a perfect episode
        steer([["no"], ["yes"], ["second"], ["no"], ["yes"], ["second"], ["yes"]])

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
    # The env's scores, decisions and reward are the judge's own verdicts on the two images.
    blue, red = paint("blue", 1), paint("red", 1)
    want = judge.score([blue], [TASK]) + judge.score([red], [TASK])
    if steered:
        assert [w.passed for w in want] == [False, True] and reward == pytest.approx(1.0)
    assert [s["passed"] for s in info["scores"]] == [w.passed for w in want]
    assert [s["score"] for s in info["scores"]] == pytest.approx([w.score for w in want])
    assert [s["details"]["checks"] for s in info["scores"]] == [w.details["checks"] for w in want]
    (preference,) = judge.compare([TASK], [blue], [red])
    retry_ok = (not want[0].passed) and preference == 1
    assert [d["correct"] for d in info["decisions"]] == [retry_ok, want[1].passed]
    assert info["reward_components"] == pytest.approx({
        "outcome": 0.7 * want[1].passed, "reflection": 0.3 * (retry_ok + want[1].passed) / 2, "format": 0.0})
    assert reward == pytest.approx(sum(info["reward_components"].values()))

    obs, info = env.reset(options={"prompt": "a watercolour fox"})  # a bare prompt: one whole-request question
    assert obs["text"] == "a watercolour fox"
    env.step(call("a watercolour fox"))
    *_, info = env.step("<judge>fine</judge><answer>done</answer>")
    ((check,),) = [s["details"]["checks"] for s in info["scores"]]
    assert check["check"] == "prompt" and "a watercolour fox" in check["message"]
    env.close()
