"""The WISE loader and weighting, and composed scorers (weighted blends, scorer + comparator)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from PIL import Image

from genagent_env.scorers.base import PairwiseComparator, Score, Scorer
from genagent_env.scorers.compose import ScorerWithComparator, WeightedScorer
from genagent_env.tasks.wise import WISE_WEIGHTS, load_wise, wise_group, wise_overall
from tests.helpers import COLOUR_TASKS, ColourScorer, paint

# Entries in WISE's published format (data/*.json: a list of these objects).
WISE_ENTRIES = [
    {"prompt_id": 1, "Prompt": "The plant often gifted on Mother's Day", "Explanation": "A carnation",
     "Category": "Cultural knowledge", "Subcategory": "Festival"},
    {"prompt_id": 402, "Prompt": "A clock tower at the moment the sun rises in Beijing",
     "Explanation": "Morning light, about 5-6 am", "Category": "Spatio-temporal Reasoning",
     "Subcategory": "Longitudinal time", "Hint": "sunrise"},
    {"prompt_id": 650, "Prompt": "A view of a car from the driver's seat",
     "Explanation": "Steering wheel and dashboard", "Category": "Spatio-temporal Reasoning",
     "Subcategory": "Different perspectives"},
    {"prompt_id": 950, "Prompt": "Copper burning in a flame", "Explanation": "A green flame",
     "Category": "Natural Science", "Subcategory": "Chemistry"},
]


def write(tmp_path, data: Any, name: str = "wise.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ WISE


def test_load_wise_reads_the_published_format(tmp_path):
    tasks = load_wise(write(tmp_path, WISE_ENTRIES))
    assert [t["id"] for t in tasks] == ["wise/1", "wise/402", "wise/650", "wise/950"]
    first = tasks[0]
    assert first["tag"] == "Cultural knowledge" and first["prompt"] == "The plant often gifted on Mother's Day"
    assert first["include"] == [] and first["wise"] == WISE_ENTRIES[0]
    assert tasks[1]["wise"]["Hint"] == "sunrise"
    assert [wise_group(t) for t in tasks] == ["Cultural", "Time", "Space", "Chemistry"]
    assert wise_group({"Category": "Natural Science", "Subcategory": "Biology", "prompt_id": 2001}) == "Biology"


@pytest.mark.parametrize("entry, message", [
    ({**WISE_ENTRIES[0], "Prompt": "  "}, r"entry 1 \(prompt_id 1\): Prompt"),
    ({k: v for k, v in WISE_ENTRIES[0].items() if k != "Explanation"},
     r"entry 1: missing field\(s\) \['Explanation'\]"),
    ({**WISE_ENTRIES[0], "prompt_id": "7"}, "entry 1: prompt_id must be an integer"),
    ({**WISE_ENTRIES[0], "Hint": 3}, "Hint must be a string"),
    ("just a string", "entry 1: expected an object"),
    (WISE_ENTRIES[0], "entry 1: prompt_id 1 repeats entry 0"),
])
def test_load_wise_names_the_malformed_entry(tmp_path, entry, message):
    with pytest.raises(ValueError, match=message):
        load_wise(write(tmp_path, [WISE_ENTRIES[0], entry]))


def test_load_wise_rejects_bad_files(tmp_path):
    with pytest.raises(ValueError, match="not valid JSON"):
        load_wise(write(tmp_path, "[{"))
    with pytest.raises(ValueError, match="expected a JSON list"):
        load_wise(write(tmp_path, {"prompt_id": 1}))
    with pytest.raises(ValueError, match="no WISE prompts"):
        load_wise(write(tmp_path, []))


def test_wise_overall_weights_categories_by_prompt_count():
    assert sum(WISE_WEIGHTS.values()) == pytest.approx(1.0)
    assert wise_overall(dict.fromkeys(WISE_WEIGHTS, 0.5)) == pytest.approx(0.5)
    # FLUX.1-dev on WISE's leaderboard: 0.48, 0.58, 0.62, 0.42, 0.51, 0.35 -> overall 0.50
    flux = {"cultural": 0.48, "Time": 0.58, "SPACE": 0.62, "Biology": 0.42, "Physics": 0.51, "Chemistry": 0.35}
    assert wise_overall(flux) == pytest.approx(0.4 * 0.48 + 0.167 * 0.58 + 0.133 * 0.62 + 0.1 * (0.42 + 0.51 + 0.35))
    assert round(wise_overall(flux), 2) == 0.50
    with pytest.raises(ValueError, match="missing"):
        wise_overall({"Cultural": 1.0})
    with pytest.raises(ValueError, match="unknown"):
        wise_overall({**dict.fromkeys(WISE_WEIGHTS, 0.5), "Art": 0.1})
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        wise_overall({**dict.fromkeys(WISE_WEIGHTS, 0.5), "Time": 1.5})


# --------------------------------------------------------------------------- compose


class Fixed(Scorer):
    """Returns the same score for every image."""

    def __init__(self, passed: bool, score: float, name: str = "fixed", fail: str = "nope") -> None:
        self.result = Score(passed, score, {"failed": [] if passed else [fail]})
        self.name = name
        self.closed = 0

    def score(self, images: Sequence[Any], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        return [self.result for _ in images]

    def validate_task(self, task: Mapping[str, Any]) -> None:
        if task.get("tag") == "bad":
            raise ValueError("cannot check that")

    def close(self) -> None:
        self.closed += 1


class PreferSecond(PairwiseComparator):
    def compare(self, tasks, first, second) -> list[int]:
        return [1] * len(tasks)


def test_weighted_scorer_blends_and_nests_details():
    exact, judge = Fixed(True, 1.0, "exact"), Fixed(False, 0.4, "exact", fail="blurry")
    blend = WeightedScorer([(exact, 3), (judge, 1)])
    (score,) = blend.score([None], [COLOUR_TASKS[0]])
    assert score.score == pytest.approx(0.75 + 0.1) and score.passed is False  # pass_rule "all"
    assert set(score.details["parts"]) == {"exact", "exact#2"}
    assert score.details["parts"]["exact#2"] == {"passed": False, "score": 0.4, "weight": 0.25,
                                                 "details": {"failed": ["blurry"]}}
    assert score.details["failed"] == ["exact#2: blurry"]
    weighted = WeightedScorer({"exact": (exact, 3), "judge": (judge, 1)}, pass_rule="weighted", threshold=0.8)
    assert weighted.score([None], [COLOUR_TASKS[0]])[0].passed is True
    assert WeightedScorer([(exact, 1), (judge, 1)], pass_rule="weighted", threshold=0.8).score(
        [None], [COLOUR_TASKS[0]])[0].passed is False
    with pytest.raises(ValueError, match="^exact: cannot check"):
        blend.validate_task({"tag": "bad"})
    blend.close()
    assert exact.closed == 1 and judge.closed == 1


@pytest.mark.parametrize("parts, kwargs, error", [
    ([], {}, "at least one"),
    ([(Fixed(True, 1.0), 0)], {}, "positive finite"),
    ([(Fixed(True, 1.0), float("nan"))], {}, "positive finite"),
    ([(Fixed(True, 1.0), 1)], {"pass_rule": "any"}, "pass_rule"),
    ([(Fixed(True, 1.0), 1)], {"threshold": 1.5}, "threshold"),
    ([Fixed(True, 1.0)], {}, "pair"),
])
def test_weighted_scorer_rejects_bad_parts(parts, kwargs, error):
    with pytest.raises(ValueError, match=error):
        WeightedScorer(parts, **kwargs)


def test_scorer_with_comparator_delegates():
    colour = ColourScorer()
    both = ScorerWithComparator(colour, PreferSecond())
    assert isinstance(both, Scorer) and isinstance(both, PairwiseComparator) and both.name == "colour"
    red = Image.new("RGB", (8, 8), (220, 30, 30))
    assert both.score([red], [COLOUR_TASKS[0]])[0].passed is True
    assert both.compare([COLOUR_TASKS[0]], [red], [red]) == [1]
    assert both.parse_prompt("a green ball")["include"][0]["color"] == "green"
    with pytest.raises(ValueError):
        both.validate_task({"tag": "x", "include": [], "prompt": "p"})
    with pytest.raises(TypeError):
        ScorerWithComparator(colour, colour)  # a Scorer alone is no comparator


def test_scorer_with_comparator_in_an_episode():
    from genagent_env.env import GenAgentEnv

    both = ScorerWithComparator(ColourScorer(), PreferSecond())
    env = GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": paint}, scorer=both, comparator=both)
    env.reset(seed=0, options={"task_index": 0})
    tool = '<tool_call>{"name": "paint", "arguments": {"prompt": "a red thing", "seed": %d}}</tool_call>'
    env.step(tool % 1)  # odd seed: a grey miss
    env.step("<judge>grey</judge>" + tool % 1)  # grey again, but the comparator prefers the new image
    *_, info = env.step("<judge>still grey</judge><answer>done</answer>")
    # retry after a miss with a preferred new image: correct; submitting the miss: wrong
    assert info["reward_components"]["reflection"] == pytest.approx(0.3 * 0.5)
    assert info["passed"] is False


def test_a_wise_file_is_a_suite_by_path(tmp_path):
    import json

    from genagent_env.tasks import load_tasks

    path = tmp_path / "cultural_common_sense.json"
    path.write_text(json.dumps([{"prompt_id": 1, "Prompt": "The plant often gifted on Mother's Day",
                                 "Explanation": "a carnation", "Category": "Cultural knowledge",
                                 "Subcategory": "Festival"}]))
    (task,) = load_tasks(path)
    assert task["prompt"].startswith("The plant") and task["id"] == "wise/1" and task["include"] == []
