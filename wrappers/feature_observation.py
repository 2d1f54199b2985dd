"""``FeatureObservation``: a flat ``Dict`` of ``Box`` arrays that Stable-Baselines3 accepts."""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

_WORD = re.compile(r"[a-z]+|\d+")
#: Length of the ``state`` vector (see :class:`FeatureObservation`).
STATE_SIZE = 8
#: Length of the ``task`` and ``prompt`` reading vectors.
READING_SIZE = 10


def hashed_bag_of_words(text: str, size: int) -> np.ndarray:
    """Hashed bag-of-words of ``text``: ``size`` float32 bins, each ``1`` if a word (lower-cased,
    letters or digits) hashes into it (CRC-32, stable across processes), else ``0``.

    >>> hashed_bag_of_words("two red stars", 8).sum() <= 3
    True
    """
    out = np.zeros(size, dtype=np.float32)
    for word in _WORD.findall(text.lower()):
        out[zlib.crc32(word.encode()) % size] = 1.0
    return out


def reading_features(text: str) -> np.ndarray:
    """A checklist-like reading of a public prompt by the ShapesWorld reader, as
    :data:`READING_SIZE` numbers in ``[0, 1]``: object groups, largest count, coloured groups,
    regions, relations, sizes, excludes (what is asked), then sentences per group, counts in
    digits, spelled-out placement or emphasis (how it is asked)."""
    from genagent_env.shapes.reader import read_prompt

    reading = read_prompt(text)
    mentions = reading.mentions
    n = max(len(mentions), 1)
    values = [
        len(mentions) / 5,
        max((m.count for m in mentions), default=0) / 8,
        sum(1 for m in mentions if m.color) / n,
        sum(1 for m in mentions if m.region) / n,
        sum(1 for m in mentions if m.relation) / n,
        sum(1 for m in mentions if m.size) / n,
        min(len(reading.excludes), 2) / 2,
        min(reading.n_sentences / n, 3) / 3,
        sum(1 for m in mentions if m.count_digits or m.count_exact) / n,
        (sum(1 for m in mentions if m.emphasis) / n + float(reading.nothing_else)) / 2,
    ]
    return np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)


@dataclass(frozen=True)
class FeatureSpec:
    """The sizes of the features. ``image_size`` is the side of the downscaled image (≥ 36 so SB3's
    ``NatureCNN`` fits); ``text_bins`` the hashed bag-of-words size of the task and the env's text."""

    image_size: int = 48
    text_bins: int = 128

    def __post_init__(self) -> None:
        if self.image_size < 36:
            raise ValueError(f"image_size must be >= 36 for SB3's CNN, got {self.image_size}")
        if self.text_bins < 1:
            raise ValueError(f"text_bins must be positive, got {self.text_bins}")

    def space(self) -> spaces.Dict:
        """The observation space of the features."""
        unit = lambda n: spaces.Box(0.0, 1.0, (n,), np.float32)  # noqa: E731
        return spaces.Dict(
            {
                "image": spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8),
                "task_words": unit(self.text_bins),
                "task": unit(READING_SIZE),
                "prompt": unit(READING_SIZE),
                "text_words": unit(self.text_bins),
                "state": unit(STATE_SIZE),
            }
        )


def observation_features(
    observation: Mapping[str, Any], info: Mapping[str, Any], spec: FeatureSpec | None = None
) -> dict[str, np.ndarray]:
    """The features of one env step from the env's own ``(observation, info)``: what
    :class:`FeatureObservation` returns, usable standalone (e.g. by an SB3 agent outside the wrapper).

    Only public information is used: the observation, the user's request, the agent's own last
    prompt (``info["rounds"]``) and the counters; never the hidden checklist.

    Returns:
        ``image`` (the latest image, downscaled, uint8 H×W×3), ``task_words`` (hashed words of the
        user's request), ``task`` (its reading, :func:`reading_features`), ``prompt`` (the reading
        of the last prompt sent to a tool: zeros before any), ``text_words`` (hashed words of the
        env's text this step: tool result or error message) and ``state``: round / max_rounds,
        rounds left / max_rounds, turn / max_turns, whether there is an image, whether the last
        step was a format violation, violations so far (capped at 3, / 3), images / max_rounds,
        whether the episode is over.
    """
    from agents.base import user_prompt

    spec = spec or FeatureSpec()
    image = np.asarray(observation["image"], dtype=np.uint8)
    side = spec.image_size
    if image.shape[:2] != (side, side):
        from PIL import Image

        image = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR), dtype=np.uint8)
    task_text = user_prompt(info)
    rounds = info.get("rounds") or []
    last_prompt = str(rounds[-1].get("prompt", "")) if rounds else ""
    max_rounds = max(int(info.get("max_rounds", 1)), 1)
    max_turns = max(int(info.get("max_turns", 1)), 1)
    round_ = int(info.get("round", 0))
    n_images = len(info.get("images", []))
    state = np.asarray(
        [
            round_ / max_rounds,
            max(max_rounds - round_, 0) / max_rounds,
            min(int(info.get("turn", 0)) / max_turns, 1.0),
            float(n_images > 0),
            float(bool(info.get("format_errors"))),
            min(int(info.get("violations", 0)), 3) / 3,
            min(n_images / max_rounds, 1.0),
            float("reward_components" in info),
        ],
        dtype=np.float32,
    )
    return {
        "image": np.ascontiguousarray(image),
        "task_words": hashed_bag_of_words(task_text, spec.text_bins),
        "task": reading_features(task_text),
        "prompt": reading_features(last_prompt) if last_prompt else np.zeros(READING_SIZE, np.float32),
        "text_words": hashed_bag_of_words(str(observation.get("text", "")), spec.text_bins),
        "state": state,
    }


class FeatureObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Turns ``GenAgent-v0``'s ``Dict(text, image)`` observation into a flat ``Dict`` of ``Box``
    arrays that Stable-Baselines3's ``MultiInputPolicy`` (and any array policy) accepts.

    ## Observation Space

    ``Dict(image=Box(0, 255, (S, S, 3), uint8), task_words=Box(0, 1, (B,)), task=Box(0, 1, (10,)),
    prompt=Box(0, 1, (10,)), text_words=Box(0, 1, (B,)), state=Box(0, 1, (8,)))`` with
    ``S = image_size`` and ``B = text_bins``; see :func:`observation_features` for each entry.
    The features come from the observation and the public parts of ``info`` (the user's request,
    the agent's own prompts, counters); the hidden checklist is never read. ``info`` passes through
    unchanged.

    ## Arguments

    - ``env``: a ``GenAgent-v0`` env (possibly wrapped, e.g. by :class:`wrappers.StrategyActions`).
    - ``image_size``: side of the downscaled image (48; at least 36).
    - ``text_bins``: hashed bag-of-words size (128).

    Example::

        >>> import gymnasium as gym, genagent_env
        >>> from wrappers import FeatureObservation, StrategyActions
        >>> env = FeatureObservation(StrategyActions(gym.make("GenAgent-v0")))
        >>> obs, info = env.reset(seed=0)
        >>> sorted(obs)
        ['image', 'prompt', 'state', 'task', 'task_words', 'text_words']
    """

    def __init__(self, env: gym.Env, image_size: int = 48, text_bins: int = 128) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, image_size=image_size, text_bins=text_bins)
        gym.ObservationWrapper.__init__(self, env)
        self.spec_features = FeatureSpec(image_size=image_size, text_bins=text_bins)
        self.observation_space = self.spec_features.space()
        self._info: Mapping[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        observation, info = self.env.reset(seed=seed, options=options)
        self._info = info
        return self.observation(observation), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._info = info
        return self.observation(observation), reward, terminated, truncated, info

    def observation(self, observation: Any) -> dict[str, np.ndarray]:
        """The features of ``observation`` with the latest ``info``."""
        return observation_features(observation, self._info, self.spec_features)
