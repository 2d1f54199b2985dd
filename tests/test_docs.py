"""docs/environment.md is the users' contract: its info table names exactly the keys the env puts in
``info``, at the times it says, and it stands alone (it cites no internal notes)."""

from __future__ import annotations

import re

from tests.helpers import REPO

DOC = REPO / "docs" / "environment.md"
CALL = '<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": 2}}</tool_call>'


def _info_table() -> dict[str, str]:
    """``key -> when present`` from the page's info table."""
    section = DOC.read_text(encoding="utf-8").split("## Info", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| ([^|]+) \|", section, flags=re.MULTILINE)
    return {key: when.strip() for key, when in rows}


def test_the_info_table_names_every_key_at_the_right_time(colour_env):
    table = _info_table()
    always = {key for key, when in table.items() if when == "always"}
    at_end = {key for key, when in table.items() if when == "at the end"}
    assert always and at_end and set(table) == always | at_end | {"generation_cache", "task"}

    env = colour_env()
    _, info = env.reset(seed=0, options={"task_index": 0})
    assert set(info) == always
    _, _, _, _, info = env.step(CALL)
    assert set(info) == always
    _, _, terminated, _, info = env.step("<judge>red</judge><answer>done</answer>")
    assert terminated and set(info) == always | at_end

    env = colour_env(privileged=True, generation_cache=True)
    _, info = env.reset(seed=0, options={"task_index": 0})
    assert set(info) == always | {"generation_cache", "task"}


def test_the_page_stands_alone():
    assert "design.md" not in DOC.read_text(encoding="utf-8")


def test_the_env_docstring_lists_the_same_info_keys_as_the_page():
    from genagent_env.env import GenAgentEnv

    docstring = GenAgentEnv.__doc__ or ""
    section = docstring.split("## Info", 1)[1].split("\n    ## ", 1)[0]
    # A table row starts at the left edge of the table with one or two ``key`` names.
    keys = set(re.findall(r"^    ``([a-z_]+)``(?:, ``([a-z_]+)``)?", section, flags=re.MULTILINE))
    listed = {key for pair in keys for key in pair if key}
    assert listed == set(_info_table())
    assert "design.md" not in docstring
