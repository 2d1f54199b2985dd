"""Reports of a run folder: leaderboard tables (MD/CSV/JSON, escaped), merge of runs, the front page and
the task browser (escaped, checked in headless Chromium: filters, split data, page sizes and the time to
the first screen on a run of the main job's size), oracles, identical rows and plots. The run folders
are written here, not by the runner."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest

from benchmarks.report import (
    RUN_DIR_KEY,
    build_rows,
    constant_agents,
    generators_figure,
    oracle_agents,
    read_records,
    read_runs,
    render_csv,
    render_markdown,
    same_as,
    scaling_figure,
    what_won,
    write_reports,
)
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
    assert set(files) == {"markdown", "csv", "json", "html", "tasks", "scaling_plot", "generators_plot"}
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
        assert csv_row["oracle"] == "true" and json_row["oracle"] is True  # scripted reads the checklist
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


def _browser_data(report_dir: Path) -> dict[int, list[dict[str, Any]]]:
    """The task browser's episodes per task number, read back from ``tasks/t/*.js`` (``GA.task(n, part,
    [...]);``), parts joined in order."""
    parts: dict[int, dict[int, list[dict[str, Any]]]] = {}
    for file in sorted((report_dir / "tasks" / "t").glob("*.js")):
        text = file.read_text(encoding="ascii")
        assert text.startswith("GA.task(") and text.endswith(");\n")
        number, part, episodes = json.loads("[" + text[len("GA.task("):-len(");\n")] + "]")
        parts.setdefault(number, {})[part] = episodes
    return {n: [e for p in sorted(ps) for e in ps[p]] for n, ps in parts.items()}


def _browser_index(report_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The task browser's meta data and task list."""
    def calls(path: Path, name: str) -> list[Any]:
        text = path.read_text(encoding="ascii")
        assert text.startswith(f"GA.{name}(") and text.endswith(");\n")
        return json.loads("[" + text[len(f"GA.{name}("):-len(");\n")] + "]")

    [meta] = calls(report_dir / "tasks" / "meta.js", "meta")
    tasks = []
    for file in sorted((report_dir / "tasks").glob("index-*.js"), key=lambda p: int(p.stem.split("-")[1])):
        tasks += calls(file, "tasks")[1]
    return meta, tasks


def _image_links(report_dir: Path) -> list[str]:
    return [r["img"] for episodes in _browser_data(report_dir).values() for e in episodes for r in e["rounds"]
            if r["img"]]


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
    # The merged task browser links to the images inside the original run folders, and says so.
    links = _image_links(out / "report")
    assert len(links) == 21 and all((out / "report" / unquote(src)).resolve().is_file() for src in links)
    assert {Path(unquote(src)).parts[:2] for src in links} == {("..", "..")}
    assert "../../a/, ../../b/" in (out / "report" / "tasks.html").read_text()


# ---------------------------------------------------------------------------------------------- HTML


def _hostile_run(tmp_path: Path) -> Path:
    records = [
        make_record(task_id="t/0", task_index=0, tag="color", prompt=f"a red circle {PAYLOAD}", passed=True,
                    n_images=2, final_image=1, judges=[f"looks fine {PAYLOAD}", None],
                    prompts=[f"Exactly 1 red circle. {PAYLOAD}", "plain second try & <b>bold</b>"]),
        make_record(task_id=f"t/<i>{PAYLOAD}</i>", task_index=1, tag=f"tag{PAYLOAD}", prompt="a blue star",
                    passed=False, n_images=1, final_image=None, agent=f"random{PAYLOAD}"),
    ]
    return write_run(tmp_path / "run", records)


def test_html_escapes_every_text_and_links_the_round_images(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path)
    files = write_reports(run)
    escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;"
    for page in (files["html"].read_text(), files["tasks"].read_text()):
        assert PAYLOAD not in page and "<i>" not in page
        assert f"random{escaped}" in page
        # Our own scripts only: the load-time probe (both pages) and the browser with its data (tasks.html).
        assert all(src in ("assets/browser.js", "tasks/meta.js", "tasks/index-0.js")
                   for src in re.findall(r"<script src=\"([^\"]+)\"", page))
        assert "http://" not in page and "https://" not in page and "<link" not in page
    # A tag column of the leaderboard (its header may break after _ and -).
    assert f"tag{escaped}" in files["html"].read_text().replace("<wbr>", "")
    # The texts travel as JSON (pure ASCII) and the script only sets textContent.
    episodes = _browser_data(run / "report")
    texts = [r[k] for es in episodes.values() for e in es for r in e["rounds"] for k in ("prompt", "judge")]
    assert f"Exactly 1 red circle. {PAYLOAD}" in texts and f"looks fine {PAYLOAD}" in texts and None in texts
    script = files["tasks"].parent.joinpath("assets", "browser.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script
    # Image links: relative to the report folder, URL-quoted (a name may hold <, =, #...).
    links = _image_links(run / "report")
    assert links[:2] == ["../images/scripted_shapes-medium_2/t_0/s0_r1.png",
                         "../images/scripted_shapes-medium_2/t_0/s0_r2.png"]
    assert [unquote(src) for src in links] == ["../" + p for r in read_records(run) for p in r["images"]]
    assert "<" not in links[2] and "%3Cscript%3E" in links[2]
    assert all((run / "report" / unquote(src)).is_file() for src in links)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        pytest.fail("headless Chromium is needed to check the HTML report: install the Debian package "
                    "'chromium' (apt-get install -y chromium)")
    return path


def _chromium_run(page: Path | str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    url = page.as_uri() if isinstance(page, Path) else page
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={profile}", *extra, url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _dom(page: Path | str, profile: Path) -> str:
    """The page's DOM after its scripts ran (Chromium's ``--dump-dom`` waits for the load event,
    which the task data scripts the browser adds delay)."""
    return _chromium_run(page, profile, "--dump-dom").stdout


_PROBE = "<script>document.body.setAttribute('data-pwned', String(window.__pwned));</script>"


def test_html_report_in_headless_chromium_shows_the_script_as_text(tmp_path: Path) -> None:
    run = _hostile_run(tmp_path)
    files = write_reports(run)
    escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;"
    # A probe of ours at the end of each page records whether anything set window.__pwned before it.
    for name, page in (("index", files["html"]), ("tasks", files["tasks"])):
        probed = page.with_name(f"probed-{name}.html")
        probed.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
        dom = _dom(probed, tmp_path / f"profile-{name}")
        assert 'data-pwned="undefined"' in dom
        assert f"random{escaped}" in dom
        assert "<script>window.__pwned" not in dom
    # In the task browser, after the script drew the tasks: every text shown as text.
    dom = _dom(files["tasks"].as_uri() + "#seed=all", tmp_path / "profile-tasks2")
    assert f"a red circle {escaped}" in dom and f"Exactly 1 red circle. {escaped}" in dom
    assert f"looks fine {escaped}" in dom and "plain second try &amp; &lt;b&gt;bold&lt;/b&gt;" in dom
    assert f"t/&lt;i&gt;{escaped}&lt;/i&gt;" in dom and f"tag{escaped}" in dom
    assert dom.count('class="rd final"') == 1 and "FAIL" in dom and "PASS" in dom
    assert dom.count("<img ") == 3 and 'loading="lazy"' in dom
    # The probe works: an unescaped payload does set the flag.
    control = tmp_path / "control.html"
    control.write_text(f"<html><body><p>{PAYLOAD}</p>{_PROBE}</body></html>")
    assert 'data-pwned="1"' in _dom(control, tmp_path / "profile2")
    # And the page renders.
    shot = tmp_path / "shot.png"
    _chromium_run(files["html"], tmp_path / "profile3", f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_shows_rounds_whose_image_was_not_saved(tmp_path: Path) -> None:
    record = make_record(task_id="t/0", task_index=0, tag="color", prompt="p", passed=True, n_images=2)
    run = write_run(tmp_path / "run", [record])
    lines = (run / "results.jsonl").read_text().splitlines()
    saved = json.loads(lines[0])
    saved["images"][0] = None  # the runner's --save-images final
    (run / "results.jsonl").write_text(json.dumps(saved) + "\n")
    files = write_reports(run)
    [[episode]] = _browser_data(run / "report").values()
    assert [r["img"] is None for r in episode["rounds"]] == [True, False]
    dom = _dom(files["tasks"], tmp_path / "profile")
    assert "image not saved" in dom and dom.count("<img ") == 1


# ------------------------------------------------------------------------ Markdown and CSV escaping


def test_markdown_cells_hold_no_raw_html_and_a_pipe_cannot_split_a_column(tmp_path: Path) -> None:
    tag = "<img src=x onerror=alert(1)>|x\\|y"
    records = [make_record(task_id="t/0", task_index=0, tag=tag, prompt="p", passed=True, benchmark="custom",
                           agent="a|b<b>", generator="g\nh")]
    markdown = render_markdown(build_rows(records))
    assert "<img" not in markdown and "<b>" not in markdown
    assert "&lt;img src=x onerror=alert(1)&gt;\\|x\\\\\\|y" in markdown
    leaderboard, diagnostics = markdown.split("\n# Diagnostics\n")
    table = [line for line in leaderboard.splitlines() if line.startswith("| ")]
    # Cells split at pipes that no backslash escapes: header and row have the same number of cells.
    cells = [re.split(r"(?<!\\)\|", re.sub(r"\\\\", "", line)) for line in table]
    assert len(table) == 2 and len(cells[0]) == len(cells[1]) == 2 + 3 + 1 + 6  # the ends, 10 cells
    table = [line for line in diagnostics.splitlines() if line.startswith("| ")]
    cells = [re.split(r"(?<!\\)\|", re.sub(r"\\\\", "", line)) for line in table]
    assert len(table) == 2 and len(cells[0]) == len(cells[1])
    assert table[1].startswith("| a\\|b&lt;b&gt; | g h | 2 |")
    assert "| a\\|b&lt;b&gt; | g h | 2 |" in markdown


def test_csv_text_cells_never_start_a_formula(tmp_path: Path) -> None:
    hostile = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]
    records = [make_record(task_id=f"t/{i}", task_index=i, tag=text, prompt="p", passed=False, benchmark="custom",
                           agent=text, generator=hostile[(i + 1) % len(hostile)], reward=-0.5)
               for i, text in enumerate(hostile)]
    text = render_csv(build_rows(records))
    table = list(csv.reader(io.StringIO(text)))
    header, rows = table[0], table[1:]
    numeric = {"max_rounds", "n", "overall", "overall_std", "mean_reward", "violations_per_episode",
               "images_per_episode"}
    for row in [header, *rows]:
        for name, cell in zip(header, row):
            if name in numeric and row is not header:
                float(cell)  # numbers stay numbers, negative ones included
            else:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell)
    assert {r[header.index("agent")] for r in rows} == {"'" + h for h in hostile}
    assert "'=HYPERLINK(\"http://evil.example\",\"x\")" in header
    assert all(float(r[header.index("mean_reward")]) == -0.5 for r in rows)


def test_lone_surrogates_go_through_every_report(tmp_path: Path) -> None:
    lone = "\ud800"
    records = [make_record(task_id=f"t/{lone}", task_index=0, tag=f"tag{lone}", prompt=f"p{lone}", passed=True,
                           agent=f"agent{lone}$x", generator="g$", prompts=[f"round{lone}"],
                           judges=[f"judge\udcff{lone}"]),  # a low then a high surrogate: two lone ones
               make_record(task_id="t/1", task_index=1, tag="color", prompt="pair \ud83d\ude00", passed=False)]
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))  # \udXXX escapes
    files = write_reports(run)
    for path in files.values():
        if path.suffix in (".md", ".csv", ".json", ".html"):
            text = path.read_bytes().decode("utf-8")  # valid UTF-8
            assert lone not in text
    assert "agent\ufffd$x" in files["markdown"].read_text() and "tag\ufffd" in files["csv"].read_text()
    assert "agent\ufffd$x" in files["html"].read_text()  # and in the plots: they were drawn
    texts = [r["judge"] for es in _browser_data(run / "report").values() for e in es for r in e["rounds"]]
    assert "judge\ufffd\ufffd" in texts
    meta, tasks = _browser_index(run / "report")
    assert {t["prompt"] for t in tasks} == {"p\ufffd", "pair 😀"}
    assert [a["name"] for a in meta["agents"]] == ["agent\ufffd$x", "scripted"]


# ----------------------------------------------------------------------- oracles, identical rows, winners


def _grid_records(tasks: int, seeds: int = 2) -> list[dict[str, Any]]:
    """passthrough (never calls twice: the same at every budget), random (never passes) and the two
    oracles, with two generators and budgets 1 and 2."""
    records = []
    for t in range(tasks):
        tag = GENEVAL_PP_TAGS[t % len(GENEVAL_PP_TAGS)]
        for seed in range(seeds):
            for generator, strength in (("shapes-weak", 3), ("shapes-strong", 2)):
                for rounds in (1, 2):
                    common = {"task_id": f"s/{t:04d}", "task_index": t, "tag": tag, "prompt": f"task {t}",
                              "seed": seed, "generator": generator, "max_rounds": rounds}
                    records.append(make_record(**common, agent="passthrough", passed=(t + seed) % strength == 0,
                                               n_images=1))
                    records.append(make_record(**common, agent="random", passed=False, n_images=rounds,
                                               violations=rounds, reward=-0.2))
                    for oracle in ("resample", "scripted"):
                        records.append(make_record(**common, agent=oracle, n_images=rounds,
                                                   passed=(t + seed) % strength == 0 or rounds == 2))
    return records


def test_oracles_are_marked_and_left_out_of_what_won(tmp_path: Path) -> None:
    records = _grid_records(7)
    records.append(make_record(task_id="s/0000", task_index=0, tag="color", prompt="task 0", passed=True,
                               agent="my.pkg:teacher", generator="shapes-weak", max_rounds=1) | {"privileged": True})
    rows = build_rows(records)
    assert {r.key.agent for r in rows if r.oracle} == {"resample", "scripted", "my.pkg:teacher"}
    assert oracle_agents(records) == {"resample", "scripted", "my.pkg:teacher"}
    won = what_won(rows)
    assert {(w.generator, w.max_rounds) for w in won} == {(g, r) for g in ("shapes-weak", "shapes-strong")
                                                           for r in (1, 2)}
    assert all(w.best is not None and w.best.key.agent == "passthrough" and not w.best.oracle for w in won)
    assert all(w.oracle is not None and w.oracle.oracle for w in won)
    assert [w.generator for w in won][:2] == ["shapes-weak", "shapes-weak"]  # weakest first
    run = write_run(tmp_path / "run", records)
    files = write_reports(run)
    page = files["html"].read_text()
    assert page.count(">ORACLE</span>") >= 3 + 3  # the agent list and the table's agent cells
    assert "Best agent that does not read the checklist: passthrough, with shapes-strong at any max_rounds" in page
    assert "hidden checklist" in page
    markdown = files["markdown"].read_text()
    assert "*(oracle)*: `my.pkg:teacher`, `resample`, `scripted` read the task's hidden checklist" in markdown
    bold = re.findall(r"^\| ([^|]+) \|.*\*\*", markdown, flags=re.MULTILINE)
    assert bold and set(bold) == {"passthrough"}  # the best that is not an oracle, not the oracle ceiling
    meta, _ = _browser_index(run / "report")
    assert {a["name"]: a["oracle"] for a in meta["agents"]} == {
        "passthrough": False, "random": False, "my.pkg:teacher": True, "resample": True, "scripted": True}


def test_every_column_is_defined_on_the_front_page_and_in_markdown(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", _grid_records(7, seeds=1))
    files = write_reports(run)
    page = files["html"].read_text()
    legend = page.split('id="columns"', 1)[1]
    for name in ("agent", "generator", "rounds", "overall ± std", "per seed", "reward", "viol/ep", "img/ep", "n",
                 *GENEVAL_PP_TAGS):
        assert f"<dt>{name}</dt>" in legend, name
    assert "standard deviation" in legend and "not a confidence interval" in legend
    markdown = files["markdown"].read_text()
    for name in ("viol/ep", "img/ep", "n", "overall ± std", "per seed"):
        assert f"- **{name}**:" in markdown
    # The plots are shown on the front page, and the columns do not hide behind a scroll.
    assert '<img src="scaling.png"' in page and '<img src="generators.png"' in page
    assert "overflow-x" not in page


def test_identical_rows_are_marked_and_drawn_once(tmp_path: Path) -> None:
    rows = build_rows(_grid_records(7))
    same = same_as(rows)
    assert {(k.agent, k.generator, k.max_rounds): v for k, v in same.items()} == {
        ("passthrough", "shapes-weak", 2): 1, ("passthrough", "shapes-strong", 2): 1}
    assert constant_agents(rows) == {("geneval++", "passthrough")}  # random's rows differ (img/ep, violations)
    assert "| passthrough | shapes-weak | 2 ≡ 1 |" in render_markdown(rows)
    figure = generators_figure(rows)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["passthrough · 1, 2 rounds (identical)", "random · 1 round", "random · 2 rounds",
                      "resample (oracle) · 1 round", "resample (oracle) · 2 rounds",
                      "scripted (oracle) · 1 round", "scripted (oracle) · 2 rounds"]
    scaling = scaling_figure(rows)
    legend = [t.get_text() for t in scaling.legends[0].get_texts()]
    assert "passthrough — same at every max_rounds, drawn once" in legend
    assert "resample (oracle)" in legend and "generator shapes-weak" in legend
    colours = {line.get_label(): line.get_color() for line in scaling.legends[0].get_lines()}
    agent_colours = [colours[label] for label in legend if not label.startswith("generator")]
    assert len(set(agent_colours)) == 4  # one colour per agent
    markers = [line.get_marker() for line in scaling.legends[0].get_lines()][4:]
    assert len(set(markers)) == 2  # one marker per generator
    # passthrough: one point per panel (not one per budget); the others one point per budget.
    for ax in scaling.axes[:2]:
        points = [len(line.get_xdata()) for line in ax.get_lines() if line.get_linestyle() == "None"]
        assert points.count(1) >= 1
        assert ax.get_xlabel().startswith("max rounds") and [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    # The legend is outside the panels.
    scaling.canvas.draw()
    box = scaling.legends[0].get_window_extent()
    assert all(box.x0 >= ax.get_window_extent().x1 for ax in scaling.axes)
    figure.canvas.draw()
    assert figure.axes[0].get_xlabel().startswith("overall score")
    box = figure.legends[0].get_window_extent()
    assert box.x0 >= figure.axes[0].get_window_extent().x1


def test_write_reports_quiet_only_silences(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = write_run(tmp_path / "run", _pp_records(0, {"color": [True]}))
    files = write_reports(run, quiet=True)
    assert capsys.readouterr().out == "" and all(path.is_file() for path in files.values())
    files["html"].unlink()
    write_reports(run, quiet=False)
    out = capsys.readouterr().out
    assert "| scripted | shapes-medium | 2 |" in out and "report" in out and files["html"].is_file()


# -------------------------------------------------------------------------- the browser, at scale


def test_copied_images_make_the_report_folder_stand_alone(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", _pp_records(0, {"color": [True, False]}, n_images=2))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "benchmarks.leaderboard", str(run), "--out", str(out),
                             "--copy-images", "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    moved = tmp_path / "elsewhere" / "report"
    shutil.move(str(out / "report"), moved)
    shutil.rmtree(run)
    links = _image_links(moved)
    assert len(links) == 4 and all(not src.startswith("..") and (moved / unquote(src)).is_file() for src in links)
    assert "The 4 images are inside this folder" in (moved / "tasks.html").read_text()
    # Without the option the pages say which folder they need.
    linked = write_reports(write_run(tmp_path / "run2", _pp_records(0, {"color": [True]})))
    assert "the pages read them from the run folder at ../" in linked["tasks"].read_text()


def test_a_task_bigger_than_a_data_file_is_split_and_shown_whole(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.report as report

    records = [make_record(task_id="big/0", task_index=0, tag="color", prompt="p", passed=seed % 2 == 0, seed=seed,
                           n_images=2, prompts=["x" * 300, "y" * 300]) for seed in range(12)]
    run = write_run(tmp_path / "run", records)
    monkeypatch.setattr(report, "DATA_FILE_LIMIT", 3000)
    files = write_reports(run)
    parts = sorted(p.name for p in (run / "report" / "tasks" / "t").iterdir())
    assert len(parts) >= 3 and parts[:2] == ["00000-1.js", "00000-2.js"] and "00000.js" in parts
    assert all(p.stat().st_size < 3000 + 2000 for p in (run / "report" / "tasks" / "t").iterdir())
    assert sorted(e["s"] for e in _browser_data(run / "report")[0]) == list(range(12))
    dom = _dom(files["tasks"].as_uri() + "#seed=all", tmp_path / "profile")
    assert dom.count('class="ep pass') == 6 and dom.count('class="ep fail') == 6


def _main_job_like_run(folder: Path, tasks: int) -> Path:
    """A run shaped like the main job (4 agents × 3 generators × rounds 1, 2, 4 × 3 seeds per task,
    every round's image), written directly: the image files are a few real PNGs, shared."""
    from PIL import Image

    folder.mkdir(parents=True)
    pictures = []
    for i in range(4):
        relative = f"images/shared/{i}.png"
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), (60 * i, 120, 200 - 40 * i)).save(folder / relative)
        pictures.append(relative)
    judge = ("image_{k} does not satisfy the request: expected exactly 2 red circles, found 1 (and 1 circle in "
             "blue); what is right: there is exactly 1 green star, as asked.")
    with (folder / "results.jsonl").open("w", encoding="utf-8") as out:
        for t in range(tasks):
            tag = GENEVAL_PP_TAGS[t % len(GENEVAL_PP_TAGS)]
            for agent in ("passthrough", "random", "resample", "scripted"):
                for generator in ("shapes-weak", "shapes-medium", "shapes-strong"):
                    for rounds in (1, 2, 4):
                        for seed in range(3):
                            used = 1 if agent == "passthrough" else 1 + (t + seed) % rounds
                            record = make_record(
                                task_id=f"shapes-geneval/test/{t:04d}", task_index=t, tag=tag, seed=seed,
                                prompt=f"a simple drawing of two red circles and a green star, task {t}",
                                passed=(t + seed + rounds) % 3 == 0, agent=agent, generator=generator,
                                max_rounds=rounds, n_images=used,
                                prompts=[f"Exactly 2 (two) red circles. Exactly 1 (one) green star. Try {k}."
                                         for k in range(used)],
                                judges=[judge.format(k=k + 1) for k in range(used)])
                            record["images"] = [pictures[(t + k) % 4] for k in range(used)]
                            out.write(json.dumps(record) + "\n")
    return folder


def _timed(page: str, profile: Path) -> dict[str, int]:
    dom = _dom(page, profile)
    return {name: int(value) for name, value in re.findall(r'data-([a-z-]+)-ms="(\d+)"', dom)} | {
        "img": dom.count("<img "), "tasks": dom.count('<article class="task"')}


def test_main_job_sized_report_has_small_pages_and_a_fast_first_screen(tmp_path: Path) -> None:
    """The main job's shape (280 tasks, 30 240 episodes, ~50 000 round images): every file of the
    report stays under 2 MB, the pages hold no <img> until the browser draws one page of tasks, and
    headless Chromium shows the first screen (the tasks on it drawn and their images loaded) in under
    2 s, measured in the page from navigation start (the better of two loads, for a busy machine)."""
    run = _main_job_like_run(tmp_path / "run", tasks=280)
    started = time.perf_counter()
    files = write_reports(run)
    assert time.perf_counter() - started < 120
    report = run / "report"
    sizes = {p.relative_to(report).as_posix(): p.stat().st_size for p in report.rglob("*") if p.is_file()}
    assert max(sizes.values()) < 2_000_000, max(sizes.items(), key=lambda item: item[1])
    assert len([name for name in sizes if name.startswith("tasks/t/")]) == 280
    for page in (files["html"], files["tasks"]):
        assert "<img " not in page.read_text() or page == files["html"]
    assert files["html"].read_text().count("<img ") == 2  # the two plots

    timings = [_timed(files["tasks"].as_uri(), tmp_path / f"profile-{i}") for i in range(2)]
    best = min(timings, key=lambda t: t.get("first-screen", 10**9))
    assert best["tasks"] == 5 and 0 < best["img"] <= 5 * 36 * 4, best  # one page of tasks, one seed
    assert best.get("rendered", 10**9) < 2000 and best.get("first-screen", 10**9) < 2000, timings
    front = min((_timed(files["html"].as_uri(), tmp_path / f"front-{i}") for i in range(2)),
                key=lambda t: t.get("load", 10**9))
    assert front["load"] < 2000, front


def test_the_browser_filters_by_tag_agent_generator_rounds_outcome_and_text(tmp_path: Path) -> None:
    run = _main_job_like_run(tmp_path / "run", tasks=14)
    files = write_reports(run)
    meta, tasks = _browser_index(run / "report")
    assert meta["tasks"] == 14 and len(tasks) == 14 and {t["col"] for t in tasks} == set(GENEVAL_PP_TAGS)
    base = files["tasks"].as_uri()

    dom = _dom(base + "#tag=count&agent=scripted&generator=shapes-weak&rounds=4&per=20", tmp_path / "p1")
    assert dom.count('<article class="task"') == 2  # tasks 1 and 8 are "count"
    assert dom.count('class="ep ') == 2 and "4 rounds max" in dom and "2 rounds max" not in dom
    assert "passthrough" not in dom.split('id="tasks"', 1)[1]

    dom = _dom(base + "#agent=random&outcome=pass", tmp_path / "p2")
    assert "No task matches the filters." not in dom  # the synthetic random agent does pass sometimes
    dom = _dom(base + "#q=task%2013&seed=all&per=20", tmp_path / "p3")
    assert dom.count('<article class="task"') == 1 and "shapes-geneval/test/0013" in dom
    assert dom.count('class="ep ') == 108
    dom = _dom(base + "#q=no-such-words", tmp_path / "p4")
    assert "No task matches the filters." in dom
