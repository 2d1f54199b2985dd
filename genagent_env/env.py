"""``GenAgent-v0``: text-to-image generation as a multi-turn environment (design.md §3–§5)."""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from genagent_env import protocol
from genagent_env.batching import step_together
from genagent_env.rewards import Decision, RewardWeights, decision_correct, episode_reward
from genagent_env.scorers.base import PairwiseComparator, Score, Scorer, compare_scores
from genagent_env.scorers.registry import make_scorer
from genagent_env.tasks.schema import normalize_task
from genagent_env.tasks.suites import resolve_suite
from genagent_env.tools.base import GenerationRequest, Generator
from genagent_env.tools.cache import GenerationCache
from genagent_env.tools.registry import make_generator

if TYPE_CHECKING:
    from PIL.Image import Image

#: Characters the text observation may hold: printable ASCII (Gymnasium's default has no space).
TEXT_CHARSET = string.printable
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TRUNCATION_MARK = " ...[truncated]"
_OUTSIDE_CHARSET = re.compile("[^" + re.escape(TEXT_CHARSET) + "]")


@dataclass
class _Episode:
    """Everything that changes during an episode: what :meth:`GenAgentEnv.get_state` snapshots."""

    task: dict[str, Any]
    messages: list[dict[str, Any]]
    images: list[Image] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per image: tool, prompt, seed, judge
    scores: list[Score] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    round: int = 0
    turn: int = 0
    violations: int = 0
    judge_pending: bool = False
    done: bool = False
    text: str = ""
    pixels: np.ndarray | None = None  # the latest image at the observation size
    format_errors: list[str] = field(default_factory=list)
    stray_text: str = ""
    final: int | None = None  # the submitted image (1-based) once the episode is over
    result: dict[str, Any] | None = None


#: The episode's lists that a turn only ever appends to.
_APPEND_ONLY = ("messages", "images", "rounds", "scores", "decisions")


@dataclass
class _Turn:
    """One step's action, parsed, between :meth:`GenAgentEnv._begin_turn` and ``_apply_turn``."""

    content: str  # the assistant message as recorded in the chat
    parsed: protocol.ParsedTurn | None = None
    errors: list[str] = field(default_factory=list)
    call: protocol.ToolCall | None = None
    submitted: int | None = None
    missing_judge: bool = False
    request: GenerationRequest | None = None
    rng_state: dict[str, Any] | None = None  # np_random before the seed draw, to undo a failed step
    image: Image | None = None  # filled by the generator ...
    tool_error: Exception | None = None  # ... or this
    score: Score | None = None


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
    ``info`` holds the full chat in the Hugging Face format (``messages``: system prompt with the
    protocol and every tool's schema, user query, assistant turns, tool turns with PIL images),
    ``tools``, ``task_id``, ``tag``, ``round``, ``max_rounds``, ``turn``, ``max_turns``, ``violations``, ``images`` (originals), ``rounds`` (per image: ``tool``, ``prompt``, ``seed``, the agent's ``judge``),
    ``format_errors`` and ``stray_text`` of this step, ``generation_cache`` (the cache's ``hits``,
    ``misses``, ``disk_hits``, ``generator_calls``, ``evictions``, ``entries``, ``bytes``; absent
    without a cache); at the end also ``reward_components``
    (``outcome``, ``reflection``, ``format``), per-image ``scores``, ``final_image`` (1-based or
    None), ``passed`` and ``decisions``. The checklist is never shown during the episode, except as
    ``info["task"]`` when ``privileged=True`` (for teacher agents); once it is over, the scorer's
    ``details`` in ``info["scores"]`` do name the checks (for reports and debugging).

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

    - ``suite``: a registered suite name (``"shapes-geneval"``), a path to a GenEval/GenEval++
      JSONL file, or a list of task dicts.
    - ``split``: the split of a registered suite (``"test"``: 280 tasks, ``"train"``: ≥ 5 000).
    - ``generators``: a registered name (``"shapes-strong"``), a :class:`Generator`, a function
      ``(prompt, seed) -> PIL.Image``, or a dict ``{tool_name: any of those}`` to offer several tools.
    - ``scorer``: a registered name (``"shapes"``) or a :class:`Scorer`.
    - ``comparator``: a :class:`PairwiseComparator`; by default preference is derived from the
      scores already computed (pass first, then score).
    - ``max_rounds``: the most tool calls that produce images (2).
    - ``max_turns``: the most steps (``2 * max_rounds + 2``).
    - ``image_size``: the observation image size, an int or ``(height, width)`` (128).
    - ``reward_weights``: a :class:`RewardWeights` or a dict of its fields.
    - ``privileged``: put the task's checklist in ``info["task"]`` (for teacher agents).
    - ``strict_format``: make text outside the tags a violation.
    - ``max_text_length``: the longest text observation (4096).
    - ``max_action_length``: the ``max_length`` of the ``Text`` action space (longer messages are
      still accepted and parsed).
    - ``tool_timeout_s``: a tool call that takes longer is an error message to the agent (None: wait).
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
        comparator: PairwiseComparator | None = None,
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
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer, got {max_rounds!r}")
        if max_turns is None:
            max_turns = 2 * max_rounds + 2
        if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
            raise ValueError(f"max_turns must be a positive integer, got {max_turns!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        sides = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if len(sides) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sides):
            raise ValueError(f"image_size must be a positive int or (height, width), got {image_size!r}")
        height, width = sides

        self.tasks: list[dict[str, Any]] = resolve_suite(suite, split)
        self.tools: dict[str, Generator] = self._build_tools(generators)
        self.scorer: Scorer = make_scorer(scorer)
        for task in self.tasks:
            try:
                self.scorer.validate_task(task)
            except ValueError as error:
                raise ValueError(f"task {task.get('id')} ({task['prompt'][:60]!r}): {error}") from None
        self.comparator = comparator
        self.max_rounds = max_rounds
        self.max_turns = max_turns
        self.image_size = (int(height), int(width))
        self.reward_weights = RewardWeights.from_any(reward_weights)
        self.privileged = privileged
        self.strict_format = strict_format
        self.max_text_length = max_text_length
        if tool_timeout_s is not None and not tool_timeout_s > 0:
            raise ValueError(f"tool_timeout_s must be positive or None, got {tool_timeout_s!r}")
        self.tool_timeout_s = tool_timeout_s
        self.generation_cache: GenerationCache | None = GenerationCache.from_any(generation_cache)
        self.render_mode = render_mode
        if isinstance(scorer, str):  # built here from a name, so closed here too
            self._owned.append(self.scorer)

        self._schemas = {name: tool.parameters() for name, tool in self.tools.items()}
        self._tool_specs = protocol.tool_specs(self.tools)
        self._tool_specs_json = json.dumps(self._tool_specs)
        self._system_prompt = protocol.system_prompt(self._tool_specs, max_rounds)
        self.observation_space = spaces.Dict(
            {
                "text": spaces.Text(max_length=max_text_length, min_length=0, charset=TEXT_CHARSET),
                "image": spaces.Box(0, 255, (*self.image_size, 3), np.uint8),
            }
        )
        self.action_space = spaces.Text(max_length=max_action_length, min_length=0, charset=TEXT_CHARSET)
        self._episode: _Episode | None = None

    def _build_tools(self, generators: Any) -> dict[str, Generator]:
        if isinstance(generators, Mapping):
            pairs = [(str(name), spec) for name, spec in generators.items()]
        elif isinstance(generators, (list, tuple)):
            pairs = [(None, spec) for spec in generators]
        else:
            pairs = [(None, generators)]
        if not pairs:
            raise ValueError("at least one generator is needed")
        tools: dict[str, Generator] = {}
        self._owned: list[Generator | Scorer] = []  # what the env built from names and must close
        for name, spec in pairs:
            tool = make_generator(spec, name=name)
            name = name or tool.name
            if not _TOOL_NAME.fullmatch(name):
                raise ValueError(f"tool name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
            if name in tools:
                raise ValueError(f"two tools are named {name!r}; pass a dict to name them")
            tools[name] = tool
            if isinstance(spec, str):
                self._owned.append(tool)
        return tools

    # ------------------------------------------------------------------ reset

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        task = self._task_from_options(options or {})
        self._episode = _Episode(
            task=task,
            messages=[
                {"role": "system", "content": self._system_prompt},
                {"role": "user", "content": task["prompt"]},
            ],
            text=task["prompt"],
        )
        return self._observation(), self._info()

    def _task_from_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(options, Mapping):
            raise ValueError(f"options must be a dict, got {type(options).__name__}")
        known = {"task_index", "task", "prompt"}
        unknown = set(options) - known
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; use exactly one of {sorted(known)}")
        if len(options) > 1:
            raise ValueError(f"pass exactly one of {sorted(known)}, got {sorted(options)}")
        if not options:
            return copy.deepcopy(self.tasks[int(self.np_random.integers(len(self.tasks)))])
        if "task_index" in options:
            index = options["task_index"]
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < len(self.tasks):
                raise ValueError(f"task_index must be an integer in [0, {len(self.tasks) - 1}], got {index!r}")
            return copy.deepcopy(self.tasks[int(index)])
        if "task" in options:
            task = normalize_task(options["task"])
            task.setdefault("id", "custom")
        else:
            prompt = options["prompt"]
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError("options['prompt'] must be a non-empty string")
            task = normalize_task({**self.scorer.parse_prompt(prompt), "prompt": prompt})
            task.setdefault("id", "prompt")
        self.scorer.validate_task(task)
        return task

    # ------------------------------------------------------------------- step

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        return step_together([self], [action])[0]

    # The phases of a step. ``step_together`` runs them for many envs at once, so that their tool
    # calls share batched generator calls and their images share batched scorer calls; a single
    # ``step`` is the same code with one env.

    def _begin_turn(self, action: Any) -> _Turn:
        """Parse and validate the action and build the tool request; change nothing in the episode
        (only ``np_random`` moves when a seed is drawn, and :meth:`_undo_turn` restores it)."""
        episode = self._episode
        if episode is None:
            raise RuntimeError("call reset() before step()")
        if episode.done:
            raise RuntimeError("the episode is over; call reset() to start a new one")
        message = action if isinstance(action, str) else None
        turn = _Turn(content=message if message is not None else repr(action))
        if message is None:
            turn.errors.append(f"An action must be a string (the agent's message), got {type(action).__name__}.")
        else:
            turn.parsed = protocol.parse_turn(message)
            turn.errors.extend(turn.parsed.errors)
            if self.strict_format and turn.parsed.stray_text:
                turn.errors.append(f"Text outside the tags is not allowed: {protocol.quote(turn.parsed.stray_text)}.")
        parsed = turn.parsed
        if not turn.errors and parsed is not None:
            if parsed.tool_call is not None:
                if episode.round >= self.max_rounds:
                    turn.errors.append(f"No tool calls are left (all {self.max_rounds} rounds are used); submit an image.")
                else:
                    result = protocol.parse_tool_call(parsed.tool_call, self._schemas)
                    turn.call = result if isinstance(result, protocol.ToolCall) else None
                    if turn.call is None:
                        turn.errors.append(str(result))
            else:
                answer = protocol.parse_answer(parsed.answer or "", len(episode.images))
                turn.submitted = answer if isinstance(answer, int) else None
                if turn.submitted is None:
                    turn.errors.append(str(answer))
        turn.missing_judge = episode.judge_pending and not (parsed is not None and parsed.starts_with_judge)
        if turn.call is not None and not turn.errors:
            arguments = dict(turn.call.arguments)
            prompt = arguments.pop("prompt")
            seed = arguments.pop("seed", None)
            if seed is None:
                turn.rng_state = copy.deepcopy(self.np_random.bit_generator.state)
                seed = int(self.np_random.integers(0, 2**32))
            width, height = arguments.pop("width", None), arguments.pop("height", None)
            turn.request = GenerationRequest(prompt=prompt, seed=seed, width=width, height=height, extra=arguments)
        return turn

    def _mark(self) -> tuple[_Episode, dict[str, int], str | None]:
        """A cheap bookmark of the episode before :meth:`_apply_turn`, for :meth:`_rewind`. Applying
        a turn only appends to the episode's lists, sets its scalars and fills the last round's
        judge, so the lists' lengths, a shallow copy and that judge are enough."""
        episode = self._episode
        assert episode is not None
        lengths = {name: len(getattr(episode, name)) for name in _APPEND_ONLY}
        judge = episode.rounds[-1]["judge"] if episode.rounds else None
        return copy.copy(episode), lengths, judge

    def _rewind(self, mark: tuple[_Episode, dict[str, int], str | None]) -> None:
        """Put the episode back where :meth:`_mark` found it."""
        shallow, lengths, judge = mark
        episode = self._episode
        assert episode is not None
        for name, value in vars(shallow).items():
            if name not in _APPEND_ONLY:
                setattr(episode, name, value)
        for name, length in lengths.items():
            del getattr(episode, name)[length:]
        if episode.rounds:
            episode.rounds[-1]["judge"] = judge

    def _undo_turn(self, turn: _Turn) -> None:
        """Put ``np_random`` back where it was before :meth:`_begin_turn` (the step failed)."""
        if turn.rng_state is not None:
            self.np_random.bit_generator.state = turn.rng_state

    def _apply_turn(self, turn: _Turn) -> tuple[bool, bool]:
        """Write the turn (with its generated image and score, or the tool's error) into the
        episode; return ``(terminated, truncated)``. The reward is settled by the caller."""
        episode = self._episode
        assert episode is not None
        episode.turn += 1
        episode.messages.append({"role": "assistant", "content": turn.content})
        parsed, errors = turn.parsed, turn.errors
        episode.stray_text = parsed.stray_text if parsed else ""
        notes: list[str] = []
        terminated = False
        if errors:
            episode.violations += 1
            if turn.missing_judge:
                errors.append("Also, start the turn with <judge> after a new image.")
            episode.text = protocol.violation_text(
                errors, rounds_left=self.max_rounds - episode.round, n_images=len(episode.images)
            )
            episode.messages.append({"role": "user", "content": episode.text})
        else:
            assert parsed is not None
            if turn.missing_judge:
                episode.violations += 1
                errors.append("Start the turn with <judge> after a new image.")
                notes.append("Format violation: start the turn with <judge> after a new image (the turn still ran).")
            if episode.judge_pending and parsed.judge is not None:
                episode.rounds[-1]["judge"] = parsed.judge.strip()
            episode.judge_pending = False
            if turn.call is not None:
                notes.append(self._apply_tool(episode, turn))
                episode.messages.append(self._tool_message(episode, turn.call.name, " ".join(notes)))
            else:
                assert turn.submitted is not None
                episode.decisions.append(Decision(len(episode.images), "answer", submitted=turn.submitted))
                terminated = True
                notes.append(f"image_{turn.submitted} was submitted. The episode is over.")
            episode.text = " ".join(notes)
        episode.format_errors = errors

        truncated = not terminated and episode.turn >= self.max_turns
        if truncated:
            final = f"image_{len(episode.images)} counts as submitted" if episode.images else "no image was made"
            episode.text += f" The turn limit ({self.max_turns}) is reached: the episode is over and {final}."
        return terminated, truncated

    def _apply_tool(self, episode: _Episode, turn: _Turn) -> str:
        """Record the image the tool made for this turn; return what the env tells the agent."""
        call, request = turn.call, turn.request
        assert call is not None and request is not None
        if turn.image is None or turn.score is None:
            error = turn.tool_error
            detail = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            return (
                f"The tool {call.name} failed and made no image ({detail}). No round was used; "
                "you may call a tool again or answer."
            )
        if episode.images:
            # Calling again after seeing I_k is the decision that I_k is not good enough.
            episode.decisions.append(Decision(len(episode.images), "retry"))
        episode.round += 1
        episode.images.append(turn.image)
        episode.pixels = self._observed_pixels(turn.image)
        episode.scores.append(turn.score)
        episode.rounds.append({"tool": call.name, "prompt": request.prompt, "seed": request.seed, "judge": None})
        episode.judge_pending = True
        return protocol.tool_result_text(
            len(episode.images), call.name, request.prompt, request.seed, episode.round, self.max_rounds
        )

    def _tool_message(self, episode: _Episode, name: str, text: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if episode.judge_pending:  # the call made a new image: show it
            content.append({"type": "image", "image": episode.images[-1]})
        content.append({"type": "text", "text": text})
        return {"role": "tool", "name": name, "content": content}

    def _close_episode(self, submitted: int | None) -> list[Decision]:
        """End the episode: mark the latest image undecided if no decision was taken on it, and
        return the retry decisions whose images the comparator must judge."""
        episode = self._episode
        assert episode is not None
        episode.done = True
        episode.final = submitted if submitted is not None else (len(episode.images) or None)
        decided = {d.image for d in episode.decisions}
        if episode.images and len(episode.images) not in decided:
            episode.decisions.append(Decision(len(episode.images), "undecided"))
        return [d for d in episode.decisions if d.kind == "retry"]

    def _settle(self, retries: list[Decision], preferences: Sequence[int] | None) -> float:
        """Pay the episode's reward; ``preferences`` are the comparator's verdicts on ``retries``
        (``None``: derive them from the scores, the default comparator)."""
        episode = self._episode
        assert episode is not None
        if preferences is None:
            preferences = [compare_scores(episode.scores[d.image - 1], episode.scores[d.image]) for d in retries]
        preference_of = {d.image: p for d, p in zip(retries, preferences)}
        correct = [decision_correct(d, episode.scores, preference_of.get(d.image)) for d in episode.decisions]
        final = episode.final
        final_score = episode.scores[final - 1] if final else None
        components = episode_reward(self.reward_weights, final_score, correct, episode.violations)
        episode.result = {
            "reward_components": components,
            "scores": [score.to_dict() for score in episode.scores],
            "final_image": final,
            "passed": bool(final_score.passed) if final_score else False,
            "decisions": [
                {"image": d.image, "kind": d.kind, "submitted": d.submitted, "correct": ok}
                for d, ok in zip(episode.decisions, correct)
            ],
        }
        return float(sum(components.values()))

    # ------------------------------------------------------- observation, info

    def _observation(self) -> dict[str, Any]:
        episode = self._episode
        assert episode is not None
        if episode.pixels is None:
            pixels = np.zeros((*self.image_size, 3), dtype=np.uint8)
        else:
            pixels = episode.pixels.copy()
        return {"text": self._fit_text(episode.text), "image": pixels}

    def _observed_pixels(self, image: Image) -> np.ndarray:
        from PIL import Image as PILImage

        height, width = self.image_size
        if image.size != (width, height):
            image = image.resize((width, height), PILImage.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)

    def _fit_text(self, text: str) -> str:
        text = _OUTSIDE_CHARSET.sub("?", text)
        if len(text) > self.max_text_length:
            keep = max(self.max_text_length - len(_TRUNCATION_MARK), 0)
            text = (text[:keep] + _TRUNCATION_MARK)[: self.max_text_length]
        return text

    def _info(self) -> dict[str, Any]:
        episode = self._episode
        assert episode is not None
        info: dict[str, Any] = {
            "messages": _copy_messages(episode.messages),
            "tools": json.loads(self._tool_specs_json),  # a fresh copy, parsed in C
            "task_id": str(episode.task.get("id", "")),
            "tag": str(episode.task.get("tag", "")),
            "round": episode.round,
            "max_rounds": self.max_rounds,
            "turn": episode.turn,
            "max_turns": self.max_turns,
            "violations": episode.violations,
            "images": list(episode.images),
            "rounds": _plain_copy(episode.rounds),
            "format_errors": list(episode.format_errors),
            "stray_text": episode.stray_text,
        }
        if self.generation_cache is not None:
            info["generation_cache"] = self.generation_cache.info()
        if self.privileged:
            info["task"] = copy.deepcopy(episode.task)
        if episode.result is not None:
            info.update(_plain_copy(episode.result))
        return info

    # ------------------------------------------------------------ state, render

    def _sibling(self) -> GenAgentEnv:
        """A new env with this one's configuration and the *same* tools, scorer, suite and cache
        (nothing is built or loaded twice), with its own episode and random generator. It owns
        nothing: closing it closes nothing; closing this env closes what both use."""
        sibling = copy.copy(self)
        sibling._episode = None
        sibling._np_random = None
        sibling._np_random_seed = None
        sibling._owned = []
        return sibling

    def get_state(self) -> dict[str, Any]:
        """A snapshot of the episode and the random generator; :meth:`set_state` restores it, after
        which the same actions give the same observations and rewards."""
        if self._episode is None:
            raise RuntimeError("call reset() before get_state()")
        return {"episode": copy.deepcopy(self._episode), "rng": copy.deepcopy(self.np_random.bit_generator.state)}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restore a snapshot from :meth:`get_state` (the snapshot stays reusable for more branches)."""
        if not isinstance(state, Mapping) or not isinstance(state.get("episode"), _Episode) or "rng" not in state:
            raise ValueError("set_state expects a snapshot returned by get_state()")
        self._episode = copy.deepcopy(state["episode"])
        self.np_random.bit_generator.state = copy.deepcopy(state["rng"])

    def render(self) -> np.ndarray | str | None:
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; pass render_mode='rgb_array' or 'ansi'.")
            return None
        if self._episode is None:
            raise RuntimeError("call reset() before render()")
        from genagent_env.render import trajectory_picture, transcript

        if self.render_mode == "ansi":
            return transcript(self._episode.messages)
        rounds = [
            {**meta, "image": image, "passed": score.passed, "score": score.score}
            for meta, image, score in zip(self._episode.rounds, self._episode.images, self._episode.scores)
        ]
        return trajectory_picture(self._episode.task["prompt"], rounds)

    def close(self) -> None:
        for owned in getattr(self, "_owned", []):
            owned.close()
        self._owned = []


def _plain_copy(value: Any) -> Any:
    """A copy of plain data (dicts, lists, scalars), much faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    return value


def _copy_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fresh containers for every call (images are shared: the env never changes an image)."""
    out = []
    for message in messages:
        copied = dict(message)
        if isinstance(copied.get("content"), list):
            copied["content"] = [dict(part) for part in copied["content"]]
        out.append(copied)
    return out
