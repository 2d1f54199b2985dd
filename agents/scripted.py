"""The scripted teacher: reads the checklist, writes a clear prompt, judges, refines, stops.

It plays the role of the paper's strong teacher that saw a *hint* (the reference answer): it reads
the task's checklist through ``info["task"]``, which the environment shows only when made with
``privileged=True``. Its judgments come from a scorer (the ShapesWorld verifier by default) and
name what is wrong, and its reasoning says why it writes the next prompt as it does, because the
SFT stage trains on these messages with the checklist removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.base import Agent, first_tool_name, tool_call, user_prompt
from genagent_env.scorers.base import Score, Scorer
from genagent_env.scorers.checklist import OTHER_ERROR, error_types
from genagent_env.scorers.registry import make_scorer
from genagent_env.tasks.prompts import explicit_prompt
from genagent_env.tasks.schema import describe_item


def _join(parts: Sequence[str]) -> str:
    parts = [p for p in parts if p]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _risks(task: Mapping[str, Any]) -> list[str]:
    """What a diffusion model is likely to get wrong on this task, in words."""
    items = task.get("include", [])
    risks = []
    if any(item.get("count", 1) > 1 for item in items):
        risks.append("miscount objects")
    if sum(1 for item in items if item.get("color")) > 1:
        risks.append("let colours leak from one object to another")
    if len(items) > 2:
        risks.append("drop objects from a crowded prompt")
    if any("region" in item or "position" in item for item in items):
        risks.append("ignore where objects should be placed")
    if any("size" in item for item in items):
        risks.append("get the relative sizes wrong")
    return risks or ["add stray objects"]


#: How the teacher names each error type (:func:`~genagent_env.scorers.checklist.error_types`).
_KIND_WORDS = {"missing object": "the counts", "count": "the counts", "colour": "the colours",
               "position": "the placement", "size": "the relative sizes", OTHER_ERROR: "other requirements"}


def _failed_kinds(score: Score, task: Mapping[str, Any]) -> list[str]:
    """What kind of mistakes the failed checks show, in words (see
    :func:`~genagent_env.scorers.checklist.error_types`: e.g. a count check on a coloured item that
    fails while the right number of that shape is there in another colour is a colour mistake)."""
    words = [_KIND_WORDS.get(kind, kind) for kind in error_types(score.details, task)]
    return list(dict.fromkeys(words))


class ScriptedAgent(Agent):
    """The teacher: a clear prompt first, then judge → refine with a new seed → stop when satisfied.

    Args:
        scorer: The judge it uses on each image (a registered name or a :class:`Scorer`).
        rewrite_prompt: Write its own explicit prompt (``True``), or re-send the user's prompt with
            new seeds (``False``: the "re-sampling only" lever).
        seed: Seed of the agent's own random generator, which picks tool seeds.
    """

    name = "scripted"

    def __init__(self, scorer: str | Scorer = "shapes", rewrite_prompt: bool = True, seed: int | None = None) -> None:
        self.scorer = make_scorer(scorer)
        self.rewrite_prompt = rewrite_prompt
        self.rng = np.random.default_rng(seed)
        self._judged: list[tuple[Any, Mapping[str, Any], Score]] = []

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._judged = []

    def _judge_all(self, images: Sequence[Any], task: Mapping[str, Any]) -> list[Score]:
        # Reuse a verdict only for the very same image of the same task: after env.set_state or a
        # reset the agent was not told about, the images are new objects and are judged afresh.
        keep = 0
        for (image, judged_task, _), current in zip(self._judged, images):
            if image is not current or judged_task != task:
                break
            keep += 1
        new = list(images[keep:])
        scores = self.scorer.score(new, [task] * len(new)) if new else []
        self._judged = self._judged[:keep] + [(image, task, score) for image, score in zip(new, scores)]
        return [score for _, _, score in self._judged]

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        task = info.get("task")
        if task is None:
            raise ValueError("ScriptedAgent reads the task checklist: make the env with privileged=True")
        tool = first_tool_name(info)
        images = info["images"]
        rounds_left = int(info["max_rounds"]) - int(info["round"])
        seed = int(self.rng.integers(0, 2**32))
        if not images:
            return self._plan(task, info) + tool_call(tool, self._prompt(task, info, None), seed)

        scores = self._judge_all(images, task)
        latest = scores[-1]
        judge = self._judgment(len(images), latest)
        if latest.passed:
            return judge + "<answer>done</answer>"
        if rounds_left > 0:
            failed = [c for c in latest.details.get("checks", []) if not c.get("ok")]
            if self.rewrite_prompt:
                how = (
                    f"The problems are {_join(_failed_kinds(latest, task))}. I will keep one clause per object group, "
                    "state the failed requirements more emphatically, and sample a new seed so the layout changes."
                )
            else:
                how = "I will send the same prompt again with a new seed; a different sample may get it right."
            return judge + f"<think>{how}</think>" + tool_call(tool, self._prompt(task, info, failed), seed)
        best = max(range(len(scores)), key=lambda i: (scores[i].passed, scores[i].score))
        checks = scores[best].details.get("checks", [])
        n_ok = sum(1 for c in checks if c.get("ok"))
        return judge + (
            f"<think>No tool calls are left. image_{best + 1} is the closest to the request "
            f"({n_ok} of {len(checks)} requirements met), so I submit it.</think><answer>image_{best + 1}</answer>"
        )

    def _prompt(self, task: Mapping[str, Any], info: Mapping[str, Any], failed: list[dict[str, Any]] | None) -> str:
        return explicit_prompt(task, failed) if self.rewrite_prompt else user_prompt(info)

    def _plan(self, task: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        wanted = _join([describe_item(item) for item in task.get("include", [])])
        if not self.rewrite_prompt:
            return f"<think>The request asks for {wanted}. I will send it to the generator as written.</think>"
        return (
            f"<think>The request asks for {wanted}. Image generators tend to {_join(_risks(task))} when a prompt "
            "packs everything into one clause, so I will write one sentence per object group, give every count "
            "as a digit and a word, and state colours, positions and sizes explicitly.</think>"
        )

    def _judgment(self, index: int, score: Score) -> str:
        checks = score.details.get("checks", [])
        failed = [str(c.get("message", "")) for c in checks if not c.get("ok")]
        correct = [str(c.get("message", "")) for c in checks if c.get("ok")]
        if score.passed:
            reasons = "; ".join(correct) or "every requirement holds"
            return f"<judge>image_{index} satisfies the request: {reasons}.</judge>"
        verdict = f"<judge>image_{index} does not satisfy the request: {'; '.join(failed)}."
        if correct:
            verdict += f" What is right: {'; '.join(correct)}."
        return verdict + "</judge>"
