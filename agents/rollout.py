"""Run an agent through an episode and keep a serialisable record of it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat

import numpy as np

from agents.base import Agent, user_prompt

if TYPE_CHECKING:
    import gymnasium as gym
    from PIL.Image import Image

    from genagent_env.vector import GenAgentVectorEnv


@dataclass(frozen=True)
class AgentTurn:
    """What an agent that reports its generations wrote at one step, for training on it.

    Attributes:
        context: How many messages of the episode's chat the agent saw when it acted: its prompt
            was ``trajectory.messages[:context]``.
        generation: The agent's record of the message (an :class:`agents.llm.Generation`: token ids
            and their log-probabilities).
    """

    context: int
    generation: Any


@dataclass
class Trajectory:
    """One episode: the turns, the images, the reward and its parts.

    ``turns`` hold per step the agent's ``action``, the env's reply ``observation`` (its text), the
    step ``reward`` and the ``format_errors``. ``images`` are the originals the tools returned;
    :meth:`to_dict` writes them as PNG files when given a folder. ``generations`` has one
    :class:`AgentTurn` per turn when the agent reports what it generated (an agent with a
    ``last_generations`` list, as :class:`agents.llm.LLMAgent` has), else ``None`` per turn; like
    ``messages`` it stays out of :meth:`to_dict`.
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
    generations: list[AgentTurn | None] = field(default_factory=list)

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
        out = {key: value for key, value in self.__dict__.items() if key not in ("images", "messages", "generations")}
        out["images"] = image_paths
        return json.loads(json.dumps(out, default=str))


def run_episode(
    env: gym.Env,
    agent: Agent,
    *,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    max_steps: int = 1000,
    agent_seed: int | None = None,
) -> Trajectory:
    """Reset ``env`` (with ``seed`` and ``options``), let ``agent`` act until the episode ends, and
    return the :class:`Trajectory`. ``max_steps`` guards against an env without its own limit.
    The agent is reset with ``agent_seed``, or with ``seed`` when that is ``None``."""
    observation, info = env.reset(seed=seed, options=dict(options) if options else None)
    agent.reset(seed if agent_seed is None else agent_seed)
    trajectory = _start(info)
    for _ in range(max_steps):
        context = len(info.get("messages", []))
        action = agent.act(observation, info)
        trajectory.generations.append(_reported(agent, 0, 1, context))
        observation, reward, terminated, truncated, info = env.step(action)
        if _record(trajectory, action, observation, reward, terminated, truncated, info):
            break
    return _end(trajectory, info)


@dataclass(frozen=True)
class EpisodeSpec:
    """How to start one episode: the reset ``seed`` and ``options`` (e.g. ``{"task_index": 3}``).

    ``agent_seed`` seeds the agent's sampling (``None``: ``seed`` does). Episodes that share
    ``seed`` but not ``agent_seed`` see the same tool luck (a prompt written in both draws the same
    image) while the agent samples differently: common random numbers for a GRPO group."""

    seed: int | None = None
    options: Mapping[str, Any] | None = None
    agent_seed: int | None = None

    @property
    def sampling_seed(self) -> int | None:
        """The seed the agent is reset with."""
        return self.seed if self.agent_seed is None else self.agent_seed


def run_episodes(
    envs: GenAgentVectorEnv,
    agents: Agent | Sequence[Agent],
    *,
    seed: int | Sequence[int | None] | None = None,
    options: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
    max_steps: int = 1000,
) -> list[Trajectory]:
    """One episode per sub-environment of ``envs``, played together through ``envs.step``: each
    step's tool calls go to the generator as one batch (and repeated calls hit the cache).

    Args:
        envs: A :class:`~genagent_env.vector.GenAgentVectorEnv` (``gym.make_vec(...,
            vectorization_mode="vector_entry_point")``). It is reset here; afterwards it is an
            ordinary vector env again (with autoreset, its next step starts new episodes).
        agents: One agent per sub-environment, or one agent for all (see :func:`stream_episodes`).
        seed: ``None``, an int (sub-environment i gets ``seed + i``) or one seed per sub-environment.
        options: Reset options, one dict for all (a GRPO group is ``{"task_index": k}``) or one per
            sub-environment.
        max_steps: A guard against an env without its own turn limit.

    Returns:
        One :class:`Trajectory` per sub-environment, in order. An episode that ends waits (its
        action is :data:`~genagent_env.vector.SKIP`) until the others end.
    """
    n = envs.num_envs
    if seed is None or isinstance(seed, int):
        seeds: list[int | None] = [None if seed is None else seed + i for i in range(n)]
    else:
        seeds = list(seed)
        if len(seeds) != n:
            raise ValueError(f"got {len(seeds)} seeds for {n} environments")
    if options is None or isinstance(options, Mapping):
        per_env: list[Mapping[str, Any] | None] = [options] * n
    else:
        per_env = list(options)
        if len(per_env) != n:
            raise ValueError(f"got {len(per_env)} option dicts for {n} environments")
    specs = [EpisodeSpec(s, o) for s, o in zip(seeds, per_env)]
    found = dict(stream_episodes(envs, agents, specs, max_steps=max_steps))
    return [found[i] for i in range(n)]


def stream_episodes(
    envs: GenAgentVectorEnv,
    agents: Agent | Sequence[Agent],
    specs: Iterable[EpisodeSpec],
    *,
    max_steps: int = 1000,
) -> Iterator[tuple[int, Trajectory]]:
    """Play the episodes ``specs`` on the sub-environments of ``envs``, keeping every one busy:
    when an episode ends, its sub-environment starts the next spec at once. Yields
    ``(index of the spec, Trajectory)`` as each episode ends (so a caller can save it at once).

    Each step's tool calls across sub-environments go to the generator as one batch, through the
    vector env's public ``reset`` and ``step``; a sub-environment with nothing left to play gets
    :data:`~genagent_env.vector.SKIP`. Results do not depend on how episodes share steps: the
    trajectory of a spec is the one :func:`run_episode` gives with the same seeds and options.

    Args:
        envs: A :class:`~genagent_env.vector.GenAgentVectorEnv`.
        agents: One agent per sub-environment, or one agent for all. An agent with an
            ``act_batch(observations, infos) -> list[str]`` method is asked once per step for all
            the episodes it plays (an LLM agent batches its generation so); others are asked one
            episode at a time. ``reset(seed)`` is called each time a sub-environment starts an
            episode, so an agent shared by several sub-environments must keep no per-episode state
            of its own (or act through ``act_batch``); give each its own with ``agent.spawn()``.
        specs: The episodes to play (any iterable; it is read lazily).
        max_steps: A guard against an env without its own turn limit: the most steps of one episode.
    """
    from genagent_env.vector import SKIP, unbatch_info

    n = envs.num_envs
    players = [agents] * n if isinstance(agents, Agent) else list(agents)
    if len(players) != n:
        raise ValueError(f"got {len(players)} agents for {n} environments")
    pending = enumerate(specs)
    slot_job: list[int | None] = [None] * n  # the spec index each sub-environment plays
    slot_spec: list[EpisodeSpec] = [EpisodeSpec()] * n
    steps = [0] * n
    observations: list[dict[str, Any]] = [{}] * n
    infos: list[dict[str, Any]] = [{}] * n
    trajectories: list[Trajectory | None] = [None] * n

    def start(slots: Sequence[int], first: bool) -> None:
        """Reset ``slots`` with their specs: one reset call per distinct options dict."""
        groups: dict[str, list[int]] = {}
        for i in slots:
            groups.setdefault(repr(sorted((slot_spec[i].options or {}).items())), []).append(i)
        for members in groups.values():
            mask = np.zeros(n, dtype=np.bool_)
            mask[members] = True
            seeds = [slot_spec[i].seed for i in range(n)]
            options = dict(slot_spec[members[0]].options or {})
            if not first:
                options["reset_mask"] = mask
            batched_obs, batched_info = envs.reset(seed=seeds, options=options)
            for i in (members if not first else range(n)):
                observations[i] = {key: value[i] for key, value in batched_obs.items()}
                infos[i] = unbatch_info(batched_info, i)
            if first:
                break
        for i in slots:
            players[i].reset(slot_spec[i].sampling_seed)
            trajectories[i] = _start(infos[i])
            steps[i] = 0

    def take(slots: Sequence[int]) -> list[int]:
        """Give the next specs to ``slots``; return those that got one."""
        taken = []
        for i in slots:
            job = next(pending, None)
            if job is None:
                break
            slot_job[i], slot_spec[i] = job
            taken.append(i)
        return taken

    # The first reset must reset every sub-environment: idle ones get the first spec too.
    first = take(range(n))
    if not first:
        return
    for i in range(len(first), n):
        slot_spec[i] = slot_spec[0]
    if any(slot_spec[i].options != slot_spec[0].options for i in first):
        start(range(n), first=True)  # puts every slot on the first spec's options ...
        start(first, first=False)  # ... then each on its own
    else:
        start(first, first=True)

    while any(job is not None for job in slot_job):
        active = [i for i in range(n) if slot_job[i] is not None]
        actions: list[Any] = [SKIP] * n
        for player, indices in _group_by_agent(players, active):
            act_batch = getattr(player, "act_batch", None)
            if act_batch is not None:
                messages = act_batch([observations[i] for i in indices], [infos[i] for i in indices])
                if len(messages) != len(indices):
                    raise ValueError(f"{type(player).__name__}.act_batch returned {len(messages)} messages "
                                     f"for {len(indices)} episodes")
                for k, i in enumerate(indices):
                    trajectory = trajectories[i]
                    assert trajectory is not None
                    trajectory.generations.append(_reported(player, k, len(indices), len(infos[i]["messages"])))
            else:
                messages = []
                for i in indices:
                    messages.append(player.act(observations[i], infos[i]))
                    trajectory = trajectories[i]
                    assert trajectory is not None
                    trajectory.generations.append(_reported(player, 0, 1, len(infos[i]["messages"])))
            for i, message in zip(indices, messages):
                actions[i] = message
        batched_obs, rewards, terminations, truncations, batched_info = envs.step(actions)
        finished = []
        for i in active:
            observations[i] = {key: value[i] for key, value in batched_obs.items()}
            infos[i] = unbatch_info(batched_info, i)
            steps[i] += 1
            trajectory = trajectories[i]
            assert trajectory is not None
            ended = _record(trajectory, actions[i], observations[i], float(rewards[i]),
                            bool(terminations[i]), bool(truncations[i]), infos[i])
            if ended or steps[i] >= max_steps:
                finished.append(i)
        for i in finished:
            job, trajectory = slot_job[i], trajectories[i]
            assert job is not None and trajectory is not None
            slot_job[i] = None
            yield job, _end(trajectory, infos[i])
        refilled = take(finished)
        if refilled:
            start(refilled, first=False)


def _group_by_agent(players: Sequence[Agent], indices: Sequence[int]) -> list[tuple[Agent, list[int]]]:
    """The indices each distinct agent plays, in order of first appearance."""
    groups: dict[int, tuple[Agent, list[int]]] = {}
    for i in indices:
        groups.setdefault(id(players[i]), (players[i], []))[1].append(i)
    return list(groups.values())


def _reported(agent: Agent, index: int, batch: int, context: int) -> AgentTurn | None:
    """The agent's record of message ``index`` of its latest call (of ``batch`` messages), if it keeps one."""
    generations = getattr(agent, "last_generations", None)
    if not isinstance(generations, list) or len(generations) != batch:
        return None
    return AgentTurn(context, generations[index])


def _start(info: Mapping[str, Any]) -> Trajectory:
    return Trajectory(task_id=info["task_id"], tag=info["tag"], prompt=user_prompt(info))


def _record(
    trajectory: Trajectory,
    action: str,
    observation: Mapping[str, Any],
    reward: SupportsFloat,
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
