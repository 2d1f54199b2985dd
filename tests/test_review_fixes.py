"""Regression tests for what an independent review found (hostile schemas, arrays, stale caches...)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from genagent_env.env import GenAgentEnv
from genagent_env.tools.base import FunctionGenerator, GenerationRequest, Generator, as_rgb_image
from tests.conftest import COLOUR_TASKS, ColourScorer, paint


class LooseSchema(Generator):
    """A tool whose schema forgets that the prompt is required and seeds have a range."""

    name = "loose"

    def parameters(self) -> dict:
        return {"type": "object", "properties": {"prompt": {"type": "string"}, "seed": {"type": "integer"}}}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        return [Image.new("RGB", (16, 16), (220, 30, 30)) for _ in requests]


@pytest.mark.parametrize("arguments, fragment", [({}, "'prompt' is required"), ({"prompt": "  "}, "must not be empty"),
                                                 ({"prompt": "red", "seed": -5}, "at least 0"),
                                                 ({"prompt": "red", "seed": 2**40}, "at most 4294967295")])
def test_prompt_and_seed_rules_hold_whatever_the_tool_schema_says(arguments, fragment):
    env = GenAgentEnv(suite=COLOUR_TASKS, generators=LooseSchema(), scorer=ColourScorer())
    env.reset(seed=0)
    obs, _, _, _, info = env.step("<tool_call>" + json.dumps({"name": "loose", "arguments": arguments}) + "</tool_call>")
    assert info["violations"] == 1 and info["images"] == [] and fragment in obs["text"]


def test_duplicate_keys_and_huge_numbers_are_explained(colour_env):
    env = colour_env()
    env.reset(seed=0)
    obs, *_ = env.step('<tool_call>{"name": "nope", "name": "paint", "arguments": {"prompt": "red"}}</tool_call>')
    assert "appears twice" in obs["text"]
    obs, *_ = env.step('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": ' + "9" * 5000 + "}}</tool_call>")
    assert "too many digits" in obs["text"] and "sys." not in obs["text"]


@pytest.mark.parametrize("array, expected", [(np.full((4, 4, 3), 200, dtype=np.int64), 200),
                                             (np.full((4, 4, 3), 200.0), 200), (np.full((4, 4, 3), 0.5), 128),
                                             (np.full((4, 4), 7, dtype=np.uint16), 7)])
def test_arrays_keep_their_pixel_values(array, expected):
    assert np.asarray(as_rgb_image(array))[0, 0, 0] == expected


@pytest.mark.parametrize("array, fragment", [(np.ones((4, 4, 3), dtype=bool), "bool"),
                                             (np.full((4, 4, 3), 300.0), "neither"),
                                             (np.full((4, 4, 3), -3, dtype=np.int32), "outside")])
def test_arrays_that_are_not_pixels_are_refused(array, fragment):
    with pytest.raises(ValueError, match=fragment):
        as_rgb_image(array)


def test_generator_functions_are_checked_when_the_env_is_built():
    with pytest.raises(TypeError, match="must take"):
        FunctionGenerator(lambda prompt: None, name="one_arg")
    with pytest.raises(ValueError, match="generators="):
        GenAgentEnv(suite=COLOUR_TASKS, generators=lambda p, s: paint(p, s), scorer=ColourScorer())


def test_a_raising_scorer_changes_nothing(colour_env):
    class Broken(ColourScorer):
        def score(self, images, tasks):
            raise RuntimeError("judge offline")

    env = colour_env(scorer=Broken())
    env.reset(seed=0, options={"task_index": 0})
    with pytest.raises(RuntimeError):
        env.step('<tool_call>{"name": "paint", "arguments": {"prompt": "red"}}</tool_call>')
    assert env.get_state()["episode"].images == [] and env.get_state()["episode"].round == 0


def test_constructor_arguments_are_validated(colour_env):
    for bad in ({"reward_weights": {"format_penalty": -0.2}}, {"image_size": True}, {"image_size": "128"},
                {"image_size": (64,)}, {"max_rounds": 0}, {"render_mode": "human"}):
        with pytest.raises(ValueError):
            colour_env(**bad)


def test_truncation_says_the_episode_is_over(colour_env):
    env = colour_env(max_turns=1)
    env.reset(seed=0)
    obs, _, _, truncated, _ = env.step('<tool_call>{"name": "paint", "arguments": {"prompt": "red"}}</tool_call>')
    assert truncated and "episode is over" in obs["text"] and "image_1 counts as submitted" in obs["text"]


def test_teacher_judges_the_images_it_is_shown_after_set_state():
    from agents import make_agent

    env = GenAgentEnv(max_rounds=3, privileged=True)
    agent = make_agent("scripted")
    obs, info = env.reset(seed=0, options={"task_index": 0})
    agent.reset(0)
    obs, _, _, _, info = env.step(agent.act(obs, info))
    state = env.get_state()
    obs, _, _, _, info = env.step("<judge>x</judge><tool_call>" + json.dumps(
        {"name": "shapes-medium", "arguments": {"prompt": "three yellow stars", "seed": 1}}) + "</tool_call>")
    agent.act(obs, info)  # the agent has now judged image_2 of this branch
    env.set_state(state)
    obs, _, _, _, info = env.step("<judge>x</judge><tool_call>" + json.dumps(
        {"name": "shapes-medium", "arguments": {"prompt": "a cat", "seed": 2}}) + "</tool_call>")
    verdict = agent.act(obs, info)
    assert verdict.startswith("<judge>image_2 does not satisfy") and "What is right" not in verdict.split("</judge>")[0]


def test_teacher_names_colour_mistakes_as_colour_mistakes():
    from agents.scripted import _failed_kinds
    from genagent_env.shapes.verifier import ShapesVerifier

    task = {"tag": "color", "prompt": "an orange rectangle",
            "include": [{"class": "rectangle", "count": 1, "color": "orange"}]}
    image = Image.new("RGB", (128, 128), (128, 128, 128))
    from genagent_env.shapes.vocab import PALETTE

    pixels = np.array(image)
    pixels[50:70, 30:90] = PALETTE["green"]
    score = ShapesVerifier().score([Image.fromarray(pixels)], [task])[0]
    assert not score.passed and _failed_kinds(score, task) == ["the colours"]


def test_hostile_text_renders_in_bounded_work():
    from genagent_env.render import trajectory_picture, transcript

    image = Image.new("RGB", (32, 32))
    frame = trajectory_picture("y" * 200_000, [{"image": image, "tool": "t", "seed": 1, "prompt": "p" * 200_000,
                                                "judge": "\ud800" * 1000 + "z" * 200_000}])
    assert frame.ndim == 3
    assert "?" in transcript([{"role": "assistant", "content": "\ud800 lone surrogate"}])


def test_task_files_with_a_byte_order_mark_load(tmp_path):
    from genagent_env.tasks import load_tasks
    from genagent_env.tasks.schema import describe_item

    path = tmp_path / "tasks.jsonl"
    path.write_text('\ufeff{"tag": "count", "prompt": "2 crosses", "include": [{"class": "cross", "count": 2}]}\n',
                    encoding="utf-8")
    task = load_tasks(path)[0]
    assert describe_item(task["include"][0]) == "2 crosses"


def test_unscorable_task_files_name_the_task(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"prompt": "a circle", "include": [{"class": "circle", "count": 1}]}\n'
                    '{"prompt": "a dog", "include": [{"class": "dog", "count": 1}]}\n')
    with pytest.raises(ValueError, match=r"task mine/00001 \('a dog'\): the shapes verifier cannot check class 'dog'"):
        GenAgentEnv(suite=str(path))


def test_a_hanging_generator_times_out_into_an_error_message(colour_env):
    import threading

    release = threading.Event()

    def hangs(prompt: str, seed: int) -> Image.Image:
        release.wait(10)
        return paint(prompt, seed)

    env = colour_env(generators={"hangs": hangs, "paint": paint}, tool_timeout_s=0.2)
    env.reset(seed=0, options={"task_index": 0})
    obs, _, terminated, _, info = env.step('<tool_call>{"name": "hangs", "arguments": {"prompt": "red"}}</tool_call>')
    release.set()
    assert "TimeoutError" in obs["text"] and "0.2 s" in obs["text"] and info["round"] == 0 and not terminated
    _, _, _, _, info = env.step('<tool_call>{"name": "paint", "arguments": {"prompt": "red"}}</tool_call>')
    assert info["round"] == 1
