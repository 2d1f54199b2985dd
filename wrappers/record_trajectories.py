"""``RecordTrajectories``: every episode as a JSONL line, PNG images and a trajectory picture."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym

from agents.base import user_prompt
from agents.rollout import Trajectory

#: The file-name pattern of the JSONL files one wrapper instance writes.
JSONL_GLOB = "episodes-*.jsonl"


def _plain(value: Any) -> Any:
    """JSON-ready plain data (tuples become lists, numpy scalars numbers)."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


class RecordTrajectories(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Writes each finished episode of a ``GenAgent-v0`` env under ``folder``, in a form that
    :func:`load_trajectories` reads back as the same :class:`agents.rollout.Trajectory` objects
    (the SFT data format of the project).

    Per episode: one line in ``folder/episodes-<pid>-<id>.jsonl`` (the trajectory's fields, the
    chat ``messages`` with image parts as relative PNG paths, ``episode_id`` and ``picture``), the
    tool's images as ``folder/<episode_id>/image_K.png`` and, with ``picture=True``, the trajectory
    picture of :func:`genagent_env.render.trajectory_picture` (the ``env.render()`` picture, with
    the scorer's marks) as ``folder/<episode_id>/trajectory.png``. Each wrapper instance writes its
    own JSONL file, so copies in ``SyncVectorEnv``, ``AsyncVectorEnv`` or ``SubprocVecEnv`` workers
    never collide. Lines are written when an episode ends; an episode cut short from outside (an
    outer ``TimeLimit``, a ``reset`` or ``close`` mid-episode) is written then, marked ``truncated``,
    with what the env had said so far (no end-of-episode reward parts).

    Wrap the text-level env (inside :class:`wrappers.StrategyActions`); outside it, non-text
    actions are recorded as the message the env received. Composes with ``TimeLimit`` and
    ``RecordEpisodeStatistics`` (a ``TimeLimit`` truncation is recorded as ``truncated``).

    ## Arguments

    - ``env``: a ``GenAgent-v0`` env.
    - ``folder``: where to write (created if needed).
    - ``picture``: also write the trajectory picture (True).
    - ``keep``: keep the recorded trajectories in ``self.trajectories`` too (False).
    """

    def __init__(self, env: gym.Env, folder: str | Path, picture: bool = True, keep: bool = False) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, folder=folder, picture=picture, keep=keep)
        gym.Wrapper.__init__(self, env)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.picture = picture
        self.keep = keep
        self.trajectories: list[Trajectory] = []
        self.run_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path = self.folder / f"episodes-{self.run_id}.jsonl"
        self._episodes = 0
        self._current: Trajectory | None = None
        self._last_info: dict[str, Any] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._flush()
        observation, info = self.env.reset(seed=seed, options=options)
        self._last_info = None
        self._current = Trajectory(task_id=info["task_id"], tag=info["tag"], prompt=user_prompt(info))
        return observation, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        current = self._current
        if current is not None:
            if not isinstance(action, str):
                sent = [m for m in info["messages"] if m["role"] == "assistant"]
                action = sent[-1]["content"] if sent else str(action)
            current.turns.append(
                {"action": action, "observation": observation["text"], "reward": float(reward),
                 "format_errors": list(info.get("format_errors", []))}
            )
            current.reward += float(reward)
            self._last_info = info
            if terminated or truncated:
                current.terminated, current.truncated = bool(terminated), bool(truncated)
                self._finish(current, info)
                self._current = None
        return observation, reward, terminated, truncated, info

    def _flush(self) -> None:
        """Write an episode that was cut short from outside."""
        if self._current is not None and self._current.turns and self._last_info is not None:
            self._current.truncated = True
            self._finish(self._current, self._last_info)
        self._current = None

    def close(self) -> None:
        self._flush()
        super().close()

    def _finish(self, trajectory: Trajectory, info: dict[str, Any]) -> None:
        trajectory.images = list(info["images"])
        # JSON-plain copies (tuples become lists), so what is kept equals what is loaded back.
        trajectory.rounds = _plain(list(info.get("rounds", [])))
        trajectory.reward_components = _plain(dict(info.get("reward_components", {})))
        trajectory.scores = _plain(list(info.get("scores", [])))
        trajectory.decisions = _plain(list(info.get("decisions", [])))
        trajectory.final_image = info.get("final_image")
        trajectory.passed = bool(info.get("passed", False))
        trajectory.violations = int(info.get("violations", 0))
        trajectory.messages = info["messages"]
        self._write(trajectory)
        if self.keep:
            self.trajectories.append(trajectory)

    def _write(self, trajectory: Trajectory) -> None:
        episode_id = f"{self.run_id}-{self._episodes:06d}"
        self._episodes += 1
        folder = self.folder / episode_id
        folder.mkdir(parents=True, exist_ok=True)
        paths: dict[int, str] = {}
        for index, image in enumerate(trajectory.images, start=1):
            image.save(folder / f"image_{index}.png")
            paths[id(image)] = f"{episode_id}/image_{index}.png"
        messages = []
        for message in trajectory.messages:
            copied = dict(message)
            if isinstance(copied.get("content"), list):
                parts = []
                for part in copied["content"]:
                    part = dict(part)
                    if part.get("type") == "image":
                        image = part["image"]
                        if id(image) not in paths:  # not one of the episode's images: save it too
                            name = f"extra_{len(paths) + 1}.png"
                            image.save(folder / name)
                            paths[id(image)] = f"{episode_id}/{name}"
                        part["image"] = paths[id(image)]
                    parts.append(part)
                copied["content"] = parts
            messages.append(copied)
        record = {key: value for key, value in trajectory.__dict__.items() if key not in ("images", "messages")}
        record["images"] = [paths[id(image)] for image in trajectory.images]
        record["messages"] = messages
        record["episode_id"] = episode_id
        record["picture"] = None
        if self.picture:
            from PIL import Image

            from genagent_env.render import trajectory_picture

            rounds = [
                {**meta, "image": image, "passed": score.get("passed"), "score": score.get("score", 0.0)}
                for meta, image, score in zip(trajectory.rounds, trajectory.images, trajectory.scores)
            ]
            Image.fromarray(trajectory_picture(trajectory.prompt, rounds)).save(folder / "trajectory.png")
            record["picture"] = f"{episode_id}/trajectory.png"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(_plain(record)) + "\n")


def iter_records(path: str | Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """``(root folder, record)`` for every line of a JSONL file, or of every ``episodes-*.jsonl``
    file of a folder (sorted by name, then line order)."""
    path = Path(path)
    files = sorted(path.glob(JSONL_GLOB)) if path.is_dir() else [path]
    for file in files:
        with file.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    yield file.parent, json.loads(line)


def load_trajectories(path: str | Path) -> list[Trajectory]:
    """Read what :class:`RecordTrajectories` wrote (a folder, or one of its JSONL files) back into
    :class:`agents.rollout.Trajectory` objects: the same fields, the images as PIL images and the
    chat ``messages`` with their image parts restored (the same image objects as ``images``)."""
    from PIL import Image

    out = []
    for root, record in iter_records(path):
        loaded: dict[str, Any] = {}

        def image(relative: str, root: Path = root, loaded: dict[str, Any] = loaded) -> Any:
            if relative not in loaded:
                with Image.open(root / relative) as handle:
                    loaded[relative] = handle.convert("RGB")
            return loaded[relative]

        images = [image(p) for p in record.pop("images")]
        messages = record.pop("messages")
        for message in messages:
            if isinstance(message.get("content"), list):
                for part in message["content"]:
                    if part.get("type") == "image":
                        part["image"] = image(part["image"])
        record.pop("episode_id", None)
        record.pop("picture", None)
        out.append(Trajectory(**record, images=images, messages=messages))
    return out
