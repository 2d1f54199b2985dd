"""The action protocol: parse one agent message, validate its tool call, and write the env's side.

One environment step is one agent message (design.md §3)::

    turn      := [judge] [think] (tool_call | answer)
    judge     := "<judge>" text "</judge>"
    think     := "<think>" text "</think>"
    tool_call := "<tool_call>" JSON "</tool_call>"   # {"name": ..., "arguments": {"prompt": ..., "seed": ...}}
    answer    := "<answer>" ("done" | K | "image_K") "</answer>"

Tags match case-insensitively with free whitespace; text between tags is collected as stray text;
anything inside a block (tags included) is that block's plain text. Nothing the agent writes is
evaluated, used as a path or passed to a shell: the tool-call payload is read with ``json.loads``
and checked against the tool's JSON schema, with no coercion of types.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from genagent_env.tools.base import MAX_SEED

_OPEN = re.compile(r"<\s*(judge|think|tool_call|answer)\s*>", re.IGNORECASE)
_CLOSE = {name: re.compile(rf"<\s*/\s*{name}\s*>", re.IGNORECASE) for name in ("judge", "think", "tool_call", "answer")}
_ANSWER = re.compile(r"(?:image_)?([0-9]{1,9})", re.IGNORECASE)
_ORDER = {"judge": 0, "think": 1, "tool_call": 2, "answer": 2}
#: How much of the agent's own text an error message quotes back.
_QUOTE_CHARS = 80


def quote(text: str, limit: int = _QUOTE_CHARS) -> str:
    """A short, single-line excerpt of agent text for error messages."""
    flat = " ".join(text.split())
    return json.dumps(flat if len(flat) <= limit else flat[:limit] + "...", ensure_ascii=True)


@dataclass
class ParsedTurn:
    """The blocks of one agent message, before the tool call or answer is checked against the world."""

    judge: str | None = None
    think: str | None = None
    tool_call: str | None = None  # the raw payload between the tags
    answer: str | None = None
    stray_text: str = ""
    errors: list[str] = field(default_factory=list)
    starts_with_judge: bool = False


def parse_turn(message: str) -> ParsedTurn:
    """Split a message into its tagged blocks and report structural format violations."""
    turn = ParsedTurn()
    blocks: list[tuple[str, str]] = []
    stray: list[str] = []
    position = 0
    while True:
        opening = _OPEN.search(message, position)
        if opening is None:
            stray.append(message[position:])
            break
        stray.append(message[position : opening.start()])
        name = opening.group(1).lower()
        closing = _CLOSE[name].search(message, opening.end())
        if closing is None:
            turn.errors.append(f"<{name}> is never closed with </{name}>.")
            break
        blocks.append((name, message[opening.end() : closing.start()]))
        position = closing.end()
    turn.stray_text = "".join(stray).strip()
    turn.starts_with_judge = bool(blocks) and blocks[0][0] == "judge"

    counts = {name: sum(1 for kind, _ in blocks if kind == name) for name in _ORDER}
    for name in ("judge", "think"):
        if counts[name] > 1:
            turn.errors.append(f"Write at most one <{name}> block per turn; this turn has {counts[name]}.")
    n_actions = counts["tool_call"] + counts["answer"]
    if n_actions == 0 and not turn.errors:
        turn.errors.append("The turn has neither a <tool_call> nor an <answer>; end every turn with exactly one of them.")
    elif counts["tool_call"] > 1:
        turn.errors.append(f"Make one tool call per turn; this turn has {counts['tool_call']}.")
    elif counts["answer"] > 1:
        turn.errors.append(f"Give one <answer> per turn; this turn has {counts['answer']}.")
    elif counts["tool_call"] and counts["answer"]:
        turn.errors.append("A turn either calls a tool or answers, not both.")
    ranks = [_ORDER[kind] for kind, _ in blocks]
    if ranks != sorted(ranks) or (n_actions and blocks[-1][0] not in ("tool_call", "answer")):
        turn.errors.append("Blocks must come in the order <judge>, <think>, then <tool_call> or <answer> last.")

    for kind, text in blocks:
        if getattr(turn, kind) is None:
            setattr(turn, kind, text)
    return turn


@dataclass(frozen=True)
class ToolCall:
    """A validated tool call."""

    name: str
    arguments: dict[str, Any]


def _reject_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"the key {quote(duplicate, 40)} appears twice")
    return dict(pairs)


def _load_json(text: str) -> Any:
    """``json.loads`` that rejects NaN/Infinity and duplicate keys (raises ValueError/RecursionError)."""
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)


def _json_error(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    text = str(error)
    if "Exceeds the limit" in text:
        return "a number has too many digits"
    return text.splitlines()[0][:120] if text else type(error).__name__


#: Rules every tool call obeys whatever the tool's own schema says (design.md §3).
UNIVERSAL_RULES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string", "minLength": 1},
        "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
    },
    "required": ["prompt"],
}


def _type_ok(value: Any, expected: str) -> bool:
    # No coercion: booleans are not integers, 7.0 is not an integer, NaN and infinities are not numbers.
    if expected == "string":
        return isinstance(value, str)
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    return True


def validate_arguments(arguments: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Check tool arguments against a JSON schema of type ``object`` (the keywords generators use:
    properties, required, type, enum, minimum, maximum, minLength, maxLength). Arguments the schema
    does not list are errors. Returns the error messages, empty when the arguments are valid."""
    errors: list[str] = []
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in arguments:
            errors.append(f"the argument {name!r} is required.")
    for name, value in arguments.items():
        if name not in properties:
            allowed = ", ".join(properties) or "none"
            errors.append(f"unknown argument {quote(str(name), 40)}; this tool takes: {allowed}.")
            continue
        rules = properties[name]
        expected = rules.get("type")
        if expected and not _type_ok(value, expected):
            errors.append(f"{name!r} must be of type {expected}, got {quote(json.dumps(value), 40)}.")
            continue
        if "enum" in rules and value not in rules["enum"]:
            errors.append(f"{name!r} must be one of {rules['enum']}, got {quote(json.dumps(value), 40)}.")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in rules and value < rules["minimum"]:
                errors.append(f"{name!r} must be at least {rules['minimum']}, got {value}.")
            if "maximum" in rules and value > rules["maximum"]:
                errors.append(f"{name!r} must be at most {rules['maximum']}, got {value}.")
        if isinstance(value, str):
            if "minLength" in rules and len(value.strip()) < rules["minLength"]:
                errors.append(f"{name!r} must not be empty.")
            if "maxLength" in rules and len(value) > rules["maxLength"]:
                errors.append(f"{name!r} is {len(value)} characters long; the limit is {rules['maxLength']}.")
    return errors


def parse_tool_call(payload: str, tools: Mapping[str, Mapping[str, Any]]) -> ToolCall | str:
    """Read a ``<tool_call>`` payload. ``tools`` maps each tool name to its parameter schema.

    Returns the :class:`ToolCall`, or an error message saying precisely what is wrong.
    """
    try:
        data = _load_json(payload)
    except (ValueError, RecursionError) as error:
        return f"The tool call is not valid JSON ({_json_error(error)}). Write {{\"name\": ..., \"arguments\": {{...}}}}."
    if not isinstance(data, dict):
        return f"The tool call must be a JSON object, got a JSON {type(data).__name__}."
    unexpected = sorted(set(data) - {"name", "arguments"})
    if unexpected:
        return f"The tool call has unexpected keys {quote(', '.join(unexpected), 60)}; use only \"name\" and \"arguments\"."
    name = data.get("name")
    if not isinstance(name, str):
        return "The tool call needs a string \"name\"."
    if name not in tools:
        return f"Unknown tool {quote(name, 40)}. Available tools: {', '.join(tools)}."
    arguments = data.get("arguments")
    if isinstance(arguments, str):  # the OpenAI convention: arguments as a JSON-encoded object
        try:
            arguments = _load_json(arguments)
        except (ValueError, RecursionError):
            return "The tool call's \"arguments\" string is not a JSON object."
    if not isinstance(arguments, dict):
        return "The tool call needs \"arguments\": a JSON object with at least a \"prompt\"."
    # The env's own rules first (a tool's schema may be looser), then the tool's schema.
    universal = {key: value for key, value in arguments.items() if key in UNIVERSAL_RULES["properties"]}
    errors = validate_arguments(universal, UNIVERSAL_RULES)
    if not errors:
        errors = validate_arguments(arguments, tools[name])
    if errors:
        return f"Invalid arguments for {name}: " + " ".join(errors)
    return ToolCall(name=name, arguments=dict(arguments))


def parse_answer(text: str, n_images: int) -> int | str:
    """Read an ``<answer>``: ``done`` (the latest image), ``K`` or ``image_K`` (1-based).

    Returns the 1-based image index, or an error message.
    """
    if n_images == 0:
        return "There is no image to submit yet; call a tool first."
    value = text.strip()
    if value.lower() == "done":
        return n_images
    match = _ANSWER.fullmatch(value)
    if match is None:
        return (
            f"The answer {quote(value, 40)} is not understood; write done, K or image_K "
            f"with K between 1 and {n_images}."
        )
    index = int(match.group(1))
    if not 1 <= index <= n_images:
        return f"There is no image_{index}; images are numbered 1 to {n_images}."
    return index


def tool_specs(tools: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tool specs as announced, one per tool (OpenAI/Hermes function format)."""
    specs = []
    for name, tool in tools.items():
        spec = tool.spec()
        spec["function"] = {**spec["function"], "name": name}  # the name the env offers it under
        specs.append(spec)
    return specs


def system_prompt(specs: Sequence[Mapping[str, Any]], max_rounds: int) -> str:
    """The system message: the agent's role, the protocol and every tool's JSON schema."""
    tool_lines = "\n".join(json.dumps(spec, ensure_ascii=True) for spec in specs)
    example_tool = specs[0]["function"]["name"] if specs else "generate"
    return (
        "You are an image-generation agent. You turn the user's request into an image by calling an "
        "image-generation tool, look at each image it returns, judge whether it satisfies the request, "
        "and either submit it or refine the prompt and call the tool again.\n\n"
        "Each of your turns has this form, and nothing else counts:\n"
        "<judge>your verdict on the latest image: does it satisfy every part of the request? what is wrong?</judge>\n"
        "<think>your reasoning about what to do next</think>\n"
        "then exactly one of\n"
        f'<tool_call>{{"name": "{example_tool}", "arguments": {{"prompt": "...", "seed": 7}}}}</tool_call>\n'
        "<answer>done</answer>   (submit the latest image; or image_K to submit image K)\n\n"
        "Rules: start with <judge> whenever a new image has been shown (omit it before the first image); "
        "<think> is optional; make one tool call or one answer per turn. "
        f"You may call tools at most {max_rounds} times in this episode. "
        "Seeds are integers from 0 to 4294967295; omit the seed to get a random one.\n\n"
        f"Available tools, as JSON schemas:\n<tools>\n{tool_lines}\n</tools>"
    )


def tool_result_text(index: int, tool: str, prompt: str, seed: int, round_: int, max_rounds: int) -> str:
    """What the env says after a successful tool call."""
    left = max_rounds - round_
    then = (
        "Judge it in <judge>...</judge>, then submit it with <answer>done</answer> or refine and call a tool again."
        if left
        else "No tool calls are left: judge it in <judge>...</judge>, then submit the best image with <answer>image_K</answer>."
    )
    return (
        f"image_{index} was generated by {tool} (round {round_} of {max_rounds}, seed {seed}) "
        f"from the prompt {quote(prompt, 200)}. {then}"
    )


def violation_text(errors: Sequence[str], *, rounds_left: int, n_images: int) -> str:
    """What the env says after a format violation: what was wrong and what is allowed now."""
    allowed = []
    if rounds_left > 0:
        allowed.append("a <tool_call>")
    if n_images > 0:
        allowed.append(f"an <answer> (done, or image_K with K from 1 to {n_images})")
    return "Format violation: " + " ".join(errors) + " Allowed now: " + " or ".join(allowed or ["nothing"]) + "."
