"""Seeded hostile task files (random bytes, truncated or corrupted JSON, wrong types, huge numbers,
lone surrogates, deep nesting, other encodings, broken WISE files) through the loader and the env:
each either loads or raises a ``ValueError`` whose message starts with the file's name, never
another exception.

Run with ``-s`` to see the figures (files tried, loaded, refused, other exceptions)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from genagent_env.env import GenAgentEnv
from genagent_env.tasks import load_tasks

N_FILES = 400
HUGE_NUMBERS = ["9" * 4300, "9" * 4301, "9" * 5000, "-" + "9" * 20_000, "1e400", "-1e400", "NaN", "Infinity", "-0",
                "0.5", "1" + "0" * 300]
HOSTILE: list[Any] = [None, True, False, 0, -1, 2**31, 1.5, "", " ", "x" * 10_000, [], {}, [[[]]], {"a": {"b": []}},
                      "\ud800", "\udfff", "\ud83d\ude00", "\u2028", "\x00", "left", ["left of", 0], ["above", 7]]


def pick(rng: np.random.Generator, good: list[Any], bad: list[Any], p_bad: float = 0.1) -> Any:
    options = bad if rng.random() < p_bad else good
    return options[int(rng.integers(len(options)))]


def random_task(rng: np.random.Generator) -> dict[str, Any]:
    """A task that is usually valid (each field has a small chance of a bad value)."""
    include = []
    for _ in range(int(rng.integers(1, 4))):
        item: dict[str, Any] = {"class": pick(rng, ["circle", "square", "star"], ["dog", "", " Circle "]),
                                "count": pick(rng, [1, 2, 3], [0, 9, -2])}
        if rng.random() < 0.6:
            item["color"] = pick(rng, ["red", "blue"], ["mauve", 3, None])
        if rng.random() < 0.3:
            item["region"] = pick(rng, ["left", "right", "top"], ["middle", 0])
        if include and rng.random() < 0.2:
            item["position"] = [pick(rng, ["left of", "under"], ["near", 5]), pick(rng, [0], [-1, 7, "0"])]
        include.append(item)
    task: dict[str, Any] = {"tag": pick(rng, ["count", "color"], [["x"], None]), "prompt": "two circles",
                            "include": include}
    if rng.random() < 0.2:
        task["exclude"] = [{"class": "star", "count": 1}]
    return task


def wise_entry(rng: np.random.Generator, index: int) -> dict[str, Any]:
    return {"prompt_id": index + 1, "Prompt": "The plant gifted on Mother's Day", "Explanation": "a carnation",
            "Category": "Cultural knowledge", "Subcategory": "Festival"}


def mutate(value: Any, rng: np.random.Generator, depth: int = 0) -> Any:
    """``value`` with one randomly chosen node replaced by a hostile value (or a huge-number marker)."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = list(value)[int(rng.integers(len(value)))]
        return {**value, key: mutate(value[key], rng, depth + 1)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        index = int(rng.integers(len(value)))
        return [*value[:index], mutate(value[index], rng, depth + 1), *value[index + 1:]]
    if rng.random() < 0.3:
        return f"@@NUMBER{int(rng.integers(len(HUGE_NUMBERS)))}@@"
    return HOSTILE[int(rng.integers(len(HOSTILE)))]


def serialise(tasks: Any, suffix: str, rng: np.random.Generator) -> str:
    """The file's text; a JSON list for ``.json``, one line per task for ``.jsonl`` (one line if
    a mutation replaced the whole list)."""
    ascii_only = bool(rng.random() < 0.5)
    if suffix == ".json" or not isinstance(tasks, list):
        text = json.dumps(tasks, ensure_ascii=ascii_only, indent=int(rng.integers(0, 3)) or None)
    else:
        text = "\n".join(json.dumps(task, ensure_ascii=ascii_only) for task in tasks) + "\n"
    for index, number in enumerate(HUGE_NUMBERS):
        text = text.replace(f'"@@NUMBER{index}@@"', number)
    return text


def hostile_file(rng: np.random.Generator, directory: Path, index: int) -> tuple[Path, str]:
    """One seeded hostile file and the name of what was done to it."""
    suffix = ".json" if rng.random() < 0.5 else ".jsonl"
    wise = suffix == ".json" and rng.random() < 0.2
    tasks: list[Any] = ([wise_entry(rng, i) for i in range(int(rng.integers(1, 4)))] if wise
                        else [random_task(rng) for _ in range(int(rng.integers(1, 5)))])
    kind = str(rng.choice(["bytes", "truncate", "flip", "types", "nesting", "encoding", "whitespace", "valid"]))
    data: bytes
    if kind == "bytes":
        data = rng.integers(0, 256, int(rng.integers(0, 3000)), dtype=np.uint8).tobytes()
    elif kind == "types":
        for _ in range(int(rng.integers(1, 4))):
            tasks = mutate(tasks, rng)
        data = serialise(tasks, suffix, rng).encode("utf-8", "surrogatepass")  # raw surrogates: not UTF-8
    elif kind == "nesting":
        depth = int(rng.choice([10, 300, 900, 1000, 5000, 100_000]))
        opener = str(rng.choice(["[", '{"a":']))
        closer = "]" if opener == "[" else "}"
        deep = opener * depth + "1" + closer * depth
        text = serialise(tasks, suffix, rng)
        data = text.replace('"two circles"', deep, 1).encode()
    else:
        text = serialise(tasks, suffix, rng)
        if kind == "whitespace":
            text = text.replace("\n", str(rng.choice(["\r\n", "\r", "\u2028", "\x0c", "\n\n"])))
            text = str(rng.choice(["", "\ufeff", " \n"])) + text
        data = text.encode("utf-8", "surrogatepass")
        if kind == "truncate" and data:
            data = data[: int(rng.integers(0, len(data)))]
        elif kind == "flip" and data:
            flips = rng.integers(0, len(data), int(rng.integers(1, 6)))
            buffer = bytearray(data)
            for position in flips:
                buffer[int(position)] = int(rng.integers(0, 256))
            data = bytes(buffer)
        elif kind == "encoding":
            codec = str(rng.choice(["utf-16", "latin-1", "cp1252", "utf-32"]))
            data = text.replace("two circles", "deux cercles café").encode(codec, "replace")
    path = directory / f"fuzz{index:04d}{suffix}"
    path.write_bytes(data)
    return path, kind


def test_hostile_suite_files_raise_only_value_errors_that_name_the_file(tmp_path):
    rng = np.random.default_rng(20260)
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    others: list[str] = []
    for index in range(N_FILES):
        path, kind = hostile_file(rng, tmp_path, index)
        kinds[kind] += 1
        try:
            tasks = load_tasks(path)
        except ValueError as error:
            assert str(error).startswith(str(path)), f"{kind}: {str(error)[:300]}"
            outcomes["refused by the loader"] += 1
            continue
        except Exception as error:  # noqa: BLE001 - what this test counts
            others.append(f"{path.name} ({kind}): {type(error).__name__}: {str(error)[:200]}")
            continue
        assert tasks and all(isinstance(t, dict) and isinstance(t["prompt"], str) and "id" in t for t in tasks)
        try:
            GenAgentEnv(suite=str(path)).close()
            outcomes["loaded and accepted by the env"] += 1
        except ValueError as error:
            assert str(error).startswith(str(path)), f"{kind}: {str(error)[:300]}"
            outcomes["loaded, refused by the verifier"] += 1
        except Exception as error:  # noqa: BLE001 - what this test counts
            others.append(f"{path.name} ({kind}) in the env: {type(error).__name__}: {str(error)[:200]}")
    print(f"\nsuite-file fuzz: {N_FILES} files ({dict(sorted(kinds.items()))}); {dict(outcomes)}; "
          f"other exceptions: {len(others)}")
    assert others == []
    assert sum(outcomes.values()) == N_FILES
    assert all(count > 10 for count in outcomes.values()) and len(outcomes) == 3
