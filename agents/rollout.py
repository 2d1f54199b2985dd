"""Run an agent through an episode and keep a serialisable record of it."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.base import Agent, user_prompt

if TYPE_CHECKING:
    import gymnasium as gym
    from PIL.Image import Image

    from genagent_env.env import GenAgentEnv
    from genagent_env.vector import GenAgentVectorEnv


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
    trajectory = _start(info)
    for _ in range(max_steps):
        action = agent.act(observation, info)
        observation, reward, terminated, truncated, info = env.step(action)
        if _record(trajectory, action, observation, reward, terminated, truncated, info):
            break
    return _end(trajectory, info)


def run_episodes(
    envs: GenAgentVectorEnv | Sequence[GenAgentEnv],
    agents: Sequence[Agent],
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    max_steps: int = 1000,
    batch_size: int | None = None,
) -> list[Trajectory]:
    """One episode per sub-environment, played together: ``agents[i]`` plays ``envs[i]`` and each
    step's tool calls go to the generator as one batch (and repeated calls hit the cache).

    ``envs`` is a :class:`~genagent_env.vector.GenAgentVectorEnv` or a list of ``GenAgentEnv``;
    sub-environment i is reset with seed ``seed + i`` and ``options`` (one dict for all — a GRPO
    group is ``options={"task_index": k}`` — or one per env). An episode that ends waits for the
    others; the vector env's autoreset is not used. Returns one :class:`Trajectory` per env.
    """
    from genagent_env.batching import step_together

    subs = [env.unwrapped for env in (envs.envs if hasattr(envs, "envs") else envs)]
    batch_size = batch_size if batch_size is not None else getattr(envs, "batch_size", None)
    score_batch_size = getattr(envs, "score_batch_size", None)
    if len(agents) != len(subs):
        raise ValueError(f"got {len(agents)} agents for {len(subs)} environments")
    if options is None or isinstance(options, Mapping):
        per_env = [dict(options) if options else None] * len(subs)
    else:
        per_env = [dict(o) if o else None for o in options]
        if len(per_env) != len(subs):
            raise ValueError(f"got {len(per_env)} option dicts for {len(subs)} environments")
    states = []
    for i, (env, agent) in enumerate(zip(subs, agents)):
        env_seed = None if seed is None else seed + i
        observation, info = env.reset(seed=env_seed, options=per_env[i])
        agent.reset(env_seed)
        states.append([observation, info, _start(info)])
    active = list(range(len(subs)))
    for _ in range(max_steps):
        if not active:
            break
        actions = [agents[i].act(states[i][0], states[i][1]) for i in active]
        results = step_together([subs[i] for i in active], actions, batch_size=batch_size, score_batch_size=score_batch_size)
        still = []
        for i, action, (observation, reward, terminated, truncated, info) in zip(active, actions, results):
            states[i][0], states[i][1] = observation, info
            if not _record(states[i][2], action, observation, reward, terminated, truncated, info):
                still.append(i)
        active = still
    return [_end(trajectory, info) for _, info, trajectory in states]


def _start(info: Mapping[str, Any]) -> Trajectory:
    return Trajectory(task_id=info["task_id"], tag=info["tag"], prompt=user_prompt(info))


def _record(
    trajectory: Trajectory,
    action: str,
    observation: Mapping[str, Any],
    reward: float,
    terminated: bool,
    truncated: bool,
    info: Mapping[str, Any],
) -> bool:
    """Add one step; return whether the episode is over."""
    trajectory.turns.append(
        {"action": action, "observation": observation["text"], "reward": float(reward),
         "format_errors": list(info.get("format_errors", []))}
    )
    trajectory.reward += float(reward)
    if terminated or truncated:
        trajectory.terminated, trajectory.truncated = bool(terminated), bool(truncated)
        return True
    return False


def _end(trajectory: Trajectory, info: Mapping[str, Any]) -> Trajectory:
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
