"""Load task files: GenEval and GenEval++ metadata (JSON Lines), or a JSON list, in the task schema.

GenEval's ``evaluation_metadata.jsonl`` and GenEval++'s ``Geneval++.jsonl`` both hold one task per
line; both load through :func:`load_tasks`, so real benchmark files run through the same code as
the built-in ShapesWorld suite.

Whatever a file holds (binary data, another encoding, truncated or deeply nested JSON, numbers
with thousands of digits, an empty file), loading it raises ``ValueError`` whose message starts
with ``path:line`` (or ``path`` when no line applies), never another exception.
:func:`load_tasks_with_sources` also says where each task came from (``path:line``), which the
environment uses to name the line of a task its scorer refuses; the tasks themselves carry nothing
extra.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from genagent_env.tasks.schema import normalize_task

_WHITESPACE = re.compile(r"[ \t\n\r]*")  # what JSON allows between values
_DECODER = json.JSONDecoder()
#: What ends a JSON Lines line: the control characters str.splitlines() splits at (none can stand
#: inside a JSON value), but not U+0085, U+2028 or U+2029, which a JSON string may hold as they are.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e]")


def read_task_text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (a byte-order mark is dropped). Raises ``ValueError``
    naming the file and line of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ValueError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "task files must be UTF-8 JSON: convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None


def _decode_error(error: BaseException) -> str:
    """What a JSON decoding failure means, in words (never a hint to change interpreter limits)."""
    if isinstance(error, RecursionError):
        return "nested too deeply"
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at column {error.colno}"
    if "digits" in str(error):  # int('9' * 5000): the interpreter's integer-string limit
        return "a number has too many digits"
    return str(error)


def _json_value(text: str, where: str) -> Any:
    """One JSON document, or ``ValueError`` naming ``where``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:  # JSONDecodeError is a ValueError
        raise ValueError(f"{where}: not valid JSON ({_decode_error(error)})") from None


def json_list_items(text: str, path: Path) -> list[tuple[int, Any]]:
    """The elements of the JSON list ``text`` holds, each with the line it starts on. Raises
    ``ValueError`` naming ``path`` and the line for an empty file, invalid JSON, or a value that
    is not a list."""
    position = _WHITESPACE.match(text).end()  # type: ignore[union-attr]  # always matches
    if position == len(text):
        raise ValueError(f"{path}: the file is empty; expected a JSON list of tasks")
    if text[position] != "[":
        value = _json_value(text, str(path))
        raise ValueError(f"{path}: expected a JSON list of tasks, got {_json_type(value)}")
    items: list[tuple[int, Any]] = []
    line, counted = 1, 0
    position = _WHITESPACE.match(text, position + 1).end()  # type: ignore[union-attr]
    closed = text.startswith("]", position)
    if closed:
        position += 1
    while not closed:
        line += text.count("\n", counted, position)
        counted = position
        try:
            value, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{error.lineno}: not valid JSON ({_decode_error(error)})") from None
        except (ValueError, RecursionError) as error:
            raise ValueError(f"{path}:{line}: not valid JSON ({_decode_error(error)})") from None
        items.append((line, value))
        position = _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
        if text.startswith(",", position):
            position = _WHITESPACE.match(text, position + 1).end()  # type: ignore[union-attr]
        elif text.startswith("]", position):
            position, closed = position + 1, True
        else:
            end_line = line + text.count("\n", counted, position)
            problem = "the list is not closed" if position == len(text) else "expected ',' or ']'"
            raise ValueError(f"{path}:{end_line}: not valid JSON ({problem})")
    rest = _WHITESPACE.match(text, position).end()  # type: ignore[union-attr]
    if rest != len(text):
        end_line = line + text.count("\n", counted, rest)
        raise ValueError(f"{path}:{end_line}: not valid JSON (extra data after the list)")
    return items


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def load_tasks(path: str | Path) -> list[dict[str, Any]]:
    """Read tasks from a ``.jsonl`` file (one task per line) or a ``.json`` file (a list of tasks,
    or a WISE data file, recognised by its ``Prompt``/``prompt_id`` fields and read by
    :func:`genagent_env.tasks.wise.load_wise`).

    Each task is validated with :func:`normalize_task`; a task without an ``id`` gets
    ``"<file stem>/<index>"``. Any problem with the file's contents raises ``ValueError`` whose
    message starts with ``path:line`` (or ``path``).
    """
    return [task for task, _ in load_tasks_with_sources(path)]


def load_tasks_with_sources(path: str | Path) -> list[tuple[dict[str, Any], str]]:
    """:func:`load_tasks`, with each task paired with where it came from: ``"path:line"``."""
    path = Path(path)
    text = read_task_text(path)
    if path.suffix.lower() == ".json":
        raw = json_list_items(text, path)
        first = raw[0][1] if raw else None
        if isinstance(first, dict) and "Prompt" in first and "prompt_id" in first:
            from genagent_env.tasks.wise import wise_tasks_with_sources  # WISE's own file layout

            return wise_tasks_with_sources(raw, path)
    else:
        raw = []
        for number, line in enumerate(_LINE_BREAK.split(text), start=1):
            if line.strip():
                raw.append((number, _json_value(line, f"{path}:{number}")))
    sourced = []
    for index, (number, item) in enumerate(raw):
        try:
            task = normalize_task(item)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
        task.setdefault("id", f"{path.stem}/{index:05d}")
        sourced.append((task, f"{path}:{number}"))
    if not sourced:
        raise ValueError(f"{path}: no tasks found (the file is empty or holds an empty list)")
    return sourced
