"""A tool that hangs or a scorer that raises: the agent is told, or the step raises and leaves the
episode as it was, so the same step can be run again."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from tests.helpers import ColourScorer, paint

CALL = '<tool_call>{"name": "paint", "arguments": {"prompt": "red"}}</tool_call>'


def test_a_hanging_generator_times_out_into_an_error_message(colour_env):
    release = threading.Event()

    def hangs(prompt: str, seed: int) -> Image.Image:
        release.wait(10)
        return paint(prompt, seed)

    env = colour_env(generators={"hangs": hangs, "paint": paint}, tool_timeout_s=0.2)
    env.reset(seed=0, options={"task_index": 0})
    obs, _, terminated, _, info = env.step('<tool_call>{"name": "hangs", "arguments": {"prompt": "red"}}</tool_call>')
    release.set()
    assert "TimeoutError" in obs["text"] and "0.2 s" in obs["text"] and info["round"] == 0 and not terminated
    _, _, _, _, info = env.step(CALL)
    assert info["round"] == 1


def test_a_raising_scorer_changes_nothing_and_the_step_can_be_retried(colour_env):
    class FailsOnce(ColourScorer):
        failed = False

        def score(self, images, tasks):
            if not self.failed:
                self.failed = True
                raise RuntimeError("judge offline")
            return super().score(images, tasks)

    env = colour_env(scorer=FailsOnce())
    env.reset(seed=0, options={"task_index": 0})
    with pytest.raises(RuntimeError, match="judge offline"):
        env.step(CALL)  # no seed: the env draws one
    _, _, _, _, retried = env.step(CALL)

    clean = colour_env()
    clean.reset(seed=0, options={"task_index": 0})
    _, _, _, _, expected = clean.step(CALL)
    assert retried["turn"] == 1 and retried["round"] == 1 and len(retried["images"]) == 1
    assert retried["violations"] == 0 and retried["rounds"] == expected["rounds"]  # the same drawn seed
