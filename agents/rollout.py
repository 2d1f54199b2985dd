"""Run an agent through an episode and keep a serialisable record of it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.base import Agent, user_prompt

if TYPE_CHECKING:
    import gymnasium as gym
    from PIL.Image import Image


@dataclass
class Trajectory:
    """One episode: the turns, the images, the reward and its parts.

    ``turns`` hold per step the agent's ``action``, the env's reply ``observation`` (its text), the
    step ``reward`` and the ``format_errors``. ``images`` are the originals the tools returned;
    :meth:`to_dict` writes them as PNG files when given a folder.
    """

    task_id: str
    tag: str
    prompt: str
    turns: list[dict[str, Any]] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    reward: float = 0.0
    reward_components: dict[str, float] = field(default_factory=dict)
    scores: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    final_image: int | None = None
    passed: bool = False
    terminated: bool = False
    truncated: bool = False
    violations: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, image_dir: str | Path | None = None, image_prefix: str = "image") -> dict[str, Any]:
        """A JSON-ready dict. Images become PNG paths under ``image_dir`` (or are left out)."""
        image_paths: list[str] = []
        if image_dir is not None:
            folder = Path(image_dir)
            folder.mkdir(parents=True, exist_ok=True)
            for index, image in enumerate(self.images, start=1):
                path = folder / f"{image_prefix}_{index}.png"
                image.save(path)
                image_paths.append(str(path))
        out = {key: value for key, value in self.__dict__.items() if key not in ("images", "messages")}
        out["images"] = image_paths
        return json.loads(json.dumps(out, default=str))


def run_episode(
    env: gym.Env,
    agent: Agent,
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    max_steps: int = 1000,
) -> Trajectory:
    """Reset ``env`` (with ``seed`` and ``options``), let ``agent`` act until the episode ends, and
    return the :class:`Trajectory`. ``max_steps`` guards against an env without its own limit."""
    observation, info = env.reset(seed=seed, options=dict(options) if options else None)
    agent.reset(seed)
    trajectory = Trajectory(task_id=info["task_id"], tag=info["tag"], prompt=user_prompt(info))
    for _ in range(max_steps):
        action = agent.act(observation, info)
        observation, reward, terminated, truncated, info = env.step(action)
        trajectory.turns.append(
            {"action": action, "observation": observation["text"], "reward": float(reward),
             "format_errors": list(info.get("format_errors", []))}
        )
        trajectory.reward += float(reward)
        if terminated or truncated:
            trajectory.terminated, trajectory.truncated = bool(terminated), bool(truncated)
            break
    trajectory.images = list(info["images"])
    trajectory.rounds = list(info.get("rounds", []))
    trajectory.reward_components = dict(info.get("reward_components", {}))
    trajectory.scores = list(info.get("scores", []))
    trajectory.decisions = list(info.get("decisions", []))
    trajectory.final_image = info.get("final_image")
    trajectory.passed = bool(info.get("passed", False))
    trajectory.violations = int(info.get("violations", 0))
    trajectory.messages = info["messages"]
    return trajectory
