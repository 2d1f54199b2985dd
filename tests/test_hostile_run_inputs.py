"""The benchmark runner, its results file and its exports under hostile input: task ids that only
differ in characters a file name cannot hold, lone surrogates in suites and agent messages, a
resumed run of the old image layout, a missing optional extra, an SB3 zip, ``--quiet``."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from benchmarks.export import export_run
from benchmarks.results import ResultsWriter, dumps_line, load_results, merge_results, shard_file, stored_form
from benchmarks.run import MAX_NAME, Args, run, safe_name

ROOT = Path(__file__).resolve().parents[1]

#: Imported by ``module:factory``: a generator painting a colour from the prompt's length, a scorer
#: that passes everything (no model), and an agent whose every message carries lone surrogates, in
#: the tool-call JSON (escaped) and in its <judge> and <think> text (raw).
HOSTILE_HELPERS = textwrap.dedent('''
    import json
    from PIL import Image
    from agents.base import Agent, first_tool_name, user_prompt
    from genagent_env.scorers.base import Score, Scorer

    def paint(prompt: str, seed: int) -> Image.Image:
        """A flat image whose red channel is (37 * the prompt's length) mod 256."""
        return Image.new("RGB", (16, 16), ((len(prompt) * 37) % 256, 0, 90))

    class PassAll(Scorer):
        def score(self, images, tasks):
            return [Score(True, 1.0, {"checks": [], "failed": []}) for _ in images]

    def pass_all():
        return PassAll()

    class SurrogateAgent(Agent):
        name = "surrogates"

        def act(self, observation, info):
            tool = first_tool_name(info)
            if not info["images"]:
                call = json.dumps({"name": tool, "arguments": {"prompt": user_prompt(info) + " \\ud800 \\udfff"}})
                return f"<think>raw \\udc80 thought</think><tool_call>{call}</tool_call>"
            if len(info["images"]) == 1:
                call = json.dumps({"name": tool, "arguments": {"prompt": "\\ud800"}})
                return f"<judge>not yet \\ud800 \\udcff</judge><tool_call>{call}</tool_call>"
            return "<judge>fine \\udfff</judge><answer>1</answer>"

    def surrogates():
        return SurrogateAgent()
''')

#: Strings that a lossy file-name scheme merges: separators, escapes, dots, case, surrogates, length.
NAMES = ["x/y", "x_y", "x%2Fy", "x%2fy", "x:y", "x\\y", "x y", "x\x00y", ".", "..", "%2E", "...", "", "%",
         "X_y", "é", "e\u0301", "\ud800", "\udfff", "\ud800\udfff", "日本/語", "a" * 200, "a" * 199 + "b",
         "%" * 100, "~", "x~y", "a" * (MAX_NAME + 1)]


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "helpers"
    folder.mkdir()
    (folder / "hostile_helpers.py").write_text(HOSTILE_HELPERS)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def _suite(path: Path, lines: list[dict[str, Any]]) -> Path:
    """A UTF-8 JSONL suite: other characters as they are (U+2028 too), lone surrogates as ``\\ud800``."""
    path.write_bytes(b"".join(dumps_line(line) for line in lines))
    return path


def _geneval_line(task_id: str, prompt: str) -> dict[str, Any]:
    return {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": prompt, "id": task_id}


def _red(path: Path) -> int:
    with Image.open(path) as image:
        return int(np.asarray(image.convert("RGB"))[0, 0, 0])


def _painted(prompt: str) -> int:
    return (len(prompt) * 37) % 256


def _args(out: Path, suite: Path, **extra: Any) -> Args:
    grid: dict[str, Any] = {"agents": ("passthrough",), "generators": ("hostile_helpers:paint",), "max_rounds": (1,),
                            "seeds": 1, "scorer": "hostile_helpers:pass_all", "quiet": True, **extra}
    return Args(out=out, suite=str(suite), **grid)


# ---------------------------------------------------------------------------------- 4: image folders


def test_image_folder_names_are_one_to_one_single_components_and_reversible() -> None:
    names = [safe_name(text) for text in NAMES]
    assert len(set(names)) == len(NAMES)  # x/y, x_y, x%2Fy, ... each its own folder
    for text, name in zip(NAMES, names):
        assert name not in ("", ".", "..") and len(name) <= MAX_NAME
        assert set(name) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-%~"), name
        if "~" not in name:  # not cut to length: percent-decoding gives the text back
            assert unquote(name, errors="surrogatepass") == text or (text, name) == ("", "%")
    assert safe_name("x/y") == "x%2Fy" and safe_name("x_y") == "x_y" and safe_name("shapes-medium") == "shapes-medium"


def test_task_ids_x_slash_y_and_x_underscore_y_keep_their_own_images_through_export(tmp_path: Path,
                                                                                      helpers: Path) -> None:
    ids = ["x/y", "x_y", "x%2Fy", "..", "a" * 300, "a" * 299 + "b"]
    # Prompts of different lengths: paint gives each task its own colour.
    lines = [_geneval_line(task_id, "a photo of a bench" + "!" * (index + 1)) for index, task_id in enumerate(ids)]
    suite = _suite(tmp_path / "evaluation_metadata.jsonl", lines)
    out = run(_args(tmp_path / "run", suite, max_rounds=(2,)))
    records = sorted(load_results(out), key=lambda r: r["task_index"])
    assert [r["task_id"] for r in records] == ids
    folders = [Path(r["images"][0]).parent for r in records]
    assert len(set(folders)) == len(ids)
    for record in records:
        assert _red(out / record["images"][0]) == _painted(record["prompt"])

    result = export_run(out, "geneval", agent="passthrough", generator="hostile_helpers:paint", rounds=2, seed=0,
                        out=tmp_path / "export")
    assert len(result.files) == len(ids) and not result.missing_tasks
    for index, line in enumerate(lines):
        assert _red(tmp_path / "export" / f"{index:05d}" / "samples" / "0000.png") == _painted(line["prompt"])


def test_a_resumed_run_of_the_old_layout_keeps_the_old_images_and_writes_new_ones_beside_them(
        tmp_path: Path, helpers: Path) -> None:
    lines = [_geneval_line("x/y", "a photo of a bench"), _geneval_line("x_y", "a photo of a red bench")]
    suite = _suite(tmp_path / "evaluation_metadata.jsonl", lines)
    out = run(_args(tmp_path / "run", suite))
    # Make it a run of the old layout ('/' written as '_') that was stopped after task x/y.
    first, _ = sorted(load_results(out), key=lambda r: r["task_index"])
    base = out / "images" / "passthrough" / safe_name("hostile_helpers:paint") / "r1" / "s0"
    (base / "x_y" / "image_1.png").unlink()
    (base / "x%2Fy" / "image_1.png").rename(base / "x_y" / "image_1.png")
    first["images"] = [Path(first["images"][0]).parent.with_name("x_y").joinpath("image_1.png").as_posix()]
    (out / "results.jsonl").write_bytes(dumps_line(first))

    run(_args(out, suite))
    old, new = sorted(load_results(out), key=lambda r: r["task_index"])
    assert old == first  # the old record is kept as it was, pointing at its old folder
    assert _red(out / old["images"][0]) == _painted(lines[0]["prompt"])  # not overwritten by task x_y
    assert new["images"][0] != old["images"][0] and Path(new["images"][0]).parent.name.startswith("x_y~")
    assert _red(out / new["images"][0]) == _painted(lines[1]["prompt"])
    export_run(out, "geneval", agent="passthrough", generator="hostile_helpers:paint", rounds=1, seed=0,
               out=tmp_path / "export")
    for index, line in enumerate(lines):
        assert _red(tmp_path / "export" / f"{index:05d}" / "samples" / "0000.png") == _painted(line["prompt"])


# ---------------------------------------------------------------------------------- 5: any str


TEXTS = ["\ud800", "a\udfffb", "\udcff\udc80", "\ud800\ud800", "\udfff\ud800", "x\\\ud800", "日本語", "😀",
         "\x00\n\r\t\"\\", "\u2028\u2029\x85", "\ufeff", "", "a" * 10_000]


def test_the_results_file_round_trips_any_str_as_utf8_json(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    records = [{"key": text, "prompt": text, "nested": {text: [text]}, "n": index} for index, text in enumerate(TEXTS)]
    with ResultsWriter(path) as writer:
        for record in records:
            writer.write(record)
    data = path.read_bytes()
    data.decode("utf-8")  # valid UTF-8: any JSON reader can read the file
    assert data.count(b"\n") == len(records)  # one line per record, whatever the text
    assert load_results(path) == records
    assert all(stored_form(text) == text for text in TEXTS)
    # A surrogate pair is the character it encodes, as JSON defines it (documented).
    assert stored_form("\ud83d\ude00") == "😀"
    # Sharded files merge the same way.
    with ResultsWriter(shard_file(tmp_path, 1)) as writer:
        writer.write({"key": "\ud800 shard", "prompt": "\udfff"})
    merged = merge_results(tmp_path)
    assert merged == [*records, {"key": "\ud800 shard", "prompt": "\udfff"}] == load_results(tmp_path / "results.jsonl")


def _surrogate_run(tmp_path: Path, suite: Path, name: str) -> Path:
    return run(_args(tmp_path / name, suite, agents=("hostile_helpers:surrogates", "passthrough"), max_rounds=(2,)))


def test_surrogates_in_the_suite_and_in_agent_messages_run_resume_and_export(
        tmp_path: Path, helpers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer, the resume and the exports; the reports are tested on their own below."""
    import benchmarks.run

    monkeypatch.setattr(benchmarks.run, "_report", lambda out, quiet=False: None)
    lines = [_geneval_line("s/\ud800", "a photo of a bench \ud800"),
             _geneval_line("plain", "a photo of a \udfffclock\u2028\x85 日本")]
    suite = _suite(tmp_path / "evaluation_metadata.jsonl", lines)
    out = _surrogate_run(tmp_path, suite, "geneval")
    path = out / "results.jsonl"
    path.read_bytes().decode("utf-8")
    records = {(r["agent"], r["task_id"]): r for r in load_results(out)}
    assert len(records) == 4
    mine = records[("hostile_helpers:surrogates", "s/\ud800")]
    assert mine["prompt"] == "a photo of a bench \ud800"
    assert [r["prompt"] for r in mine["rounds"]] == ["a photo of a bench \ud800 \ud800 \udfff", "\ud800"]
    assert [r["judge"] for r in mine["rounds"]] == ["not yet \ud800 \udcff", "fine \udfff"]
    assert mine["final_image"] == 1 and (out / mine["images"][0]).is_file()

    # Resuming: nothing is redone, and a lost record (with a surrogate in its key) is redone once.
    before = path.read_bytes()
    _surrogate_run(tmp_path, suite, "geneval")
    assert path.read_bytes() == before
    path.write_bytes(b"".join(line + b"\n" for line in before.splitlines()[:-1]))
    _surrogate_run(tmp_path, suite, "geneval")
    again = load_results(out)
    assert len(path.read_bytes().splitlines()) == 4
    assert sorted(r["key"] for r in again) == sorted(r["key"] for r in records.values())

    # GenEval's metadata.jsonl as GenEval writes it (json.dump: the surrogate as an escape).
    export_run(out, "geneval", agent="hostile_helpers:surrogates", generator="hostile_helpers:paint", rounds=2,
               seed=0, out=tmp_path / "export")
    text = (tmp_path / "export" / "00000" / "metadata.jsonl").read_text(encoding="utf-8")
    assert "\\ud800" in text and json.loads(text)["prompt"] == lines[0]["prompt"]

    # GenEval++: a second suite, exported in Echo-4o's layout.
    pp_lines = [{"tag": "color_count", "include": [{"class": "cat", "count": 2, "color": "black"}],
                 "prompt": "two black cats \ud800", "id": "pp/\udfff"},
                {"tag": "color_count", "include": [{"class": "dog", "count": 1, "color": "white"}],
                 "prompt": "one white dog", "id": "pp/1"}]
    pp = _surrogate_run(tmp_path, _suite(tmp_path / "Geneval++.jsonl", pp_lines), "genevalpp")
    result = export_run(pp, "geneval++", agent="hostile_helpers:surrogates", generator="hostile_helpers:paint",
                        rounds=2, seed=0, out=tmp_path / "export-pp")
    assert sorted(p.name for p in (tmp_path / "export-pp" / "image").iterdir()) == ["1.jpg", "2.jpg"]
    assert len(result.files) == 2


def test_a_run_with_surrogates_writes_its_reports_and_prints_them(tmp_path: Path, helpers: Path) -> None:
    """End to end through the command line, not quiet: the env, the writer, the reports, stdout."""
    suite = _suite(tmp_path / "evaluation_metadata.jsonl",
                   [_geneval_line("s/\ud800", "a photo of a bench \ud800"), _geneval_line("t<b>", "=HYPERLINK(1)")])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(helpers)])}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        environment.pop(name, None)
    command = [sys.executable, "-m", "benchmarks.run", "--out", str(tmp_path / "run"), "--suite", str(suite),
               "--agents", "hostile_helpers:surrogates", "passthrough", "--generators", "hostile_helpers:paint",
               "--max-rounds", "2", "--seeds", "1", "--scorer", "hostile_helpers:pass_all"]
    result = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")[-3000:]
    assert b"reports written to" in result.stdout
    assert len(load_results(tmp_path / "run")) == 4
    assert (tmp_path / "run" / "report" / "leaderboard.md").is_file()


# ---------------------------------------------------------------------------------- 10: --quiet


def test_quiet_writes_the_reports_and_prints_nothing(tmp_path: Path, helpers: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    suite = _suite(tmp_path / "evaluation_metadata.jsonl", [_geneval_line("a", "a photo of a bench")])
    out = run(_args(tmp_path / "run", suite, quiet=True))
    assert capsys.readouterr().out == ""
    assert (out / "report" / "leaderboard.md").is_file()
    run(_args(tmp_path / "loud", suite, quiet=False))
    assert "reports written to" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- 9: extras, SB3 zips


def _fresh_import(monkeypatch: pytest.MonkeyPatch, module: str) -> Any:
    monkeypatch.delitem(sys.modules, module, raising=False)
    return importlib.import_module(module)


@pytest.mark.parametrize("missing, extra, load", [
    ("open_clip", "scorers", lambda mp: _fresh_import(mp, "genagent_env.scorers.clip")),
    ("torch", "scorers", lambda mp: _fresh_import(mp, "genagent_env.scorers.detector")),
    ("transformers", "scorers", lambda mp: importlib.import_module("genagent_env.scorers.detector")
     .load_detector("google/owlv2-base-patch16-ensemble")),
    ("transformers", "scorers", lambda mp: importlib.import_module("genagent_env.scorers.vlm_judge")
     .VLMJudgeScorer(model="Qwen/Qwen2.5-VL-3B-Instruct")),
    ("torch", "diffusers", lambda mp: importlib.import_module("genagent_env.tools.diffusers_generator")
     .DiffusersGenerator("black-forest-labs/FLUX.1-dev")),
    ("diffusers", "diffusers", lambda mp: importlib.import_module("genagent_env.tools.diffusers_generator")
     .load_pipeline("black-forest-labs/FLUX.1-dev")),
    ("stable_baselines3", "sb3", lambda mp: importlib.import_module("wrappers.sb3_agent").load_sb3_agent("m.zip")),
    ("tqdm", "bench", lambda mp: importlib.import_module("benchmarks.run")._progress(3, disable=False, rank=0)),
])
def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch, missing: str, extra: str,
                                                   load: Any) -> None:
    for name in [name for name in sys.modules if name == missing or name.startswith(missing + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, missing, None)  # as if it were not installed
    with pytest.raises(ModuleNotFoundError, match=rf"pip install 'genagent-env\[{extra}\]'") as caught:
        load(monkeypatch)
    assert str(caught.value.name).partition(".")[0] == missing


def test_a_quiet_run_needs_no_progress_bar_library(tmp_path: Path, helpers: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    suite = _suite(tmp_path / "evaluation_metadata.jsonl", [_geneval_line("a", "a photo of a bench")])
    monkeypatch.setattr("benchmarks.run._report", lambda out, quiet=False: None)
    assert len(load_results(run(_args(tmp_path / "run", suite)))) == 1


def test_loading_an_sb3_zip_says_it_runs_pickled_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sb3 = pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import DummyVecEnv

    from benchmarks.run import build_agent
    from wrappers import make_strategy_env

    model = sb3.A2C("MultiInputPolicy", DummyVecEnv([lambda: make_strategy_env("train", image_size=36,
                                                                                text_bins=32)]),
                    n_steps=8, seed=0, device="cpu")
    model.save(tmp_path / "a2c.zip")
    capsys.readouterr()
    agent = build_agent(f"sb3:{tmp_path / 'a2c.zip'}", scorer=None)  # type: ignore[arg-type]
    assert agent.name == "sb3:a2c.zip"
    warning = capsys.readouterr().err
    assert warning.count("\n") == 1 and "runs pickled code" in warning and "only load files you trust" in warning


def test_the_sb3_risk_is_documented_where_users_look() -> None:
    import benchmarks.run
    import wrappers.sb3_agent

    help_text = subprocess.run([sys.executable, "-m", "benchmarks.run", "--help"], cwd=ROOT, capture_output=True,
                               text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert "unpickles" in help_text and "only load files you trust" in " ".join(help_text.split())
    assert "unpickles code from the zip" in " ".join(str(benchmarks.run.__doc__).split())
    assert "Only load files you trust" in str(wrappers.sb3_agent.load_sb3_agent.__doc__)
    assert "runs whatever code" in " ".join(str(wrappers.sb3_agent.__doc__).split())
