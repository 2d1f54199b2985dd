"""The shapes-wise suite: knowledge prompts with literal, pixel-verified checklists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genagent_env.shapes.failures import FailureRates, plan_scene
from genagent_env.shapes.generator import ShapesGenerator
from genagent_env.shapes.knowledge import KNOWLEDGE_FILE, heldout_ids, load_knowledge
from genagent_env.shapes.reader import read_prompt, task_from_prompt
from genagent_env.shapes.renderer import render
from genagent_env.shapes.verifier import ShapesVerifier
from genagent_env.shapes.wise_suite import combination_key, make_shapes_wise
from genagent_env.tasks.schema import normalize_task
from genagent_env.tools.base import GenerationRequest

NO_FAILURES = FailureRates(drop=0, miscount=0, leak=0, drift=0, spatial=0, size=0, stray=0)


@pytest.fixture(scope="module")
def splits() -> dict[str, list[dict]]:
    return {"test": make_shapes_wise("test"), "train": make_shapes_wise("train")}


def _items(task: dict) -> list[list[tuple]]:
    return sorted(sorted(item.items()) for item in task["include"])


def test_sizes_categories_and_labels(splits):
    test, train = splits["test"], splits["train"]
    assert len(test) == 240 and len(train) == 3600
    categories = {t["wise"]["Category"] for t in test}
    assert categories == {"Cultural", "Time", "Space", "Biology", "Physics", "Chemistry"}
    for category in categories:
        members = [t for t in test if t["wise"]["Category"] == category]
        assert len(members) == 40 and sum(t["wise"]["heldout_fact"] for t in members) == 10
    for task in test + train:
        assert normalize_task(task)["include"] == task["include"]  # canonical GenEval++ items
        assert task["tag"] in ("color", "count", "color_count", "color_pos", "pos_count", "multi_count")


def test_every_prompt_is_verifiable_through_its_literal_rewrite(splits):
    """The literal rewrite (``wise["Explanation"]``) reads back to exactly the checklist, and the
    checklist drawn without mistakes passes the pixel verifier."""
    verifier = ShapesVerifier()
    tasks = splits["test"] + splits["train"][::3]
    rng = np.random.default_rng(0)
    images = []
    for task in tasks:
        literal = task["wise"]["Explanation"]
        assert _items(task_from_prompt(literal)) == _items(task), literal
        plan, _ = plan_scene(read_prompt(literal), NO_FAILURES, rng)
        pixels, _ = render(plan, 128, 128, rng)
        images.append(pixels)
    scores = verifier.score(images, tasks)
    failed = [t["wise"]["Explanation"] for t, s in zip(tasks, scores) if not s.passed]
    assert failed == []


def test_splits_share_no_combination_no_prompt_and_hold_facts_out(splits):
    test, train = splits["test"], splits["train"]
    assert not {combination_key(t) for t in test} & {combination_key(t) for t in train}
    assert not {t["prompt"] for t in test} & {t["prompt"] for t in train}
    held = heldout_ids(load_knowledge())
    train_facts = {f for t in train for f in t["wise"]["facts"]}
    assert not held & train_facts  # held-out facts never appear in training
    for task in test:
        facts = set(task["wise"]["facts"])
        assert task["wise"]["heldout_fact"] == bool(facts & held)
        if not task["wise"]["heldout_fact"]:
            assert facts <= train_facts  # a new combination of facts seen in training


def test_a_knowledge_prompt_passed_through_mostly_fails_and_the_rewrite_mostly_passes(splits):
    test = splits["test"]
    generator, verifier = ShapesGenerator("medium"), ShapesVerifier()

    def pass_rate(prompts: list[str]) -> float:
        images = generator.generate([GenerationRequest(p, seed=i) for i, p in enumerate(prompts)])
        return float(np.mean([s.passed for s in verifier.score(images, test)]))

    as_written = pass_rate([t["prompt"] for t in test])
    literal = pass_rate([t["wise"]["Explanation"] for t in test])
    assert as_written <= 0.2 and literal >= 0.4 and literal > 3 * as_written


def test_the_knowledge_table_loads_from_its_file_and_users_can_extend_it(tmp_path: Path):
    shipped = json.loads(KNOWLEDGE_FILE.read_text())
    assert {f.id for f in load_knowledge()} == {f["id"] for f in shipped["facts"]}
    extra = {"id": "my-ketchup", "kind": "color", "value": "red", "category": "Biology",
             "phrases": ["the colour of ketchup"]}
    mine = tmp_path / "knowledge.json"
    mine.write_text(json.dumps({"facts": [*shipped["facts"], extra]}))
    tasks = make_shapes_wise("train", knowledge=mine)
    assert any("ketchup" in t["prompt"] for t in tasks)


@pytest.mark.parametrize("fact, message", [
    ({"id": "x", "kind": "color", "value": "red", "category": "Biology", "phrases": ["as red as a tomato"]},
     "names the value literally"),
    ({"id": "x", "kind": "count", "value": 3, "category": "Time", "phrases": ["as many as a tripod has legs"]},
     "{things}"),
    ({"id": "x", "kind": "shape", "value": "octagon", "category": "Space", "phrases": ["a stop sign"]}, "value"),
    ({"id": "x", "kind": "color", "value": "red", "category": "Sport", "phrases": ["the colour of a cherry"]},
     "category"),
])
def test_a_bad_fact_is_refused_naming_the_file_and_the_fact(tmp_path: Path, fact: dict, message: str):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"facts": [fact]}))
    with pytest.raises(ValueError, match=message) as error:
        load_knowledge(path)
    assert str(path) in str(error.value) and "'x'" in str(error.value)


def test_the_suite_runs_in_the_env_and_the_teacher_solves_it():
    import gymnasium as gym

    from agents import make_agent, run_episode

    env = gym.make("genagent_env:GenAgent-v0", suite="shapes-wise", privileged=True, max_rounds=4)
    passed = [run_episode(env, make_agent("scripted"), seed=i, options={"task_index": i}).passed for i in range(12)]
    assert sum(passed) >= 9
    assert env.unwrapped.tasks[0]["wise"]["Explanation"]


def test_a_shapes_wise_run_is_reported_per_category_with_the_heldout_subset_and_the_tags(tmp_path: Path):
    from benchmarks.report import SHAPES_WISE_HELDOUT, SHAPES_WISE_REWRITES, SHAPES_WISE_TAGS, build_rows
    from benchmarks.results import load_results
    from benchmarks.run import Args, run

    out = run(Args(suite="shapes-wise", agents=("passthrough",), generators=("shapes-medium",), max_rounds=(1,),
                   seeds=1, out=tmp_path / "run", quiet=True))
    records = load_results(out)
    assert {r["benchmark"] for r in records} == {"shapes-wise"} and len(records) == 240
    rows = {row.key.benchmark: row for row in build_rows(records)}
    assert set(rows) == {"shapes-wise", SHAPES_WISE_HELDOUT, SHAPES_WISE_TAGS, SHAPES_WISE_REWRITES}
    assert rows["shapes-wise"].columns[:6] == ("Cultural", "Time", "Space", "Biology", "Physics", "Chemistry")
    assert rows["shapes-wise"].n == 240 and rows[SHAPES_WISE_HELDOUT].n == 60 and rows[SHAPES_WISE_TAGS].n == 240
    held = [r for r in records if r["wise"]["heldout_fact"]]
    cultural = [r["passed"] for r in held if r["wise"]["Category"] == "Cultural"]
    assert rows[SHAPES_WISE_HELDOUT].per_seed["Cultural"][0] == pytest.approx(sum(cultural) / len(cultural))
    assert "color" in rows[SHAPES_WISE_TAGS].columns


def test_asks_for_the_same_reads_both_prompts_as_the_shapesworld_reader_does():
    from genagent_env.shapes.wise_suite import asks_for_the_same

    explanation = "A black cross on the left and a yellow hexagon on the right."
    assert asks_for_the_same("Exactly 1 (one) yellow hexagon. It is in the right half of the image. "
                             "Exactly 1 (one) black cross. It is in the left half of the image.", explanation)
    assert not asks_for_the_same("Exactly 1 (one) black heart on the left and a yellow hexagon on the right.",
                                 explanation)  # the shape fact resolved wrongly
    assert not asks_for_the_same("A black cross on the right and a yellow hexagon on the right.", explanation)
    assert not asks_for_the_same("the emblem on a first-aid kit, in black", explanation)  # names no shape
    for task in make_shapes_wise("test"):  # every task's literal request reads as its checklist
        assert asks_for_the_same(task["wise"]["Explanation"], task["wise"]["Explanation"])


def test_the_rewrites_table_counts_episodes_whose_first_prompt_resolved_the_facts():
    from benchmarks.report import SHAPES_WISE_REWRITES, build_rows

    tasks = [t for t in make_shapes_wise("test") if t["wise"]["Subcategory"] == "shape knowledge"][:2]

    def record(task: dict, seed: int, prompts: list[str]) -> dict:
        return {"agent": "a", "generator": "g", "max_rounds": 2, "benchmark": "shapes-wise", "seed": seed,
                "task_id": task["id"], "tag": task["tag"], "prompt": task["prompt"], "passed": False,
                "score": 0.0, "wise": task["wise"], "rounds": [{"prompt": p, "passed": False} for p in prompts]}

    records = [
        record(tasks[0], 0, [tasks[0]["wise"]["Explanation"], "a heart"]),  # resolved in round 1
        record(tasks[1], 0, [tasks[1]["prompt"], tasks[1]["wise"]["Explanation"]]),  # only in round 2: not counted
        record(tasks[0], 1, []),  # no image made: nothing resolved
        record(tasks[1], 1, [tasks[1]["wise"]["Explanation"]]),
    ]
    row = next(r for r in build_rows(records) if r.key.benchmark == SHAPES_WISE_REWRITES)
    assert row.per_seed["shape knowledge"] == [0.5, 0.5]
    assert row.columns == ("color knowledge", "count knowledge", "shape knowledge", "place knowledge")
