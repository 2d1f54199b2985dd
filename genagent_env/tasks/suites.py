"""Task suites by name (``suite="shapes-geneval"``), from a file, or from a list of task dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genagent_env.registry import Registry
from genagent_env.tasks.loaders import load_tasks
from genagent_env.tasks.schema import normalize_task

#: Suite factories take ``split`` (and optionally ``seed``) and return a list of task dicts.
SUITES: Registry[list[dict[str, Any]]] = Registry("suite")
SUITES.register("shapes-geneval", "genagent_env.shapes.suite:make_shapes_geneval")


def register_suite(name: str, factory: Any, **defaults: Any) -> None:
    """Register a suite factory ``(split: str, **kwargs) -> list[task dict]`` under ``name``."""
    SUITES.register(name, factory, **defaults)


def resolve_suite(suite: str | Path | Sequence[Mapping[str, Any]], split: str) -> list[dict[str, Any]]:
    """A registered suite name (with ``split``), a path to a task file, or a sequence of tasks."""
    if isinstance(suite, (str, Path)):
        if str(suite) in SUITES:
            return SUITES.make(str(suite), split=split)
        path = Path(suite)
        if path.is_file():
            return load_tasks(path)
        raise ValueError(
            f"suite {str(suite)!r} is neither a registered suite ({', '.join(SUITES.names())}) nor an existing file"
        )
    tasks = []
    for index, task in enumerate(suite):
        normalized = normalize_task(task)
        normalized.setdefault("id", f"custom/{index:05d}")
        tasks.append(normalized)
    if not tasks:
        raise ValueError("the suite is empty")
    return tasks
