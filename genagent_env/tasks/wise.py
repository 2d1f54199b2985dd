"""WISE (World Knowledge-Informed Semantic Evaluation, arXiv 2503.07265): load its prompts, weigh its score.

WISE ships its 1 000 prompts as three JSON files (``cultural_common_sense.json``,
``spatio-temporal_reasoning.json``, ``natural_science.json``), each a list of objects::

    {"prompt_id": 1, "Prompt": "The plant often gifted on Mother's Day",
     "Explanation": "a carnation", "Category": "Cultural knowledge", "Subcategory": "Festival",
     "Hint": "..."}                                   # Hint is optional

:func:`load_wise` turns them into tasks of our schema with no checklist (``include: []``), so they
need a judge that reads the prompt — :class:`~genagent_env.scorers.vlm_judge.VLMJudgeScorer` with
``procedure="wise"``, which also shows the judge the ``Explanation``::

    tasks = load_wise("WISE/data/cultural_common_sense.json")
    env = GenAgentEnv(suite=tasks, generators=..., scorer=VLMJudgeScorer(procedure="wise"))

WISE reports the mean WiScore per category and an overall score weighted by each category's prompt
count (WISE README: ``0.4·Cultural + 0.167·Time + 0.133·Space + 0.1·Biology + 0.1·Physics +
0.1·Chemistry``): :func:`wise_group` names a task's category, :func:`wise_overall` combines them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genagent_env.checks import short_repr
from genagent_env.tasks.loaders import json_list_items, read_task_text
from genagent_env.tasks.schema import normalize_task

#: WISE's six reported categories and their weights in the overall WiScore (400, 167, 133, 100,
#: 100 and 100 of the 1 000 prompts).
WISE_WEIGHTS: dict[str, float] = {
    "Cultural": 0.4,
    "Time": 0.167,
    "Space": 0.133,
    "Biology": 0.1,
    "Physics": 0.1,
    "Chemistry": 0.1,
}
_REQUIRED = ("prompt_id", "Prompt", "Explanation", "Category", "Subcategory")


def _entry_task(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(raw).__name__}")
    missing = [key for key in _REQUIRED if key not in raw]
    if missing:
        raise ValueError(f"{where}: missing field(s) {missing}")
    prompt_id = raw["prompt_id"]
    if isinstance(prompt_id, bool) or not isinstance(prompt_id, int):
        raise ValueError(f"{where}: prompt_id must be an integer, got {short_repr(prompt_id)}")
    shown = short_repr(prompt_id)
    for key in ("Prompt", "Category", "Subcategory"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise ValueError(f"{where} (prompt_id {shown}): {key} must be a non-empty string")
    for key in ("Explanation", "Hint"):
        if key in raw and raw[key] is not None and not isinstance(raw[key], str):
            raise ValueError(f"{where} (prompt_id {shown}): {key} must be a string")
    task = {
        "tag": raw["Category"].strip(),
        "prompt": raw["Prompt"].strip(),
        "include": [],
        "id": f"wise/{prompt_id}",
        "wise": dict(raw),
    }
    try:
        return normalize_task(task)
    except ValueError as error:
        raise ValueError(f"{where} (prompt_id {shown}): {error}") from None


def load_wise(path: str | Path) -> list[dict[str, Any]]:
    """Read a WISE JSON file (a list of prompt objects) into tasks of the GenEval++ schema.

    Each task is ``{"tag": Category, "prompt": Prompt, "include": [], "id": "wise/<prompt_id>",
    "wise": {the original fields}}``. Raises ``ValueError`` naming the file, the line and the entry
    (its index and ``prompt_id``) for a malformed entry or a repeated ``prompt_id``, and the file
    (and line) for a file that is not UTF-8 JSON.
    """
    path = Path(path)
    items = json_list_items(read_task_text(path), path)
    return [task for task, _ in wise_tasks_with_sources(items, path)]


def wise_tasks_with_sources(items: list[tuple[int, Any]], path: Path) -> list[tuple[dict[str, Any], str]]:
    """The tasks of a WISE file's entries (each with the line it starts on, as
    :func:`~genagent_env.tasks.loaders.json_list_items` gives them), each paired with ``"path:line"``."""
    sourced: list[tuple[dict[str, Any], str]] = []
    seen: dict[int, int] = {}
    for index, (line, raw) in enumerate(items):
        where = f"{path}:{line}: entry {index}"
        task = _entry_task(raw, where)
        prompt_id = task["wise"]["prompt_id"]
        if prompt_id in seen:
            raise ValueError(f"{where}: prompt_id {short_repr(prompt_id)} repeats entry {seen[prompt_id]}")
        seen[prompt_id] = index
        sourced.append((task, f"{path}:{line}"))
    if not sourced:
        raise ValueError(f"{path}: no WISE prompts found")
    return sourced


def wise_group(task: Mapping[str, Any]) -> str:
    """The WISE category (a key of :data:`WISE_WEIGHTS`) of a task from :func:`load_wise` or a raw entry.

    As WISE's own scripts do: prompts 1–400 are Cultural, 401–700 are Time when the subcategory is
    longitudinal or horizontal time and Space otherwise, 701–800 Biology, 801–900 Physics,
    901–1000 Chemistry. Entries with other ids fall back on the category names.
    """
    entry = task.get("wise", task)
    if not isinstance(entry, Mapping):
        raise ValueError("not a WISE task: its 'wise' field is not an object")
    subcategory = str(entry.get("Subcategory", "")).lower()
    category = str(entry.get("Category", "")).lower()
    prompt_id = entry.get("prompt_id")
    if isinstance(prompt_id, int) and not isinstance(prompt_id, bool) and 1 <= prompt_id <= 1000:
        if prompt_id <= 400:
            return "Cultural"
        if prompt_id <= 700:
            return "Time" if "time" in subcategory else "Space"
        return ("Biology", "Physics", "Chemistry")[(prompt_id - 701) // 100]
    text = f"{category} {subcategory}"
    for key, group in (("cultur", "Cultural"), ("biolog", "Biology"), ("physic", "Physics"),
                       ("chemi", "Chemistry"), ("time", "Time"), ("spa", "Space")):
        if key in text:
            return group
    raise ValueError(f"cannot tell the WISE category of prompt_id {prompt_id!r} ({entry.get('Category')!r})")


def wise_overall(per_category: Mapping[str, float]) -> float:
    """WISE's overall WiScore from the mean WiScore of each of its six categories.

    ``per_category`` maps each key of :data:`WISE_WEIGHTS` (case-insensitive) to that category's mean
    WiScore in [0, 1]; the result is their weighted sum with weights 0.4, 0.167, 0.133, 0.1, 0.1,
    0.1. Raises ``ValueError`` for a missing or unknown category or a value outside [0, 1].
    """
    given = {str(key).strip().lower(): value for key, value in per_category.items()}
    known = {name.lower() for name in WISE_WEIGHTS}
    unknown = sorted(set(given) - known)
    missing = [name for name in WISE_WEIGHTS if name.lower() not in given]
    if unknown or missing:
        raise ValueError(f"wise_overall needs exactly {list(WISE_WEIGHTS)}; missing {missing}, unknown {unknown}")
    total = 0.0
    for name, weight in WISE_WEIGHTS.items():
        value = given[name.lower()]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"the {name} WiScore must lie in [0, 1], got {value!r}")
        total += weight * float(value)
    return total
