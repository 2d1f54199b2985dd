"""The paper's diagnostics in the report: what the runner records for them (per-round verdicts and
error types, tool-call attempts), the shared error-type helper, and the Diagnostics tables (front page,
Markdown, CSV, JSON) on a small real run of passthrough, scripted and random."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents import scripted
from benchmarks.report import (
    JUDGMENT_TYPES,
    build_rows,
    judgment_right,
    prompt_drift,
    render_markdown,
    write_reports,
)
from benchmarks.run import Args, run, tool_call_counts
from genagent_env.scorers.base import Score
from genagent_env.scorers.checklist import ERROR_TYPES, OTHER_ERROR, error_types
from tests.helpers import make_record, write_run

GRID = {"agents": ("passthrough", "scripted", "random"), "generators": ("shapes-medium",), "max_rounds": (1, 2),
        "seeds": 1, "tasks_per_tag": 3, "quiet": True}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = run(Args(out=tmp_path_factory.mktemp("diag") / "run", **GRID))
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    report = out / "report"
    board = json.loads((report / "leaderboard.json").read_text())
    rows = {(r["agent"], r["max_rounds"]): r for r in board["benchmarks"]["geneval++"]["rows"]}
    return {"out": out, "records": records, "rows": rows, "board": board,
            "markdown": (report / "leaderboard.md").read_text(), "csv": (report / "leaderboard.csv").read_text(),
            "html": (report / "index.html").read_text()}


# ---------------------------------------------------------------------------------- the records


def test_records_hold_each_rounds_verdict_and_the_tool_call_counts(small_run: dict[str, Any]) -> None:
    allowed = {*ERROR_TYPES, OTHER_ERROR}
    for record in small_run["records"]:
        assert isinstance(record["tool_calls"], int) and 0 <= record["failed_tool_calls"] <= record["tool_calls"]
        # Every image comes from one tool call; the others failed.
        assert record["tool_calls"] - record["failed_tool_calls"] == len(record["rounds"])
        for round_ in record["rounds"]:
            assert isinstance(round_["passed"], bool)
            assert (round_["errors"] == []) == round_["passed"]
            assert set(round_["errors"]) <= allowed and len(set(round_["errors"])) == len(round_["errors"])
        if record["final_image"]:
            assert record["rounds"][record["final_image"] - 1]["passed"] == record["passed"]
    by_agent = Counter(r["agent"] for r in small_run["records"] for _ in r["rounds"])
    assert by_agent["scripted"] and by_agent["passthrough"]
    # The run sees several error types (the generator makes the mistakes diffusion models make).
    seen = {e for r in small_run["records"] for round_ in r["rounds"] for e in round_["errors"]}
    assert {"missing object", "count", "colour", "position"} <= seen


def test_tool_call_counts_count_tagged_messages_and_those_that_made_no_image() -> None:
    turns = [
        {"action": '<tool_call>{"name": "generate", "arguments": {"prompt": "x"}}</tool_call>', "format_errors": []},
        {"action": "<judge>no</judge><TOOL_CALL >{broken</tool_call>", "format_errors": ["not JSON"]},
        # A call without the judge still runs (a violation of the judge rule, not a failed call).
        {"action": '<tool_call>{"name": "generate", "arguments": {"prompt": "y"}}</tool_call>',
         "format_errors": ["Start the turn with <judge> after a new image."]},
        {"action": "<answer>image_1</answer>", "format_errors": []},
        {"action": "just text", "format_errors": ["no tags"]},
        {"action": 42, "format_errors": ["An action must be a string"]},
    ]
    assert tool_call_counts(turns, images=2) == (3, 1)
    assert tool_call_counts([], images=0) == (0, 0)


# ---------------------------------------------------------------------------------- error types


def _details(checks: list[dict[str, Any]], detected: list[dict[str, Any]] | None) -> dict[str, Any]:
    details: dict[str, Any] = {"checks": checks}
    if detected is not None:
        details["detected"] = detected
    return details


def _shape(cls: str, colour: str) -> dict[str, Any]:
    return {"class": cls, "color": colour, "centroid": (10, 10), "area": 50}


TASK = {"include": [{"class": "circle", "count": 2, "color": "red", "region": "left"},
                    {"class": "square", "count": 1, "size": "larger"}],
        "exclude": [{"class": "star", "count": 1}]}


@pytest.mark.parametrize(("check", "detected", "expected"), [
    ({"check": "count", "item": 0}, [], "missing object"),
    ({"check": "count", "item": 0}, [_shape("square", "blue")], "missing object"),
    ({"check": "count", "item": 0}, [_shape("circle", "red")], "count"),
    ({"check": "count", "item": 0}, [_shape("circle", "red")] * 3, "count"),
    ({"check": "count", "item": 0}, [_shape("circle", "blue")] * 2, "colour"),  # the right shapes, wrong colour
    ({"check": "count", "item": 0}, [_shape("circle", "red"), _shape("circle", "green")], "colour"),
    ({"check": "count", "item": 1}, [], "missing object"),
    ({"check": "count", "item": 1}, None, "count"),  # a scorer that reports no detections
    ({"check": "exclude", "item": 0}, [_shape("star", "red")], "count"),
    ({"check": "region", "item": 0}, [_shape("circle", "red")] * 2, "position"),
    ({"check": "position", "item": 0}, [], "position"),
    ({"check": "size", "item": 1}, [], "size"),
    ({"check": "prompt", "item": None}, None, OTHER_ERROR),
])
def test_each_failed_check_has_its_error_type(check: dict[str, Any], detected: Any, expected: str) -> None:
    assert error_types(_details([{**check, "ok": False}], detected), TASK) == [expected]


def test_error_types_are_listed_once_in_check_order_and_a_passing_image_has_none() -> None:
    checks = [{"check": "count", "item": 0, "ok": False}, {"check": "region", "item": 0, "ok": False},
              {"check": "count", "item": 1, "ok": True}, {"check": "size", "item": 1, "ok": False},
              {"check": "exclude", "item": 0, "ok": False}]
    details = _details(checks, [])
    assert error_types(details, TASK) == ["missing object", "position", "size", "count"]
    assert error_types(details, TASK, passed=True) == []
    assert error_types({"checks": [], "failed": ["cannot read the image"]}, TASK, passed=False) == [OTHER_ERROR]
    assert error_types({}, TASK) == []


def test_the_teacher_words_its_reflection_with_the_shared_helper() -> None:
    checks = [{"check": "count", "item": 0, "ok": False}, {"check": "region", "item": 0, "ok": False},
              {"check": "size", "item": 1, "ok": False}]
    wrong_colour = Score(passed=False, score=0.0, details=_details(checks, [_shape("circle", "blue")] * 2))
    assert scripted._failed_kinds(wrong_colour, TASK) == ["the colours", "the placement", "the relative sizes"]
    missing = Score(passed=False, score=0.0, details=_details(checks[:1] + [{**checks[0], "item": 1}], []))
    assert scripted._failed_kinds(missing, TASK) == ["the counts"]  # missing object and count: one phrase


# ---------------------------------------------------------------------------------- the diagnostics


def test_random_fails_its_tool_calls_and_the_others_do_not(small_run: dict[str, Any]) -> None:
    rows = small_run["rows"]
    for rounds in (1, 2):
        random_row = rows[("random", rounds)]["diagnostics"]
        assert random_row["tool_calls"] > 20 and random_row["tool_call_failure_rate"] > 0.3
        assert random_row["tool_call_failure_rate"] == random_row["failed_tool_calls"] / random_row["tool_calls"]
        for agent in ("scripted", "passthrough"):
            d = rows[(agent, rounds)]["diagnostics"]
            assert d["tool_calls"] > 0 and d["failed_tool_calls"] == 0 and d["tool_call_failure_rate"] == 0.0


def test_passthrough_keeps_the_users_prompt_and_scripted_rewrites_it(small_run: dict[str, Any]) -> None:
    rows = small_run["rows"]
    for rounds in (1, 2):
        passthrough = rows[("passthrough", rounds)]["diagnostics"]
        assert passthrough["prompt_drift"] == 0.0 and passthrough["prompts_changed"] == 0.0
        rewritten = rows[("scripted", rounds)]["diagnostics"]
        assert rewritten["prompt_drift"] > 0.2 and rewritten["prompts_changed"] == 1.0
    # The drift is 1 - Jaccard of the word sets, recomputed from the records.
    scripted_rounds = [(r["prompt"], rd["prompt"]) for r in small_run["records"]
                       if r["agent"] == "scripted" and r["max_rounds"] == 2 for rd in r["rounds"]]
    expected = sum(prompt_drift(p, u) for u, p in scripted_rounds) / len(scripted_rounds)
    assert rows[("scripted", 2)]["diagnostics"]["prompt_drift"] == pytest.approx(expected)
    assert prompt_drift("Two red circles.", "two RED circles") == 0.0
    assert prompt_drift("a red circle", "a blue circle") == pytest.approx(1 - 2 / 4)
    assert prompt_drift("", "") == 0.0


def test_scripted_judges_right_and_the_per_type_counts_add_up(small_run: dict[str, Any]) -> None:
    rows = small_run["rows"]
    scripted_row = rows[("scripted", 2)]["diagnostics"]
    assert scripted_row["decisions"] >= 15 and scripted_row["judgment_accuracy"] >= 0.9
    for (agent, rounds), row in rows.items():
        d = row["diagnostics"]
        records = [r for r in small_run["records"] if r["agent"] == agent and r["max_rounds"] == rounds]
        # Recount from the records: a judgment is a decision on image k < max_rounds.
        judged = [(r, x) for r in records for x in r["decisions"] if x["image"] < rounds]
        assert d["decisions"] == len(judged) == sum(judgment_right(r, x) is not None for r, x in judged)
        assert d["correct_decisions"] == sum(bool(judgment_right(r, x)) for r, x in judged)
        if rounds == 1:
            assert d["decisions"] == 0 and d["judgment_accuracy"] is None
        by_type = d["judgment_by_error_type"]
        assert list(by_type)[: len(JUDGMENT_TYPES)] == list(JUDGMENT_TYPES)
        on_passing = [(r, x) for r, x in judged if r["rounds"][x["image"] - 1]["passed"]]
        on_failing = [(r, x) for r, x in judged if not r["rounds"][x["image"] - 1]["passed"]]
        # "none" counts the judgments on passing images; the others together cover every failing one ...
        assert by_type["none"]["decisions"] == len(on_passing)
        assert by_type["none"]["decisions"] + len(on_failing) == d["decisions"]
        # ... once per error type of its image.
        per_type = sum(v["decisions"] for k, v in by_type.items() if k != "none")
        assert per_type == sum(len(r["rounds"][x["image"] - 1]["errors"]) for r, x in on_failing)
        for kind, value in by_type.items():
            if value["decisions"]:
                assert value["accuracy"] == value["correct"] / value["decisions"], kind
    # Passthrough submits every first image: right on passing images, wrong on every failing one.
    passthrough = rows[("passthrough", 2)]["diagnostics"]["judgment_by_error_type"]
    assert passthrough["none"]["accuracy"] == 1.0
    assert all(v["correct"] == 0 for k, v in passthrough.items() if k != "none")
    assert all(v["accuracy"] in (1.0, None) for v in rows[("scripted", 2)]["diagnostics"]
               ["judgment_by_error_type"].values())


def test_reflection_gain_is_the_difference_of_the_overall_columns(small_run: dict[str, Any]) -> None:
    rows = small_run["rows"]
    for agent in GRID["agents"]:
        assert rows[(agent, 1)]["diagnostics"]["reflection_gain"] is None
        gain = rows[(agent, 2)]["diagnostics"]["reflection_gain"]
        assert gain == pytest.approx(rows[(agent, 2)]["overall"] - rows[(agent, 1)]["overall"])
        assert rows[(agent, 2)]["diagnostics"]["reflection_gain_from_rounds"] == 1
    assert rows[("scripted", 2)]["diagnostics"]["reflection_gain"] > 0
    assert rows[("passthrough", 2)]["diagnostics"]["reflection_gain"] == 0.0
    # The same in the CSV and the Markdown table.
    table = list(csv.DictReader(io.StringIO(small_run["csv"])))
    by_key = {(r["agent"], int(r["max_rounds"])): r for r in table}
    for agent in GRID["agents"]:
        two, one = by_key[(agent, 2)], by_key[(agent, 1)]
        assert float(two["reflection_gain"]) == pytest.approx(float(two["overall"]) - float(one["overall"]))
        assert one["reflection_gain"] == ""
    line = next(x for x in small_run["markdown"].split("\n# Diagnostics\n")[1].splitlines()
                if x.startswith("| scripted | shapes-medium | 2 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert float(cells[4]) == pytest.approx(float(cells[3]) - rows[("scripted", 1)]["overall"], abs=1.5e-3)


def test_gain_at_four_rounds_is_measured_from_one_round() -> None:
    records = []
    for rounds, passes in ((1, [True, False, False, False]), (2, [True, True, False, False]),
                           (4, [True, True, True, False])):
        records += [make_record(task_id=f"t/{i}", task_index=i, tag="color", prompt="p", passed=p, max_rounds=rounds)
                    for i, p in enumerate(passes)]
    records += [make_record(task_id="t/0", task_index=0, tag="color", prompt="p", passed=True, max_rounds=2,
                            agent="only-two")]
    rows = {(r.key.agent, r.key.max_rounds): r for r in build_rows(records)}
    assert rows[("scripted", 4)].diagnostics is not None
    assert rows[("scripted", 4)].diagnostics.reflection_gain == pytest.approx(0.75 - 0.25)
    assert rows[("scripted", 2)].diagnostics.reflection_gain == pytest.approx(0.5 - 0.25)
    assert math.isnan(rows[("only-two", 2)].diagnostics.reflection_gain)  # no 1-round row to compare with


def test_records_of_older_runs_still_make_a_report(tmp_path: Path) -> None:
    # make_record writes the schema before diagnostics: no tool-call counts, no verdicts per round.
    records = [make_record(task_id=f"t/{i}", task_index=i, tag="color", prompt="a red circle", passed=i % 2 == 0,
                           n_images=2, prompts=["a red circle", "one red circle"]) for i in range(4)]
    files = write_reports(write_run(tmp_path / "run", records))
    row = json.loads(files["json"].read_text())["benchmarks"]["geneval++"]["rows"][0]["diagnostics"]
    assert row["tool_calls"] is None and row["tool_call_failure_rate"] is None
    assert row["prompt_drift"] == pytest.approx((0 + (1 - 2 / 4)) / 2) and row["prompts_changed"] == 0.5
    # Submissions on image 1 of 2 are judged from the env's "correct"; retries need a verdict: left out.
    assert row["decisions"] == 0 and all(v["decisions"] == 0 for v in row["judgment_by_error_type"].values())
    assert "Diagnostics" in files["html"].read_text() and "# Diagnostics" in files["markdown"].read_text()


# ---------------------------------------------------------------------------------- the pages


def test_front_page_shows_the_diagnostics_table_with_oracles_marked(small_run: dict[str, Any]) -> None:
    page = small_run["html"]
    assert 'href="#diagnostics"' in page and '<section id="diagnostics">' in page
    section = page.split('<section id="diagnostics">')[1].split("</section>")[0]
    table = section.split('<table class="lb diag">')[1].split("</table>")[0]
    for header in ("reflection<br>gain", "tool-call<br>failure", "prompt<br>drift", "judgment<br>accuracy",
                   *(f"<th class=\"{'sep' if kind == 'none' else ''}\">{kind}</th>" for kind in JUDGMENT_TYPES)):
        assert header in table, header
    body = table.split("<tbody>")[1]
    assert len(re.findall(r"<tr class=", body)) == 6  # 3 agents x 2 budgets
    assert len(re.findall(r'<tr class="[^"]*orow', body)) == 2 and body.count(">ORACLE<") == 1  # scripted
    for name in ("reflection gain", "tool-call failure", "prompt drift", "prompts changed", "judgment",
                 "by error type"):
        assert f"<dt>{name}</dt>" in section
    markdown = small_run["markdown"].split("\n# Diagnostics\n")[1]
    assert "*(oracle)*: `scripted`" in markdown and "- **prompt drift**:" in markdown
    assert set(small_run["board"]["diagnostics_columns"]) >= {"reflection gain", "judgment", "by error type"}


def test_markdown_has_one_diagnostics_row_per_leaderboard_row() -> None:
    records = [make_record(task_id=f"t/{i}", task_index=i, tag="color", prompt="p", passed=True, agent=agent)
               for i in range(2) for agent in ("a", "b")]
    diagnostics = render_markdown(build_rows(records)).split("\n# Diagnostics\n")[1]
    assert len([line for line in diagnostics.splitlines() if line.startswith("| ")]) == 1 + 2
