"""One GenAgent episode as a state machine, with no Gymnasium in it.

An :class:`Episode` holds a task, the shared :class:`~genagent_env.config.EnvConfig` and a random
generator (for the seeds the agent leaves out), and moves through one agent message at a time:

1. :meth:`Episode.begin_turn` parses and checks the message and builds the tool request, changing
   nothing but the random generator (:meth:`Episode.cancel_turn` puts that back);
2. the caller fills the :class:`Turn` with the generated image and its score, or the tool's error
   (:func:`genagent_env.stepping.step_episodes` does this for many episodes in batches);
3. :meth:`Episode.apply_turn` writes the turn into the episode and says whether it ended;
4. an episode that ended is closed (:meth:`Episode.close`, which names the retries the pairwise
   comparator must judge) and settled (:meth:`Episode.settle`, which pays the reward).

:meth:`Episode.bookmark` and :meth:`Episode.rewind` undo step 3-4 when a comparator fails;
:meth:`Episode.snapshot` and :meth:`Episode.restore` checkpoint the whole episode.
:meth:`Episode.observation` and :meth:`Episode.info` are what the agent gets back.
"""

from __future__ import annotations

import copy
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from genagent_env import protocol
from genagent_env.checks import short_repr
from genagent_env.rewards import Decision, decision_correct, episode_reward
from genagent_env.scorers.base import Score, compare_scores
from genagent_env.tools.base import GenerationRequest

if TYPE_CHECKING:
    from PIL.Image import Image

    from genagent_env.config import EnvConfig

#: Characters a text observation may hold: printable ASCII (Gymnasium's default ``Text`` has no space).
TEXT_CHARSET = string.printable
TRUNCATION_MARK = " ...[truncated]"
_KEEP_CHARSET = str.maketrans("", "", TEXT_CHARSET)


@dataclass
class EpisodeState:
    """Everything that changes during an episode: what a snapshot copies."""

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


#: The state's lists that a turn only ever appends to (a bookmark keeps their lengths).
_APPEND_ONLY = ("messages", "images", "rounds", "scores", "decisions")


@dataclass
class Turn:
    """One agent message, parsed and checked, from :meth:`Episode.begin_turn` to :meth:`Episode.apply_turn`.

    ``request`` is the tool request to run (``None`` when the message calls no tool or breaks the
    protocol); whoever runs it fills ``image`` and ``score``, or ``tool_error``.
    """

    content: str  # the assistant message as recorded in the chat
    parsed: protocol.ParsedTurn | None = None
    errors: list[str] = field(default_factory=list)
    call: protocol.ToolCall | None = None
    submitted: int | None = None
    missing_judge: bool = False
    request: GenerationRequest | None = None
    rng_state: Mapping[str, Any] | None = None  # the random generator before a seed was drawn
    image: Image | None = None
    tool_error: Exception | None = None
    score: Score | None = None


@dataclass(frozen=True)
class Bookmark:
    """Where an episode stood before :meth:`Episode.apply_turn` (see :meth:`Episode.rewind`)."""

    scalars: dict[str, Any]
    lengths: dict[str, int]
    last_judge: str | None


class Episode:
    """One episode of ``config`` on ``task``; seeds the agent leaves out are drawn from ``rng``.

    Args:
        config: The shared, fixed settings (tools, scorer, limits, reward weights).
        task: The task dict (GenEval++ schema); the episode keeps it as given.
        rng: The random generator for drawn seeds (a Gymnasium env passes its ``np_random``).
    """

    def __init__(self, config: EnvConfig, task: dict[str, Any], rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.state = EpisodeState(
            task=task,
            messages=[
                {"role": "system", "content": config.system_prompt},
                {"role": "user", "content": task["prompt"]},
            ],
            text=task["prompt"],
        )

    @classmethod
    def from_snapshot(cls, config: EnvConfig, snapshot: EpisodeState, rng: np.random.Generator) -> Episode:
        """An episode that continues from ``snapshot`` (see :meth:`snapshot`)."""
        if not isinstance(snapshot, EpisodeState):
            raise ValueError(f"expected an EpisodeState snapshot, got {type(snapshot).__name__}")
        episode = cls(config, snapshot.task, rng)
        episode.restore(snapshot)
        return episode

    @property
    def done(self) -> bool:
        return self.state.done

    @property
    def task(self) -> dict[str, Any]:
        return self.state.task

    # ------------------------------------------------------------------ turns

    def begin_turn(self, action: Any) -> Turn:
        """Parse and check ``action`` and build its tool request. Nothing in the episode changes;
        only ``rng`` moves when a seed is drawn (:meth:`cancel_turn` restores it)."""
        state, config = self.state, self.config
        if state.done:
            raise RuntimeError("the episode is over; call reset() to start a new one")
        message = action if isinstance(action, str) else None
        turn = Turn(content=message if message is not None else _describe(action))
        if message is None:
            turn.errors.append(f"An action must be a string (the agent's message), got {type(action).__name__}.")
        else:
            turn.parsed = protocol.parse_turn(message)
            turn.errors.extend(turn.parsed.errors)
            if config.strict_format and turn.parsed.stray_text:
                turn.errors.append(f"Text outside the tags is not allowed: {protocol.quote(turn.parsed.stray_text)}.")
        parsed = turn.parsed
        if not turn.errors and parsed is not None:
            if parsed.tool_call is not None:
                if state.round >= config.max_rounds:
                    turn.errors.append(
                        f"No tool calls are left (all {config.max_rounds} rounds are used); submit an image."
                    )
                else:
                    result = protocol.parse_tool_call(parsed.tool_call, config.schemas)
                    turn.call = result if isinstance(result, protocol.ToolCall) else None
                    if turn.call is None:
                        turn.errors.append(str(result))
            else:
                answer = protocol.parse_answer(parsed.answer or "", len(state.images))
                turn.submitted = answer if isinstance(answer, int) else None
                if turn.submitted is None:
                    turn.errors.append(str(answer))
        turn.missing_judge = state.judge_pending and not (parsed is not None and parsed.starts_with_judge)
        if turn.call is not None and not turn.errors:
            arguments = dict(turn.call.arguments)
            prompt = arguments.pop("prompt")
            seed = arguments.pop("seed", None)
            if seed is None:
                turn.rng_state = copy.deepcopy(self.rng.bit_generator.state)
                seed = int(self.rng.integers(0, 2**32))
            width, height = arguments.pop("width", None), arguments.pop("height", None)
            turn.request = GenerationRequest(prompt=prompt, seed=seed, width=width, height=height, extra=arguments)
        return turn

    def cancel_turn(self, turn: Turn) -> None:
        """Put ``rng`` back where it was before :meth:`begin_turn` made ``turn`` (the step failed)."""
        if turn.rng_state is not None:
            self.rng.bit_generator.state = turn.rng_state

    def bookmark(self) -> Bookmark:
        """A cheap bookmark before :meth:`apply_turn`, for :meth:`rewind`. Applying a turn only
        appends to the state's lists, sets its scalars and fills the last round's judge, so the
        lists' lengths, the scalars and that judge are enough."""
        state = self.state
        scalars = {name: value for name, value in vars(state).items() if name not in _APPEND_ONLY}
        lengths = {name: len(getattr(state, name)) for name in _APPEND_ONLY}
        return Bookmark(scalars, lengths, state.rounds[-1]["judge"] if state.rounds else None)

    def rewind(self, bookmark: Bookmark) -> None:
        """Put the episode back where :meth:`bookmark` found it."""
        state = self.state
        for name, value in bookmark.scalars.items():
            setattr(state, name, value)
        for name, length in bookmark.lengths.items():
            del getattr(state, name)[length:]
        if state.rounds:
            state.rounds[-1]["judge"] = bookmark.last_judge

    def apply_turn(self, turn: Turn) -> tuple[bool, bool]:
        """Write ``turn`` (with its image and score, or the tool's error) into the episode and
        return ``(terminated, truncated)``. An episode that ended still has to be closed and settled."""
        state, config = self.state, self.config
        state.turn += 1
        state.messages.append({"role": "assistant", "content": turn.content})
        parsed, errors = turn.parsed, list(turn.errors)
        state.stray_text = parsed.stray_text if parsed else ""
        notes: list[str] = []
        terminated = False
        if errors:
            state.violations += 1
            if turn.missing_judge:
                errors.append("Also, start the turn with <judge> after a new image.")
            state.text = protocol.violation_text(
                errors, rounds_left=config.max_rounds - state.round, n_images=len(state.images)
            )
            state.messages.append({"role": "user", "content": state.text})
        else:
            assert parsed is not None
            if turn.missing_judge:
                state.violations += 1
                errors.append("Start the turn with <judge> after a new image.")
                notes.append("Format violation: start the turn with <judge> after a new image (the turn still ran).")
            if state.judge_pending and parsed.judge is not None:
                state.rounds[-1]["judge"] = parsed.judge.strip()
            state.judge_pending = False
            if turn.call is not None:
                notes.append(self._apply_tool(turn))
                state.messages.append(self._tool_message(turn.call.name, " ".join(notes)))
            else:
                assert turn.submitted is not None
                state.decisions.append(Decision(len(state.images), "answer", submitted=turn.submitted))
                terminated = True
                notes.append(f"image_{turn.submitted} was submitted. The episode is over.")
            state.text = " ".join(notes)
        state.format_errors = errors

        truncated = not terminated and state.turn >= config.max_turns
        if truncated:
            final = f"image_{len(state.images)} counts as submitted" if state.images else "no image was made"
            state.text += f" The turn limit ({config.max_turns}) is reached: the episode is over and {final}."
        return terminated, truncated

    def _apply_tool(self, turn: Turn) -> str:
        """Record the image the tool made for this turn; return what the env tells the agent."""
        state, call, request = self.state, turn.call, turn.request
        assert call is not None and request is not None
        if turn.image is None or turn.score is None:
            error = turn.tool_error
            detail = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            return (
                f"The tool {call.name} failed and made no image ({detail}). No round was used; "
                "you may call a tool again or answer."
            )
        if state.images:
            # Calling again after seeing I_k is the decision that I_k is not good enough.
            state.decisions.append(Decision(len(state.images), "retry"))
        state.round += 1
        state.images.append(turn.image)
        state.pixels = self.observed_pixels(turn.image)
        state.scores.append(turn.score)
        state.rounds.append({"tool": call.name, "prompt": request.prompt, "seed": request.seed, "judge": None})
        state.judge_pending = True
        return protocol.tool_result_text(
            len(state.images), call.name, request.prompt, request.seed, state.round, self.config.max_rounds
        )

    def _tool_message(self, name: str, text: str) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if self.state.judge_pending:  # the call made a new image: show it
            content.append({"type": "image", "image": self.state.images[-1]})
        content.append({"type": "text", "text": text})
        return {"role": "tool", "name": name, "content": content}

    # ------------------------------------------------------------------ the end

    def close(self, submitted: int | None) -> list[Decision]:
        """End the episode with image ``submitted`` (``None``: truncated, the latest image counts):
        mark the latest image undecided if no decision was taken on it, and return the retry
        decisions whose image pairs the comparator must judge (in order)."""
        state = self.state
        state.done = True
        state.final = submitted if submitted is not None else (len(state.images) or None)
        decided = {d.image for d in state.decisions}
        if state.images and len(state.images) not in decided:
            state.decisions.append(Decision(len(state.images), "undecided"))
        return [d for d in state.decisions if d.kind == "retry"]

    def settle(self, retries: Sequence[Decision], preferences: Sequence[int] | None) -> float:
        """Pay the reward of a closed episode. ``preferences`` are the comparator's verdicts on
        ``retries`` (1: the newer image is strictly better); ``None`` derives them from the scores
        (pass first, then score), which is what happens without a comparator."""
        state = self.state
        if preferences is None:
            preferences = [compare_scores(state.scores[d.image - 1], state.scores[d.image]) for d in retries]
        preference_of = {d.image: p for d, p in zip(retries, preferences)}
        correct = [decision_correct(d, state.scores, preference_of.get(d.image)) for d in state.decisions]
        final = state.final
        final_score = state.scores[final - 1] if final else None
        components = episode_reward(self.config.reward_weights, final_score, correct, state.violations)
        state.result = {
            "reward_components": components,
            "scores": [score.to_dict() for score in state.scores],
            "final_image": final,
            "passed": bool(final_score.passed) if final_score else False,
            "decisions": [
                {"image": d.image, "kind": d.kind, "submitted": d.submitted, "correct": ok}
                for d, ok in zip(state.decisions, correct)
            ],
        }
        return float(sum(components.values()))

    # ------------------------------------------------------- what the agent sees

    def observation(self) -> dict[str, Any]:
        """``{"text": what the env says this step, fitted to the text space; "image": the latest
        image at the observation size (zeros before the first)}``, in fresh arrays."""
        state = self.state
        if state.pixels is None:
            pixels = np.zeros((*self.config.image_size, 3), dtype=np.uint8)
        else:
            pixels = state.pixels.copy()
        return {"text": fit_text(state.text, self.config.max_text_length), "image": pixels}

    def observed_pixels(self, image: Image) -> np.ndarray:
        """``image`` as a uint8 ``(H, W, 3)`` array at the observation size."""
        from PIL import Image as PILImage

        height, width = self.config.image_size
        if image.size != (width, height):
            image = image.resize((width, height), PILImage.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)

    def info(self) -> dict[str, Any]:
        """The step's info dict: fresh containers every call (images are shared, never changed)."""
        state, config = self.state, self.config
        info: dict[str, Any] = {
            "messages": _copy_messages(state.messages),
            "tools": config.tool_specs(),
            "task_id": str(state.task.get("id", "")),
            "tag": str(state.task.get("tag", "")),
            "round": state.round,
            "max_rounds": config.max_rounds,
            "turn": state.turn,
            "max_turns": config.max_turns,
            "violations": state.violations,
            "images": list(state.images),
            "rounds": _plain_copy(state.rounds),
            "format_errors": list(state.format_errors),
            "stray_text": state.stray_text,
        }
        if config.generation_cache is not None:
            info["generation_cache"] = config.generation_cache.info()
        if config.privileged:
            info["task"] = copy.deepcopy(state.task)
        if state.result is not None:
            info.update(_plain_copy(state.result))
        return info

    # ---------------------------------------------------------------- snapshots

    def snapshot(self) -> EpisodeState:
        """A deep copy of the state; :meth:`restore` puts it back (the snapshot stays reusable)."""
        return copy.deepcopy(self.state)

    def restore(self, state: EpisodeState) -> None:
        """Continue from a :meth:`snapshot` (of any episode with the same configuration)."""
        if not isinstance(state, EpisodeState):
            raise ValueError(f"expected an EpisodeState snapshot, got {type(state).__name__}")
        self.state = copy.deepcopy(state)


def fit_text(text: str, max_length: int) -> str:
    """``text`` with characters outside :data:`TEXT_CHARSET` replaced by ``?`` and cut to
    ``max_length`` with a marker. Only the head that can be kept is filtered, so a huge text costs
    no more than a short one."""
    head = text[: max_length + 1]
    if head.translate(_KEEP_CHARSET):  # something outside the charset
        head = "".join(char if char in TEXT_CHARSET else "?" for char in head)
    if len(text) > max_length:
        keep = max(max_length - len(TRUNCATION_MARK), 0)
        head = (head[:keep] + TRUNCATION_MARK)[:max_length]
    return head


def _describe(action: Any) -> str:
    """A short, safe description of a non-string action for the chat record (``repr`` may raise
    or be huge, e.g. for ``10**5000``)."""
    return short_repr(action, limit=200)


def _plain_copy(value: Any) -> Any:
    """A copy of plain data (dicts, lists, scalars), much faster than ``copy.deepcopy``."""
    if isinstance(value, dict):
        return {key: _plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_copy(item) for item in value]
    return value


def _copy_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fresh containers for every call (images are shared: nothing ever changes an image)."""
    out = []
    for message in messages:
        copied = dict(message)
        if isinstance(copied.get("content"), list):
            copied["content"] = [dict(part) for part in copied["content"]]
        out.append(copied)
    return out


__all__ = ["TEXT_CHARSET", "Bookmark", "Episode", "EpisodeState", "Turn", "fit_text"]
