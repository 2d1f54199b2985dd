"""Benchmark results on disk: one JSON line per episode, appended atomically, resumable.

A run folder ``<out>/`` holds ``results.jsonl``: one :class:`ResultRecord` per
(agent, generator, max_rounds, task, seed), identified by its ``key``
``"agent|generator|rounds|task_id|seed"``. Sharded runs append to ``results.rank<k>.jsonl`` first;
rank 0 merges them into ``results.jsonl`` (:func:`merge_results`).

Crash safety: :class:`ResultsWriter` writes each record as one complete line in a single
``write`` to a file opened in append mode, then flushes and ``fsync``\\ s it, so a process killed at
any point leaves at most a torn last line (no trailing newline). :func:`load_results` ignores such a
line, and :class:`ResultsWriter` cuts it off before appending, so the item is simply redone; records
are deduplicated by key on load, the first one kept, so no item is ever counted twice.

Any text goes in: lines are UTF-8 JSON, non-ASCII characters written as they are, except lone
surrogates (``"\\ud800"``: from a suite file's ``\\ud800`` escape, an agent's tool-call JSON, or a
command-line argument that was not UTF-8), which are not UTF-8 and are written as JSON's
``\\ud800`` escape (:func:`dumps_line`). Every ``str`` reads back equal (:func:`stored_form`), except
that a high surrogate directly followed by a low one reads back as the one character the pair
encodes, as JSON defines it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

#: Echo-4o's ``Geneval++.jsonl`` tag names and the GenEval++ column each one is.
GENEVAL_PP_ALIASES: dict[str, str] = {
    "color_attr": "color", "counting": "count", "color_count_attr": "color_count",
    "color_spatial_attr": "color_pos", "spatial_count_attr": "pos_count", "size_spatial_attr": "pos_size",
    "multi_object_count_attr": "multi_count",
}
_SURROGATE = re.compile("[\ud800-\udfff]")
RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
Benchmark = Literal["geneval++", "geneval", "wise", "shapes-wise", "custom"]


class RewardComponents(TypedDict):
    """The parts of the episode reward (they sum to ``reward``)."""

    outcome: float
    reflection: float
    format: float


class _RequiredRound(TypedDict):
    tool: str
    prompt: str
    seed: int | None
    judge: str | None


class RoundRecord(_RequiredRound, total=False):
    """One image-producing tool call: the tool, the prompt and seed it got, the agent's verdict on it
    (``judge``), and the scorer's: whether the image ``passed`` and the ``errors`` its failed checks
    show (error types of :func:`genagent_env.scorers.checklist.error_types`: ``"missing object"``,
    ``"count"``, ``"colour"``, ``"position"``, ``"size"``, or ``"other"``; ``[]`` for a passing image).
    ``passed`` and ``errors`` are absent from records written before they were recorded."""

    passed: bool
    errors: list[str]


class _RequiredRecord(TypedDict):
    key: str
    agent: str
    generator: str
    max_rounds: int
    suite: str
    benchmark: Benchmark
    task_id: str
    task_index: int
    tag: str
    prompt: str
    seed: int
    passed: bool
    score: float
    reward: float
    reward_components: RewardComponents
    final_image: int | None
    images: list[str | None]
    rounds: list[RoundRecord]
    violations: int
    turns: int
    decisions: list[dict[str, Any]]
    elapsed_s: float


class ResultRecord(_RequiredRecord, total=False):
    """One episode of a benchmark run: a line of ``results.jsonl``.

    Fields:
        key: ``"agent|generator|max_rounds|task_id|seed"`` (see :func:`record_key`), unique in a run.
        agent, generator: the specs as given on the command line (``"scripted"``,
            ``"my_pkg.agents:load_llm"``, ``"shapes-medium"``…).
        max_rounds: the most image-producing tool calls allowed.
        suite: ``shapes-geneval`` (with the split, ``shapes-geneval:test``) or the task file's path.
        benchmark: ``geneval++``, ``geneval``, ``wise`` or ``custom``: how the report aggregates.
        task_id, task_index, tag, prompt: the task (its index in the suite, its category, the request).
        seed: the seed index (0, 1, …); the env is reset with ``seed * 100003 + task_index``.
        passed: whether the submitted image passed the scorer (False when none was submitted).
        score: the scorer's graded score of the final image in [0, 1] (0 when there is none).
        reward, reward_components: the episode reward and its parts ``outcome``, ``reflection``, ``format``.
        final_image: the submitted image, 1-based, or None.
        images: one entry per produced image, in round order: its PNG path relative to the run
            folder, or None when it was not saved (``--save-images final`` / ``none``).
        rounds: per image ``{"tool", "prompt", "seed", "judge", "passed", "errors"}`` (``judge``: the
            agent's verdict; ``passed``, ``errors``: the scorer's, see :class:`RoundRecord`).
        violations: format violations; turns: agent messages; decisions: the env's reflection decisions
            (``image``, ``kind``: answer / retry / undecided, ``submitted``, ``correct``).
        tool_calls, failed_tool_calls: the agent's messages that hold a ``<tool_call>`` tag, and how many
            of them made no image (rejected as a format violation, or the tool raised): the tool-call
            failure rate of the report's diagnostics.
        wise: only for WISE tasks, the original WISE fields (``prompt_id``, ``Prompt``,
            ``Explanation``, ``Category``, ``Subcategory``, optional ``Hint``).
        elapsed_s: the episode's share of the wall time (episodes played together overlap: the time since
            the previous record of its vector env, generation and scoring included).

    Records written by earlier versions lack ``tool_calls``, ``failed_tool_calls`` and the rounds'
    ``passed`` and ``errors``: the report shows their diagnostics as missing (–).
    """

    wise: dict[str, Any]
    tool_calls: int
    failed_tool_calls: int


def record_key(agent: str, generator: str, max_rounds: int, task_id: str, seed: int) -> str:
    """The unique key of one grid item: ``"agent|generator|max_rounds|task_id|seed"``."""
    return f"{agent}|{generator}|{int(max_rounds)}|{task_id}|{int(seed)}"


def dumps_line(record: Mapping[str, Any]) -> bytes:
    """``record`` as one UTF-8 JSON line (newline included). Non-ASCII text is written as is; lone
    surrogates, which UTF-8 cannot hold, as ``\\udXXX`` escapes (as ``ensure_ascii`` would), so any
    ``str`` can be written and :func:`load_results` reads it back. NaN and infinities are refused
    (``ValueError``): they are not JSON."""
    text = json.dumps(record, ensure_ascii=False, allow_nan=False)
    # Outside strings JSON is ASCII, so a surrogate here is a character of a string: escape it in place.
    text = _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
    return (text + "\n").encode("utf-8")


def stored_form(value: Any) -> Any:
    """``value`` as it reads back from a results file (``json`` round trip): equal for any ``str``,
    except that a surrogate pair becomes the character it encodes."""
    return json.loads(dumps_line({"v": value}))["v"]


def shard_file(out: str | Path, rank: int) -> Path:
    """The file rank ``rank`` of a sharded run appends to."""
    return Path(out) / f"results.rank{int(rank)}.jsonl"


def _read_lines(path: Path) -> Iterable[tuple[int, str]]:
    data = path.read_bytes()
    lines = data.split(b"\n")
    # The last element is b"" for a file ending in a newline, else a torn write: ignore it.
    for number, raw in enumerate(lines[:-1], start=1):
        if raw.strip():
            yield number, raw.decode("utf-8")


def load_results(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``results*.jsonl`` file, or of every results file in a run folder.

    ``path`` is a results file, or a run folder: then ``results.jsonl`` and every shard
    ``results.rank<k>.jsonl`` are read, in that order. A torn last line (no trailing newline) is
    ignored; records are deduplicated by ``key``, keeping the first. Missing files read as empty;
    a complete line that is not a JSON object raises ``ValueError`` naming the file and line.
    """
    path = Path(path)
    files = [path] if not path.is_dir() else [path / RESULTS_FILE, *_shard_files(path)]
    seen: set[str] = set()
    records: list[dict[str, Any]] = []
    for file in files:
        if not file.is_file():
            continue
        for number, line in _read_lines(file):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{file}:{number}: not valid JSON ({error})") from None
            if not isinstance(record, dict) or "key" not in record:
                raise ValueError(f"{file}:{number}: not a result record (no 'key')")
            if record["key"] not in seen:
                seen.add(record["key"])
                records.append(record)
    return records


def _shard_files(folder: Path) -> list[Path]:
    def rank(path: Path) -> int:
        digits = path.name[len("results.rank") : -len(".jsonl")]
        return int(digits) if digits.isdigit() else 1 << 30

    return sorted(folder.glob("results.rank*.jsonl"), key=rank)


class ResultsWriter:
    """Appends records to a JSONL file, one atomic, durable line each.

    Opening cuts off a torn last line left by a killed writer (so the next line starts clean). Only
    one writer may own a file at a time: shards give each process its own.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _repair(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)
                handle.flush()
                os.fsync(handle.fileno())

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line: a single ``write`` of the whole line, then ``fsync``."""
        line = dumps_line(record)
        written = os.write(self._fd, line)
        if written != len(line):  # a short write (disk full): leave a torn line, never a silent half record
            raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes")
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge_results(out: str | Path, remove_shards: bool = True) -> list[dict[str, Any]]:
    """Merge ``results.jsonl`` and every shard of run folder ``out`` into ``results.jsonl``.

    Records are deduplicated by key (the first kept: existing ``results.jsonl`` lines, then shards
    by rank). The merged file replaces the old one atomically (write to a temporary file, fsync,
    rename), and only then are the shards removed, so a crash never loses a record.
    """
    folder = Path(out)
    records = load_results(folder)
    target = folder / RESULTS_FILE
    temporary = folder / f".{RESULTS_FILE}.merging"
    with open(temporary, "wb") as handle:
        for record in records:
            handle.write(dumps_line(record))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    if remove_shards:
        for shard in _shard_files(folder):
            shard.unlink(missing_ok=True)
    return records
