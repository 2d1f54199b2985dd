"""Task files given as ``suite=``: they load whatever their encoding marks, and a task the scorer
cannot check is named when the env is built."""

from __future__ import annotations

import pytest

from genagent_env.env import GenAgentEnv


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
