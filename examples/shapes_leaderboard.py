"""The main job: agents × generators × rounds on the ShapesWorld test suite, offline, on a CPU.

    python examples/shapes_leaderboard.py                 # the default grid, 3 seeds
    python examples/shapes_leaderboard.py --seeds 1 --tasks-per-tag 10   # a quick look

Prints a leaderboard with the seven GenEval++ tag pass rates and the overall score (the mean of
the tag pass rates, as GenEval++ defines it), averaged over seeds, and writes under ``--out``:
``leaderboard.md`` and ``results.json``, and for the first tasks of each row the images of every
round and a picture of the trajectory (prompts, seeds, the agent's verdicts).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro
from PIL import Image

from agents import make_agent, run_episode
from genagent_env.env import GenAgentEnv
from genagent_env.tasks.schema import GENEVAL_PP_TAGS


@dataclass
class Args:
    rows: list[str] = field(default_factory=lambda: [
        "passthrough:shapes-weak:1", "passthrough:shapes-medium:1", "passthrough:shapes-strong:1",
        "resample:shapes-medium:2", "scripted:shapes-medium:1", "scripted:shapes-medium:2",
        "scripted:shapes-medium:4", "random:shapes-medium:2",
    ])
    """leaderboard rows as agent:generator:max_rounds (agents: passthrough, resample, scripted, random)"""
    seeds: int = 3
    """seeds per task; scores are averaged over them"""
    split: str = "test"
    """split of the shapes-geneval suite"""
    tasks_per_tag: int | None = None
    """use only the first N tasks of each tag (default: all 40)"""
    save_examples: int = 3
    """write images and a trajectory picture for this many tasks per row"""
    out: Path = Path("runs/shapes-leaderboard")
    """output folder"""


def main(args: Args) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    started = time.perf_counter()
    for row in args.rows:
        agent_name, generator, rounds = row.split(":")
        env = GenAgentEnv(split=args.split, generators=generator, max_rounds=int(rounds),
                          privileged=agent_name in ("scripted", "resample"), render_mode="rgb_array")
        per_tag: dict[str, list[int]] = defaultdict(list)
        task_indices = _task_indices(env, args.tasks_per_tag)
        rewards, violations, images = [], 0, 0
        overall_per_seed = []
        for seed in range(args.seeds):
            seed_tags: dict[str, list[int]] = defaultdict(list)
            for n, index in enumerate(task_indices):
                agent = make_agent(agent_name)
                trajectory = run_episode(env, agent, seed=seed * 100_003 + index, options={"task_index": index})
                seed_tags[trajectory.tag].append(int(trajectory.passed))
                rewards.append(trajectory.reward)
                violations += trajectory.violations
                images += len(trajectory.images)
                if seed == 0 and n < args.save_examples:
                    folder = args.out / row.replace(":", "_") / f"task{index:03d}"
                    trajectory.to_dict(image_dir=folder)
                    Image.fromarray(env.render()).save(folder / "trajectory.png")
            for tag, passes in seed_tags.items():
                per_tag[tag].extend(passes)
            overall_per_seed.append(float(np.mean([np.mean(p) for p in seed_tags.values()])))
        env.close()
        tags = {tag: float(np.mean(per_tag[tag])) for tag in GENEVAL_PP_TAGS if tag in per_tag}
        results.append({
            "agent": agent_name, "generator": generator, "max_rounds": int(rounds), "seeds": args.seeds,
            "overall": float(np.mean(overall_per_seed)), "overall_std": float(np.std(overall_per_seed)),
            "tags": tags, "mean_reward": float(np.mean(rewards)),
            "violations_per_episode": violations / len(rewards), "images_per_episode": images / len(rewards),
        })
        print(f"  {row:<32} overall {results[-1]['overall']:.3f}", flush=True)

    table = _markdown(results)
    print("\n" + table)
    print(f"\n{len(results)} rows in {time.perf_counter() - started:.1f} s; written to {args.out}/")
    (args.out / "leaderboard.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


def _task_indices(env: GenAgentEnv, per_tag: int | None) -> list[int]:
    if per_tag is None:
        return list(range(len(env.tasks)))
    seen: dict[str, int] = defaultdict(int)
    picked = []
    for index, task in enumerate(env.tasks):
        if seen[task["tag"]] < per_tag:
            seen[task["tag"]] += 1
            picked.append(index)
    return picked


def _markdown(results: list[dict]) -> str:
    header = ["agent", "generator", "rounds", *GENEVAL_PP_TAGS, "overall", "reward", "viol/ep", "img/ep"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r["agent"], r["generator"], str(r["max_rounds"])]
        cells += [f"{r['tags'].get(tag, float('nan')):.3f}" for tag in GENEVAL_PP_TAGS]
        cells += [f"**{r['overall']:.3f}** ± {r['overall_std']:.3f}", f"{r['mean_reward']:.3f}",
                  f"{r['violations_per_episode']:.2f}", f"{r['images_per_episode']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main(tyro.cli(Args))
