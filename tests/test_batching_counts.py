"""GenAgentVectorEnv on ShapesWorld (no extras): one ``generate`` call per tool per step, holding
every sub-environment's request of that step, counted call by call."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from genagent_env.shapes import ShapesGenerator
from genagent_env.tools.base import GenerationRequest
from genagent_env.vector import SKIP, GenAgentVectorEnv
from tests.test_vector_env import CountingGenerator

N = 6
ANSWER = "<judge>fine</judge><answer>done</answer>"


def call(prompt: str, seed: int | None, tool: str = "shapes", judge: bool = False) -> str:
    arguments: dict[str, Any] = {"prompt": prompt} if seed is None else {"prompt": prompt, "seed": seed}
    head = "<judge>not yet</judge>" if judge else ""
    return head + "<tool_call>" + json.dumps({"name": tool, "arguments": arguments}) + "</tool_call>"


def counting_shapes(name: str = "shapes", preset: str = "medium") -> CountingGenerator:
    tool = CountingGenerator(ShapesGenerator(preset=preset, image_size=64))
    tool.name = name
    return tool


def shapes_vector(tools: dict[str, CountingGenerator], num_envs: int = N, **kwargs: Any) -> GenAgentVectorEnv:
    return GenAgentVectorEnv(num_envs, generators=tools, scorer="shapes", image_size=64, **kwargs)


def sent(tool: CountingGenerator) -> list[list[tuple[str, int]]]:
    """Each ``generate`` call's requests as (prompt, seed)."""
    return [[(r.prompt, r.seed) for r in requests] for requests in tool.calls]


def test_one_generate_call_per_step_holds_every_sub_environments_request():
    tool = counting_shapes()
    envs = shapes_vector({"shapes": tool}, max_rounds=4)
    envs.reset(seed=0, options=[{"task_index": i} for i in range(N)])
    prompts = [f"{k + 1} red circles" for k in range(N)]
    obs, _, _, _, info = envs.step([call(prompts[i], 10 + i) for i in range(N)])
    assert sent(tool) == [[(prompts[i], 10 + i) for i in range(N)]]  # one call, N requests, in env order
    assert list(info["round"]) == [1] * N and all("image_1 was generated" in text for text in obs["text"])
    stats = info["generation_cache"]
    assert stats["generator_calls"][0] == 1 and stats["misses"][0] == N and stats["hits"][0] == 0

    # Half answer, half call again: one call with the three requests; answering envs send nothing.
    tool.calls.clear()
    actions = [call(prompts[i], 20 + i, judge=True) if i % 2 == 0 else ANSWER for i in range(N)]
    _, _, terminated, _, info = envs.step(actions)
    assert sent(tool) == [[(prompts[i], 20 + i) for i in range(0, N, 2)]]
    assert list(terminated) == [i % 2 == 1 for i in range(N)]

    # Violations and skipped sub-environments (the odd ones ended) send nothing either.
    tool.calls.clear()
    actions = ["no tags at all", SKIP, call(prompts[2], 30, judge=True), SKIP, "<judge>x</judge>", SKIP]
    envs.step(actions)
    assert sent(tool) == [[(prompts[2], 30)]]

    # A step where nobody calls the tool makes no call at all.
    tool.calls.clear()
    envs.step([ANSWER if i % 2 == 0 else SKIP for i in range(N)])
    assert tool.calls == []
    envs.close()


def test_drawn_seeds_are_batched_too():
    tool = counting_shapes()
    envs = shapes_vector({"shapes": tool})
    envs.reset(seed=0, options={"task_index": 0})
    _, _, _, _, info = envs.step([call("a blue star", None)] * N)  # reset(seed=0): each env draws its own seed
    (requests,) = tool.calls
    drawn = [info["rounds"][i][0]["seed"] for i in range(N)]
    assert [r.seed for r in requests] == drawn and len(set(drawn)) == N
    envs.close()


@pytest.mark.parametrize("batch_size, sizes", [(None, [6]), (4, [4, 2]), (2, [2, 2, 2]), (1, [1] * 6), (7, [6])])
def test_batch_size_caps_each_call(batch_size, sizes):
    tool = counting_shapes()
    envs = shapes_vector({"shapes": tool}, batch_size=batch_size)
    envs.reset(seed=0)
    envs.step([call(f"{i + 1} green squares", i) for i in range(N)])
    assert [len(requests) for requests in tool.calls] == sizes
    assert [pair for chunk in sent(tool) for pair in chunk] == [(f"{i + 1} green squares", i) for i in range(N)]
    envs.close()


def test_identical_requests_are_made_once_and_cached_ones_not_at_all():
    tool = counting_shapes()
    envs = shapes_vector({"shapes": tool})
    envs.reset(seed=0, options={"task_index": 3})
    actions = [call("a red circle", 7)] * 3 + [call("a red circle", 8 + i) for i in range(N - 3)]
    obs, _, _, _, info = envs.step(actions)
    assert sent(tool) == [[("a red circle", 7)] + [("a red circle", 8 + i) for i in range(N - 3)]]
    assert (obs["image"][0] == obs["image"][1]).all() and (obs["image"][1] == obs["image"][2]).all()
    assert info["generation_cache"]["hits"][0] == 2 and info["generation_cache"]["misses"][0] == N - 2
    # The same requests again (a second round): all served by the cache, no generate call.
    tool.calls.clear()
    envs.step([call("a red circle", 7, judge=True)] * N)
    assert tool.calls == []
    # Without a cache every request is made, still in one call.
    plain_tool = counting_shapes()
    plain = shapes_vector({"shapes": plain_tool}, generation_cache=False)
    plain.reset(seed=0, options={"task_index": 3})
    plain.step(actions)
    assert [len(requests) for requests in plain_tool.calls] == [N]
    envs.close()
    plain.close()


def test_one_call_per_tool_when_the_step_uses_two_tools():
    weak, strong = counting_shapes("weak", "weak"), counting_shapes("strong", "strong")
    envs = shapes_vector({"weak": weak, "strong": strong})
    envs.reset(seed=0)
    actions = [call(f"{i + 1} blue stars", i, tool="weak" if i < 4 else "strong") for i in range(N)]
    envs.step(actions)
    assert sent(weak) == [[(f"{i + 1} blue stars", i) for i in range(4)]]
    assert sent(strong) == [[(f"{i + 1} blue stars", i) for i in range(4, N)]]
    envs.close()


def test_batched_images_are_the_ones_the_generator_makes_alone():
    tool = counting_shapes()
    envs = shapes_vector({"shapes": tool}, generation_cache=False)
    envs.reset(seed=0)
    _, _, _, _, info = envs.step([call(f"{i + 1} red squares on the left", 40 + i) for i in range(N)])
    assert [len(requests) for requests in tool.calls] == [N]
    alone = ShapesGenerator(preset="medium", image_size=64)
    for i in range(N):
        (image,) = alone.generate([GenerationRequest(f"{i + 1} red squares on the left", 40 + i)])
        assert np.array_equal(np.asarray(info["images"][i][0]), np.asarray(image))
    envs.close()
