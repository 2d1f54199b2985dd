"""The action protocol: parse one agent message, validate its tool call, and write the env's side.

One environment step is one agent message, in this grammar::

    turn      := [judge] [think] (tool_call | answer)
    judge     := "<judge>" text "</judge>"
    think     := "<think>" text "</think>"
    tool_call := "<tool_call>" JSON "</tool_call>"   # {"name": ..., "arguments": {"prompt": ..., "seed": ...}}
    answer    := "<answer>" ("done" | K | "image_K") "</answer>"

Tags match case-insensitively with free whitespace; text between tags is collected as stray text;
anything inside a block (tags included) is that block's plain text. Nothing the agent writes is
evaluated, used as a path or passed to a shell: the tool-call payload is read with ``json.loads``
and checked by a JSON Schema (Draft 2020-12) validator, first against the rules every call obeys
(a non-blank prompt, a seed in [0, 2**32 - 1]) and then against the tool's own schema, with no
coercion of types.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from jsonschema import Draft202012Validator
from jsonschema_specifications import REGISTRY as SPECIFICATIONS  # type: ignore[import-untyped]
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

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
        turn.errors.append(
            "The turn has neither a <tool_call> nor an <answer>; end every turn with exactly one of them."
        )
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


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as infinity: no more a number than Infinity is
        raise ValueError("a number is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {quote(key, 40)} appears twice")
        seen.add(key)
    return dict(pairs)


def _load_json(text: str) -> Any:
    """``json.loads`` that rejects NaN/Infinity, overflowing numbers and duplicate keys
    (raises ValueError/RecursionError)."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys)


def _json_error(error: Exception) -> str:
    if isinstance(error, RecursionError):
        return "nested too deeply"
    text = str(error)
    if "Exceeds the limit" in text:
        return "a number has too many digits"
    return text.splitlines()[0][:120] if text else type(error).__name__


# --- Tool arguments -------------------------------------------------------------------------------
#
# Arguments are checked by a JSON Schema (Draft 2020-12) validator in two passes: first the rules
# every tool call obeys, whatever the tool's own schema says, then the tool's schema. Both use JSON
# types strictly: 7.0 is not an integer (the validator's default says it is), booleans are not
# numbers, and a number must be finite. Arguments a tool's schema does not declare are refused
# unless the schema itself allows them (``additionalProperties`` or ``unevaluatedProperties``).

#: Rules every tool call obeys whatever the tool's own schema says: a prompt that is a string with
#: some non-blank text, and an optional seed that is an unsigned 32-bit integer.
UNIVERSAL_RULES: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "pattern": r"\S"},
        "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
    },
    "required": ["prompt"],
}

_SCHEMA_DIALECTS = ("https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#")
_TYPE_CHECKER = Draft202012Validator.TYPE_CHECKER.redefine_many(
    {
        "integer": lambda _, value: isinstance(value, int) and not isinstance(value, bool),
        "number": lambda _, value: (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and (isinstance(value, int) or math.isfinite(value))
        ),
    }
)
_StrictValidator = jsonschema.validators.extend(Draft202012Validator, type_checker=_TYPE_CHECKER)
#: Keywords whose values are data, not subschemas: a "$ref" key inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
#: How many schema errors are turned into messages; a list of 10 000 bad items needs no more.
_MAX_ERRORS = 8
#: How long the messages about one tool call's arguments may grow before the rest are left out.
_MESSAGE_CHARS = 300
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,60}")
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def _json(value: Any, limit: int = 40) -> str:
    """A value as short, ASCII JSON for a message (never raises: deep or odd values get a type name)."""
    if isinstance(value, str):
        return quote(value, limit)
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (ValueError, TypeError, RecursionError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def _ascii(text: str, limit: int) -> str:
    flat = " ".join(text.encode("ascii", "backslashreplace").decode("ascii").split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _where(path: Sequence[Any]) -> str:
    """Name a place in the arguments: ``'style'``, ``'tags[1]'``, ``'size.width'``."""
    parts = list(path)
    if not parts:
        return "the arguments"
    text = str(parts[0]) + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts[1:])
    return f"'{text}'" if _PLAIN_NAME.fullmatch(text) else quote(text, 40)


def _type_words(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(str(name) for name in names)


def _summary(schema: Any) -> str:
    """A few words for what a (sub)schema accepts, for "must be X or Y" messages."""
    if schema is True or schema == {}:
        return "anything"
    if not isinstance(schema, dict):
        return "nothing"
    if "const" in schema:
        return _json(schema["const"])
    if "enum" in schema:
        return "one of " + _json(schema["enum"], 80)
    types = schema.get("type", [])
    words = " or ".join(_TYPE_WORDS.get(name, str(name)) for name in (types if isinstance(types, list) else [types]))
    text = words or "a value"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        text += f" from {_json(low)} to {_json(high)}"
    elif low is not None:
        text += f" at least {_json(low)}"
    elif high is not None:
        text += f" at most {_json(high)}"
    if "pattern" in schema:
        text += f" matching the pattern {_json(schema['pattern'])}"
    shortest, longest = schema.get("minLength"), schema.get("maxLength")
    if shortest is not None and longest is not None:
        text += f" of {shortest} to {longest} characters"
    elif shortest is not None:
        text += f" of at least {shortest} characters"
    elif longest is not None:
        text += f" of at most {longest} characters"
    if text == "a value" and "$ref" in schema:
        text = f"a value matching {_json(schema['$ref'])}"
    return text


def _root_resolver(schema: Mapping[str, Any]) -> Any:
    """Where a schema's ``$ref`` values are looked up: in the schema itself and the metaschemas
    only (nothing is fetched), so a tool schema must be self-contained."""
    resource = DRAFT202012.create_resource(schema)
    return SPECIFICATIONS.with_resource("", resource).resolver_with_root(resource)


def _enter(resolver: Any, node: Mapping[str, Any]) -> Any:
    """The resolver inside ``node``: a subschema with its own ``$id`` is a new base for references."""
    if isinstance(node.get("$id"), str):
        return resolver.in_subresource(DRAFT202012.create_resource(node))
    return resolver


def _check_references(node: Any, resolver: Any, data: bool = False) -> None:
    """Resolve every ``$ref`` in a schema (raises ``referencing.exceptions.Unresolvable``)."""
    if isinstance(node, list):
        for item in node:
            _check_references(item, resolver, data)
    elif isinstance(node, dict) and not data:
        resolver = _enter(resolver, node)
        if isinstance(node.get("$ref"), str):
            resolver.lookup(node["$ref"])
        for key, value in node.items():
            _check_references(value, resolver, key in _DATA_KEYWORDS)


def _declared(schema: Any, resolver: Any, seen: set[int] | None = None) -> tuple[list[str], list[str]]:
    """The argument names an object schema declares and its ``patternProperties``, following the
    applicators that can declare them (``allOf``, ``anyOf``, ``oneOf``, ``if``/``then``/``else``,
    ``dependentSchemas``, ``$ref``)."""
    seen = set() if seen is None else seen
    names: list[str] = []
    patterns: list[str] = []
    if not isinstance(schema, dict) or id(schema) in seen:
        return names, patterns
    seen.add(id(schema))
    resolver = _enter(resolver, schema)
    properties = schema.get("properties")
    names.extend(properties if isinstance(properties, dict) else [])
    pattern_properties = schema.get("patternProperties")
    patterns.extend(pattern_properties if isinstance(pattern_properties, dict) else [])
    children: list[tuple[Any, Any]] = []
    for keyword in ("allOf", "anyOf", "oneOf"):
        branches = schema.get(keyword)
        children.extend((sub, resolver) for sub in (branches if isinstance(branches, list) else []))
    for keyword in ("if", "then", "else"):
        children.append((schema.get(keyword), resolver))
    dependent = schema.get("dependentSchemas")
    children.extend((sub, resolver) for sub in (dependent.values() if isinstance(dependent, dict) else []))
    if isinstance(schema.get("$ref"), str):
        resolved = resolver.lookup(schema["$ref"])
        children.append((resolved.contents, resolved.resolver))
    for child, child_resolver in children:
        more_names, more_patterns = _declared(child, child_resolver, seen)
        names.extend(name for name in more_names if name not in names)
        patterns.extend(more_patterns)
    return names, patterns


def _undeclared(instance: Any, names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    if not isinstance(instance, dict):
        return []
    return [key for key in instance if key not in names and not any(re.search(p, key) for p in patterns)]


class ArgumentValidator:
    """One tool's argument schema, checked and compiled once.

    ``errors(arguments)`` returns what is wrong, one short message per problem, empty when the
    arguments are valid. It never raises on what an agent can write (huge numbers, deep nesting,
    lone surrogates): a schema error it cannot explain in its own words is quoted, cut short.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        """Raises ``ValueError`` when ``schema`` is not a valid Draft 2020-12 schema of an object
        that declares a ``prompt``, or has a ``$ref`` that does not resolve within it."""
        if not isinstance(schema, dict):
            raise ValueError(f"the parameters schema must be a JSON object, got {type(schema).__name__}")
        if schema.get("type", "object") != "object":
            raise ValueError(f'the parameters schema must have "type": "object", got {_json(schema["type"])}')
        if "$schema" in schema and schema["$schema"] not in _SCHEMA_DIALECTS:
            raise ValueError(
                f"the parameters schema declares $schema {_json(schema['$schema'], 80)}; "
                f"tool schemas are JSON Schema Draft 2020-12 ({_SCHEMA_DIALECTS[0]})"
            )
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as error:
            where = "/".join(str(part) for part in error.absolute_path) or "the top level"
            raise ValueError(
                f"the parameters schema is not valid JSON Schema (Draft 2020-12) at {where}: "
                f"{_ascii(error.message, 200)}"
            ) from None
        resolver = _root_resolver(schema)
        try:
            _check_references(schema, resolver)
            self.names, self.patterns = _declared(schema, resolver)
        except Unresolvable as error:
            raise ValueError(
                f"the parameters schema has a $ref that does not resolve within it: {_ascii(str(error), 120)}"
            ) from None
        explicit = "additionalProperties" in schema or "unevaluatedProperties" in schema
        if not explicit and "prompt" not in self.names and not any(re.search(p, "prompt") for p in self.patterns):
            raise ValueError('the parameters schema does not declare the "prompt" argument every tool call carries')
        self.schema = schema
        effective = schema if explicit else {**schema, "unevaluatedProperties": False}
        self._validator = _StrictValidator(effective, registry=Registry())

    def __reduce__(self) -> tuple[Any, ...]:  # the compiled validator does not pickle: rebuild it from the schema
        return compile_arguments_schema, (self.schema,)

    def errors(self, arguments: Mapping[str, Any]) -> list[str]:
        try:
            found = list(itertools.islice(self._validator.iter_errors(arguments), _MAX_ERRORS))
            messages: list[str] = []
            for error in found:
                messages.extend(self._explain(error, found))
        except RecursionError:
            return ["the arguments are nested too deeply to check."]
        except Exception as error:  # noqa: BLE001 - an odd value must not crash the step
            return [f"the arguments could not be checked against the tool's schema ({type(error).__name__})."]
        return list(dict.fromkeys(message[:200] for message in messages))

    def _explain(self, error: jsonschema.ValidationError, siblings: Sequence[Any], depth: int = 0) -> list[str]:
        keyword, expected, value = error.validator, error.validator_value, error.instance
        path = list(error.absolute_path)
        where = _where(path)
        if "propertyNames" in error.absolute_schema_path:  # the error is about a key, not a value
            reason = _ascii(error.message, 120)
            if not path:
                return [f"the argument name {_json(value)} is not allowed: {reason}."]
            return [f"{where} has the key {_json(value)}, which is not allowed: {reason}."]
        if keyword == "required" or keyword == "dependentRequired":
            requirements = {None: expected} if keyword == "required" else expected
            messages = []
            for trigger, needed in requirements.items():
                if trigger is not None and trigger not in value:
                    continue
                when = f" when {_where([*path, trigger])} is given" if trigger is not None else ""
                for name in needed:
                    if name in value:
                        continue
                    if path:
                        messages.append(f"{where} needs the key {_json(name)}{when}.")
                    else:
                        messages.append(f"the argument {_where([name])} is required{when}.")
            return messages
        if keyword in ("additionalProperties", "unevaluatedProperties"):
            if path:
                names = list(error.schema.get("properties", {}))
                patterns = list(error.schema.get("patternProperties", {}))
            else:
                names, patterns = self.names, self.patterns
            unknown = _undeclared(value, names, patterns)
            if not unknown:
                if len(siblings) > 1:  # declared only under an anyOf/oneOf branch that failed: that error says why
                    return []
                return [f"{where} is not allowed as given: {_ascii(error.message, 150)}."]
            allowed = _ascii(", ".join(names) or "none", 120)
            listed = ", ".join(quote(str(key), 40) for key in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
            plural = "s" if len(unknown) > 1 else ""
            if not path:
                return [f"unknown argument{plural} {listed}; this tool takes: {allowed}."]
            return [f"{where} has the unknown key{plural} {listed}; allowed: {allowed}."]
        if keyword == "type":
            return [f"{where} must be of type {_type_words(expected)}, got {_json(value)}."]
        if keyword == "enum":
            return [f"{where} must be one of {_json(expected, 120)}, got {_json(value)}."]
        if keyword == "const":
            return [f"{where} must be {_json(expected, 80)}, got {_json(value)}."]
        if keyword == "minimum":
            return [f"{where} must be at least {_json(expected)}, got {_json(value)}."]
        if keyword == "maximum":
            return [f"{where} must be at most {_json(expected)}, got {_json(value)}."]
        if keyword == "exclusiveMinimum":
            return [f"{where} must be greater than {_json(expected)}, got {_json(value)}."]
        if keyword == "exclusiveMaximum":
            return [f"{where} must be less than {_json(expected)}, got {_json(value)}."]
        if keyword == "multipleOf":
            return [f"{where} must be a multiple of {_json(expected)}, got {_json(value)}."]
        if keyword == "minLength" or (keyword == "pattern" and expected == r"\S"):
            if not value.strip():
                return [f"{where} must not be empty."]
            return [f"{where} must be at least {expected} characters long, got {len(value)}."]
        if keyword == "maxLength":
            return [f"{where} is {len(value)} characters long; the limit is {expected}."]
        if keyword == "pattern":
            return [f"{where} must match the pattern {_json(expected, 80)}, got {_json(value)}."]
        if keyword in ("minItems", "maxItems"):
            bound = "at least" if keyword == "minItems" else "at most"
            return [f"{where} must have {bound} {expected} items, got {len(value)}."]
        if keyword == "uniqueItems":
            return [f"{where} must not contain the same item twice."]
        if keyword in ("minProperties", "maxProperties"):
            bound = "at least" if keyword == "minProperties" else "at most"
            return [f"{where} must have {bound} {expected} keys, got {len(value)}."]
        if keyword in ("contains", "minContains", "maxContains"):
            low, high = error.schema.get("minContains", 1), error.schema.get("maxContains")
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            return [f"{where} must contain {bound} items that are {_summary(error.schema.get('contains'))}."]
        if keyword == "not":
            return [f"{where} must not be {_summary(expected)}, got {_json(value)}."]
        if keyword is None:  # a `false` subschema
            return [f"{where} is not allowed." if path else "these arguments are not allowed."]
        if keyword in ("anyOf", "oneOf"):
            if not error.context:  # oneOf, valid under several branches
                return [f"{where} matches more than one of the allowed forms; it must match exactly one."]
            branches: dict[Any, list[Any]] = {}
            for sub in error.context:
                branches.setdefault(sub.relative_schema_path[0], []).append(sub)
            # When the value is an object or array of the one form that takes that type, what is wrong
            # inside it says more than a list of the forms.
            container = isinstance(value, (dict, list))
            plausible = [
                errors for index, errors in branches.items()
                if isinstance(expected[index], dict) and "type" in expected[index]
                and not any(sub.validator == "type" and not sub.relative_path for sub in errors)
            ]
            if container and len(plausible) == 1 and depth < 4:
                return [message for sub in plausible[0] for message in self._explain(sub, plausible[0], depth + 1)]
            forms = " or ".join(_summary(sub) for sub in expected)
            return [f"{where} must be {_ascii(forms, 160)}, got {_json(value)}."]
        return [f"{where} is invalid: {_ascii(error.message, 150)}."]


@functools.lru_cache(maxsize=256)
def _compiled(schema_json: str) -> ArgumentValidator:
    return ArgumentValidator(json.loads(schema_json))


def _schema_key(schema: Any) -> str:
    try:
        return json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"the parameters schema is not JSON ({error})") from None


def compile_arguments_schema(schema: Mapping[str, Any], tool: str = "tool") -> ArgumentValidator:
    """The :class:`ArgumentValidator` of one tool's parameter schema, built once per distinct
    schema (they are cached by their JSON text). Raises ``ValueError`` naming ``tool`` when the
    schema is not valid."""
    try:
        return _compiled(_schema_key(schema))
    except ValueError as error:
        raise ValueError(f"tool {tool!r}: {error}") from None


def compile_tool_schemas(tools: Mapping[str, Any]) -> dict[str, ArgumentValidator]:
    """Validators for a set of tools: ``tools`` maps each name to its parameter schema, or to the
    generator itself (its ``parameters()`` is used). Raises ``ValueError`` naming the first tool
    whose schema is not valid."""
    return {
        name: compile_arguments_schema(tool.parameters() if hasattr(tool, "parameters") else tool, name)
        for name, tool in tools.items()
    }


_UNIVERSAL = ArgumentValidator(UNIVERSAL_RULES)


def validate_arguments(arguments: Mapping[str, Any], schema: Mapping[str, Any] | ArgumentValidator) -> list[str]:
    """Check tool arguments against a tool's parameter schema (a JSON Schema of an object, Draft
    2020-12). Arguments the schema does not declare are errors unless it allows them explicitly.
    Returns the error messages, empty when the arguments are valid."""
    validator = schema if isinstance(schema, ArgumentValidator) else compile_arguments_schema(schema)
    return validator.errors(arguments)


def _join(errors: Sequence[str], limit: int = _MESSAGE_CHARS) -> str:
    shown: list[str] = []
    for error in errors:
        if shown and len(" ".join([*shown, error])) > limit:
            shown.append("(More problems are not shown.)")  # not counted: only the first few are looked for
            break
        shown.append(error)
    return " ".join(shown)


def parse_tool_call(payload: str, tools: Mapping[str, Mapping[str, Any] | ArgumentValidator]) -> ToolCall | str:
    """Read a ``<tool_call>`` payload. ``tools`` maps each tool name to its parameter schema (a
    dict, compiled on first use and cached) or to its :class:`ArgumentValidator`
    (see :func:`compile_tool_schemas`).

    Returns the :class:`ToolCall`, or an error message saying precisely what is wrong.
    """
    try:
        data = _load_json(payload)
    except (ValueError, RecursionError) as error:
        return (
            f"The tool call is not valid JSON ({_json_error(error)}). "
            'Write {"name": ..., "arguments": {...}}.'
        )
    if not isinstance(data, dict):
        return f"The tool call must be a JSON object, got a JSON {type(data).__name__}."
    unexpected = sorted(set(data) - {"name", "arguments"})
    if unexpected:
        keys = quote(", ".join(unexpected), 60)
        return f'The tool call has unexpected keys {keys}; use only "name" and "arguments".'
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
    errors = _UNIVERSAL.errors(universal)
    if not errors:
        errors = validate_arguments(arguments, tools[name])
    if errors:
        return _ascii(f"Invalid arguments for {name}: " + _join(errors), 2 * _MESSAGE_CHARS)
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
    """The tool specs as announced, one per tool (OpenAI/Hermes function format).

    Raises ``ValueError`` naming the tool when a tool's parameter schema is not valid (see
    :class:`ArgumentValidator`): that is its author's error, found when the tool is offered rather
    than charged to the agent at its first call.
    """
    specs = []
    for name, tool in tools.items():
        spec = tool.spec()
        compile_arguments_schema(spec["function"]["parameters"], name)
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
        else "No tool calls are left: judge it in <judge>...</judge>, then submit the best image with "
        "<answer>image_K</answer>."
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
