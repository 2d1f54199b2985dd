"""``python -m benchmarks.run``: records, resuming (rerun, SIGKILL, torn line), file suites, sharding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.report import build_rows
from benchmarks.results import ResultsWriter, load_results, record_key
from benchmarks.run import Args, run
from genagent_env.registry import UnknownNameError

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"agents": ("passthrough", "scripted"), "generators": ("shapes-medium",), "max_rounds": (1, 2),
         "seeds": 2, "tasks_per_tag": 2, "quiet": True}
SMALL_CLI = ["--agents", "passthrough", "scripted", "--max-rounds", "1", "2", "--seeds", "2", "--tasks-per-tag", "2"]
SMALL_ITEMS = 2 * 1 * 2 * (7 * 2) * 2  # agents × generators × rounds × tasks × seeds

#: A helper module the runner imports by ``module:factory``: a slow ShapesWorld generator (the
#: sleep is set per process, so the same spec runs fast or slow), a generator function, and a
#: scorer factory building the tiny random CLIP model (offline).
HELPERS = textwrap.dedent('''
    import os, time
    from PIL import Image
    from agents import PassthroughAgent
    from genagent_env.tools.base import Generator
    from genagent_env.tools.registry import make_generator

    class SlowShapes(Generator):
        name = "slow-shapes"

        def __init__(self):
            self.inner = make_generator("shapes-medium")

        def generate(self, requests):
            time.sleep(float(os.environ.get("BENCH_SLEEP_S", "0")) * len(requests))
            return self.inner.generate(requests)

    def slow_shapes():
        return SlowShapes()

    class CountingShapes(SlowShapes):
        """ShapesWorld that records the size of every batch it is asked for."""
        name = "counting-shapes"
        batches = []

        def generate(self, requests):
            CountingShapes.batches.append(len(requests))
            return self.inner.generate(requests)

    def counting_shapes():
        return CountingShapes()

    def paint(prompt: str, seed: int) -> Image.Image:
        """A flat image whose colour depends on the prompt and seed."""
        return Image.new("RGB", (32, 32), ((len(prompt) * 37) % 256, (seed * 53) % 256, 90))

    def tiny_clip():
        from genagent_env.scorers.clip import CLIPScorer
        from genagent_env.testing.tiny_clip import tiny_open_clip
        model, preprocess, tokenizer = tiny_open_clip(seed=0)
        return CLIPScorer(model=model, preprocess=preprocess, tokenizer=tokenizer, device="cpu", threshold=0.0)

    def my_agent():
        return PassthroughAgent()
''')


@pytest.fixture
def helpers(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "helpers"
    folder.mkdir()
    (folder / "bench_helpers.py").write_text(HELPERS)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def _cli(out: Path, helpers: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(helpers)]), **(env or {})}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR"):
        if env is None or name not in env:
            environment.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", "benchmarks.run", "--out", str(out), "--quiet", *extra],
                            cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, timeout: float = 60) -> None:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _comparable(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records without their timings, sorted by key: two runs of one grid must give these equal."""
    return sorted(({k: v for k, v in r.items() if k != "elapsed_s"} for r in records), key=lambda r: r["key"])


def _tables(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The leaderboard rows as the report computes them, with the columns as "tags"."""
    return [{**row.to_dict(), "tags": row.to_dict()["columns"], "episodes": row.n} for row in build_rows(records)]


def test_small_grid_writes_documented_records_and_a_rerun_skips_them(tmp_path):
    out = run(Args(out=tmp_path / "run", **SMALL))
    lines = _lines(out / "results.jsonl")
    assert len(lines) == SMALL_ITEMS
    records = load_results(out / "results.jsonl")
    assert len({r["key"] for r in records}) == SMALL_ITEMS
    expected = {"key", "agent", "generator", "max_rounds", "suite", "benchmark", "task_id", "task_index", "tag",
                "prompt", "seed", "passed", "score", "reward", "reward_components", "final_image", "images",
                "rounds", "violations", "turns", "tool_calls", "failed_tool_calls", "decisions", "elapsed_s"}
    for record in records:
        assert set(record) == expected
        assert record["key"] == record_key(record["agent"], record["generator"], record["max_rounds"],
                                           record["task_id"], record["seed"])
        assert record["suite"] == "shapes-geneval:test" and record["benchmark"] == "geneval++"
        assert set(record["reward_components"]) == {"outcome", "reflection", "format"}
        assert len(record["images"]) == len(record["rounds"]) <= record["max_rounds"]
        for number, path in enumerate(record["images"], start=1):
            assert path == (f"images/{record['agent']}/shapes-medium/r{record['max_rounds']}/s{record['seed']}/"
                            f"{record['task_id'].replace('/', '%2F')}/image_{number}.png")
            assert (out / path).is_file()
        assert set(record["rounds"][0]) == {"tool", "prompt", "seed", "judge", "passed", "errors"}
        assert isinstance(record["passed"], bool) and 0.0 <= record["score"] <= 1.0
        assert record["final_image"] is None or 1 <= record["final_image"] <= len(record["images"])
    rows = _tables(records)
    assert [(r["agent"], r["max_rounds"]) for r in rows] == [("passthrough", 1), ("passthrough", 2),
                                                             ("scripted", 1), ("scripted", 2)]
    assert all(len(r["tags"]) == 7 and r["episodes"] == SMALL_ITEMS // 4 for r in rows)
    scripted = {r["max_rounds"]: r["overall"] for r in rows if r["agent"] == "scripted"}
    assert scripted[2] >= scripted[1]  # the teacher gains from a second round
    assert json.loads((out / "run.json").read_text())["agents"] == ["passthrough", "scripted"]

    run(Args(out=out, **SMALL))
    assert _lines(out / "results.jsonl") == lines  # nothing redone, nothing added

    # A wider grid into the same folder adds only the new items and remembers the old arguments.
    run(Args(out=out, **{**SMALL, "seeds": 3}))
    assert len(_lines(out / "results.jsonl")) == SMALL_ITEMS * 3 // 2
    assert _lines(out / "results.jsonl")[:SMALL_ITEMS] == lines
    assert json.loads((out / "run.json").read_text())["history"][0]["seeds"] == 2
    with pytest.raises(ValueError, match="scorer"):
        run(Args(out=out, **{**SMALL, "scorer": "clip"}))


def test_save_images_final_and_none(tmp_path):
    grid = {**SMALL, "agents": ("scripted",), "max_rounds": (2,), "seeds": 1, "tasks_per_tag": 1}
    final = load_results(run(Args(out=tmp_path / "final", save_images="final", **grid)) / "results.jsonl")
    for record in final:
        saved = [number for number, path in enumerate(record["images"], start=1) if path is not None]
        assert saved == ([record["final_image"]] if record["final_image"] else [])
    none = load_results(run(Args(out=tmp_path / "none", save_images="none", **grid)) / "results.jsonl")
    assert all(path is None for record in none for path in record["images"])
    assert not (tmp_path / "none" / "images").exists()


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, helpers):
    cli = [*SMALL_CLI, "--generators", "bench_helpers:slow_shapes", "--save-images", "final"]
    killed = tmp_path / "killed"
    process = _cli(killed, helpers, *cli, env={"BENCH_SLEEP_S": "0.03"})
    deadline = time.monotonic() + 40
    while len(_lines(killed / "results.jsonl")) < 10:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(load_results(killed / "results.jsonl"))
    assert 10 <= done < SMALL_ITEMS
    _finish(_cli(killed, helpers, *cli))

    lines = _lines(killed / "results.jsonl")
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)) == SMALL_ITEMS  # every item exactly once
    whole = run(Args(out=tmp_path / "whole", **{**SMALL, "generators": ("bench_helpers:slow_shapes",)},
                     save_images="final"))
    resumed, uninterrupted = load_results(killed / "results.jsonl"), load_results(whole / "results.jsonl")
    assert _tables(resumed) == _tables(uninterrupted)
    assert _comparable(resumed) == _comparable(uninterrupted)


def test_a_torn_last_line_is_ignored_and_redone(tmp_path):
    grid = {**SMALL, "agents": ("passthrough",), "max_rounds": (1,), "seeds": 1, "tasks_per_tag": 1}
    out = run(Args(out=tmp_path / "run", **grid))
    path = out / "results.jsonl"
    whole = path.read_bytes()
    last = whole[: -1].rfind(b"\n") + 1
    path.write_bytes(whole[: last + 25])  # a write cut short by a kill: no newline at the end
    assert len(load_results(path)) == 6
    run(Args(out=out, **grid))
    assert path.read_bytes().endswith(b"\n")
    records = load_results(path)
    assert len(records) == len(_lines(path)) == 7
    assert _comparable(records) == _comparable([json.loads(line) for line in whole.decode().splitlines()])

    # Duplicates (say, from a merge of overlapping shards) are dropped on load, the first kept.
    with ResultsWriter(path) as writer:
        writer.write({**records[0], "reward": -5.0})
    assert len(load_results(path)) == 7 and load_results(path)[0]["reward"] == records[0]["reward"]


def _write_suites(folder: Path) -> dict[str, Path]:
    geneval = [
        {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
        {"tag": "two_object", "include": [{"class": "cow", "count": 1}, {"class": "cup", "count": 1}],
         "prompt": "a photo of a cow and a cup"},
        {"tag": "position", "include": [{"class": "train", "count": 1},
                                        {"class": "zebra", "count": 1, "position": ["right of", 0]}],
         "prompt": "a photo of a zebra right of a train"},
        {"tag": "counting", "include": [{"class": "apple", "count": 3}], "exclude": [{"class": "apple", "count": 4}],
         "prompt": "a photo of three apples"},
    ]
    genevalpp = [
        {"tag": "color_count", "include": [{"class": "cat", "count": 2, "color": "black"},
                                           {"class": "dog", "count": 1, "color": "white"}],
         "prompt": "two black cats and one white dog"},
        {"tag": "pos_size", "include": [{"class": "ball", "count": 1, "region": "left", "size": "larger"},
                                        {"class": "cup", "count": 1, "region": "right"}],
         "prompt": "a large ball on the left and a small cup on the right"},
    ]
    wise = [
        {"prompt_id": 1, "Prompt": "The plant often gifted on Mother's Day", "Explanation": "a carnation",
         "Category": "Cultural knowledge", "Subcategory": "Festival"},
        {"prompt_id": 801, "Prompt": "Ice left on a warm stove for an hour", "Explanation": "a puddle of water",
         "Category": "Natural science", "Subcategory": "Physics", "Hint": "melting"},
    ]
    paths = {"geneval": folder / "evaluation_metadata.jsonl", "geneval++": folder / "Geneval++.jsonl",
             "wise": folder / "natural_science.json"}
    paths["geneval"].write_text("".join(json.dumps(row) + "\n" for row in geneval))
    paths["geneval++"].write_text("".join(json.dumps(row) + "\n" for row in genevalpp))
    paths["wise"].write_text(json.dumps(wise, indent=2))
    return paths


def test_published_suite_formats_run_with_a_model_scorer_and_a_generator_function(tmp_path, helpers):
    for benchmark, suite in _write_suites(tmp_path).items():
        out = run(Args(out=tmp_path / benchmark, suite=str(suite), scorer="bench_helpers:tiny_clip",
                       agents=("passthrough", "bench_helpers:my_agent"), generators=("bench_helpers:paint",),
                       max_rounds=(1,), seeds=1, quiet=True))
        records = load_results(out / "results.jsonl")
        assert len(records) == 2 * (4 if benchmark == "geneval" else 2)
        assert {r["benchmark"] for r in records} == {benchmark}
        assert {r["suite"] for r in records} == {str(suite)}
        assert all(r["rounds"][0]["tool"] == "paint" and (out / r["images"][0]).is_file() for r in records)
        assert all(0.0 <= r["score"] <= 1.0 for r in records)
        if benchmark == "wise":
            assert [r["wise"]["prompt_id"] for r in records[:2]] == [1, 801]
            scored = {name for name, value in _tables(records)[0]["tags"].items() if value is not None}
            assert scored == {"Cultural", "Physics"}
            assert all(r["images"][0].startswith("images/bench_helpers%3Amy_agent/") for r in records[2:])
        else:
            assert "wise" not in records[0]


def test_agent_specs_are_checked(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        run(Args(out=tmp_path / "a", agents=("sb3:policy.zip",), **{k: v for k, v in SMALL.items() if k != "agents"}))
    with pytest.raises(ValueError, match="unknown agent"):
        run(Args(out=tmp_path / "b", agents=("nobody",), **{k: v for k, v in SMALL.items() if k != "agents"}))
    with pytest.raises(ValueError, match="cannot import"):
        run(Args(out=tmp_path / "c", agents=("no_such_module:f",), **{k: v for k, v in SMALL.items() if k != "agents"}))


def test_a_bad_spec_fails_before_any_episode_is_played(tmp_path):
    # The good agent comes first in the grid: it must not play while the misspelt one waits its turn.
    rest = {k: v for k, v in SMALL.items() if k not in ("agents", "generators")}
    with pytest.raises(ValueError, match="no such folder"):
        run(Args(out=tmp_path / "a", agents=("passthrough", "llm:no/such/checkpoint"), **rest))
    assert load_results(tmp_path / "a") == []
    with pytest.raises(UnknownNameError, match="no-such-tool"):
        run(Args(out=tmp_path / "b", agents=("passthrough",), generators=("shapes-medium", "no-such-tool"), **rest))
    assert load_results(tmp_path / "b") == []


def test_two_shards_merge_to_the_records_of_one_process(tmp_path, helpers):
    cli = [*SMALL_CLI, "--generators", "shapes-medium", "--save-images", "none"]
    sharded = tmp_path / "sharded"
    ranks = [_cli(sharded, helpers, *cli, env={"RANK": str(rank), "WORLD_SIZE": "2"}) for rank in (1, 0)]
    for process in ranks:
        _finish(process)
    # Shards merged and tidied; rank 0 wrote the reports (--quiet only silences the output).
    assert sorted(p.name for p in sharded.iterdir()) == ["report", "results.jsonl", "run.json"]
    single = run(Args(out=tmp_path / "single", save_images="none", **SMALL))
    merged = load_results(sharded / "results.jsonl")
    assert len(_lines(sharded / "results.jsonl")) == SMALL_ITEMS
    assert _comparable(merged) == _comparable(load_results(single / "results.jsonl"))


def test_benchmark_is_guessed_from_the_suite():
    from benchmarks.run import guess_benchmark

    def tasks(*tags: str) -> list[dict[str, Any]]:
        return [{"tag": tag} for tag in tags]

    assert guess_benchmark("shapes-geneval:test", tasks("custom")) == "geneval++"
    assert guess_benchmark("x.jsonl", tasks("color", "pos_size")) == "geneval++"
    assert guess_benchmark("x.jsonl", tasks("color_attr", "size_spatial_attr")) == "geneval++"  # Echo-4o's names
    assert guess_benchmark("data/Geneval++.jsonl", tasks("color_attr", "counting")) == "geneval++"
    assert guess_benchmark("evaluation_metadata.jsonl", tasks("color_attr", "counting", "two_object")) == "geneval"
    assert guess_benchmark("w.json", [{"tag": "Cultural knowledge", "wise": {}}]) == "wise"
    assert guess_benchmark("mine.jsonl", tasks("dogs")) == "custom"




def test_the_runner_batches_episodes_across_tasks_and_seeds_with_the_scores_of_one_by_one(tmp_path, helpers):
    """``--num-envs 4`` plays four episodes per vector step (one generator call serves several
    tasks and seeds) and writes exactly the records that playing each episode alone gives."""
    import bench_helpers

    from agents import run_episode
    from benchmarks.run import SEED_STRIDE, build_agent, build_scorer
    from genagent_env.env import GenAgentEnv

    grid = {"agents": ("passthrough", "scripted"), "generators": ("bench_helpers:counting_shapes",),
            "max_rounds": (2,), "seeds": 2, "tasks_per_tag": 2, "quiet": True}
    bench_helpers.CountingShapes.batches.clear()
    run(Args(out=tmp_path / "n4", num_envs=4, **grid))
    batched = load_results(tmp_path / "n4")
    sizes = list(bench_helpers.CountingShapes.batches)
    images = sum(len(record["rounds"]) for record in batched)
    assert sum(sizes) == images and max(sizes) == 4 and len(sizes) < images / 2

    run(Args(out=tmp_path / "n1", num_envs=1, **grid))
    assert _comparable(load_results(tmp_path / "n1")) == _comparable(batched)

    scorer = build_scorer("shapes")
    for record in batched[:: max(len(batched) // 12, 1)]:  # a sample, played alone by hand
        agent = build_agent(record["agent"], scorer)
        env = GenAgentEnv(generators=bench_helpers.counting_shapes(), max_rounds=2,
                          privileged=record["agent"] == "scripted")
        alone = run_episode(env, agent, seed=record["seed"] * SEED_STRIDE + record["task_index"],
                            options={"task_index": record["task_index"]})
        assert (alone.passed, alone.reward, alone.final_image) == (record["passed"], record["reward"],
                                                                  record["final_image"])
        assert [r["prompt"] for r in alone.rounds] == [r["prompt"] for r in record["rounds"]]
