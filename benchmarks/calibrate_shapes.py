"""Calibrate ShapesWorld: how often each lever passes the shapes-geneval test split.

Simulates the levers directly on the generator and verifier (no environment, no agent protocol),
so it runs in seconds:

- ``passthrough``: the user's prompt, one round (weak, medium and strong presets);
- ``rewrite``: the teacher's explicit prompt, one round;
- ``resample``: the user's prompt, a new seed until the image passes, up to 2 rounds;
- ``scripted``: the teacher — round 1 the explicit prompt, later rounds the explicit prompt that
  restates the previous image's failed checks, with a new seed; stops when an image passes.

The score is GenEval++'s: the mean of the seven per-tag pass rates, averaged over ``--seeds``.

    python -m benchmarks.calibrate_shapes
    python -m benchmarks.calibrate_shapes --seeds 5 --split train --tasks-per-tag 100
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import tyro

from genagent_env.shapes.generator import ShapesGenerator
from genagent_env.shapes.suite import make_shapes_geneval
from genagent_env.shapes.verifier import ShapesVerifier
from genagent_env.tasks.prompts import explicit_prompt
from genagent_env.tasks.schema import GENEVAL_PP_TAGS
from genagent_env.tools.base import GenerationRequest


@dataclass
class Args:
    seeds: int = 3
    """number of seeds to average over"""
    split: str = "test"
    """split of the shapes-geneval suite"""
    tasks_per_tag: int = 0
    """use only the first N tasks of each tag (0 = all)"""
    image_size: int = 128
    """side of the generated images"""


#: (row name, preset, prompt policy, rounds)
LEVERS: tuple[tuple[str, str, str, int], ...] = (
    ("passthrough shapes-weak", "weak", "user", 1),
    ("passthrough shapes-medium", "medium", "user", 1),
    ("passthrough shapes-strong", "strong", "user", 1),
    ("rewrite only (1 round)", "medium", "explicit", 1),
    ("resample only (2 rounds)", "medium", "user", 2),
    ("scripted teacher r=2", "medium", "teacher", 2),
    ("scripted teacher r=4", "medium", "teacher", 4),
)


def run_lever(tasks: list[dict[str, Any]], preset: str, policy: str, rounds: int, seed: int,
              image_size: int = 128) -> dict[str, float]:
    """Per-tag pass rate of one lever with one seed."""
    generator, verifier = ShapesGenerator(preset=preset, image_size=image_size), ShapesVerifier()
    rng = np.random.default_rng([seed, rounds, len(policy)])
    passed = [False] * len(tasks)
    failed: list[list[dict[str, Any]] | None] = [None] * len(tasks)
    for round_index in range(rounds):
        todo = [i for i in range(len(tasks)) if not passed[i]]
        if not todo:
            break
        seeds = rng.integers(0, 2**32, size=len(tasks))
        prompts = []
        for i in todo:
            if policy == "user":
                prompts.append(tasks[i]["prompt"])
            elif policy == "explicit" or round_index == 0:
                prompts.append(explicit_prompt(tasks[i]))
            else:
                prompts.append(explicit_prompt(tasks[i], failed[i]))
        images = generator.generate([GenerationRequest(p, int(seeds[i])) for p, i in zip(prompts, todo)])
        for i, score in zip(todo, verifier.score(images, [tasks[i] for i in todo])):
            passed[i] = score.passed
            failed[i] = [c for c in score.details["checks"] if not c["ok"]]
    by_tag: dict[str, list[bool]] = defaultdict(list)
    for task, ok in zip(tasks, passed):
        by_tag[task["tag"]].append(ok)
    return {tag: float(np.mean(by_tag[tag])) for tag in GENEVAL_PP_TAGS if tag in by_tag}


def calibrate(args: Args) -> list[tuple[str, dict[str, float], float, float]]:
    """Rows of (lever, mean per-tag pass rate over seeds, GenEval++ score, std over seeds)."""
    tasks = make_shapes_geneval(args.split)
    if args.tasks_per_tag:
        kept: dict[str, int] = defaultdict(int)
        selected = []
        for task in tasks:
            if kept[task["tag"]] < args.tasks_per_tag:
                kept[task["tag"]] += 1
                selected.append(task)
        tasks = selected
    rows = []
    for name, preset, policy, rounds in LEVERS:
        per_seed = [run_lever(tasks, preset, policy, rounds, seed, args.image_size) for seed in range(args.seeds)]
        tags = {tag: float(np.mean([r[tag] for r in per_seed])) for tag in per_seed[0]}
        overall = [float(np.mean(list(r.values()))) for r in per_seed]
        rows.append((name, tags, float(np.mean(overall)), float(np.std(overall))))
    return rows


def main(args: Args) -> None:
    rows = calibrate(args)
    tags = list(rows[0][1])
    header = f"{'lever':<28}" + "".join(f"{t:>12}" for t in tags) + f"{'overall':>10}{'± seeds':>9}"
    print(header)
    print("-" * len(header))
    for name, per_tag, overall, spread in rows:
        print(f"{name:<28}" + "".join(f"{per_tag[t]:>12.3f}" for t in tags) + f"{overall:>10.3f}{spread:>9.3f}")


if __name__ == "__main__":
    main(tyro.cli(Args))
