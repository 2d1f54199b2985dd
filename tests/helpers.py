"""Helpers the tests share: a tiny colour world (a generator that paints the prompt's colour and a
scorer that checks it) that exercises the env without ShapesWorld, a one-episode runner, detector
scorer helpers, and run-folder writers for the report and export tests.

Fixtures stay in ``conftest.py``; tests import these with ``from tests.helpers import ...``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from genagent_env.scorers.base import Score, Scorer

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------- the colour world

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220)}


def paint(prompt: str, seed: int) -> Image.Image:
    """A solid image of the first colour named in the prompt, but grey for odd seeds (a 'miss')."""
    colour = next((rgb for name, rgb in COLOURS.items() if name in prompt.lower()), (128, 128, 128))
    if seed % 2:
        colour = (128, 128, 128)
    return Image.new("RGB", (32, 32), colour)


class ColourScorer(Scorer):
    """Passes when the image's mean colour is the task's colour."""

    name = "colour"

    def score(self, images: Sequence[Image.Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        out = []
        for image, task in zip(images, tasks):
            want = np.array(COLOURS[task["include"][0]["color"]], dtype=float)
            got = np.asarray(image.convert("RGB"), dtype=float).reshape(-1, 3).mean(0)
            distance = float(np.abs(want - got).mean()) / 255.0
            ok = distance < 0.1
            message = f"the image is {'' if ok else 'not '}{task['include'][0]['color']}"
            out.append(Score(passed=ok, score=max(0.0, 1.0 - distance),
                             details={"checks": [{"check": "color", "item": 0, "ok": ok, "message": message}]}))
        return out

    def validate_task(self, task: Mapping[str, Any]) -> None:
        if not task["include"] or task["include"][0].get("color") not in COLOURS:
            raise ValueError("the colour scorer checks one item with a colour in red, green, blue")

    def parse_prompt(self, prompt: str) -> dict[str, Any]:
        for name in COLOURS:
            if name in prompt.lower():
                return {"tag": "color", "include": [{"class": "thing", "count": 1, "color": name}], "prompt": prompt}
        raise ValueError("the prompt names no known colour")


COLOUR_TASKS = [
    {"tag": "color", "include": [{"class": "thing", "count": 1, "color": c}], "prompt": f"something {c}",
     "id": f"c/{i}"}
    for i, c in enumerate(COLOURS)
]


# ------------------------------------------------------------------------------- episodes and scorers

def one_episode(scorer: Scorer, task: Mapping[str, Any], image: Image.Image, image_size: int = 32) -> dict[str, Any]:
    """One GenAgent-v0 episode scored by ``scorer``: a tool that returns ``image``, one call, then
    submit. Returns the final ``info`` (with ``scores``, ``reward_components``...)."""
    from genagent_env.env import GenAgentEnv

    env = GenAgentEnv(suite=[{**task, "id": "one/0"}], generators={"paint": lambda prompt, seed: image},
                      scorer=scorer, image_size=image_size)
    env.reset(seed=0, options={"task_index": 0})
    env.step('<tool_call>{"name": "paint", "arguments": {"prompt": "as asked", "seed": 1}}</tool_call>')
    _, _, terminated, _, info = env.step("<judge>fine</judge><answer>done</answer>")
    assert terminated
    env.close()
    return info


def make_detector_scorer(parts: Mapping[str, Any], **kwargs: Any) -> Any:
    """A DetectorScorer on the tiny detector saved in ``parts["folder"]`` with the tiny open_clip
    colour model in ``parts`` (the detector tests' module fixture)."""
    from genagent_env.scorers.detector import DetectorScorer

    return DetectorScorer(detector=parts["folder"], clip_model=parts["clip_model"],
                          clip_preprocess=parts["clip_preprocess"], clip_tokenizer=parts["clip_tokenizer"],
                          device="cpu", **kwargs)


def assert_batched_detection_equals_one_by_one(scorer: Scorer, images: Sequence[Image.Image],
                                               tasks: Sequence[Mapping[str, Any]]) -> None:
    """A detector scorer gives the same checks, detections and (nearly) the same detection scores
    for a batch as for its images one by one (the detector tests share this)."""
    batched = scorer.score(images, tasks)
    single = [scorer.score([image], [t])[0] for image, t in zip(images, tasks)]
    for a, b in zip(batched, single):
        assert a.passed == b.passed and a.score == b.score and a.details["checks"] == b.details["checks"]
        assert [d["class"] for d in a.details["detected"]] == [d["class"] for d in b.details["detected"]]
        assert [d["color"] for d in a.details["detected"]] == [d["color"] for d in b.details["detected"]]
        want = [d["score"] for d in b.details["detected"]]
        assert [d["score"] for d in a.details["detected"]] == pytest.approx(want, abs=1e-5)


# ------------------------------------------------------------------------------- run folders

def make_record(*, task_id: str, task_index: int, tag: str, prompt: str, passed: bool, seed: int = 0,
                agent: str = "scripted", generator: str = "shapes-medium", max_rounds: int = 2,
                benchmark: str = "geneval++", suite: str = "shapes-geneval", score: float | None = None,
                n_images: int = 1, final_image: int | None = -1, judges: list[str | None] | None = None,
                prompts: list[str] | None = None, wise: dict[str, Any] | None = None, reward: float | None = None,
                violations: int = 0) -> dict[str, Any]:
    """A result record in the runner's schema; ``images`` are filled in by :func:`write_run`.
    ``final_image=-1`` means the last image."""
    prompts = prompts or [f"{prompt} (round {i + 1})" for i in range(n_images)]
    judges = judges or [f"verdict {i + 1}" for i in range(n_images)]
    final = (n_images or None) if final_image == -1 else final_image
    record = {
        "key": f"{agent}|{generator}|{max_rounds}|{task_id}|{seed}",
        "agent": agent, "generator": generator, "max_rounds": max_rounds, "suite": suite,
        "benchmark": benchmark, "task_id": task_id, "task_index": task_index, "tag": tag, "prompt": prompt,
        "seed": seed, "passed": passed, "score": float(passed) if score is None else score,
        "reward": (0.7 * passed + 0.3) if reward is None else reward,
        "reward_components": {"outcome": 0.7 * passed, "reflection": 0.3, "format": 0.0},
        "final_image": final, "images": [],
        "rounds": [{"tool": generator, "prompt": prompts[i], "seed": 7 + i, "judge": judges[i]}
                   for i in range(n_images)],
        "violations": violations, "turns": 2 * n_images,
        "decisions": [{"image": i + 1, "kind": "answer" if i + 1 == n_images else "retry", "submitted": None,
                       "correct": True} for i in range(n_images)],
        "elapsed_s": 0.01,
    }
    if wise is not None:
        record["wise"] = wise
    return record


def write_run(out: Path, records: Iterable[Mapping[str, Any]], torn_tail: str = "") -> Path:
    """Write a run folder: real ShapesWorld PNGs for each round and ``results.jsonl``."""
    from genagent_env.shapes import ShapesGenerator
    from genagent_env.tools.base import GenerationRequest

    generator = ShapesGenerator(image_size=32)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for record in records:
        record = dict(record)
        folder = f"images/{record['agent']}_{record['generator']}_{record['max_rounds']}"
        safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", record["task_id"])
        images = []
        for i in range(len(record["rounds"])):
            relative = f"{folder}/{safe_id}/s{record['seed']}_r{i + 1}.png"
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            [image] = generator.generate([GenerationRequest("a red circle", 100 * record["seed"] + i)])
            image.save(out / relative)
            images.append(relative)
        record["images"] = images
        lines.append(json.dumps(record) + "\n")
    (out / "results.jsonl").write_text("".join(lines) + torn_tail, encoding="utf-8")
    return out
