"""Tool arguments are checked by a JSON Schema (Draft 2020-12) validator: whatever a custom
generator's schema says (patterns, enums, item rules, alternatives, list types) is enforced, a bad
schema is refused when the env is made, and the env's own prompt and seed rules hold throughout."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import pytest
from PIL import Image

from genagent_env import protocol
from genagent_env.tools.base import GenerationRequest, Generator, prompt_and_seed_schema


class StyledTool(Generator):
    """A generator with a rich schema; it records what it was asked."""

    name = "styled"
    description = "Paints in a style."

    def __init__(self, schema: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self.requests: list[GenerationRequest] = []

    def parameters(self) -> dict[str, Any]:
        if self.schema is not None:
            return copy.deepcopy(self.schema)
        schema = prompt_and_seed_schema()
        schema["properties"].update(
            {
                "style": {"type": "string", "enum": ["photo", "sketch"]},
                "palette": {"type": "string", "pattern": "^#[0-9a-f]{6}$"},
                "tags": {"type": "array", "items": {"type": "string", "minLength": 3}, "maxItems": 3},
                "steps": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 50}, {"const": "auto"}]},
                "caption": {"type": ["string", "null"], "minLength": 4},
            }
        )
        return schema

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        self.requests.extend(requests)
        return [Image.new("RGB", (24, 24), (200, 40, 40)) for _ in requests]


def call(**arguments: Any) -> str:
    return "<tool_call>" + json.dumps({"name": "styled", "arguments": arguments}) + "</tool_call>"


def raw_call(arguments: str) -> str:
    return '<tool_call>{"name": "styled", "arguments": ' + arguments + "}</tool_call>"


@pytest.fixture(scope="module")
def styled():
    tool = StyledTool()
    env = gym.make("genagent_env:GenAgent-v0", generators=tool, max_rounds=2)
    yield env, tool
    env.close()


@pytest.mark.parametrize(
    "arguments",
    [
        {"prompt": "a red square"},
        {"prompt": "a red square", "seed": 0, "style": "sketch"},
        {"prompt": "a red square", "seed": 2**32 - 1, "palette": "#a0b1c2", "tags": ["bold", "flat"]},
        {"prompt": "a red square", "steps": 20, "caption": None},
        {"prompt": "a red square", "steps": "auto", "caption": "a caption", "tags": []},
    ],
)
def test_valid_calls_make_images_and_reach_the_generator(styled, arguments):
    env, tool = styled
    env.reset(seed=0)
    _, _, _, _, info = env.step(call(**arguments))
    assert info["violations"] == 0 and info["round"] == 1 and len(info["images"]) == 1, info["format_errors"]
    request = tool.requests[-1]
    assert request.prompt == arguments["prompt"]
    assert dict(request.extra) == {k: v for k, v in arguments.items() if k not in ("prompt", "seed")}


@pytest.mark.parametrize(
    "arguments, fragments",
    [
        ({"style": "oil"}, ["'style' must be one of", '"photo", "sketch"', '"oil"']),
        ({"style": 3}, ["'style' must be of type string"]),
        ({"palette": "red"}, ["'palette' must match the pattern", "^#[0-9a-f]{6}$"]),
        ({"tags": "bold"}, ["'tags' must be of type array"]),
        ({"tags": ["bold", "x"]}, ["'tags[1]' must be at least 3 characters long"]),
        ({"tags": ["bold", 7]}, ["'tags[1]' must be of type string"]),
        ({"tags": ["aaa", "bbb", "ccc", "ddd"]}, ["'tags' must have at most 3 items"]),
        ({"steps": 0}, ["'steps' must be an integer from 1 to 50 or \"auto\"", "got 0"]),
        ({"steps": "fast"}, ["'steps' must be", '"auto"', '"fast"']),
        ({"steps": 7.0}, ["'steps' must be", "got 7.0"]),
        ({"steps": True}, ["'steps' must be", "got true"]),
        ({"caption": "abc"}, ["'caption' must be at least 4 characters long"]),
        ({"caption": 12}, ["'caption' must be of type string or null"]),
        ({"colour": "red"}, ['unknown argument "colour"', "this tool takes: prompt, seed, style"]),
        ({"prompt": "x" * 2001}, ["'prompt' is 2001 characters long; the limit is 2000."]),
    ],
)
def test_each_schema_violation_is_a_format_violation_that_names_the_argument(styled, arguments, fragments):
    env, tool = styled
    env.reset(seed=0)
    before = len(tool.requests)
    obs, reward, terminated, truncated, info = env.step(call(**{"prompt": "a red square", **arguments}))
    assert info["violations"] == 1 and info["round"] == 0 and info["images"] == [] and len(tool.requests) == before
    assert not (terminated or truncated) and reward == 0.0
    text = obs["text"]
    assert text.startswith("Format violation: Invalid arguments for styled:"), text
    for fragment in fragments:
        assert fragment in text, text
    assert all(len(error) <= 400 for error in info["format_errors"])
    # The episode goes on: a valid call now works.
    _, _, _, _, info = env.step(call(prompt="a red square", style="photo"))
    assert info["round"] == 1 and info["violations"] == 1


def test_several_problems_are_listed_and_the_message_stays_short(styled):
    env, _ = styled
    env.reset(seed=0)
    obs, *_ = env.step(call(prompt="a red square", style="oil", palette="red", tags=["x"], steps=0, caption="ab",
                            colour="red", more="yes"))
    text = obs["text"]
    assert "'style'" in text and "'palette'" in text and "More problems are not shown" in text, text
    assert len(text) < 500


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        ("{}", "the argument 'prompt' is required."),
        ('{"prompt": ""}', "'prompt' must not be empty."),
        ('{"prompt": "   "}', "'prompt' must not be empty."),
        ('{"prompt": 5}', "'prompt' must be of type string"),
        ('{"prompt": "red", "seed": "7"}', "'seed' must be of type integer"),
        ('{"prompt": "red", "seed": 7.5}', "'seed' must be of type integer"),
        ('{"prompt": "red", "seed": 7.0}', "'seed' must be of type integer"),
        ('{"prompt": "red", "seed": true}', "'seed' must be of type integer"),
        ('{"prompt": "red", "seed": NaN}', "not valid JSON"),
        ('{"prompt": "red", "seed": -1}', "'seed' must be at least 0"),
        ('{"prompt": "red", "seed": 4294967296}', "'seed' must be at most 4294967295"),
    ],
)
def test_the_prompt_and_seed_rules_still_hold(styled, arguments, fragment):
    env, _ = styled
    env.reset(seed=0)
    obs, _, _, _, info = env.step(raw_call(arguments))
    assert info["violations"] == 1 and info["images"] == []
    assert fragment in obs["text"], obs["text"]


@pytest.mark.parametrize(
    "arguments",
    [
        '{"prompt": "red", "steps": ' + "9" * 4000 + "}",
        '{"prompt": "red", "steps": 1e999}',
        '{"prompt": "red", "tags": ' + "[" * 400 + "]" * 400 + "}",
        '{"prompt": "red", "style": "\\ud800"}',
        '{"prompt": "red", "\\udfff": 1}',
        '{"prompt": "red", "tags": ["ok!", ' + ", ".join(['"x"'] * 5000) + "]}",
    ],
)
def test_hostile_arguments_are_violations_with_short_messages(styled, arguments):
    env, _ = styled
    env.reset(seed=0)
    obs, _, _, _, info = env.step(raw_call(arguments))
    assert info["violations"] == 1 and info["images"] == []
    assert obs["text"].startswith("Format violation") and "Traceback" not in obs["text"]
    assert all(len(error) <= 400 and error.isascii() for error in info["format_errors"]), info["format_errors"]


def test_a_schema_that_allows_more_arguments_passes_them_through():
    schema = prompt_and_seed_schema()
    schema["additionalProperties"] = {"type": "string"}
    tool = StyledTool(schema)
    env = gym.make("genagent_env:GenAgent-v0", generators=tool, max_rounds=2)
    env.reset(seed=0)
    obs, _, _, _, info = env.step(call(prompt="a red square", mood=3))
    assert info["violations"] == 1 and "'mood' must be of type string" in obs["text"], obs["text"]
    _, _, _, _, info = env.step(call(prompt="a red square", mood="calm"))
    assert info["round"] == 1 and dict(tool.requests[-1].extra) == {"mood": "calm"}
    env.close()


def _schema(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"prompt": {"type": "string"}, **properties}, "required": ["prompt"]}


@pytest.mark.parametrize(
    "schema, fragment",
    [
        (_schema(style={"type": "colour"}), "not valid JSON Schema"),
        (_schema(code={"type": "string", "pattern": "(unclosed"}), "not valid JSON Schema"),
        (_schema(tags={"type": "array", "items": 3}), "not valid JSON Schema"),
        (_schema(size={"$ref": "#/$defs/size"}), "does not resolve"),
        (_schema(size={"$ref": "https://example.com/size.json"}), "does not resolve"),
        ({"type": "string"}, '"type": "object"'),
        ({"type": "object", "properties": {"text": {"type": "string"}}}, '"prompt"'),
        ({**_schema(), "$schema": "http://json-schema.org/draft-07/schema#"}, "Draft 2020-12"),
    ],
)
def test_an_invalid_schema_is_refused_when_the_env_is_made(schema, fragment):
    with pytest.raises(ValueError, match="'styled'") as caught:
        gym.make("genagent_env:GenAgent-v0", generators=StyledTool(schema), max_rounds=2)
    assert fragment in str(caught.value)


def test_validators_are_built_once_per_schema():
    schema = StyledTool().parameters()
    first = protocol.compile_arguments_schema(schema, "styled")
    assert protocol.compile_arguments_schema(copy.deepcopy(schema), "styled") is first
    compiled = protocol.compile_tool_schemas({"styled": StyledTool(), "plain": prompt_and_seed_schema()})
    assert compiled["styled"] is first
    payload = json.dumps({"name": "styled", "arguments": {"prompt": "red", "style": "oil"}})
    assert protocol.parse_tool_call(payload, compiled) == protocol.parse_tool_call(payload, {"styled": schema})
    assert isinstance(protocol.parse_tool_call(payload.replace("oil", "photo"), compiled), protocol.ToolCall)
