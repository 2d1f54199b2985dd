"""``GenAgent-v0``: text-to-image generation as a multi-turn Gymnasium environment.

A thin Gymnasium face over :class:`~genagent_env.episode.Episode` (the episode state machine) and
:func:`~genagent_env.stepping.step_episodes` (the batched step), configured by one shared
:class:`~genagent_env.config.EnvConfig`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from genagent_env.config import EnvConfig
from genagent_env.episode import TEXT_CHARSET, Episode, EpisodeState
from genagent_env.rewards import RewardWeights
from genagent_env.scorers.base import PairwiseComparator, Scorer
from genagent_env.stepping import StepResult, step_episodes
from genagent_env.tools.base import Generator
from genagent_env.tools.cache import GenerationCache


class GenAgentEnv(gym.Env[dict[str, Any], str]):
    """An agent turns a user's request into an image by calling text-to-image tools, judging each
    image, and refining its prompt (GenAgent, arXiv 2601.18543).

    ## Description

    Each episode is one task: a user prompt with a hidden checklist in the GenEval++ schema. The
    agent writes one message per step. It may reason, call an image generator (a *tool*) with a
    prompt it writes, look at the image, judge it, call again with a refined prompt or seed, and
    finally submit one image. At most ``max_rounds`` tool calls produce images (the paper uses 2).
    The default world is ShapesWorld: a procedural generator that makes the mistakes diffusion
    models make and a pixel-exact verifier, so the whole loop runs offline on a CPU.

    ## Action Space

    ``Text``: the agent's message, in the protocol ``[<judge>…</judge>] [<think>…</think>]``
    then exactly one of ``<tool_call>{"name": ..., "arguments": {"prompt": ..., "seed": ...}}</tool_call>``
    (Hermes/Qwen format) or ``<answer>done | K | image_K</answer>``. A turn after a new image must
    start with ``<judge>``. A malformed message never raises: it is a *format violation* that has
    no effect on the world, and the observation says what was wrong and what is allowed. Any
    ``str`` is accepted, whatever its length or characters.

    ## Observation Space

    ``Dict(text=Text(max_text_length, charset=printable ASCII), image=Box(0, 255, (H, W, 3), uint8))``.
    ``text`` is what the env says this step: the user's request at reset, then the tool's result or
    the error message; characters outside the charset become ``?`` and long text is cut with a
    marker. ``image`` is the latest image resized to ``image_size`` (zeros before the first).

    ## Info

    ========================  ===================  ============================================================
    key                       when                 what
    ========================  ===================  ============================================================
    ``messages``              always               the whole chat in the Hugging Face format, ready for
                                                   ``processor.apply_chat_template``: system prompt (protocol,
                                                   every tool's JSON schema), user request, assistant turns,
                                                   tool turns (``content``: an ``image`` part with the PIL
                                                   image, then a ``text`` part), violation messages as user
                                                   turns; never cut or filtered
    ``tools``                 always               the tool specs as announced (``{"type": "function",
                                                   "function": {"name", "description", "parameters"}}``)
    ``task_id``, ``tag``      always               the task's id and category (a GenEval++ tag), for reports
    ``round``, ``max_rounds`` always               images made so far; the most tool calls that make images
    ``turn``, ``max_turns``   always               steps taken; the step that truncates
    ``violations``            always               format violations so far
    ``images``                always               every image made (PIL, original size): ``image_K`` is
                                                   ``images[K - 1]``
    ``rounds``                always               per image: ``tool``, ``prompt``, ``seed`` (drawn if left
                                                   out), the agent's ``judge`` of it (``None`` until judged)
    ``format_errors``         always               this step's violation messages (empty when accepted)
    ``stray_text``            always               this step's text outside the tags
    ``generation_cache``      with a cache         counters: ``hits``, ``misses``, ``disk_hits``,
                                                   ``disk_errors``, ``generator_calls``, ``evictions``,
                                                   ``entries``, ``bytes``
    ``task``                  ``privileged=True``  the task with its checklist, for teacher agents
    ``reward_components``     at the end           exactly ``outcome``, ``reflection``, ``format`` (sum = reward)
    ``scores``                at the end           per image: ``passed``, ``score`` in [0, 1], ``details``
                                                   (the scorer's checks and why they failed)
    ``final_image``           at the end           the 1-based image that counts (the submitted one, or the
                                                   latest on truncation); ``None`` when none was made
    ``passed``                at the end           whether the final image passes
    ``decisions``             at the end           per reflection decision: ``image``, ``kind`` (``answer``,
                                                   ``retry``, ``undecided``), ``submitted``, ``correct``
    ========================  ===================  ============================================================

    The checklist never appears during the episode except as ``info["task"]`` with
    ``privileged=True``; once the episode is over, the scorer's ``details`` in ``info["scores"]``
    name the checks (for reports and debugging). Every call hands out fresh containers (images are
    shared and never changed). ``docs/environment.md`` has the same contract at length.

    ## Rewards

    Zero until the episode ends, then ``outcome + reflection + format``: ``0.7 × passed(final image)``
    + ``0.3 × reflection accuracy`` − ``0.2`` once if any format violation happened (weights set by
    ``reward_weights``). A reflection decision is taken on the latest image each time an accepted
    turn answers (correct iff the submitted image passes) or calls the tool again (correct iff the
    old image fails and the comparator strictly prefers the new one); an image still undecided at
    truncation counts as a wrong decision. See :mod:`genagent_env.rewards`.

    ## Starting State

    ``reset(seed=..., options=...)`` picks a task: ``{"task_index": i}`` from the suite,
    ``{"task": dict}`` in the GenEval++ schema, ``{"prompt": str}`` (parsed into a checklist by the
    scorer), or, with no options, a random task drawn from ``self.np_random``. A bad option raises
    ``ValueError``.

    ## Episode End

    Terminated when the agent submits an image with a valid ``<answer>``. Truncated after
    ``max_turns`` steps (default ``2 * max_rounds + 2``), enforced by the env itself so the full
    reward is paid: the final image is then the latest one (none if there was none: outcome 0).

    ## Arguments

    Every argument is checked here: a bad value raises ``ValueError`` (or ``TypeError`` for a value
    of the wrong kind) naming the argument and what is allowed; an unknown registered name raises
    :class:`~genagent_env.registry.UnknownNameError`, both a ``ValueError`` and a ``KeyError``.

    - ``suite``: a registered suite name (``"shapes-geneval"``), a path to a GenEval/GenEval++
      JSONL file, or a list of task dicts. A task the scorer cannot check is named with its
      ``file:line`` (or ``suite[i]``).
    - ``split``: the split of a registered suite (``"test"``: 280 tasks, ``"train"``: ≥ 5 000).
    - ``generators``: a registered name (``"shapes-strong"``), a :class:`Generator`, a function
      ``(prompt, seed) -> PIL.Image``, or a dict ``{tool_name: any of those}`` to offer several tools.
    - ``scorer``: a registered name (``"shapes"``) or a :class:`Scorer`.
    - ``comparator``: a :class:`PairwiseComparator`, or the registered name of a scorer that is one
      (``"clip"``, ``"vlm-judge"``; the same name as ``scorer`` shares its model); by default
      (``None``) preference is derived from the scores already computed (pass first, then score).
    - ``max_rounds``: the most tool calls that produce images (2; at most 1 000).
    - ``max_turns``: the most steps (``2 * max_rounds + 2``; at most 10 000).
    - ``image_size``: the observation image size, an int or ``(height, width)`` (128; each side
      from 1 to 4 096).
    - ``reward_weights``: a :class:`RewardWeights` or a dict of its fields (weights in [0, 1e6],
      ``continuous_outcome`` True or False).
    - ``privileged``: ``True`` puts the task's checklist in ``info["task"]`` (for teacher agents).
      Only ``True``/``False`` are accepted, so that ``"no"`` cannot leak the checklist.
    - ``strict_format``: ``True`` makes text outside the tags a violation (``True``/``False`` only).
    - ``max_text_length``: the longest text observation (4096; from 64, so that the env's messages
      fit, to 2**20).
    - ``max_action_length``: the ``max_length`` of the ``Text`` action space (longer messages are
      still accepted and parsed; at most 2**20).
    - ``tool_timeout_s``: a tool call that takes longer is an error message to the agent (seconds,
      at most a week; None: wait).
    - ``generation_cache``: ``True``: identical tool calls (tool, prompt, seed, arguments) are
      generated once and kept in an in-memory LRU (1024 images, 256 MiB) — what GRPO branches
      restored with :meth:`set_state` want; a dict of
      :class:`~genagent_env.tools.cache.GenerationCache` arguments (``max_entries``, ``max_bytes``,
      ``directory`` for an on-disk cache); or a ``GenerationCache`` to share one between envs. Its
      counters are in ``info["generation_cache"]``. ``False`` (default) for a single env, whose
      info then depends on nothing but the episode (Gymnasium's ``check_env`` checks that);
      :class:`~genagent_env.vector.GenAgentVectorEnv` turns a shared one on.
    - ``render_mode``: ``"rgb_array"`` (a picture of the trajectory) or ``"ansi"`` (the transcript).
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 1}

    def __init__(
        self,
        suite: str | Path | Sequence[Mapping[str, Any]] = "shapes-geneval",
        split: str = "test",
        generators: str | Generator | Callable[..., Any] | Mapping[str, Any] | Sequence[Any] = "shapes",
        scorer: str | Scorer = "shapes",
        comparator: PairwiseComparator | str | None = None,
        max_rounds: int = 2,
        max_turns: int | None = None,
        image_size: int | tuple[int, int] = 128,
        reward_weights: RewardWeights | dict[str, Any] | None = None,
        privileged: bool = False,
        strict_format: bool = False,
        max_text_length: int = 4096,
        max_action_length: int = 16384,
        tool_timeout_s: float | None = None,
        generation_cache: GenerationCache | bool | Mapping[str, Any] | None = False,
        render_mode: str | None = None,
    ) -> None:
        check_render_mode(render_mode, self.metadata["render_modes"])
        config = EnvConfig.build(
            suite=suite, split=split, generators=generators, scorer=scorer, comparator=comparator,
            max_rounds=max_rounds, max_turns=max_turns, image_size=image_size, reward_weights=reward_weights,
            privileged=privileged, strict_format=strict_format, max_text_length=max_text_length,
            max_action_length=max_action_length, tool_timeout_s=tool_timeout_s, generation_cache=generation_cache,
        )
        self._attach(config, render_mode, owns_config=True)

    @classmethod
    def from_config(cls, config: EnvConfig, render_mode: str | None = None) -> GenAgentEnv:
        """An env over an existing configuration (shared, not copied: its tools, scorer, suite and
        cache serve both). The env does not own ``config``: closing it closes nothing."""
        check_render_mode(render_mode, cls.metadata["render_modes"])
        env = cls.__new__(cls)
        env._attach(config, render_mode, owns_config=False)
        return env

    def _attach(self, config: EnvConfig, render_mode: str | None, owns_config: bool) -> None:
        self.config = config
        self.render_mode = render_mode
        self._owns_config = owns_config
        self._episode: Episode | None = None
        self.observation_space = spaces.Dict(
            {
                "text": spaces.Text(max_length=config.max_text_length, min_length=0, charset=TEXT_CHARSET),
                "image": spaces.Box(0, 255, (*config.image_size, 3), np.uint8),
            }
        )
        self.action_space = spaces.Text(max_length=config.max_action_length, min_length=0, charset=TEXT_CHARSET)

    # The configuration, read-only (build a new env to change it).
    @property
    def tasks(self) -> tuple[dict[str, Any], ...]:
        """The suite: task dicts in the GenEval++ schema."""
        return self.config.tasks

    @property
    def tools(self) -> Mapping[str, Generator]:
        return self.config.tools

    @property
    def scorer(self) -> Scorer:
        return self.config.scorer

    @property
    def comparator(self) -> PairwiseComparator | None:
        return self.config.comparator

    @property
    def max_rounds(self) -> int:
        return self.config.max_rounds

    @property
    def max_turns(self) -> int:
        return self.config.max_turns

    @property
    def image_size(self) -> tuple[int, int]:
        return self.config.image_size

    @property
    def generation_cache(self) -> GenerationCache | None:
        return self.config.generation_cache

    @property
    def episode(self) -> Episode | None:
        """The current episode (``None`` before the first reset)."""
        return self._episode

    # ------------------------------------------------------------------ reset, step

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        task = self.config.choose_task(options, self.np_random)
        self._episode = Episode(self.config, task, self.np_random)
        return self._episode.observation(), self._episode.info()

    def step(self, action: str) -> StepResult:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        return step_episodes([self._episode], [action])[0]

    # ------------------------------------------------------------ state, render

    def get_state(self) -> dict[str, Any]:
        """A snapshot of the episode and the random generator; :meth:`set_state` restores it, after
        which the same actions give the same observations and rewards."""
        if self._episode is None:
            raise RuntimeError("call reset() before get_state()")
        return {"episode": self._episode.snapshot(), "rng": copy.deepcopy(self.np_random.bit_generator.state)}

    @staticmethod
    def check_state(state: Any) -> None:
        """Raise ``ValueError`` unless ``state`` is a snapshot from :meth:`get_state`."""
        if not isinstance(state, Mapping) or not isinstance(state.get("episode"), EpisodeState) or "rng" not in state:
            raise ValueError("set_state expects a snapshot returned by get_state()")

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore a snapshot from :meth:`get_state` (the snapshot stays reusable for more branches)."""
        self.check_state(state)
        self.np_random.bit_generator.state = copy.deepcopy(state["rng"])
        self._episode = Episode.from_snapshot(self.config, state["episode"], self.np_random)

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; pass render_mode='rgb_array' or 'ansi'.")
            return None
        if self._episode is None:
            raise RuntimeError("call reset() before render()")
        from genagent_env.render import trajectory_picture, transcript

        state = self._episode.state
        if self.render_mode == "ansi":
            return transcript(state.messages)
        rounds = [
            {**meta, "image": image, "passed": score.passed, "score": score.score}
            for meta, image, score in zip(state.rounds, state.images, state.scores)
        ]
        return trajectory_picture(state.task["prompt"], rounds)

    def close(self) -> None:
        if getattr(self, "_owns_config", False):
            self.config.close()
            self._owns_config = False


def check_render_mode(render_mode: str | None, modes: Sequence[str]) -> None:
    if render_mode is not None and render_mode not in modes:
        raise ValueError(f"render_mode must be one of {list(modes)} or None, got {render_mode!r}")


__all__ = ["TEXT_CHARSET", "GenAgentEnv"]
