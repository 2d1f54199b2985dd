"""Task suites by name (``suite="shapes-geneval"``), from a file, or from a list of task dicts."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from genagent_env.registry import Registry, UnknownNameError
from genagent_env.tasks.loaders import load_tasks_with_sources
from genagent_env.tasks.schema import normalize_task

#: Suite factories take ``split`` (and optionally ``seed``) and return a list of task dicts.
SUITES: Registry[list[dict[str, Any]]] = Registry("suite")
SUITES.register("shapes-geneval", "genagent_env.shapes.suite:make_shapes_geneval")
SUITES.register("shapes-wise", "genagent_env.shapes.wise_suite:make_shapes_wise")


def register_suite(name: str, factory: Any, **defaults: Any) -> None:
    """Register a suite factory ``(split: str, **kwargs) -> list[task dict]`` under ``name``."""
    SUITES.register(name, factory, **defaults)


def resolve_suite(suite: str | Path | Sequence[Mapping[str, Any]], split: str) -> list[dict[str, Any]]:
    """A registered suite name (with ``split``), a path to a task file, or a sequence of tasks."""
    return [task for task, _ in resolve_suite_with_sources(suite, split)]


def resolve_suite_with_sources(
    suite: str | Path | Sequence[Mapping[str, Any]], split: str
) -> list[tuple[dict[str, Any], str]]:
    """:func:`resolve_suite`, with each task paired with where it came from: ``"path:line"`` for a
    file, ``"suite[i]"`` for a list, ``"suite 'name' (split), task i"`` for a registered suite
    (what an error about a task should name)."""
    if isinstance(suite, (str, Path)):
        if str(suite) in SUITES:
            tasks = SUITES.make(str(suite), split=split)
            return [(task, f"suite {str(suite)!r} ({split}), task {index}") for index, task in enumerate(tasks)]
        path = Path(suite)
        if path.is_file():
            return load_tasks_with_sources(path)
        known = SUITES.names()
        close = difflib.get_close_matches(str(suite), known, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownNameError(
            f"suite {str(suite)!r} is neither a registered suite ({', '.join(known)}) nor an existing file.{hint}"
        )
    if isinstance(suite, (Mapping, bytes)) or not isinstance(suite, Iterable):
        raise ValueError(
            "suite must be a registered suite name, a path to a task file, or a list of task dicts; "
            f"got {type(suite).__name__}" + (" (wrap one task in a list)" if isinstance(suite, Mapping) else "")
        )
    sourced = []
    for index, task in enumerate(suite):
        try:
            normalized = normalize_task(task)
        except ValueError as error:
            raise ValueError(f"suite[{index}]: {error}") from None
        normalized.setdefault("id", f"custom/{index:05d}")
        sourced.append((normalized, f"suite[{index}]"))
    if not sourced:
        raise ValueError("the suite is empty")
    return sourced
