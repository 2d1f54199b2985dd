"""Exports to the official evaluators' layouts: GenEval (evaluate_images.py), GenEval++ (Echo-4o),
WISE; paths and metadata exactly as those scripts read them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from benchmarks.export import export_run, select_row
from benchmarks.report import read_records
from tests.helpers import REPO, make_record, write_run

GENEVAL_LINES = [
    {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
    {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}],
     "prompt": "a photo of two clocks"},
    {"tag": "position",
     "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}],
     "prompt": "a photo of a dog left of a cat"},
]


def _geneval_run(tmp_path: Path) -> tuple[Path, Path]:
    suite = tmp_path / "evaluation_metadata.jsonl"
    suite.write_text("".join(json.dumps(line) + "\n" for line in GENEVAL_LINES))
    records = []
    for seed in (0, 1):
        for index, line in enumerate(GENEVAL_LINES):
            records.append(make_record(
                task_id=f"evaluation_metadata/{index:05d}", task_index=index, tag=line["tag"], prompt=line["prompt"],
                passed=True, seed=seed, benchmark="geneval", suite=str(suite), n_images=2, final_image=1 + index % 2))
    records[2]["final_image"] = None  # an episode that submitted nothing
    records.append(make_record(task_id="evaluation_metadata/00000", task_index=0, tag="single_object",
                               prompt=GENEVAL_LINES[0]["prompt"], passed=True, agent="other", benchmark="geneval",
                               suite=str(suite)))
    return write_run(tmp_path / "run", records), suite


def _geneval_evaluator_inputs(imagedir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The (image path, metadata) pairs GenEval's evaluate_images.py main() would evaluate."""
    pairs = []
    for subfolder in os.listdir(imagedir):
        folderpath = os.path.join(imagedir, subfolder)
        if not os.path.isdir(folderpath) or not subfolder.isdigit():
            continue
        with open(os.path.join(folderpath, "metadata.jsonl")) as fp:
            metadata = json.load(fp)
        for imagename in os.listdir(os.path.join(folderpath, "samples")):
            imagepath = os.path.join(folderpath, "samples", imagename)
            if not os.path.isfile(imagepath) or not re.match(r"\d+\.png", imagename):
                continue
            pairs.append((imagepath, metadata))
    return sorted(pairs, key=lambda pair: pair[0])


def test_geneval_layout_metadata_lines_and_final_images(tmp_path: Path) -> None:
    run, _ = _geneval_run(tmp_path)
    out = tmp_path / "geneval"
    result = export_run(run, "geneval", agent="scripted", generator="shapes-medium", rounds=2, seed=1, out=out)
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00001", "00002"]
    for index, line in enumerate(GENEVAL_LINES):
        folder = out / f"{index:05d}"
        assert sorted(p.name for p in folder.iterdir()) == ["metadata.jsonl", "samples"]
        assert [p.name for p in (folder / "samples").iterdir()] == ["0000.png"]
        assert (folder / "metadata.jsonl").read_text() == json.dumps(line)  # GenEval's json.dump of the line
    pairs = _geneval_evaluator_inputs(out)
    assert [metadata for _, metadata in pairs] == GENEVAL_LINES
    assert all("id" not in metadata for _, metadata in pairs)
    # Each sample is the image the agent chose: round 1, 2, 1 for the three tasks of seed 1.
    [*records] = select_row(read_records(run), agent="scripted", generator="shapes-medium", rounds=2, seed=1,
                            benchmark="geneval")
    for (path, _), record in zip(pairs, records):
        chosen = run / record["images"][record["final_image"] - 1]
        exported, original = Image.open(path).convert("RGB"), Image.open(chosen).convert("RGB")
        assert np.array_equal(np.asarray(exported), np.asarray(original))
    assert result.missing_images == [] and result.missing_tasks == [] and len(result.files) == 3


def test_geneval_export_of_an_episode_without_image_is_a_blank_failure_or_skipped(tmp_path: Path) -> None:
    run, _ = _geneval_run(tmp_path)
    result = export_run(run, "geneval", agent="scripted", generator="shapes-medium", rounds=2, seed=0,
                        out=tmp_path / "blank")
    assert result.missing_images == ["evaluation_metadata/00002"]
    blank = np.asarray(Image.open(tmp_path / "blank" / "00002" / "samples" / "0000.png"))
    assert blank.max() == 0
    skipped = export_run(run, "geneval", agent="scripted", generator="shapes-medium", rounds=2, seed=0,
                         out=tmp_path / "skip", missing="skip")
    assert not (tmp_path / "skip" / "00002").exists() and skipped.missing_tasks == [2]


def test_geneval_export_refuses_a_suite_that_does_not_match(tmp_path: Path) -> None:
    run, suite = _geneval_run(tmp_path)
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({**line, "prompt": line["prompt"] + "!"}) + "\n" for line in GENEVAL_LINES))
    with pytest.raises(ValueError, match="wrong suite file"):
        export_run(run, "geneval", agent="scripted", generator="shapes-medium", rounds=2, seed=0,
                   out=tmp_path / "x", suite=other)
    with pytest.raises(ValueError, match="the run holds: .*geneval scripted:shapes-medium:2 seed 0"):
        export_run(run, "geneval", agent="scripted", generator="shapes-medium", rounds=3, seed=0, out=tmp_path / "y")


def test_geneval_pp_layout_numbers_images_by_line(tmp_path: Path) -> None:
    records = [make_record(task_id=f"Geneval++/{i:05d}", task_index=i, tag="color_attr", prompt=f"p{i}",
                           passed=True, suite="Geneval++.jsonl", n_images=1 + i % 2) for i in (0, 1, 5)]
    run = write_run(tmp_path / "run", records)
    out = tmp_path / "pp"
    result = subprocess.run([sys.executable, "-m", "benchmarks.export", str(run), "--format", "geneval++", "--agent",
                             "scripted", "--generator", "shapes-medium", "--rounds", "2", "--seed", "0", "--out",
                             str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "3 images written" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["image"]
    assert sorted(p.name for p in (out / "image").iterdir()) == ["1.jpg", "2.jpg", "6.jpg"]
    with Image.open(out / "image" / "2.jpg") as image:
        assert image.format == "JPEG" and image.mode == "RGB"


def test_wise_layout_names_images_by_prompt_id(tmp_path: Path) -> None:
    records = [make_record(task_id=f"wise/{pid}", task_index=i, tag="Cultural knowledge", prompt=f"w{pid}",
                           passed=True, score=0.8, benchmark="wise", suite="cultural_common_sense.json",
                           wise={"prompt_id": pid, "Category": "Cultural knowledge", "Subcategory": "Festival"})
               for i, pid in enumerate((1, 17, 400))]
    run = write_run(tmp_path / "run", records)
    out = tmp_path / "wise"
    result = export_run(run, "wise", agent="scripted", generator="shapes-medium", rounds=2, seed=0, out=out)
    assert sorted(p.name for p in out.iterdir()) == ["1.png", "17.png", "400.png"]
    assert len(result.files) == 3
    with Image.open(out / "17.png") as image:
        assert image.format == "PNG"


def test_geneval_export_reads_a_registered_suite_written_name_colon_split(tmp_path: Path) -> None:
    from genagent_env.tasks import resolve_suite

    tasks = resolve_suite("shapes-geneval", "test")
    records = [make_record(task_id=tasks[i]["id"], task_index=i, tag=tasks[i]["tag"], prompt=tasks[i]["prompt"],
                           passed=True, benchmark="geneval", suite="shapes-geneval:test") for i in (0, 7)]
    run = write_run(tmp_path / "run", records)
    result = export_run(run, "geneval", agent="scripted", generator="shapes-medium", rounds=2, seed=0,
                        out=tmp_path / "out")
    metadata = json.loads((tmp_path / "out" / "00007" / "metadata.jsonl").read_text())
    assert metadata == {key: tasks[7][key] for key in ("tag", "include", "prompt")}  # no id, no split
    assert len(result.files) == 2 and len(result.missing_tasks) == 278


def test_geneval_export_writes_any_prompt_text_as_geneval_reads_it(tmp_path: Path) -> None:
    """Lone surrogates, U+2028 and other line-like characters in a suite's prompts: the suite is read
    line by line at "\\n" only, and each metadata.jsonl is json.dump's ASCII text that json.load reads back."""
    lines = [{**GENEVAL_LINES[0], "prompt": "a photo of a bench \ud800"},
             {**GENEVAL_LINES[1], "prompt": "two clocks\u2028\x85\u2029 時計 \udfff"}]
    suite = tmp_path / "evaluation_metadata.jsonl"
    # As a UTF-8 writer leaves them: U+2028 raw, the surrogates as JSON escapes.
    suite.write_text("".join(json.dumps(line, ensure_ascii=False).replace("\ud800", "\\ud800")
                             .replace("\udfff", "\\udfff") + "\n" for line in lines), encoding="utf-8")
    records = [make_record(task_id=f"evaluation_metadata/{i:05d}", task_index=i, tag=line["tag"],
                           prompt=line["prompt"], passed=True, benchmark="geneval", suite=str(suite))
               for i, line in enumerate(lines)]
    run = write_run(tmp_path / "run", records)
    result = export_run(run, "geneval", agent="scripted", generator="shapes-medium", rounds=2, seed=0,
                        out=tmp_path / "out")
    assert len(result.files) == 2 and result.missing_tasks == []
    for index, line in enumerate(lines):
        text = (tmp_path / "out" / f"{index:05d}" / "metadata.jsonl").read_text(encoding="utf-8")
        assert text == json.dumps(line) and text.isascii() and json.loads(text) == line
