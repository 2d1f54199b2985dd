"""Load task files: GenEval and GenEval++ metadata (JSON Lines), or a JSON list, in the task schema.

GenEval's ``evaluation_metadata.jsonl`` and GenEval++'s ``Geneval++.jsonl`` both hold one task per
line; both load through :func:`load_tasks`, so real benchmark files run through the same code as
the built-in ShapesWorld suite.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genagent_env.tasks.schema import normalize_task


def load_tasks(path: str | Path) -> list[dict[str, Any]]:
    """Read tasks from a ``.jsonl`` file (one task per line) or a ``.json`` file (a list of tasks,
    or a WISE data file, recognised by its ``Prompt``/``prompt_id`` fields and read by
    :func:`genagent_env.tasks.wise.load_wise`).

    Each task is validated with :func:`normalize_task`; a task without an ``id`` gets
    ``"<file stem>/<line index>"``. Raises ``ValueError`` naming the line of a bad task.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of tasks")
        if data and isinstance(data[0], dict) and "Prompt" in data[0] and "prompt_id" in data[0]:
            from genagent_env.tasks.wise import load_wise  # WISE's own file layout

            return load_wise(path)
        raw = list(enumerate(data, start=1))
    else:
        raw = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    raw.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not valid JSON ({error})") from None
    tasks = []
    for index, (number, item) in enumerate(raw):
        try:
            task = normalize_task(item)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {error}") from None
        task.setdefault("id", f"{path.stem}/{index:05d}")
        tasks.append(task)
    if not tasks:
        raise ValueError(f"{path}: no tasks found")
    return tasks
