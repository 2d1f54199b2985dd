"""Reports of a run folder: leaderboard tables (MD/CSV/JSON), merge of runs, HTML (escaped, checked in
headless Chromium) and plots. The run folders are written here, not by the runner."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks.report import RUN_DIR_KEY, build_rows, read_records, read_runs, write_reports
from genagent_env.tasks.schema import GENEVAL_PP_TAGS
from genagent_env.tasks.wise import wise_overall
from tests.helpers import REPO, make_record, write_run

PAYLOAD = "<script>window.__pwned=1</script>"


# ------------------------------------------------------------------------------------------- helpers


def _pp_records(seed: int, passes: Mapping[str, list[bool]], **kwargs: Any) -> list[dict[str, Any]]:
    records = []
    for tag, results in passes.items():
        for j, passed in enumerate(results):
            index = GENEVAL_PP_TAGS.index(tag) * 10 + j if tag in GENEVAL_PP_TAGS else 90 + j
            records.append(make_record(task_id=f"shapes-geneval/test/{index:04d}", task_index=index, tag=tag,
                                       prompt=f"prompt {index}", passed=passed, seed=seed, **kwargs))
    return records


def _wise_records(scores: Mapping[int, float], seed: int = 0) -> list[dict[str, Any]]:
    subcategory = {1: "Festival", 401: "Longitudinal time", 501: "Geographical Location", 701: "Animal",
                   801: "Mechanics", 901: "Reaction"}
    records = []
    for index, (prompt_id, score) in enumerate(scores.items()):
        wise = {"prompt_id": prompt_id, "Prompt": f"wise {prompt_id}", "Explanation": "x",
                "Category": "whatever", "Subcategory": subcategory[prompt_id // 100 * 100 + 1]}
        records.append(make_record(task_id=f"wise/{prompt_id}", task_index=index, tag="whatever",
                                   prompt=f"wise {prompt_id}", passed=score > 0.5, score=score, seed=seed,
                                   benchmark="wise", suite="WISE/data/all.json", wise=wise))
    return records


# -------------------------------------------------------------------------------------------- tables


def test_geneval_pp_overall_is_mean_of_tags_per_seed_then_over_seeds(tmp_path: Path) -> None:
    # Uneven task counts per tag, so the mean of tag rates differs from the pooled pass rate.
    seed0 = {"color": [True, True, True, False], "count": [False], "color_count": [True], "color_pos": [True],
             "pos_count": [False], "pos_size": [True], "multi_count": [False]}
    seed1 = {"color": [True, False, False, False], "count": [True], "color_count": [True], "color_pos": [False],
             "pos_count": [False], "pos_size": [True], "multi_count": [True]}
    records = _pp_records(0, seed0) + _pp_records(1, seed1)
    # Echo-4o's tag name for the paper's "color" column lands in the same column.
    records[0]["tag"] = "color_attr"
    [row] = build_rows(records)
    per_seed = [np.mean([np.mean(v) for v in s.values()]) for s in (seed0, seed1)]
    pooled = np.mean([p for s in (seed0, seed1) for v in s.values() for p in v])
    assert row.columns == GENEVAL_PP_TAGS
    assert row.overall_per_seed == pytest.approx(per_seed)
    assert row.overall == pytest.approx(np.mean(per_seed))
    assert row.overall_std == pytest.approx(np.std(per_seed))
    assert not math.isclose(row.overall, pooled)
    assert row.column_mean["color"] == pytest.approx((0.75 + 0.25) / 2)
    assert row.per_seed["count"] == [0.0, 1.0]
    assert row.seeds == [0, 1] and row.n == 20 and not row.partial


def test_geneval_six_tags_and_partial_rows_are_flagged(tmp_path: Path) -> None:
    tags = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
    rates = {tag: [True] * (i + 1) + [False] * (5 - i) for i, tag in enumerate(tags)}
    records = []
    for i, (tag, results) in enumerate(rates.items()):
        for j, passed in enumerate(results):
            records.append(make_record(task_id=f"geneval/{i}{j}", task_index=10 * i + j, tag=tag, prompt="p",
                                       passed=passed, benchmark="geneval"))
    [row] = build_rows(records)
    assert row.columns == tags
    assert row.overall == pytest.approx(np.mean([(i + 1) / 6 for i in range(6)]))
    assert row.column_mean["color_attr"] == pytest.approx(1.0) and not row.partial
    [partial] = build_rows([r for r in records if r["tag"] != "position"])
    assert partial.partial and math.isnan(partial.column_mean["position"])
    assert partial.overall == pytest.approx(np.mean([(i + 1) / 6 for i in range(6) if i != 4]))


def test_wise_overall_weights_categories_by_wise_overall() -> None:
    scores = {1: 0.9, 2: 0.7, 401: 0.4, 501: 0.2, 502: 0.6, 701: 0.5, 801: 1.0, 901: 0.0}
    [row] = build_rows(_wise_records(scores))
    categories = {"Cultural": 0.8, "Time": 0.4, "Space": 0.4, "Biology": 0.5, "Physics": 1.0, "Chemistry": 0.0}
    assert row.columns == tuple(categories)
    assert row.column_mean == pytest.approx(categories)
    assert row.overall == pytest.approx(wise_overall(categories))
    assert not math.isclose(row.overall, np.mean(list(categories.values())))
    [partial] = build_rows(_wise_records({1: 1.0, 701: 0.0}))
    assert partial.partial and partial.overall == pytest.approx(0.4 / 0.5)


def test_markdown_csv_json_agree_and_rows_are_separate(tmp_path: Path) -> None:
    passes = {tag: [True, False] for tag in GENEVAL_PP_TAGS}
    records = _pp_records(0, passes) + _pp_records(1, {**passes, "color": [True, True]})
    records += _pp_records(0, {tag: [False, False] for tag in GENEVAL_PP_TAGS}, max_rounds=1, n_images=1)
    records += _pp_records(0, passes, generator="shapes-strong", n_images=2, violations=1)
    records += _wise_records({1: 0.5, 401: 0.5, 501: 0.5, 701: 0.5, 801: 0.5, 901: 0.5})
    run = write_run(tmp_path / "run", records)
    files = write_reports(run)
    assert set(files) == {"markdown", "csv", "json", "html", "scaling_plot", "generators_plot"}
    assert all(path.parent == run / "report" and path.is_file() for path in files.values())

    data = json.loads(files["json"].read_text())
    assert list(data["benchmarks"]) == ["geneval++", "wise"]
    pp_rows = data["benchmarks"]["geneval++"]["rows"]
    assert [(r["agent"], r["generator"], r["max_rounds"]) for r in pp_rows] == [
        ("scripted", "shapes-medium", 1), ("scripted", "shapes-medium", 2), ("scripted", "shapes-strong", 2)]
    assert data["benchmarks"]["geneval++"]["columns"] == list(GENEVAL_PP_TAGS)
    table = list(csv.DictReader(io.StringIO(files["csv"].read_text())))
    markdown = files["markdown"].read_text().replace("**", "")  # bold marks the best
    assert len(table) == 4
    for json_row, csv_row in zip(pp_rows + data["benchmarks"]["wise"]["rows"], table):
        assert csv_row["agent"] == json_row["agent"] and int(csv_row["max_rounds"]) == json_row["max_rounds"]
        assert float(csv_row["overall"]) == json_row["overall"]
        assert float(csv_row["overall_std"]) == json_row["overall_std"]
        assert [float(v) for v in csv_row["overall_per_seed"].split(";")] == json_row["overall_per_seed"]
        assert int(csv_row["n"]) == json_row["n"]
        for column, value in json_row["columns"].items():
            assert float(csv_row[column]) == value
            assert f"| {value:.3f} |" in markdown or f"| {value:.3f} " in markdown
        assert f"{json_row['overall']:.3f} ± {json_row['overall_std']:.3f}" in markdown
    two_seeds = pp_rows[1]
    assert two_seeds["seeds"] == [0, 1] and two_seeds["overall_per_seed"] == [0.5, pytest.approx(4 / 7)]
    assert two_seeds["columns"]["color"] == 0.75
    assert pp_rows[2]["images_per_episode"] == 2.0 and pp_rows[2]["violations_per_episode"] == 1.0
    assert table[3]["benchmark"] == "wise" and table[3]["color"] == "" and float(table[3]["Cultural"]) == 0.5
    assert "## GenEval++" in markdown and "## WISE" in markdown
    for plot in ("scaling_plot", "generators_plot"):
        assert files[plot].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reading_ignores_a_torn_last_line_and_repeated_keys(tmp_path: Path) -> None:
    first = make_record(task_id="t/0", task_index=0, tag="color", prompt="p", passed=True)
    again = {**first, "passed": False}
    other = make_record(task_id="t/1", task_index=1, tag="color", prompt="p", passed=False)
    run = write_run(tmp_path / "run", [first, again, other], torn_tail='{"key": "scripted|shapes-medium|2|t/2|0", "ag')
    records = read_records(run)
    assert [r["task_id"] for r in records] == ["t/0", "t/1"] and records[0]["passed"] is True
    assert records[0][RUN_DIR_KEY] == str(run.resolve())


def test_leaderboard_cli_merges_runs_and_dedupes_by_record_key(tmp_path: Path) -> None:
    passes = {tag: [True] for tag in GENEVAL_PP_TAGS}
    run_a = write_run(tmp_path / "a", _pp_records(0, passes))
    fails = {tag: [False] for tag in GENEVAL_PP_TAGS}
    # run b repeats seed 0 (same record keys, other outcomes: the first run wins), adds seed 1 and a row.
    run_b = write_run(tmp_path / "b", _pp_records(0, fails) + _pp_records(1, fails)
                      + _pp_records(0, passes, agent="passthrough", max_rounds=1))
    out = tmp_path / "merged"
    result = subprocess.run([sys.executable, "-m", "benchmarks.leaderboard", str(run_a), str(run_b), "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "| scripted | shapes-medium | 2 |" in result.stdout
    data = json.loads((out / "report" / "leaderboard.json").read_text())
    rows = {(r["agent"], r["max_rounds"]): r for r in data["benchmarks"]["geneval++"]["rows"]}
    assert set(rows) == {("scripted", 2), ("passthrough", 1)}
    merged = rows[("scripted", 2)]
    assert merged["n"] == 14 and merged["seeds"] == [0, 1] and merged["overall_per_seed"] == [1.0, 0.0]
    assert data["runs"] == [str(run_a), str(run_b)]
    assert len(read_runs([run_a, run_b])) == 21
    # The merged HTML links to the images inside the original run folders.
    page = (out / "report" / "index.html").read_text()
    sources = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert len(sources) == 21 and all((out / "report" / src).resolve().is_file() for src in sources)


# ---------------------------------------------------------------------------------------------- HTML


def _hostile_run(tmp_path: Path) -> Path:
    records = [
        make_record(task_id="t/0", task_index=0, tag="color", prompt=f"a red circle {PAYLOAD}", passed=True,
                    n_images=2, final_image=1, judges=[f"looks fine {PAYLOAD}", None],
                    prompts=[f"Exactly 1 red circle. {PAYLOAD}", "plain second try & <b>bold</b>"]),
        make_record(task_id=f"t/<i>{PAYLOAD}</i>", task_index=1, tag=f"tag{PAYLOAD}", prompt="a blue star",
                    passed=False, n_images=1, final_image=None, agent="random"),
    ]
    return write_run(tmp_path / "run", records)


def test_html_escapes_every_text_and_links_the_round_images(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path)
    page = write_reports(run)["html"].read_text()
    escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;"
    assert "<script" not in page.lower()
    assert f"a red circle {escaped}" in page
    assert f"looks fine {escaped}" in page
    assert f"Exactly 1 red circle. {escaped}" in page
    assert "plain second try &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert f"t/&lt;i&gt;{escaped}&lt;/i&gt;" in page and f"tag{escaped}" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    sources = re.findall(r"<img [^>]*src='([^']+)'", page)
    assert sources == ["../images/scripted_shapes-medium_2/t_0/s0_r1.png",
                       "../images/scripted_shapes-medium_2/t_0/s0_r2.png",
                       "../images/random_shapes-medium_2/t__i__script_window___pwned_1__script___i_/s0_r1.png"]
    assert all((run / "report" / src).is_file() for src in sources)
    assert page.count("class='card final'") == 1 and "FAIL" in page and "PASS" in page


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        pytest.fail("headless Chromium is needed to check the HTML report: install the Debian package "
                    "'chromium' (apt-get install -y chromium)")
    return path


def _chromium_run(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", f"--user-data-dir={profile}", *extra, page.as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


_PROBE = "<script>document.body.setAttribute('data-pwned', String(window.__pwned));</script>"


def test_html_report_in_headless_chromium_shows_the_script_as_text(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path)
    index = write_reports(run)["html"]
    # A probe of ours at the end of the page records whether anything set window.__pwned before it.
    probed = index.with_name("probed.html")
    probed.write_text(index.read_text().replace("</body>", _PROBE + "</body>"))
    dom = _chromium_run(probed, tmp_path / "profile", "--dump-dom").stdout
    assert 'data-pwned="undefined"' in dom
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in dom
    assert dom.count("<script") == 1  # the probe; the payload never became an element
    assert "a red circle &lt;script&gt;" in dom and "<img" in dom
    # The probe works: an unescaped payload does set the flag.
    control = tmp_path / "control.html"
    control.write_text(f"<html><body><p>{PAYLOAD}</p>{_PROBE}</body></html>")
    assert 'data-pwned="1"' in _chromium_run(control, tmp_path / "profile2", "--dump-dom").stdout
    # And the page renders.
    shot = tmp_path / "shot.png"
    _chromium_run(index, tmp_path / "profile3", f"--screenshot={shot}", "--window-size=1200,900")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_shows_rounds_whose_image_was_not_saved(tmp_path: Path) -> None:
    record = make_record(task_id="t/0", task_index=0, tag="color", prompt="p", passed=True, n_images=2)
    run = write_run(tmp_path / "run", [record])
    lines = (run / "results.jsonl").read_text().splitlines()
    saved = json.loads(lines[0])
    saved["images"][0] = None  # the runner's --save-images final
    (run / "results.jsonl").write_text(json.dumps(saved) + "\n")
    page = write_reports(run)["html"].read_text()
    assert "(image not saved)" in page and page.count("<img ") == 1
