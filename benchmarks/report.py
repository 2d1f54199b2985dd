"""Reports of a benchmark run: the leaderboard (Markdown, CSV, JSON), an HTML front page, a task
browser and plots.

A run folder, as the runner writes it, holds ``results.jsonl`` (one episode record per line, keyed by
``"agent|generator|rounds|task_id|seed"``) and the images under ``images/``. :func:`write_reports`
reads one or more run folders and writes into ``<out>/report/``:

=======================  ===================================================================
``index.html``           the front page: what won, the leaderboard tables, the plots, which agents
                         are oracles and what every column means
``tasks.html``           the task browser: per task, agents × generators × rounds side by side (every
                         round's image, prompt, judgment and decision), with filters, search, paging
``tasks/``               the browser's data: ``index-<k>.js`` (the task list) and ``t/<n>.js`` (one
                         task's episodes), each a small script, so the pages also work from ``file://``
``assets/``              the browser's script
``leaderboard.md``       one table per benchmark, one row per (agent, generator, max_rounds)
``leaderboard.csv``      the same rows, full precision, one column per tag of any benchmark
``leaderboard.json``     the same rows with every per-seed value
``scaling.png``          overall score vs max_rounds, one panel per generator: test-time scaling
``generators.png``       overall score per generator for each agent and budget: cross-tool generalisation
``images/``              only with ``copy_images=True``: the round images, so the folder stands alone
=======================  ===================================================================

No page is large: the task list and each task's episodes are separate files (:data:`DATA_FILE_LIMIT`
bytes at most, a bigger task is split), the browser shows a few tasks per page and the images load
lazily. Without ``copy_images`` the pages read the images from the run folder(s), by a relative path,
and say so on the page: keep ``report/`` inside its run folder, or build with ``copy_images=True``
(``genagent-leaderboard RUN --out DEST --copy-images``) for a folder that can be copied alone.

How the overall score is made follows each benchmark's own definition, computed per seed first and
then averaged over seeds (with the standard deviation over seeds, ``ddof=0``), as the paper's tables:

* **GenEval++** (columns ``color, count, color_count, color_pos, pos_count, pos_size, multi_count``;
  Echo-4o's tag names such as ``color_attr`` or ``size_spatial_attr`` map onto them) and **GenEval**
  (``single_object, two_object, counting, colors, position, color_attr``): the pass rate of each tag,
  and the overall is the mean of the tag pass rates.
* **WISE**: the mean WiScore (the record's ``score``) of each of the six categories
  (:func:`genagent_env.tasks.wise.wise_group`), combined by :func:`~genagent_env.tasks.wise.wise_overall`.
* **custom** suites: the pass rate of each tag present, overall = their mean.

A row whose seed misses a column (a partial run, a subset of tags) still gets an overall over the
columns it has (for WISE: the category weights renormalised), flagged ``partial`` and marked ``†``.

Agents that read the task's hidden checklist (:data:`benchmarks.run.PRIVILEGED_AGENTS`, or a record
with ``"privileged": true``) are *oracles*: marked in every table and left out of "what won".

Every text from a run (tags, prompts, judgments, agent and generator names) is escaped for the format
it lands in: HTML by jinja2's autoescaping (the browser's script only ever sets ``textContent``),
Markdown cells with HTML entities and ``\\|``, CSV cells that a spreadsheet would run as a formula
(``= + - @``) with a leading ``'``. Lone surrogates become U+FFFD.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import re
import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from benchmarks.results import GENEVAL_PP_ALIASES, RESULTS_FILE, load_results
from genagent_env.scorers.checklist import ERROR_TYPES, OTHER_ERROR
from genagent_env.tasks.schema import GENEVAL_PP_TAGS
from genagent_env.tasks.wise import WISE_WEIGHTS, wise_group, wise_overall

#: The six GenEval tags, in the order of GenEval's and the paper's tables.
GENEVAL_TAGS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
#: The three extra tables of a shapes-wise run: its held-out-facts subset, its tasks by GenEval++ tag,
#: and whether the agent's first tool prompt resolved the task's facts, by kind of knowledge.
SHAPES_WISE_HELDOUT = "shapes-wise:held-out facts"
SHAPES_WISE_TAGS = "shapes-wise:tags"
SHAPES_WISE_REWRITES = "shapes-wise:rewrites"
#: The columns of the rewrites table (``wise["Subcategory"]``: the kind of the task's first fact).
KNOWLEDGE_KINDS = ("color knowledge", "count knowledge", "shape knowledge", "place knowledge")
#: The benchmarks in the order their tables appear, with the columns each always shows.
BENCHMARK_COLUMNS: dict[str, tuple[str, ...]] = {
    "geneval++": GENEVAL_PP_TAGS,
    "geneval": GENEVAL_TAGS,
    "wise": tuple(WISE_WEIGHTS),
    "shapes-wise": tuple(WISE_WEIGHTS),
    SHAPES_WISE_HELDOUT: tuple(WISE_WEIGHTS),
    SHAPES_WISE_TAGS: (),
    SHAPES_WISE_REWRITES: KNOWLEDGE_KINDS,
    "custom": (),
}
BENCHMARK_TITLES: dict[str, str] = {
    "geneval++": "GenEval++", "geneval": "GenEval", "wise": "WISE", "shapes-wise": "shapes-wise (WISE categories)",
    SHAPES_WISE_HELDOUT: "shapes-wise, tasks with a fact held out of training",
    SHAPES_WISE_TAGS: "shapes-wise by GenEval++ tag",
    SHAPES_WISE_REWRITES: "shapes-wise: the first tool prompt states the request in literal terms", "custom": "Custom",
}
#: What the overall score of each benchmark is, as written in the reports.
OVERALL_DEFINITIONS: dict[str, str] = {
    "geneval++": "mean of the tag pass rates",
    "geneval": "mean of the tag pass rates",
    "wise": "WiScore per category, weighted 0.4/0.167/0.133/0.1/0.1/0.1 (wise_overall)",
    "shapes-wise": "pass rate per WISE category, weighted 0.4/0.167/0.133/0.1/0.1/0.1 as WISE weighs them",
    SHAPES_WISE_HELDOUT: "pass rate per WISE category, weighted as WISE weighs them (over the categories present)",
    SHAPES_WISE_TAGS: "mean of the tag pass rates",
    SHAPES_WISE_REWRITES: "mean over the kinds of knowledge of the share of episodes whose first tool prompt asks, "
                          "read by the ShapesWorld reader, for exactly the task's literal request (its "
                          "Explanation): the facts were resolved before any image was drawn",
    "custom": "mean of the tag pass rates",
}
#: What each known tag (or WISE category) column holds, for the column legend.
COLUMN_DESCRIPTIONS: dict[str, str] = {
    "color": "several objects, each in its own colour",
    "count": "a given number of objects",
    "color_count": "given numbers of objects in given colours",
    "color_pos": "coloured objects at given places",
    "pos_count": "counted objects at given places",
    "pos_size": "objects at given places with given relative sizes",
    "multi_count": "given numbers of several kinds of object",
    "single_object": "one object",
    "two_object": "two different objects",
    "counting": "a given number of one object",
    "colors": "one object in a given colour",
    "position": "two objects, one left of / above the other",
    "color_attr": "two objects, each in its own colour",
    "Cultural": "cultural common sense (prompts 1–400), weight 0.4",
    "Time": "time: longitudinal and horizontal (part of 401–700), weight 0.167",
    "Space": "space: geography and layout (part of 401–700), weight 0.133",
    "Biology": "biology (701–800), weight 0.1",
    "Physics": "physics (801–900), weight 0.1",
    "Chemistry": "chemistry (901–1000), weight 0.1",
    "color knowledge": "tasks whose first fact names a colour (\"the colour of a stop sign\")",
    "count knowledge": "tasks whose first fact names a count (\"as many as there are days in a week\")",
    "shape knowledge": "tasks whose first fact names a shape (\"the emblem on a first-aid kit\")",
    "place knowledge": "tasks whose first fact names a place (\"where the sun sets on a map\")",
}
#: The fixed columns of every leaderboard table: (header, what it means). ``{overall}`` is filled in.
COLUMN_LEGEND: tuple[tuple[str, str], ...] = (
    ("agent", "the policy that plays the episode. ORACLE: an agent that reads the task's hidden checklist "
              "(a privileged env), so it knows what the scorer checks — an upper bound, not a baseline."),
    ("generator", "the image tool the agent calls."),
    ("rounds", "max_rounds: the most image-producing tool calls allowed in one episode. "
               "“≡ k”: every value of this row equals the row with k rounds (the agent never used the extra "
               "rounds); the plots draw such rows once."),
    ("tag columns", "per tag: the pass rate of that tag's tasks (WISE: the mean WiScore of the category) on each "
                    "seed, then the mean over seeds."),
    ("overall ± std", "{overall}, computed on each seed, then the mean over seeds ± their standard deviation "
                      "(ddof=0; the spread between seeds, not a confidence interval). † = some columns missing: "
                      "the overall is over the columns present."),
    ("per seed", "the overall on each seed index (0, 1, …), in order; the seed index picks the env seed."),
    ("reward", "the mean episode reward: outcome + reflection + format parts (see the README)."),
    ("viol/ep", "format violations per episode: malformed messages (broken tool-call JSON, two tool calls, an "
                "unknown tool, an answer naming no image, …); each changes nothing and the episode goes on."),
    ("img/ep", "images generated per episode (at most rounds)."),
    ("n", "episodes in the row: tasks × seeds."),
)
REPORT_DIR = "report"
#: The key under which :func:`read_runs` notes the run folder a record came from.
RUN_DIR_KEY = "_run_dir"
#: The most bytes of one data file of the task browser (a task with more episodes is split).
DATA_FILE_LIMIT = 1_000_000
#: Texts longer than this are cut in the report (the results file keeps them whole).
TEXT_LIMIT = 4000
#: One colour per agent (matplotlib's tab10, then tab20's light tones), the same in tables and plots.
AGENT_COLOURS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
#: One marker per generator, the same in both plots.
GENERATOR_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")


# ----------------------------------------------------------------------------------------- reading


def read_records(run: Path) -> list[dict[str, Any]]:
    """The records of a run folder (``results.jsonl`` and any shard ``results.rank<k>.jsonl``), read
    by :func:`benchmarks.results.load_results`: a torn last line is ignored and a repeated ``key``
    keeps its first record. Each record gets ``RUN_DIR_KEY``: the run folder, so its relative image
    paths can be resolved. Raises ``FileNotFoundError`` for a folder with no results file.
    """
    run = Path(run)
    if not (run / RESULTS_FILE).is_file() and not any(run.glob("results.rank*.jsonl")):
        raise FileNotFoundError(f"{run / RESULTS_FILE}: no such results file (is {run} a run folder?)")
    records = load_results(run)
    folder = str(run.resolve())
    for record in records:
        record[RUN_DIR_KEY] = folder
    return records


def read_runs(runs: Sequence[Path]) -> list[dict[str, Any]]:
    """The records of several run folders, merged: a record key seen in an earlier run wins."""
    merged: list[dict[str, Any]] = []
    seen: set[str] = set()
    for run in runs:
        for record in read_records(run):
            if record["key"] not in seen:
                seen.add(record["key"])
                merged.append(record)
    return merged


# ------------------------------------------------------------------------------------------- text

_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: Any) -> str:
    """``str(value)`` that any encoder takes: a lone surrogate (which UTF-8 cannot hold) becomes
    U+FFFD and a surrogate pair the character it encodes."""
    text = value if isinstance(value, str) else str(value)
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def short_text(value: Any, limit: int = TEXT_LIMIT) -> str:
    """:func:`clean_text`, cut to ``limit`` characters with a note of how many more there were."""
    text = clean_text(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def markdown_cell(value: Any) -> str:
    """Text for a Markdown table cell: HTML special characters as entities (no raw HTML reaches the
    page), ``\\`` and ``|`` escaped (a ``|`` cannot split the column), line breaks as spaces."""
    text = html.escape(clean_text(value), quote=False)
    text = text.replace("\\", "\\\\").replace("|", "\\|")
    return re.sub(r"[\r\n]+", " ", text)


#: What a spreadsheet takes as the start of a formula (OWASP's list for CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: Any) -> str:
    """Text for a CSV cell that a spreadsheet shows as text: a cell starting with ``= + - @`` (or a
    tab or carriage return) gets a leading ``'``, so ``=HYPERLINK(...)`` is not run as a formula.
    Numbers are written by the caller, not through this."""
    text = clean_text(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


# ---------------------------------------------------------------------------------------- the table


@dataclass(frozen=True, order=True)
class RowKey:
    """A leaderboard row: one agent with one generator and a round budget, on one benchmark."""

    benchmark: str
    agent: str
    generator: str
    max_rounds: int

    @property
    def label(self) -> str:
        """``"scripted · shapes-medium · 4 rounds"``."""
        return f"{self.agent} · {self.generator} · {self.max_rounds} round{'s' if self.max_rounds != 1 else ''}"


@dataclass
class Row:
    """One leaderboard row, per seed and averaged over seeds.

    ``columns`` are the row's tag (or WISE category) columns; ``per_seed[column][i]`` is that
    column's score on ``seeds[i]`` (NaN where the seed has no task of it); ``overall_per_seed[i]`` the
    benchmark's overall on that seed. ``column_mean`` and ``overall``/``overall_std`` are the mean
    (and standard deviation, ``ddof=0``) over the seeds. ``mean_reward``, ``violations_per_episode``
    and ``images_per_episode`` are over all ``n`` episodes of the row. ``oracle``: the agent reads
    the hidden checklist (see :func:`oracle_agents`). ``diagnostics``: the paper's diagnostics of the
    row's episodes (:class:`Diagnostics`; set by :func:`build_rows`).
    """

    key: RowKey
    columns: tuple[str, ...]
    seeds: list[int]
    per_seed: dict[str, list[float]]
    overall_per_seed: list[float]
    n_per_seed: list[int]
    overall: float
    overall_std: float
    column_mean: dict[str, float]
    partial: bool
    mean_reward: float
    violations_per_episode: float
    images_per_episode: float
    n: int
    oracle: bool = False
    diagnostics: Diagnostics | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``)."""
        return {
            "benchmark": self.key.benchmark,
            "agent": self.key.agent,
            "generator": self.key.generator,
            "max_rounds": self.key.max_rounds,
            "oracle": self.oracle,
            "seeds": list(self.seeds),
            "n": self.n,
            "n_per_seed": list(self.n_per_seed),
            "overall": _json_float(self.overall),
            "overall_std": _json_float(self.overall_std),
            "overall_per_seed": [_json_float(v) for v in self.overall_per_seed],
            "partial": self.partial,
            "columns": {c: _json_float(self.column_mean[c]) for c in self.columns},
            "columns_per_seed": {c: [_json_float(v) for v in self.per_seed[c]] for c in self.columns},
            "mean_reward": _json_float(self.mean_reward),
            "violations_per_episode": _json_float(self.violations_per_episode),
            "images_per_episode": _json_float(self.images_per_episode),
            "diagnostics": None if self.diagnostics is None else self.diagnostics.to_dict(),
        }

    def signature(self) -> tuple[Any, ...]:
        """Every value of the row (per seed; NaN-safe, for equality), its key aside: two rows with
        the same signature are the same results, e.g. an agent that never calls twice at two
        ``max_rounds``."""
        def seq(values: Iterable[float]) -> tuple[str, ...]:
            return tuple(repr(float(v)) for v in values)

        return (tuple(self.seeds), tuple(self.n_per_seed), seq(self.overall_per_seed),
                tuple((c, seq(self.per_seed[c])) for c in self.columns),
                seq((self.mean_reward, self.violations_per_episode, self.images_per_episode)))


def _json_float(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def row_key(record: Mapping[str, Any]) -> RowKey:
    """The leaderboard row a record belongs to."""
    return RowKey(str(record.get("benchmark", "custom")), str(record["agent"]), str(record["generator"]),
                  int(record["max_rounds"]))


def column_of(record: Mapping[str, Any]) -> str:
    """The table column a record counts in: its tag (GenEval++ names mapped to the paper's) or its
    WISE category."""
    benchmark = record.get("benchmark", "custom")
    tag = str(record.get("tag", ""))
    if benchmark in ("wise", "shapes-wise", SHAPES_WISE_HELDOUT):
        return wise_group(record if isinstance(record.get("wise"), Mapping) else {"Category": tag})
    if benchmark == "geneval++":
        return GENEVAL_PP_ALIASES.get(tag, tag)
    if benchmark == SHAPES_WISE_REWRITES:
        return str(record["wise"].get("Subcategory", tag))
    return tag


def oracle_agents(records: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The agents of ``records`` that read the hidden checklist: the runner's privileged agents
    (:data:`benchmarks.run.PRIVILEGED_AGENTS`: ``scripted``, ``resample``) and any agent with a
    record that says ``"privileged": true``."""
    from benchmarks.run import PRIVILEGED_AGENTS

    oracles: set[str] = set()
    for record in records:
        agent = str(record.get("agent", ""))
        if agent in PRIVILEGED_AGENTS or record.get("privileged") is True:
            oracles.add(agent)
    return frozenset(oracles)


def _views(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The tables a record counts in: its benchmark's, and for shapes-wise also the table by
    GenEval++ tag, the rewrites table (when the task states its literal request) and, when the task
    uses a fact held out of training, the held-out table."""
    if record.get("benchmark") != "shapes-wise":
        return [record]
    views: list[Mapping[str, Any]] = [record, {**record, "benchmark": SHAPES_WISE_TAGS}]
    wise = record.get("wise")
    if has_literal_request(record):
        views.append({**record, "benchmark": SHAPES_WISE_REWRITES})
    if isinstance(wise, Mapping) and wise.get("heldout_fact") is True:
        views.append({**record, "benchmark": SHAPES_WISE_HELDOUT})
    return views


def has_literal_request(record: Mapping[str, Any]) -> bool:
    """Whether the record's task states its request in literal terms (``wise["Explanation"]``, as
    shapes-wise tasks do): what :func:`rewrite_resolved` compares the first tool prompt with."""
    wise = record.get("wise")
    return isinstance(wise, Mapping) and isinstance(wise.get("Explanation"), str)


def first_prompt(record: Mapping[str, Any]) -> str | None:
    """The prompt of the record's first tool call that made an image (``None``: it made none)."""
    rounds = record.get("rounds") or []
    first = rounds[0] if rounds and isinstance(rounds[0], Mapping) else None
    prompt = first.get("prompt") if first is not None else None
    return prompt if isinstance(prompt, str) else None


def rewrite_resolved(record: Mapping[str, Any]) -> bool:
    """Whether a shapes-wise episode's first tool prompt asks for exactly the task's literal request
    (:func:`~genagent_env.shapes.wise_suite.asks_for_the_same` with ``wise["Explanation"]``); an
    episode with no tool call that made an image resolved nothing."""
    from genagent_env.shapes.wise_suite import asks_for_the_same

    prompt = first_prompt(record)
    return prompt is not None and asks_for_the_same(prompt, str(record["wise"]["Explanation"]))


def _value(record: Mapping[str, Any]) -> float:
    """What a record contributes to its column: the WiScore for WISE, pass/fail otherwise."""
    if record.get("benchmark") == "wise":
        return float(record["score"])
    if record.get("benchmark") == SHAPES_WISE_REWRITES:
        return float(rewrite_resolved(record))
    return float(bool(record["passed"]))


def _overall(benchmark: str, values: Mapping[str, float]) -> tuple[float, bool]:
    """The benchmark's overall from one seed's column scores, and whether columns were missing."""
    present = {column: value for column, value in values.items() if not math.isnan(value)}
    if not present:
        return math.nan, True
    expected = BENCHMARK_COLUMNS.get(benchmark, ())
    partial = any(column not in present for column in expected)
    if benchmark in ("wise", "shapes-wise", SHAPES_WISE_HELDOUT):
        if not partial:
            return wise_overall(present), False
        weights = {column: WISE_WEIGHTS[column] for column in present}
        return sum(weights[c] * present[c] for c in present) / sum(weights.values()), True
    return float(np.mean(list(present.values()))), partial


def _columns(benchmark: str, seen: Iterable[str]) -> tuple[str, ...]:
    fixed = BENCHMARK_COLUMNS.get(benchmark, ())
    extra = sorted(set(seen) - set(fixed))
    return (*fixed, *extra)


def build_rows(records: Iterable[Mapping[str, Any]]) -> list[Row]:
    """The leaderboard rows of a set of records, sorted by benchmark, agent, generator, rounds."""
    grouped: dict[RowKey, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        for view in _views(record):
            grouped[row_key(view)].append(view)
    oracles = oracle_agents(r for group in grouped.values() for r in group)
    order = {name: index for index, name in enumerate(BENCHMARK_COLUMNS)}
    rows = [_build_row(key, group, key.agent in oracles) for key, group in grouped.items()]
    set_reflection_gains(rows)
    rows.sort(key=lambda row: (order.get(row.key.benchmark, len(order)), row.key.benchmark, row.key.agent,
                               row.key.generator, row.key.max_rounds))
    return rows


def _build_row(key: RowKey, records: Sequence[Mapping[str, Any]], oracle: bool = False) -> Row:
    by_seed: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_seed[int(record["seed"])][column_of(record)].append(_value(record))
    seeds = sorted(by_seed)
    columns = _columns(key.benchmark, {c for cols in by_seed.values() for c in cols})
    per_seed = {c: [float(np.mean(by_seed[s][c])) if by_seed[s].get(c) else math.nan for s in seeds]
                for c in columns}
    overall_per_seed, partial = [], False
    for i, _ in enumerate(seeds):
        value, seed_partial = _overall(key.benchmark, {c: per_seed[c][i] for c in columns})
        overall_per_seed.append(value)
        partial = partial or seed_partial
    column_mean = {c: _nanmean(per_seed[c]) for c in columns}
    finite = [v for v in overall_per_seed if not math.isnan(v)]
    return Row(
        key=key,
        columns=columns,
        seeds=seeds,
        per_seed=per_seed,
        overall_per_seed=overall_per_seed,
        n_per_seed=[sum(len(v) for v in by_seed[s].values()) for s in seeds],
        overall=float(np.mean(finite)) if finite else math.nan,
        overall_std=float(np.std(finite)) if finite else math.nan,
        column_mean=column_mean,
        partial=partial,
        mean_reward=float(np.mean([float(r.get("reward", 0.0)) for r in records])),
        violations_per_episode=float(np.mean([int(r.get("violations", 0)) for r in records])),
        images_per_episode=float(np.mean([len(r.get("images") or []) for r in records])),
        n=len(records),
        oracle=oracle,
        diagnostics=diagnose(records),
    )


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


# ------------------------------------------------------------------------------------ diagnostics

#: The error types of the judgment-accuracy columns: ``none`` (a decision on a passing image), then
#: :data:`~genagent_env.scorers.checklist.ERROR_TYPES`; ``other`` is added when a row has it.
JUDGMENT_TYPES: tuple[str, ...] = ("none", *ERROR_TYPES)
#: The benchmark views that get no diagnostics table of their own (the same episodes as another table).
NO_DIAGNOSTICS_TABLE = frozenset({SHAPES_WISE_TAGS, SHAPES_WISE_REWRITES})
#: The round budget the reflection gain is measured from.
GAIN_BASE_ROUNDS = 1
#: The diagnostics columns: (header, what it means), in the order the tables show them.
DIAGNOSTICS_LEGEND: tuple[tuple[str, str], ...] = (
    ("overall", "the row's overall score, as in the leaderboard (mean over seeds)."),
    ("reflection gain", f"the gain from reflection: this row's overall minus the overall of the same agent and "
                        f"generator at {GAIN_BASE_ROUNDS} round (at 2 rounds: what one round of judging and "
                        "refining adds; at 4: what three add). – on the 1-round row, or with no 1-round row."),
    ("tool-call failure", "failed tool calls / tool-call attempts: an attempt is an agent message that holds a "
                          "<tool_call> tag; it failed when it made no image: the env rejected the message as a "
                          "format violation (broken JSON, an unknown tool or argument, two calls, no rounds left, "
                          "…) or the tool raised. Beside it: the number of attempts. – when there were none."),
    ("prompt drift", "how far the prompts the agent sent to the tool move from the user's prompt: 1 − the "
                     "Jaccard similarity of their sets of lower-cased words (0: the same words, 1: none in "
                     "common), mean over every round of the row."),
    ("prompts changed", "the share of rounds whose tool prompt differs from the user's prompt at all (any "
                        "character, white space aside)."),
    ("judgment", "judgment accuracy: the share of the agent's submit/retry decisions that agree with the "
                 "verifier. A decision is taken on the latest image each time the agent submits or calls the tool "
                 "again; it is a judgment when a tool call was still left (on image k < rounds): submitting is "
                 "right iff the submitted image passes, calling again iff the image fails, and leaving it "
                 "undecided until the turn limit is wrong. Forced submissions (no tool call left) are not "
                 "counted, so 1-round rows have none (–). Beside it: the number of judgments. (The reward's "
                 "reflection accuracy, in leaderboard.json as env_reflection_accuracy, differs: it counts forced "
                 "submissions and wants a retry to make a better image.)"),
    ("by error type", "judgment accuracy over the judgments on images of one error type, with their number: "
                      "none = a judgment on a passing image (submitting it is right); on a failing image (calling "
                      "again is right), it counts once for each of the image's error types, the kinds of its "
                      "failed checks: missing object (a counted object with no instance at all), count (too many "
                      "or too few; too many of an excluded object), colour (the right number of that shape, in "
                      "another colour), position (a region or a relation to another object), size (relative "
                      "size), other (a check of none of these kinds)."),
)
_WORD = re.compile(r"[^\W_]+")


def prompt_words(text: str) -> frozenset[str]:
    """The set of lower-cased words (runs of letters and digits) of ``text``."""
    return frozenset(_WORD.findall(clean_text(text).lower()))


def prompt_drift(prompt: str, user: str) -> float:
    """1 − the Jaccard similarity of the word sets of ``prompt`` and ``user`` (two empty texts: 0)."""
    a, b = prompt_words(prompt), prompt_words(user)
    union = a | b
    return 1.0 - (len(a & b) / len(union) if union else 1.0)


@dataclass
class Diagnostics:
    """The paper's diagnostics of one leaderboard row's episodes.

    ``tool_calls``/``failed_tool_calls`` sum the records' counts (``recorded``: how many records hold
    them; older records do not). ``drift``, ``changed``: mean prompt drift and share of changed
    prompts over the ``prompt_rounds`` rounds. ``decisions``/``correct``: the agent's judgments (its
    decisions taken with a tool call left, :func:`judgment_right`) and the right ones;
    ``by_type[t] = [right, total]`` per error type of the image decided on (only judgments whose
    round records the verdict, ``typed`` of them). ``env_decisions``/``env_correct``: every decision
    and those the env marked ``correct`` (the reward's reflection accuracy, which also counts forced
    submissions and wants a retry to improve the image). ``reflection_gain``: the row's
    overall minus that at ``gain_from`` rounds (NaN when there is no such row, or this is it).
    """

    tool_calls: int = 0
    failed_tool_calls: int = 0
    recorded: int = 0
    prompt_rounds: int = 0
    drift: float = math.nan
    changed: float = math.nan
    decisions: int = 0
    correct: int = 0
    typed: int = 0
    by_type: dict[str, list[int]] = field(default_factory=dict)
    env_decisions: int = 0
    env_correct: int = 0
    reflection_gain: float = math.nan
    gain_from: int | None = None

    @property
    def tool_call_failure_rate(self) -> float:
        """Failed attempts / attempts (NaN without attempts)."""
        return self.failed_tool_calls / self.tool_calls if self.tool_calls else math.nan

    @property
    def judgment_accuracy(self) -> float:
        """Right decisions / decisions (NaN without decisions)."""
        return self.correct / self.decisions if self.decisions else math.nan

    def type_accuracy(self, kind: str) -> float:
        """Judgment accuracy over the decisions on images of error type ``kind`` (NaN when none)."""
        right, total = self.by_type.get(kind, (0, 0))
        return right / total if total else math.nan

    def types(self) -> tuple[str, ...]:
        """:data:`JUDGMENT_TYPES`, then any other type this row has (``other``)."""
        return (*JUDGMENT_TYPES, *sorted(set(self.by_type) - set(JUDGMENT_TYPES)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``)."""
        return {
            "tool_calls": self.tool_calls if self.recorded else None,
            "failed_tool_calls": self.failed_tool_calls if self.recorded else None,
            "tool_call_failure_rate": _json_float(self.tool_call_failure_rate),
            "prompt_drift": _json_float(self.drift),
            "prompts_changed": _json_float(self.changed),
            "prompt_rounds": self.prompt_rounds,
            "reflection_gain": _json_float(self.reflection_gain),
            "reflection_gain_from_rounds": self.gain_from,
            "judgment_accuracy": _json_float(self.judgment_accuracy),
            "decisions": self.decisions,
            "correct_decisions": self.correct,
            "env_reflection_accuracy": _json_float(self.env_correct / self.env_decisions
                                                   if self.env_decisions else math.nan),
            "judgment_by_error_type": {
                kind: {"accuracy": _json_float(self.type_accuracy(kind)), "correct": self.by_type.get(kind, [0, 0])[0],
                       "decisions": self.by_type.get(kind, [0, 0])[1]}
                for kind in self.types()
            },
        }


def decision_types(record: Mapping[str, Any], decision: Mapping[str, Any]) -> list[str] | None:
    """The error types of the image ``decision`` was taken on: ``["none"]`` when it passed, else its
    round's ``errors`` (``["other"]`` if it names none); ``None`` when the record has no verdict for
    that round (a record written before verdicts were recorded)."""
    rounds = record.get("rounds") or []
    image = decision.get("image")
    if not isinstance(image, int) or not 1 <= image <= len(rounds) or not isinstance(rounds[image - 1], Mapping):
        return None
    verdict = rounds[image - 1]
    if not isinstance(verdict.get("passed"), bool):
        return None
    if verdict["passed"]:
        return ["none"]
    errors = verdict.get("errors")
    kinds = [clean_text(e) for e in errors] if isinstance(errors, list) else []
    return list(dict.fromkeys(kinds)) or [OTHER_ERROR]


def judgment_right(record: Mapping[str, Any], decision: Mapping[str, Any]) -> bool | None:
    """Whether a decision of the record agrees with the verifier, if it is a judgment: on image k
    with a tool call left (k < max_rounds), submitting is right iff the submitted image passes (the
    env's ``correct``), calling the tool again iff image k fails, and leaving it undecided (the turn
    limit came first) is wrong. ``None`` for a forced decision (no tool call left: the agent had to
    submit) and for a retry on a round with no recorded verdict (an older record)."""
    image, rounds = decision.get("image"), record.get("rounds") or []
    try:
        budget = int(record.get("max_rounds", 0))
    except (TypeError, ValueError):
        return None
    if not isinstance(image, int) or image >= budget:
        return None
    kind = decision.get("kind")
    if kind == "answer":
        return decision.get("correct") is True
    if kind == "retry":
        verdict = rounds[image - 1] if 1 <= image <= len(rounds) else None
        passed = verdict.get("passed") if isinstance(verdict, Mapping) else None
        return None if not isinstance(passed, bool) else not passed
    return False


def diagnose(records: Sequence[Mapping[str, Any]]) -> Diagnostics:
    """The :class:`Diagnostics` of a row's records (its ``reflection_gain`` is set by
    :func:`set_reflection_gains`, which needs the other rows)."""
    out = Diagnostics()
    drifts: list[float] = []
    changed: list[bool] = []
    for record in records:
        attempts, failed = record.get("tool_calls"), record.get("failed_tool_calls")
        if isinstance(attempts, int) and isinstance(failed, int):
            out.recorded += 1
            out.tool_calls += attempts
            out.failed_tool_calls += failed
        user = clean_text(record.get("prompt", ""))
        for round_ in record.get("rounds") or []:
            if isinstance(round_, Mapping) and isinstance(round_.get("prompt"), str):
                drifts.append(prompt_drift(round_["prompt"], user))
                changed.append(" ".join(clean_text(round_["prompt"]).split()) != " ".join(user.split()))
        for decision in record.get("decisions") or []:
            if not isinstance(decision, Mapping):
                continue
            out.env_decisions += 1
            out.env_correct += decision.get("correct") is True
            right = judgment_right(record, decision)
            if right is None:
                continue
            out.decisions += 1
            out.correct += right
            kinds = decision_types(record, decision)
            if kinds is None:
                continue
            out.typed += 1
            for kind in kinds:
                tally = out.by_type.setdefault(kind, [0, 0])
                tally[0] += right
                tally[1] += 1
    out.prompt_rounds = len(drifts)
    if drifts:
        out.drift = float(np.mean(drifts))
        out.changed = float(np.mean(changed))
    return out


def set_reflection_gains(rows: Sequence[Row], base: int = GAIN_BASE_ROUNDS) -> None:
    """Set each row's ``diagnostics.reflection_gain``: its overall minus the overall of the row of the
    same benchmark, agent and generator at ``base`` rounds (NaN without one, and on that row itself)."""
    reference = {(r.key.benchmark, r.key.agent, r.key.generator): r.overall for r in rows if r.key.max_rounds == base}
    for row in rows:
        found = reference.get((row.key.benchmark, row.key.agent, row.key.generator))
        if row.diagnostics is None or found is None or row.key.max_rounds == base:
            continue
        row.diagnostics.reflection_gain = row.overall - found
        row.diagnostics.gain_from = base


def diagnostics_types(rows: Sequence[Row]) -> tuple[str, ...]:
    """The judgment-accuracy columns of a table: :data:`JUDGMENT_TYPES`, then any other type present."""
    found = tuple(dict.fromkeys(t for row in rows if row.diagnostics for t in row.diagnostics.types()))
    return found or JUDGMENT_TYPES


def _diagnostics_cells(row: Row, types: Sequence[str]) -> dict[str, Any]:
    """A row's diagnostics as display strings (``–`` for a missing value), for every table."""
    d = row.diagnostics or Diagnostics()
    gain = d.reflection_gain
    return {
        "overall": _fmt(row.overall),
        "gain": "–" if math.isnan(gain) else f"{gain:+.3f}",
        "gain_from": d.gain_from,
        "failure": _fmt(d.tool_call_failure_rate), "attempts": d.tool_calls if d.recorded else None,
        "drift": _fmt(d.drift), "changed": _fmt(d.changed),
        "judgment": _fmt(d.judgment_accuracy), "decisions": d.decisions,
        "types": [{"name": t, "accuracy": _fmt(d.type_accuracy(t)), "n": d.by_type.get(t, [0, 0])[1]} for t in types],
    }


def diagnostics_groups(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """The rows of each benchmark that gets a diagnostics table (all but :data:`NO_DIAGNOSTICS_TABLE`)."""
    return {b: group for b, group in rows_by_benchmark(rows).items() if b not in NO_DIAGNOSTICS_TABLE}


def rows_by_benchmark(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """The rows grouped by benchmark, keeping their order."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.key.benchmark, []).append(row)
    return out


def table_columns(rows: Sequence[Row]) -> tuple[str, ...]:
    """The union of the rows' columns, in order of first appearance."""
    return tuple(dict.fromkeys(c for row in rows for c in row.columns))


# ------------------------------------------------------------------------------- reading the rows


def same_as(rows: Sequence[Row]) -> dict[RowKey, int]:
    """For each row whose every value equals that of a row with fewer ``max_rounds`` (same benchmark,
    agent and generator; :meth:`Row.signature`): that smallest ``max_rounds``. An agent that never
    calls twice gives the same row at every budget; the tables mark such rows ``≡ k`` and the plots
    draw them once."""
    first: dict[tuple[str, str, str, tuple[Any, ...]], int] = {}
    out: dict[RowKey, int] = {}
    for row in sorted(rows, key=lambda r: r.key):
        signature = (row.key.benchmark, row.key.agent, row.key.generator, row.signature())
        if signature in first:
            out[row.key] = first[signature]
        else:
            first[signature] = row.key.max_rounds
    return out


def constant_agents(rows: Sequence[Row]) -> set[tuple[str, str]]:
    """The (benchmark, agent) pairs whose rows are the same at every ``max_rounds`` with every
    generator (and that have more than one ``max_rounds``)."""
    lines: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for row in rows:
        lines[(row.key.benchmark, row.key.agent, row.key.generator)].append(row)
    flat: dict[tuple[str, str], bool] = {}
    for (benchmark, agent, _), members in lines.items():
        same = len({m.key.max_rounds for m in members}) > 1 and len({m.signature() for m in members}) == 1
        flat[(benchmark, agent)] = flat.get((benchmark, agent), True) and same
    return {pair for pair, yes in flat.items() if yes}


def generator_order(rows: Sequence[Row]) -> list[str]:
    """The generators from the weakest to the strongest (by mean overall over all rows), ties by name."""
    scores: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        scores[row.key.generator].append(row.overall if not math.isnan(row.overall) else 0.0)
    return sorted(scores, key=lambda g: (float(np.mean(scores[g])), g))


def agent_order(rows: Sequence[Row]) -> list[str]:
    """The agents: the non-oracles by name, then the oracles by name."""
    oracle = {row.key.agent: row.oracle for row in rows}
    return sorted(oracle, key=lambda a: (oracle[a], a))


def agent_colours(rows: Sequence[Row]) -> dict[str, str]:
    """One colour per agent (:data:`AGENT_COLOURS`, in :func:`agent_order`), as in the plots."""
    return {agent: AGENT_COLOURS[i % len(AGENT_COLOURS)] for i, agent in enumerate(agent_order(rows))}


@dataclass
class Winner:
    """The best non-oracle row of one benchmark, generator and ``max_rounds`` (``None`` when every
    agent there is an oracle), the other non-oracle rows within noise of it (their mean ± std
    intervals overlap), and the best oracle row for reference."""

    benchmark: str
    generator: str
    max_rounds: int
    best: Row | None
    ties: list[Row]
    oracle: Row | None


def _score(row: Row) -> float:
    return -math.inf if math.isnan(row.overall) else row.overall


def _std(row: Row) -> float:
    return 0.0 if math.isnan(row.overall_std) else row.overall_std


def what_won(rows: Sequence[Row]) -> list[Winner]:
    """Per benchmark, generator (weakest first) and ``max_rounds``: the best non-oracle agent."""
    out = []
    for benchmark, group in rows_by_benchmark(rows).items():
        for generator in generator_order(group):
            for rounds in sorted({r.key.max_rounds for r in group}):
                cell = [r for r in group if r.key.generator == generator and r.key.max_rounds == rounds]
                if not cell:
                    continue
                fair = sorted((r for r in cell if not r.oracle), key=lambda r: (-_score(r), r.key.agent))
                oracles = sorted((r for r in cell if r.oracle), key=lambda r: (-_score(r), r.key.agent))
                best = fair[0] if fair else None
                ties = [r for r in fair[1:] if best is not None
                        and _score(best) - _score(r) <= _std(best) + _std(r)] if best else []
                out.append(Winner(benchmark, generator, rounds, best, ties, oracles[0] if oracles else None))
    return out


def summary_lines(rows: Sequence[Row]) -> list[str]:
    """A few computed sentences on what won (plain text), for the front page."""
    lines = []
    constant = constant_agents(rows)
    groups = rows_by_benchmark(rows)
    for benchmark, group in groups.items():
        prefix = f"{BENCHMARK_TITLES.get(benchmark, benchmark)}: " if len(groups) > 1 else ""
        fair = [r for r in group if not r.oracle and not math.isnan(r.overall)]
        oracles = [r for r in group if r.oracle and not math.isnan(r.overall)]
        if fair:
            best = max(fair, key=lambda r: (r.overall, -r.key.max_rounds))
            budget = ("at any max_rounds" if (benchmark, best.key.agent) in constant
                      else f"at {best.key.max_rounds} round{'s' if best.key.max_rounds != 1 else ''}")
            lines.append(f"{prefix}Best agent that does not read the checklist: {best.key.agent}, with "
                         f"{best.key.generator} {budget}: {_fmt(best.overall)} ± {_fmt(best.overall_std)}.")
        else:
            lines.append(f"{prefix}Every agent in this run is an oracle (reads the checklist): there is no fair "
                         "baseline to name.")
        if oracles:
            top = max(oracles, key=lambda r: (r.overall, -r.key.max_rounds))
            lines.append(f"{prefix}Oracle ceiling: {_fmt(top.overall)} ± {_fmt(top.overall_std)} ({top.key.label}). "
                         "Oracles know what the scorer checks: they bound what a perfect judge could reach and "
                         "are not ranked.")
        for agent in agent_order(group):
            mine = [r for r in group if r.key.agent == agent]
            if (benchmark, agent) in constant:
                most = max(r.images_per_episode for r in mine)
                why = " (it makes at most one image per episode)" if most <= 1.0 else ""
                lines.append(f"{prefix}Agent {agent}: the same results at every max_rounds{why}; its rows "
                             "repeat (≡ in the table) and the plots draw them once.")
                continue
            gains = []
            for generator in generator_order(mine):
                line = sorted((r for r in mine if r.key.generator == generator), key=lambda r: r.key.max_rounds)
                if len(line) > 1 and not math.isnan(line[0].overall) and not math.isnan(line[-1].overall):
                    gains.append(line[-1].overall - line[0].overall)
            rounds = sorted({r.key.max_rounds for r in mine})
            if gains and len(rounds) > 1:
                lines.append(f"{prefix}Agent {agent}{' (oracle)' if mine[0].oracle else ''} from {rounds[0]} to "
                             f"{rounds[-1]} rounds: {min(gains):+.3f} to {max(gains):+.3f} overall, depending on "
                             "the generator.")
    return lines


# ------------------------------------------------------------------------------- Markdown, CSV, JSON


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def column_legend(benchmark: str) -> list[tuple[str, str]]:
    """(header, meaning) of every fixed column of ``benchmark``'s table."""
    overall = OVERALL_DEFINITIONS.get(benchmark, "mean of the tag pass rates")
    return [(name, text.replace("{overall}", f"the benchmark's overall score ({overall})"))
            for name, text in COLUMN_LEGEND]


def render_markdown(rows: Sequence[Row]) -> str:
    """One Markdown table per benchmark; the best overall of an agent that is not an oracle in bold
    (of any agent when all are oracles); oracle agents and every column explained under the tables.
    Every text cell is escaped (:func:`markdown_cell`)."""
    parts = ["# Leaderboard", ""]
    same = same_as(rows)
    for benchmark, group in rows_by_benchmark(rows).items():
        columns = table_columns(group)
        ranked = [r for r in group if not r.oracle] or list(group)  # oracles are not ranked
        best = max((r.overall for r in ranked if not math.isnan(r.overall)), default=math.nan)
        parts += [f"## {markdown_cell(BENCHMARK_TITLES.get(benchmark, benchmark))}", "",
                  f"Overall: {OVERALL_DEFINITIONS.get(benchmark, 'mean of the tag pass rates')}, per seed, "
                  "then mean ± std over seeds. **Bold**: the best agent that does not read the checklist. "
                  "† = some columns missing. ≡ k = the same values as with k rounds. Oracle agents are named "
                  "under the table; the columns are defined there too.", ""]
        header = ["agent", "generator", "rounds", *map(markdown_cell, columns), "overall", "per seed", "reward",
                  "viol/ep", "img/ep", "n"]
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" * 3 + "---:|" * (len(header) - 3))
        for row in group:
            overall = f"{_fmt(row.overall)} ± {_fmt(row.overall_std)}"
            if row.overall == best and row in ranked:
                overall = f"**{_fmt(row.overall)}** ± {_fmt(row.overall_std)}"
            if row.partial:
                overall += " †"
            rounds = str(row.key.max_rounds) + (f" ≡ {same[row.key]}" if row.key in same else "")
            cells = [markdown_cell(row.key.agent), markdown_cell(row.key.generator), rounds]
            cells += [_fmt(row.column_mean.get(c, math.nan)) for c in columns]
            cells += [overall, " / ".join(_fmt(v) for v in row.overall_per_seed), _fmt(row.mean_reward),
                      _fmt(row.violations_per_episode, 2), _fmt(row.images_per_episode, 2), str(row.n)]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
        oracles = sorted({row.key.agent for row in group if row.oracle})
        if oracles:
            parts += ["*(oracle)*: " + ", ".join(f"`{markdown_cell(a)}`" for a in oracles)
                      + " read the task's hidden checklist (privileged env): an upper bound, not a baseline.", ""]
        parts += ["Columns:", ""]
        parts += [f"- **{markdown_cell(name)}**: {markdown_cell(text)}" for name, text in column_legend(benchmark)]
        described = [c for c in columns if c in COLUMN_DESCRIPTIONS]
        if described:
            parts.append("- tags: " + "; ".join(f"**{markdown_cell(c)}**: {markdown_cell(COLUMN_DESCRIPTIONS[c])}"
                                                for c in described))
        parts.append("")
    parts += render_markdown_diagnostics(rows)
    return "\n".join(parts)


def _with_n(value: str, n: int) -> str:
    """``"0.950 (40)"``; just ``–`` when there is nothing to count."""
    return f"{value} ({n})" if n else "–"


def render_markdown_diagnostics(rows: Sequence[Row]) -> list[str]:
    """The lines of the Markdown diagnostics tables (one per benchmark, :func:`diagnostics_groups`)
    and their column definitions."""
    groups = diagnostics_groups(rows)
    if not groups:
        return []
    parts = ["# Diagnostics", "",
             "The paper's diagnostics per agent, generator and max rounds: the gain from reflection, tool-call "
             "failures, how far the agent's prompts move from the user's, and how often its submit/retry "
             "decisions were right, by the error type of the image decided on; how many in brackets. Oracle agents "
             "are named under each table; the columns are defined at the end.", ""]
    for benchmark, group in groups.items():
        types = diagnostics_types(group)
        parts += [f"## Diagnostics: {markdown_cell(BENCHMARK_TITLES.get(benchmark, benchmark))}", ""]
        header = ["agent", "generator", "rounds", "overall", "reflection gain", "tool-call failure (attempts)",
                  "prompt drift", "prompts changed", "judgment (decisions)", *(f"judgment: {t}" for t in types)]
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" * 3 + "---:|" * (len(header) - 3))
        for row in group:
            c = _diagnostics_cells(row, types)
            rounds = str(row.key.max_rounds)
            attempts = "" if c["attempts"] is None else f" ({c['attempts']})"
            cells = [markdown_cell(row.key.agent), markdown_cell(row.key.generator), rounds, c["overall"], c["gain"],
                     c["failure"] + attempts, c["drift"], c["changed"], _with_n(c["judgment"], c["decisions"]),
                     *(_with_n(t["accuracy"], t["n"]) for t in c["types"])]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
        oracles = sorted({row.key.agent for row in group if row.oracle})
        if oracles:
            parts += ["*(oracle)*: " + ", ".join(f"`{markdown_cell(a)}`" for a in oracles)
                      + " read the task's hidden checklist (privileged env): an upper bound, not a baseline.", ""]
    parts += ["Diagnostics columns:", ""]
    parts += [f"- **{markdown_cell(name)}**: {markdown_cell(text)}" for name, text in DIAGNOSTICS_LEGEND]
    parts.append("")
    return parts


#: The CSV's fixed leading and trailing columns; the tag columns of every benchmark go between.
CSV_HEAD = ("benchmark", "agent", "generator", "max_rounds", "seeds", "n")
CSV_TAIL = ("overall", "overall_std", "overall_per_seed", "partial", "mean_reward", "violations_per_episode",
            "images_per_episode", "oracle")


def render_csv(rows: Sequence[Row]) -> str:
    """All rows in one CSV (full precision; a column a row lacks is empty; lists joined by ``;``).
    Text cells (names, tag headers) pass through :func:`csv_text`: no cell starts a formula."""
    columns = table_columns(rows)
    types = diagnostics_types(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_HEAD, *map(csv_text, columns), *CSV_TAIL, *csv_diagnostics_columns(types)])
    for row in rows:
        writer.writerow([
            csv_text(row.key.benchmark), csv_text(row.key.agent), csv_text(row.key.generator), row.key.max_rounds,
            ";".join(str(s) for s in row.seeds), row.n,
            *[_csv_float(row.column_mean[c]) if c in row.column_mean else "" for c in columns],
            _csv_float(row.overall), _csv_float(row.overall_std),
            ";".join(_csv_float(v) for v in row.overall_per_seed), str(row.partial).lower(),
            _csv_float(row.mean_reward), _csv_float(row.violations_per_episode), _csv_float(row.images_per_episode),
            str(row.oracle).lower(), *_csv_diagnostics(row, types),
        ])
    return buffer.getvalue()


#: The CSV's diagnostics columns (see :data:`DIAGNOSTICS_LEGEND`); per error type ``t`` (spaces as
#: ``_``) then ``judgment_<t>`` (accuracy) and ``decisions_<t>`` (their number).
CSV_DIAGNOSTICS = ("reflection_gain", "tool_calls", "failed_tool_calls", "tool_call_failure_rate", "prompt_drift",
                   "prompts_changed", "judgment_accuracy", "decisions")


def csv_diagnostics_columns(types: Sequence[str]) -> list[str]:
    """The headers of the CSV's diagnostics columns for the error types ``types``."""
    per_type = [f"{what}_{csv_text(t).replace(' ', '_')}" for t in types for what in ("judgment", "decisions")]
    return [*CSV_DIAGNOSTICS, *per_type]


def _csv_diagnostics(row: Row, types: Sequence[str]) -> list[str]:
    d = row.diagnostics or Diagnostics()
    counts = [str(d.tool_calls), str(d.failed_tool_calls)] if d.recorded else ["", ""]
    per_type = [v for t in types for v in (_csv_float(d.type_accuracy(t)), str(d.by_type.get(t, [0, 0])[1]))]
    return [_csv_float(d.reflection_gain), *counts, _csv_float(d.tool_call_failure_rate), _csv_float(d.drift),
            _csv_float(d.changed), _csv_float(d.judgment_accuracy), str(d.decisions), *per_type]


def _csv_float(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def render_json(rows: Sequence[Row], runs: Sequence[Path] = ()) -> str:
    """``{"runs": [...], "benchmarks": {name: {"columns", "overall", "rows": [Row.to_dict()]}},
    "diagnostics_columns": {column: meaning}}`` (each row's ``diagnostics``: :meth:`Diagnostics.to_dict`).
    Pure ASCII: any text, lone surrogates included, is a JSON escape."""
    payload: dict[str, Any] = {"runs": [str(Path(run)) for run in runs], "benchmarks": {}}
    for benchmark, group in rows_by_benchmark(rows).items():
        payload["benchmarks"][benchmark] = {
            "columns": list(table_columns(group)),
            "overall": OVERALL_DEFINITIONS.get(benchmark, "mean of the tag pass rates"),
            "rows": [row.to_dict() for row in group],
        }
    payload["diagnostics_columns"] = dict(DIAGNOSTICS_LEGEND)
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"


# --------------------------------------------------------------------------------------------- HTML


def _environment() -> Any:
    """The jinja2 environment of ``benchmarks/templates`` (autoescaping on for every template)."""
    try:
        import jinja2
        from markupsafe import Markup, escape
    except ImportError as error:  # jinja2 comes with the bench extra
        raise ImportError(f"the HTML report needs jinja2 ({error}); install the extra: "
                          "pip install 'genagent-env[bench]'") from None
    environment = jinja2.Environment(loader=jinja2.PackageLoader("benchmarks", "templates"), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                     keep_trailing_newline=True)

    def breakable(value: Any) -> Markup:
        # Escaped first, then a line-break opportunity after each _ and - (long tag names wrap).
        return Markup(str(escape(clean_text(value))).replace("_", "_<wbr>").replace("-", "-<wbr>"))

    environment.filters["breakable"] = breakable
    environment.filters["clean"] = clean_text
    return environment


def _clean_tree(value: Any) -> Any:
    """``value`` (dicts, lists, tuples of str and numbers) with every string through :func:`clean_text`,
    so that no filter (``urlencode`` encodes to UTF-8) meets a lone surrogate."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {_clean_tree(k): _clean_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_tree(v) for v in value]
    return value


def _template_text(name: str) -> str:
    """A file of ``benchmarks/templates`` as text (the static script)."""
    from importlib.resources import files

    return files("benchmarks").joinpath("templates").joinpath(name).read_text(encoding="utf-8")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass
class Images:
    """Where the pages find the round images: ``url(record, relative)`` is the link from the report
    folder, ``note`` what the pages say about it, ``copied`` whether they are inside the report."""

    report_dir: Path
    copy: bool
    runs: list[Path]
    copied: int = 0
    missing: int = 0
    _prefix: dict[str, str] = field(default_factory=dict)

    def url(self, record: Mapping[str, Any], relative: str) -> str | None:
        """The link (URL-quoted, relative to the report folder) to an image of ``record`` (its path
        ``relative`` to the record's run folder); ``None`` for an image that cannot be copied."""
        folder = str(record.get(RUN_DIR_KEY, self.report_dir.parent))
        if self.copy:
            return self._copied(Path(folder), relative)
        if os.path.isabs(relative):
            return quote(Path(os.path.relpath(relative, self.report_dir)).as_posix())
        if folder not in self._prefix:
            self._prefix[folder] = Path(os.path.relpath(folder, self.report_dir)).as_posix()
        return quote(f"{self._prefix[folder]}/{relative.replace(os.sep, '/')}")

    def _copied(self, run_dir: Path, relative: str) -> str | None:
        source = run_dir / relative
        index = self.runs.index(run_dir) if run_dir in self.runs else len(self.runs)
        try:
            inside = source.resolve().relative_to(run_dir.resolve())
        except ValueError:  # a path that leaves its run folder is not copied
            self.missing += 1
            return None
        parts = inside.parts[1:] if inside.parts[:1] == ("images",) else inside.parts
        target = self.report_dir / "images" / str(index) / Path(*parts)
        if not target.exists():
            if not source.is_file():
                self.missing += 1
                return None
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:  # another file system: copy
                shutil.copy2(source, target)
            self.copied += 1
        return quote(target.relative_to(self.report_dir).as_posix())

    def note(self) -> dict[str, Any]:
        """What the pages say about the images."""
        if self.copy:
            return {"copied": True, "folders": [], "text": f"The {self.copied} images are inside this folder "
                    "(report/images/): the folder can be copied or moved on its own."}
        folders = [Path(os.path.relpath(run, self.report_dir)).as_posix() + "/" for run in self.runs]
        return {"copied": False, "folders": folders,
                "text": "The images are not inside this folder: the pages read them from the run folder"
                        f"{'s' if len(folders) > 1 else ''} at " + ", ".join(folders)
                        + " (relative to report/). Keep report/ where it is, copy it together with the run "
                        "folder, or build a copy that stands alone: genagent-leaderboard RUN --out DEST "
                        "--copy-images."}


def _rows_for_page(benchmark: str, group: Sequence[Row], same: Mapping[RowKey, int],
                   colours: Mapping[str, str], wide: bool) -> dict[str, Any]:
    """One benchmark's table, ready for ``index.html``."""
    columns = table_columns(group)
    fair = [r.overall for r in group if not r.oracle and not math.isnan(r.overall)]
    best = max(fair, default=math.nan)
    ordered = sorted(group, key=lambda r: (r.oracle, r.key.agent, generator_order(group).index(r.key.generator),
                                           r.key.max_rounds))
    out_rows = []
    for i, row in enumerate(ordered):
        first_agent = i == 0 or ordered[i - 1].key.agent != row.key.agent
        first_pair = first_agent or ordered[i - 1].key.generator != row.key.generator
        out_rows.append({
            "agent": row.key.agent, "generator": row.key.generator, "rounds": row.key.max_rounds,
            "oracle": row.oracle, "colour": colours[row.key.agent],
            "agent_span": sum(1 for r in ordered if r.key.agent == row.key.agent) if first_agent else 0,
            "generator_span": sum(1 for r in ordered if (r.key.agent, r.key.generator)
                                  == (row.key.agent, row.key.generator)) if first_pair else 0,
            "group_start": first_agent,
            "same_as": same.get(row.key),
            "columns": [_fmt(row.column_mean.get(c, math.nan)) for c in columns],
            "overall": _fmt(row.overall), "std": _fmt(row.overall_std), "partial": row.partial,
            "bar": 0.0 if math.isnan(row.overall) else max(0.0, min(1.0, row.overall)) * 100,
            "best": not row.oracle and row.overall == best,
            "per_seed": [_fmt(v) for v in row.overall_per_seed],
            "reward": _fmt(row.mean_reward), "violations": _fmt(row.violations_per_episode, 2),
            "images": _fmt(row.images_per_episode, 2), "n": row.n,
        })
    seeds = sorted({s for r in group for s in r.seeds})
    return {
        "benchmark": benchmark, "title": BENCHMARK_TITLES.get(benchmark, benchmark),
        "overall": OVERALL_DEFINITIONS.get(benchmark, "mean of the tag pass rates"),
        "columns": [{"name": c, "about": COLUMN_DESCRIPTIONS.get(c, "")} for c in columns],
        "split": wide, "rows": out_rows, "seeds": seeds,
        "legend": column_legend(benchmark),
    }


def _diagnostics_for_page(benchmark: str, group: Sequence[Row], colours: Mapping[str, str]) -> dict[str, Any]:
    """One benchmark's diagnostics table, ready for ``index.html`` (rows in the leaderboard's order)."""
    types = diagnostics_types(group)
    generators = generator_order(group)
    ordered = sorted(group, key=lambda r: (r.oracle, r.key.agent, generators.index(r.key.generator), r.key.max_rounds))
    out_rows = []
    for i, row in enumerate(ordered):
        first_agent = i == 0 or ordered[i - 1].key.agent != row.key.agent
        first_pair = first_agent or ordered[i - 1].key.generator != row.key.generator
        out_rows.append({
            "agent": row.key.agent, "generator": row.key.generator, "rounds": row.key.max_rounds,
            "oracle": row.oracle, "colour": colours[row.key.agent],
            "agent_span": sum(1 for r in ordered if r.key.agent == row.key.agent) if first_agent else 0,
            "generator_span": sum(1 for r in ordered if (r.key.agent, r.key.generator)
                                  == (row.key.agent, row.key.generator)) if first_pair else 0,
            "group_start": first_agent,
            **_diagnostics_cells(row, types),
        })
    return {"benchmark": benchmark, "title": BENCHMARK_TITLES.get(benchmark, benchmark), "types": list(types),
            "rows": out_rows}


def render_index(rows: Sequence[Row], records: Sequence[Mapping[str, Any]], images: Images,
                 files: Mapping[str, str]) -> str:
    """The front page (``index.html``): what won, the leaderboard tables, the plots, the oracles and
    the column legend. ``files`` maps a label to a file name in the report folder, for links."""
    same = same_as(rows)
    colours = agent_colours(rows)
    constant = constant_agents(rows)
    tables = []
    for benchmark, group in rows_by_benchmark(rows).items():
        tables.append(_rows_for_page(benchmark, group, same, colours, wide=len(table_columns(group)) > 9))
    winners = []
    for benchmark, group in rows_by_benchmark(rows).items():
        cells = what_won(group)
        rounds = sorted({w.max_rounds for w in cells})
        grid = []
        for generator in generator_order(group):
            line = []
            for r in rounds:
                found = next((w for w in cells if w.generator == generator and w.max_rounds == r), None)
                line.append(None if found is None else {
                    "agent": found.best.key.agent if found.best else None,
                    "colour": colours[found.best.key.agent] if found.best else "#999",
                    "score": _fmt(found.best.overall) if found.best else "",
                    "std": _fmt(found.best.overall_std) if found.best else "",
                    "ties": [t.key.agent for t in found.ties],
                    "oracle": found.oracle.key.agent if found.oracle else None,
                    "oracle_score": _fmt(found.oracle.overall) if found.oracle else "",
                })
            grid.append({"generator": generator, "cells": line})
        winners.append({"title": BENCHMARK_TITLES.get(benchmark, benchmark), "rounds": rounds, "grid": grid})
    agents = [{"name": a, "colour": colours[a], "oracle": any(r.oracle for r in rows if r.key.agent == a),
               "constant": any((b, a) in constant for b in rows_by_benchmark(rows))}
              for a in agent_order(rows)]
    tasks = {(str(r.get("benchmark", "custom")), str(r.get("task_id", ""))) for r in records}
    context = {
        "title": "GenAgent benchmark report",
        "stats": {
            "episodes": len(records), "tasks": len(tasks), "rows": len(rows),
            "images": sum(len(r.get("images") or []) for r in records),
            "generators": generator_order(rows),
            "rounds": sorted({r.key.max_rounds for r in rows}),
            "seeds": sorted({s for r in rows for s in r.seeds}),
            "benchmarks": [BENCHMARK_TITLES.get(b, b) for b in rows_by_benchmark(rows)],
        },
        "agents": agents, "oracles": [a for a in agents if a["oracle"]],
        "summary": summary_lines(rows), "winners": winners, "tables": tables,
        "diagnostics": [_diagnostics_for_page(benchmark, group, colours)
                        for benchmark, group in diagnostics_groups(rows).items()],
        "diagnostics_legend": list(DIAGNOSTICS_LEGEND),
        "images": images.note(), "files": files,
    }
    return clean_text(_environment().get_template("index.html").render(**_clean_tree(context)))


def render_tasks_page(meta: Mapping[str, Any], index_files: Sequence[str]) -> str:
    """The task browser's page (``tasks.html``): the filters and an empty list that
    ``assets/browser.js`` fills from the data files."""
    return clean_text(_environment().get_template("tasks.html").render(
        meta=_clean_tree(meta), index_files=list(index_files)))


def _js_data(call: str, *arguments: Any) -> str:
    """``GA.call(arg, ...);``: pure-ASCII JSON arguments (lone surrogates as escapes), so the file is
    valid JavaScript whatever the text holds; the browser only ever puts it in ``textContent``."""
    text = ",".join(json.dumps(a, ensure_ascii=True, separators=(",", ":"), allow_nan=False) for a in arguments)
    return f"GA.{call}({text});\n"


def _task_order(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    order = {name: index for index, name in enumerate(BENCHMARK_COLUMNS)}
    first: dict[tuple[str, str], Mapping[str, Any]] = {}
    for record in records:
        first.setdefault((str(record.get("benchmark", "custom")), str(record.get("task_id", ""))), record)
    return sorted(first, key=lambda k: (order.get(k[0], len(order)), k[0], _int(first[k].get("task_index", 0)), k[1]))


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else round(number, 4)


def _episode(record: Mapping[str, Any], combo: int, seed: int, images: Images) -> dict[str, Any]:
    """One episode for the browser: outcome and every round (image, tool, prompt, seed, judgment,
    decision)."""
    decisions = {_int(d.get("image")): d for d in record.get("decisions") or []
                 if isinstance(d, Mapping) and "image" in d}
    files = list(record.get("images") or [])
    rounds = list(record.get("rounds") or [])
    out_rounds = []
    for index in range(max(len(files), len(rounds))):
        info = rounds[index] if index < len(rounds) and isinstance(rounds[index], Mapping) else {}
        relative = files[index] if index < len(files) else None
        decision = decisions.get(index + 1)
        out_rounds.append({
            "img": images.url(record, str(relative)) if relative else None,
            "tool": short_text(info.get("tool", ""), 200),
            "prompt": short_text(info.get("prompt", "")),
            "seed": info.get("seed") if isinstance(info.get("seed"), int) else None,
            "judge": None if info.get("judge") is None else short_text(info.get("judge")),
            "decision": None if decision is None else {
                "kind": short_text(decision.get("kind", ""), 100),
                "correct": decision.get("correct") if isinstance(decision.get("correct"), bool) else None,
                "submitted": decision.get("submitted") if isinstance(decision.get("submitted"), int) else None,
            },
        })
    components = record.get("reward_components")
    final = record.get("final_image")
    return {
        "c": combo, "s": seed, "pass": bool(record.get("passed")), "score": _float(record.get("score")),
        "reward": _float(record.get("reward")),
        "parts": {clean_text(k): _float(v) for k, v in components.items()} if isinstance(components, Mapping) else {},
        "final": final if isinstance(final, int) else None, "violations": _int(record.get("violations", 0)),
        "turns": _int(record.get("turns", 0)), "rounds": out_rounds,
    }


def _split(items: Sequence[dict[str, Any]], limit: int) -> list[list[dict[str, Any]]]:
    """``items`` in consecutive parts of at most ``limit`` bytes of JSON each (one item per part at least)."""
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in items:
        length = len(json.dumps(item, ensure_ascii=True, separators=(",", ":"))) + 1
        if parts[-1] and size + length > limit:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += length
    return parts


def write_task_browser(records: Sequence[Mapping[str, Any]], rows: Sequence[Row], report_dir: Path,
                       images: Images, limit: int | None = None) -> Path:
    """Write ``tasks.html``, ``assets/browser.js`` and the data under ``tasks/``: the task list in
    ``tasks/index-<k>.js`` and each task's episodes in ``tasks/t/<n>[-<part>].js``, no file over
    ``limit`` bytes (default :data:`DATA_FILE_LIMIT`; plus the few bytes of the call around it and
    one episode at least). Returns the page's path."""
    limit = DATA_FILE_LIMIT if limit is None else limit
    data_dir = report_dir / "tasks"
    if data_dir.is_dir():
        shutil.rmtree(data_dir)  # the data of an earlier build (its tasks may differ)
    (data_dir / "t").mkdir(parents=True)
    agents = agent_order(rows)
    oracles = {r.key.agent for r in rows if r.oracle}
    generators = generator_order(rows)
    rounds = sorted({r.key.max_rounds for r in rows})
    seeds = sorted({_int(r.get("seed", 0)) for r in records})
    combos = sorted({(agents.index(str(r["agent"])), generators.index(str(r["generator"])), _int(r["max_rounds"]))
                     for r in records})
    combo_index = {combo: i for i, combo in enumerate(combos)}
    seed_index = {seed: i for i, seed in enumerate(seeds)}
    benchmarks = list(dict.fromkeys(str(r.get("benchmark", "custom")) for r in records))
    by_task: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        by_task[(str(record.get("benchmark", "custom")), str(record.get("task_id", "")))].append(record)
    entries = []
    for number, key in enumerate(_task_order(records)):
        episodes = by_task[key]
        first = episodes[0]
        outcome = ["-"] * (len(combos) * len(seeds))
        out = []
        for record in episodes:
            combo = combo_index[(agents.index(str(record["agent"])), generators.index(str(record["generator"])),
                                 _int(record["max_rounds"]))]
            seed = seed_index[_int(record.get("seed", 0))]
            outcome[combo * len(seeds) + seed] = "1" if record.get("passed") else "0"
            out.append(_episode(record, combo, seed, images))
        out.sort(key=lambda e: (e["c"], e["s"]))
        name = f"{number:05d}"
        parts = _split(out, limit)
        for p, part in enumerate(parts):
            target = data_dir / "t" / (f"{name}.js" if p == 0 else f"{name}-{p}.js")
            target.write_text(_js_data("task", number, p, part), encoding="ascii")
        entries.append({
            "n": number, "id": short_text(key[1], 300), "b": benchmarks.index(key[0]),
            "tag": short_text(first.get("tag", ""), 200), "col": short_text(column_of(first), 200),
            "prompt": short_text(first.get("prompt", ""), 1000), "parts": len(parts), "o": "".join(outcome),
        })
    index_files = []
    for k, part in enumerate(_split(entries, limit)):
        index_files.append(f"tasks/index-{k}.js")
        (report_dir / index_files[-1]).write_text(_js_data("tasks", k, part), encoding="ascii")
    meta = {
        "benchmarks": [BENCHMARK_TITLES.get(b, b) for b in benchmarks],
        "agents": [{"name": clean_text(a), "oracle": a in oracles, "colour": agent_colours(rows)[a]} for a in agents],
        "generators": [clean_text(g) for g in generators], "rounds": rounds, "seeds": seeds,
        "combos": [list(c) for c in combos], "tasks": len(entries), "episodes": len(records),
        "images": images.note(),
    }
    (report_dir / "tasks" / "meta.js").write_text(_js_data("meta", meta), encoding="ascii")
    (report_dir / "assets").mkdir(exist_ok=True)
    (report_dir / "assets" / "browser.js").write_text(_template_text("browser.js"), encoding="utf-8")
    page = report_dir / "tasks.html"
    page.write_text(render_tasks_page(meta, ["tasks/meta.js", *index_files]), encoding="utf-8")
    return page


# -------------------------------------------------------------------------------------------- plots


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _text(value: Any) -> str:
    """A name as matplotlib draws it literally: no lone surrogates (the font engine refuses them), no
    ``$`` that would start math mode."""
    return clean_text(value).replace("$", r"\$")


def _rounds_label(rounds: Sequence[int]) -> str:
    return f"{', '.join(str(r) for r in rounds)} round{'s' if len(rounds) > 1 or rounds[0] != 1 else ''}"


def plot_scaling(rows: Sequence[Row], path: Path) -> Path:
    """Write :func:`scaling_figure` to ``path`` (PNG)."""
    return _save(scaling_figure(rows), path)


def plot_generators(rows: Sequence[Row], path: Path) -> Path:
    """Write :func:`generators_figure` to ``path`` (PNG)."""
    return _save(generators_figure(rows), path)


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110, bbox_inches="tight")  # "tight" keeps the legend outside the panels in the file
    _pyplot().close(fig)
    return path


def scaling_figure(rows: Sequence[Row]) -> Any:
    """The test-time scaling figure (a matplotlib ``Figure``): overall score vs ``max_rounds``, one
    panel per generator (weakest first; one row of panels per benchmark), one colour per agent, the
    generator's marker, oracles dashed with hollow markers, ± std over seeds as error bars, the
    legend outside the panels. An agent whose rows are the same at every ``max_rounds`` is drawn
    once, as one point and a dotted level, and the legend says so."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    colours = agent_colours(rows)
    agents = agent_order(rows)
    all_generators = generator_order(rows)
    markers = {g: GENERATOR_MARKERS[i % len(GENERATOR_MARKERS)] for i, g in enumerate(all_generators)}
    groups = rows_by_benchmark(rows)
    ncols = max((len({r.key.generator for r in group}) for group in groups.values()), default=1)
    fig, axes = plt.subplots(len(groups) or 1, ncols, figsize=(3.4 * ncols + 0.6, 3.3 * max(len(groups), 1)),
                             squeeze=False, sharey=True)
    constant = constant_agents(rows)
    for row_axes, (benchmark, group) in zip(axes, groups.items()):
        rounds = sorted({r.key.max_rounds for r in group})
        generators = generator_order(group)
        present = [a for a in agents if any(r.key.agent == a for r in group)]
        for ax, generator in zip(row_axes, generators):
            for i, agent in enumerate(present):
                line = sorted((r for r in group if r.key.agent == agent and r.key.generator == generator),
                              key=lambda r: r.key.max_rounds)
                if not line:
                    continue
                oracle = line[0].oracle
                dodge = (i - (len(present) - 1) / 2) * 0.05
                style = {"color": colours[agent], "marker": markers[generator], "markersize": 6, "capsize": 3,
                         "markerfacecolor": "white" if oracle else colours[agent], "linewidth": 1.6}
                if (benchmark, agent) in constant:
                    first = line[0]
                    ax.hlines(first.overall, -0.2, len(rounds) - 0.8, colors=colours[agent], linestyles=":",
                              linewidth=1.4)
                    ax.errorbar([rounds.index(first.key.max_rounds) + dodge], [first.overall],
                                yerr=[_std(first)], linestyle="none", **style)
                    continue
                ax.errorbar([rounds.index(r.key.max_rounds) + dodge for r in line], [r.overall for r in line],
                            yerr=[_std(r) for r in line], linestyle="--" if oracle else "-", **style)
            ax.set_xticks(range(len(rounds)))
            ax.set_xticklabels([str(r) for r in rounds])
            ax.set_xlim(-0.3, len(rounds) - 0.7)
            ax.set_xlabel("max rounds (image calls allowed)")
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(_text(f"{BENCHMARK_TITLES.get(benchmark, benchmark)} · {generator}"), fontsize=10)
            ax.grid(alpha=0.3)
        for ax in row_axes[len(generators):]:
            ax.set_visible(False)
        row_axes[0].set_ylabel("overall score (mean ± std over seeds)")
    handles = []
    for agent in agents:
        oracle = any(r.oracle for r in rows if r.key.agent == agent)
        flat = any((b, agent) in constant for b in groups)
        label = _text(agent) + (" (oracle)" if oracle else "") + (" — same at every max_rounds, drawn once"
                                                                  if flat else "")
        handles.append(Line2D([], [], color=colours[agent], marker="o", markerfacecolor="white" if oracle
                              else colours[agent], linestyle=":" if flat else "--" if oracle else "-", label=label))
    handles += [Line2D([], [], color="#444", marker=markers[g], linestyle="none", label=f"generator {_text(g)}")
                for g in all_generators]
    fig.suptitle("Test-time scaling: overall score vs max rounds", fontsize=11)
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def generators_figure(rows: Sequence[Row]) -> Any:
    """The cross-tool figure (a matplotlib ``Figure``): overall score per generator, for each agent
    and round budget (one line each, agent by agent; one panel per benchmark): a dot per generator
    in the agent's colour and the generator's marker, ± std over seeds, joined by a grey bar from
    the weakest to the strongest generator. Budgets whose rows are identical are one line,
    labelled with all their budgets and "identical"."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    colours = agent_colours(rows)
    all_generators = generator_order(rows)
    markers = {g: GENERATOR_MARKERS[i % len(GENERATOR_MARKERS)] for i, g in enumerate(all_generators)}
    groups = rows_by_benchmark(rows)
    plans = []
    for benchmark, group in groups.items():
        lines: list[tuple[str, list[int], bool]] = []
        for agent in agent_order(group):
            mine = [r for r in group if r.key.agent == agent]
            classes: dict[tuple[Any, ...], list[int]] = {}
            for rounds in sorted({r.key.max_rounds for r in mine}):
                signature = tuple((r.key.generator, r.signature()) for r in sorted(mine, key=lambda r: r.key.generator)
                                  if r.key.max_rounds == rounds)
                classes.setdefault(signature, []).append(rounds)
            lines += [(agent, budgets, mine[0].oracle) for budgets in classes.values()]
        plans.append((benchmark, group, lines))
    heights = [0.42 * len(lines) + 1.1 for _, _, lines in plans] or [2.0]
    fig, axes = plt.subplots(len(plans) or 1, 1, figsize=(8.2, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (benchmark, group, lines) in zip(axes[:, 0], plans):
        generators = generator_order(group)
        labels = []
        for y, (agent, budgets, oracle) in enumerate(lines):
            points = [r for r in group if r.key.agent == agent and r.key.max_rounds == budgets[0]]
            values = [r.overall for r in points if not math.isnan(r.overall)]
            if values:
                ax.hlines(y, min(values), max(values), colors="#bbb", linewidth=3, zorder=1)
            for g, generator in enumerate(generators):
                found = [r for r in points if r.key.generator == generator]
                if not found or math.isnan(found[0].overall):
                    continue
                offset = (g - (len(generators) - 1) / 2) * 0.16
                ax.errorbar([found[0].overall], [y + offset], xerr=[_std(found[0])], color=colours[agent],
                            marker=markers[generator], markersize=7, linestyle="none", capsize=2, zorder=3,
                            markerfacecolor="white" if oracle else colours[agent])
            label = f"{_text(agent)}{' (oracle)' if oracle else ''} · {_rounds_label(budgets)}"
            labels.append(label + (" (identical)" if len(budgets) > 1 else ""))
            if y and lines[y - 1][0] != agent:
                ax.axhline(y - 0.5, color="#ddd", linewidth=1)
        ax.set_yticks(range(len(lines)))
        ax.set_yticklabels(labels, fontsize=8.5)
        for tick, (agent, _, _) in zip(ax.get_yticklabels(), lines):
            tick.set_color(colours[agent])
        ax.set_ylim(len(lines) - 0.5, -0.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("overall score (mean ± std over seeds)")
        ax.set_title(f"{_text(BENCHMARK_TITLES.get(benchmark, benchmark))}: score per generator "
                     "(cross-tool generalisation)", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    handles = [Line2D([], [], color="#444", marker=markers[g], linestyle="none", markersize=7, label=_text(g))
               for g in all_generators]
    handles.append(Line2D([], [], color="#444", marker="o", markerfacecolor="white", linestyle="none",
                          label="hollow: oracle agent"))
    fig.legend(handles=handles, title="generator", loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
               fontsize=8, title_fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ writing


@dataclass
class Report:
    """What :func:`build_report` read and built (for callers that want the rows too)."""

    rows: list[Row]
    records: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)


def build_report(out: Path, runs: Sequence[Path] | None = None, *, copy_images: bool = False) -> Report:
    """Read the runs (default: ``out`` itself), build the rows and write every report file into
    ``<out>/report/``; returns the rows, records and the files written. ``copy_images``: put the
    round images into ``report/images/`` (hard links where the file system allows), so the report
    folder works when copied alone; otherwise the pages link to them in the run folders."""
    out = Path(out)
    run_dirs = [Path(run) for run in runs] if runs else [out]
    records = read_runs(run_dirs)
    if not records:
        raise ValueError(f"no result records in {', '.join(str(r) for r in run_dirs)}")
    rows = build_rows(records)
    report_dir = out / REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    if (report_dir / "images").is_dir():
        shutil.rmtree(report_dir / "images")  # copies of an earlier build
    files = {
        "markdown": report_dir / "leaderboard.md",
        "csv": report_dir / "leaderboard.csv",
        "json": report_dir / "leaderboard.json",
        "html": report_dir / "index.html",
        "tasks": report_dir / "tasks.html",
        "scaling_plot": report_dir / "scaling.png",
        "generators_plot": report_dir / "generators.png",
    }
    files["markdown"].write_text(render_markdown(rows), encoding="utf-8")
    files["csv"].write_text(render_csv(rows), encoding="utf-8")
    files["json"].write_text(render_json(rows, run_dirs), encoding="utf-8")
    plot_scaling(rows, files["scaling_plot"])
    plot_generators(rows, files["generators_plot"])
    images = Images(report_dir.resolve(), copy_images, [Path(r).resolve() for r in run_dirs])
    write_task_browser(records, rows, report_dir, images)
    links = {"Markdown": files["markdown"].name, "CSV": files["csv"].name, "JSON": files["json"].name}
    files["html"].write_text(render_index(rows, records, images, links), encoding="utf-8")
    return Report(rows=rows, records=records, files=files)


def write_reports(out: Path, runs: Sequence[Path] | None = None, *, quiet: bool = True,
                  copy_images: bool = False) -> dict[str, Path]:
    """Write the leaderboard (``leaderboard.md``/``.csv``/``.json``), the front page ``index.html``,
    the task browser ``tasks.html`` (with its data) and the plots (``scaling.png``,
    ``generators.png``) into ``<out>/report/`` from the run folders ``runs`` (default: ``out``
    itself). Returns ``{"markdown", "csv", "json", "html", "tasks", "scaling_plot",
    "generators_plot"}`` → path. ``quiet`` only silences output: the files are written either way;
    with ``quiet=False`` the Markdown table and the report folder are printed."""
    files = build_report(out, runs, copy_images=copy_images).files
    if not quiet:
        print(files["markdown"].read_text(encoding="utf-8"))
        print(f"reports written to {files['markdown'].parent}/ (open {files['html'].name})")
    return files
