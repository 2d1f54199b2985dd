"""A task file that cannot be used fails with a ``ValueError`` that names the file (and the line),
whatever it holds; a task the scorer refuses is named by ``file:line``; and a huge prompt given to
``reset`` costs no more than a short one."""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from genagent_env.env import GenAgentEnv
from genagent_env.tasks import load_tasks
from genagent_env.tasks.wise import load_wise
from genagent_env.vector import GenAgentVectorEnv

TASK = {"tag": "count", "prompt": "two circles", "include": [{"class": "circle", "count": 2}]}
LINE = json.dumps(TASK)


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def raises_naming(path: Path, pattern: str = "") -> Any:
    """pytest.raises(ValueError) whose message starts with the file's name (and matches ``pattern``)."""
    return pytest.raises(ValueError, match=f"^{re.escape(str(path))}{pattern}")


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_a_binary_file_is_named(tmp_path, suffix):
    path = write(tmp_path / f"blob{suffix}", bytes(range(256)) * 4)
    with raises_naming(path, r":2: not UTF-8 text \(byte 0x80 at offset 128\)"):  # byte 10 ends line 1
        load_tasks(path)


def test_a_latin1_file_is_named_with_its_line(tmp_path):
    second = json.dumps({**TASK, "prompt": "deux cercles, café"}, ensure_ascii=False)
    path = write(tmp_path / "latin1.jsonl", (LINE + "\n" + second + "\n").encode("latin-1"))
    with raises_naming(path, r":2: not UTF-8 text .* iconv"):
        load_tasks(path)


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_a_count_with_5000_digits_is_named(tmp_path, suffix):
    task = LINE.replace('"count": 2', '"count": ' + "9" * 5000)
    path = write(tmp_path / f"huge{suffix}", f"[\n{LINE},\n{task}\n]" if suffix == ".json" else f"{LINE}\n{task}\n")
    with raises_naming(path, r":3: not valid JSON \(a number has too many digits\)" if suffix == ".json"
                       else r":2: not valid JSON \(a number has too many digits\)"):
        load_tasks(path)


def test_a_count_that_parses_but_is_absurd_is_named(tmp_path):
    path = write(tmp_path / "big.jsonl", LINE.replace('"count": 2', '"count": ' + "9" * 4000) + "\n")
    with raises_naming(path, r":1: include\[0\].count must be an integer from 1 to 10000, got 9999"):
        load_tasks(path)


@pytest.mark.parametrize("depth", [900, 100_000])
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_deeply_nested_json_is_named(tmp_path, suffix, depth):
    nested = LINE[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    path = write(tmp_path / f"deep{suffix}", f"[{nested}]" if suffix == ".json" else nested)
    with raises_naming(path, r":1: .*nested too deeply"):
        load_tasks(path)


@pytest.mark.parametrize("name, content, pattern", [
    ("empty.json", "", r": the file is empty; expected a JSON list of tasks"),
    ("blank.json", " \n\t\n", r": the file is empty"),
    ("empty.jsonl", "", r": no tasks found"),
    ("blank.jsonl", "\n\n  \n", r": no tasks found"),
    ("list.json", "[]", r": no tasks found"),
    ("object.json", json.dumps(TASK), r": expected a JSON list of tasks, got an object"),
    ("truncated.json", "[\n" + LINE + ",\n" + LINE[:20], r":3: not valid JSON"),
    ("unclosed.json", "[\n" + LINE, r":2: not valid JSON \(the list is not closed\)"),
    ("trailing.json", "[" + LINE + "]\n]", r":2: not valid JSON \(extra data after the list\)"),
    ("truncated.jsonl", LINE + "\n" + LINE[:20] + "\n", r":2: not valid JSON"),
    ("wrong.jsonl", LINE + "\n[1, 2]\n", r":2: a task must be a dict, got list"),
    ("nan.jsonl", LINE.replace("2}", "NaN}") + "\n", r":1: include\[0\].count must be an integer"),
    ("badwise.json", json.dumps([{"prompt_id": 1, "Prompt": "p", "Explanation": "e", "Category": "Cultural",
                                  "Subcategory": "x"}, {"prompt_id": "2"}], indent=1),
     r":9: entry 1: missing field"),
])
def test_files_that_hold_no_usable_tasks_are_named(tmp_path, name, content, pattern):
    path = write(tmp_path / name, content)
    with raises_naming(path, pattern):
        load_tasks(path)


def test_load_wise_names_a_file_that_is_not_utf8(tmp_path):
    path = write(tmp_path / "wise.json", b'[{"Prompt": "caf\xe9"}]')
    with raises_naming(path, ":1: not UTF-8"):
        load_wise(path)


def test_a_line_separator_inside_a_prompt_does_not_split_the_line(tmp_path):
    # str.splitlines() splits at U+2028, which JSON allows raw inside a string.
    path = write(tmp_path / "sep.jsonl", json.dumps({**TASK, "prompt": "two\u2028circles"}, ensure_ascii=False) + "\n")
    assert load_tasks(path)[0]["prompt"] == "two\u2028circles"


# ------------------------------------------------------------------ the scorer refuses a task


def test_a_task_the_verifier_refuses_is_named_by_file_and_line(tmp_path):
    dog = {**TASK, "prompt": "a dog", "include": [{"class": "dog", "count": 1}]}
    path = write(tmp_path / "mine.jsonl", f"{LINE}\n\n{json.dumps(dog)}\n")
    with raises_naming(path, r":3: task mine/00001 \('a dog'\): the shapes verifier cannot check class 'dog'"):
        GenAgentEnv(suite=str(path))
    listed = write(tmp_path / "mine.json", json.dumps([TASK, TASK, dog], indent=2))
    with raises_naming(listed, r":22: task mine/00002"):  # the line where the third task starts
        GenAgentVectorEnv(2, suite=str(listed))


def test_a_wise_file_refused_by_the_verifier_names_the_line(tmp_path):
    entry = {"prompt_id": 7, "Prompt": "The plant gifted on Mother's Day", "Explanation": "a carnation",
             "Category": "Cultural knowledge", "Subcategory": "Festival"}
    path = write(tmp_path / "wise.json", "[\n  " + json.dumps(entry) + "\n]\n")
    with raises_naming(path, r":2: task wise/7 .*needs a task with at least one include item"):
        GenAgentEnv(suite=str(path))


def test_a_task_in_a_list_the_verifier_refuses_is_named_by_its_index():
    dog = {**TASK, "prompt": "a dog", "include": [{"class": "dog", "count": 1}]}
    with pytest.raises(ValueError, match=r"^suite\[1\]: task custom/00001"):
        GenAgentEnv(suite=[TASK, dog])


def test_where_a_task_came_from_is_not_put_in_the_task(tmp_path):
    path = write(tmp_path / "plain.jsonl", LINE + "\n")
    [task] = GenAgentEnv(suite=str(path)).tasks
    assert set(task) == {"tag", "prompt", "include", "id"}


# ------------------------------------------------------------------------ a huge prompt at reset

HUGE = 50_000_000  # characters


def run_episode(env: GenAgentEnv, prompt: str) -> tuple[dict[str, Any], bool]:
    tool = next(iter(env.tools))
    obs, _ = env.reset(seed=0, options={"prompt": prompt})
    env.step(f'<tool_call>{{"name": "{tool}", "arguments": {{"prompt": "two red circles"}}}}</tool_call>')
    *_, terminated, _, _ = env.step("<judge>fine</judge><answer>done</answer>")
    return obs, terminated


@pytest.mark.parametrize("tail", [" ", " caf\u00e9\u0007 "], ids=["ascii", "outside-the-charset"])
def test_a_huge_prompt_costs_no_copy_of_itself(tail):
    """Nothing in reset and the steps that follow copies, filters or strips the whole prompt: the
    memory they allocate stays far below its size (one copy would cost all of it at once)."""
    env = GenAgentEnv()
    unit = "two red circles" + tail
    run_episode(env, unit)  # the first episode's imports and buffers are not the prompt's cost
    prompt = unit * (HUGE // len(unit))
    tracemalloc.start()
    try:
        obs, terminated = run_episode(env, prompt)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert terminated and len(obs["text"]) == env.config.max_text_length
    assert peak < HUGE // 10, f"{peak / 1e6:.0f} MB allocated for a {HUGE / 1e6:.0f} MB prompt"


def test_a_huge_prompt_through_the_vector_env_costs_no_copy_either():
    envs = GenAgentVectorEnv(2)
    envs.reset(seed=0, options={"prompt": "two red circles"})
    prompt = "two red circles " * (HUGE // 16)
    tracemalloc.start()
    try:
        envs.reset(seed=0, options={"prompt": prompt})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < HUGE // 10, f"{peak / 1e6:.0f} MB allocated for a {HUGE / 1e6:.0f} MB prompt"
