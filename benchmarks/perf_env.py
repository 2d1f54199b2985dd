"""Speed of the environment itself and of ShapesWorld, on one core.

    python -m benchmarks.perf_env

Prints one table, measured in one run:

- env overhead per step with tools and scorers excluded (a generator that returns a ready-made
  image and a scorer that returns a fixed score), so what is timed is parsing, validation, the
  episode bookkeeping, observations and info — target ≤ 0.2 ms;
- ShapesWorld generate + verify throughput at 128×128 — target ≥ 300 images/s.
"""

from __future__ import annotations

import os

# One core: pin before numpy starts its thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import json  # noqa: E402
import time  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import tyro  # noqa: E402
from PIL import Image  # noqa: E402

from genagent_env.env import GenAgentEnv  # noqa: E402
from genagent_env.scorers.base import Score, Scorer  # noqa: E402
from genagent_env.tools.base import GenerationRequest, Generator  # noqa: E402


@dataclass
class Args:
    episodes: int = 3000
    """episodes for the env-overhead measurement (two steps each)"""
    images: int = 2000
    """images for the ShapesWorld throughput measurement"""
    size: int = 128
    """image side in pixels"""


class _ReadyImage(Generator):
    name = "ready"

    def __init__(self, size: int) -> None:
        self.image = Image.new("RGB", (size, size), (120, 30, 30))

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        return [self.image for _ in requests]


class _FixedScore(Scorer):
    name = "fixed"

    def score(self, images: Sequence[Image.Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        return [Score(passed=True, score=1.0) for _ in images]


def env_overhead_ms(args: Args) -> float:
    tasks = [
        {"tag": "count", "include": [{"class": "circle", "count": 3, "color": "red"}], "prompt": "three red circles"}
    ]
    env = GenAgentEnv(suite=tasks, generators=_ReadyImage(args.size), scorer=_FixedScore(), image_size=args.size)
    tool_call = {"name": "ready", "arguments": {"prompt": "3 red circles", "seed": 1}}
    call = "<think>plan</think><tool_call>" + json.dumps(tool_call) + "</tool_call>"
    answer = "<judge>three red circles, as asked</judge><answer>done</answer>"
    steps = 0
    elapsed = 0.0
    for episode in range(args.episodes):
        env.reset(seed=episode)
        start = time.perf_counter()
        env.step(call)
        env.step(answer)
        elapsed += time.perf_counter() - start
        steps += 2
    return 1000.0 * elapsed / steps


def shapes_images_per_second(args: Args) -> float:
    from genagent_env.shapes.generator import ShapesGenerator
    from genagent_env.shapes.suite import make_shapes_geneval
    from genagent_env.shapes.verifier import ShapesVerifier

    tasks = make_shapes_geneval("test")
    generator, verifier = ShapesGenerator(preset="medium", image_size=args.size), ShapesVerifier()
    batch = 16
    start = time.perf_counter()
    done = 0
    while done < args.images:
        chunk = [tasks[(done + i) % len(tasks)] for i in range(batch)]
        images = generator.generate([GenerationRequest(t["prompt"], seed=done + i) for i, t in enumerate(chunk)])
        verifier.score(images, chunk)
        done += batch
    return done / (time.perf_counter() - start)


def main(args: Args) -> None:
    overhead = env_overhead_ms(args)
    throughput = shapes_images_per_second(args)
    rows = [
        ("env overhead per step (tools, scorers excluded)", f"{overhead:.3f} ms", "<= 0.2 ms", 0.2 / overhead),
        (f"ShapesWorld generate+verify {args.size}x{args.size}, 1 core", f"{throughput:.0f} img/s", ">= 300 img/s",
         throughput / 300),
    ]
    print(f"{'measurement':<52} {'measured':>14} {'target':>14} {'x target':>9}")
    for name, measured, target, ratio in rows:
        print(f"{name:<52} {measured:>14} {target:>14} {ratio:>8.2f}x")


if __name__ == "__main__":
    main(tyro.cli(Args))
