"""Reports of a benchmark run: the leaderboard (Markdown, CSV, JSON), an HTML report and plots.

A run folder, as the runner writes it, holds ``results.jsonl`` (one episode record per line, keyed by
``"agent|generator|rounds|task_id|seed"``) and the images under ``images/``. :func:`write_reports`
reads one or more run folders and writes into ``<out>/report/``:

=====================  =====================================================================
``leaderboard.md``     one table per benchmark, one row per (agent, generator, max_rounds)
``leaderboard.csv``    the same rows, full precision, one column per tag of any benchmark
``leaderboard.json``   the same rows with every per-seed value
``index.html``         the leaderboard, then per task every round's image, prompt and verdict
``scaling.png``        overall score vs max_rounds per (agent, generator): test-time scaling
``generators.png``     overall score per generator, grouped by agent: cross-tool generalisation
=====================  =====================================================================

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
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from benchmarks.results import GENEVAL_PP_ALIASES, RESULTS_FILE, load_results
from genagent_env.tasks.schema import GENEVAL_PP_TAGS
from genagent_env.tasks.wise import WISE_WEIGHTS, wise_group, wise_overall

#: The six GenEval tags, in the order of GenEval's and the paper's tables.
GENEVAL_TAGS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
#: The benchmarks in the order their tables appear, with the columns each always shows.
BENCHMARK_COLUMNS: dict[str, tuple[str, ...]] = {
    "geneval++": GENEVAL_PP_TAGS,
    "geneval": GENEVAL_TAGS,
    "wise": tuple(WISE_WEIGHTS),
    "custom": (),
}
BENCHMARK_TITLES: dict[str, str] = {"geneval++": "GenEval++", "geneval": "GenEval", "wise": "WISE", "custom": "Custom"}
#: What the overall score of each benchmark is, as written in the reports.
OVERALL_DEFINITIONS: dict[str, str] = {
    "geneval++": "mean of the tag pass rates",
    "geneval": "mean of the tag pass rates",
    "wise": "WiScore per category, weighted 0.4/0.167/0.133/0.1/0.1/0.1 (wise_overall)",
    "custom": "mean of the tag pass rates",
}
REPORT_DIR = "report"
#: The key under which :func:`read_runs` notes the run folder a record came from.
RUN_DIR_KEY = "_run_dir"


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
    for record in records:
        record[RUN_DIR_KEY] = str(run.resolve())
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
    and ``images_per_episode`` are over all ``n`` episodes of the row.
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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes ``None``)."""
        return {
            "benchmark": self.key.benchmark,
            "agent": self.key.agent,
            "generator": self.key.generator,
            "max_rounds": self.key.max_rounds,
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
        }


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
    if benchmark == "wise":
        return wise_group(record if isinstance(record.get("wise"), Mapping) else {"Category": tag})
    if benchmark == "geneval++":
        return GENEVAL_PP_ALIASES.get(tag, tag)
    return tag


def _value(record: Mapping[str, Any]) -> float:
    """What a record contributes to its column: the WiScore for WISE, pass/fail otherwise."""
    if record.get("benchmark") == "wise":
        return float(record["score"])
    return float(bool(record["passed"]))


def _overall(benchmark: str, values: Mapping[str, float]) -> tuple[float, bool]:
    """The benchmark's overall from one seed's column scores, and whether columns were missing."""
    present = {column: value for column, value in values.items() if not math.isnan(value)}
    if not present:
        return math.nan, True
    expected = BENCHMARK_COLUMNS.get(benchmark, ())
    partial = any(column not in present for column in expected)
    if benchmark == "wise":
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
        grouped[row_key(record)].append(record)
    order = {name: index for index, name in enumerate(BENCHMARK_COLUMNS)}
    rows = [_build_row(key, group) for key, group in grouped.items()]
    rows.sort(key=lambda row: (order.get(row.key.benchmark, len(order)), row.key.benchmark, row.key.agent,
                               row.key.generator, row.key.max_rounds))
    return rows


def _build_row(key: RowKey, records: Sequence[Mapping[str, Any]]) -> Row:
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
    )


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def rows_by_benchmark(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """The rows grouped by benchmark, keeping their order."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row.key.benchmark, []).append(row)
    return out


def table_columns(rows: Sequence[Row]) -> tuple[str, ...]:
    """The union of the rows' columns, in order of first appearance."""
    return tuple(dict.fromkeys(c for row in rows for c in row.columns))


# ------------------------------------------------------------------------------- Markdown, CSV, JSON


def _fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def render_markdown(rows: Sequence[Row]) -> str:
    """One Markdown table per benchmark; the best overall of each table in bold."""
    parts = ["# Leaderboard", ""]
    for benchmark, group in rows_by_benchmark(rows).items():
        columns = table_columns(group)
        best = max((r.overall for r in group if not math.isnan(r.overall)), default=math.nan)
        parts += [f"## {BENCHMARK_TITLES.get(benchmark, benchmark)}", "",
                  f"Overall: {OVERALL_DEFINITIONS.get(benchmark, 'mean of the tag pass rates')}, per seed, "
                  "then mean ± std over seeds. † = some columns missing.", ""]
        header = ["agent", "generator", "rounds", *columns, "overall", "per seed", "reward", "viol/ep", "img/ep", "n"]
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" * 3 + "---:|" * (len(header) - 3))
        for row in group:
            overall = f"{_fmt(row.overall)} ± {_fmt(row.overall_std)}"
            if row.overall == best:
                overall = f"**{_fmt(row.overall)}** ± {_fmt(row.overall_std)}"
            if row.partial:
                overall += " †"
            cells = [_md_cell(row.key.agent), _md_cell(row.key.generator), str(row.key.max_rounds)]
            cells += [_fmt(row.column_mean.get(c, math.nan)) for c in columns]
            cells += [overall, " / ".join(_fmt(v) for v in row.overall_per_seed), _fmt(row.mean_reward),
                      _fmt(row.violations_per_episode, 2), _fmt(row.images_per_episode, 2), str(row.n)]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


#: The CSV's fixed leading and trailing columns; the tag columns of every benchmark go between.
CSV_HEAD = ("benchmark", "agent", "generator", "max_rounds", "seeds", "n")
CSV_TAIL = ("overall", "overall_std", "overall_per_seed", "partial", "mean_reward", "violations_per_episode",
            "images_per_episode")


def render_csv(rows: Sequence[Row]) -> str:
    """All rows in one CSV, full precision; a tag column a row's benchmark lacks is empty.
    ``seeds`` and ``overall_per_seed`` are ``;``-separated."""
    columns = table_columns(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_HEAD, *columns, *CSV_TAIL])
    for row in rows:
        writer.writerow([
            row.key.benchmark, row.key.agent, row.key.generator, row.key.max_rounds,
            ";".join(str(s) for s in row.seeds), row.n,
            *[_csv_float(row.column_mean[c]) if c in row.column_mean else "" for c in columns],
            _csv_float(row.overall), _csv_float(row.overall_std),
            ";".join(_csv_float(v) for v in row.overall_per_seed), str(row.partial).lower(),
            _csv_float(row.mean_reward), _csv_float(row.violations_per_episode), _csv_float(row.images_per_episode),
        ])
    return buffer.getvalue()


def _csv_float(value: float) -> str:
    return "" if math.isnan(value) else repr(float(value))


def render_json(rows: Sequence[Row], runs: Sequence[Path] = ()) -> str:
    """``{"runs": [...], "benchmarks": {name: {"columns", "overall", "rows": [Row.to_dict()]}}}``."""
    payload: dict[str, Any] = {"runs": [str(Path(run)) for run in runs], "benchmarks": {}}
    for benchmark, group in rows_by_benchmark(rows).items():
        payload["benchmarks"][benchmark] = {
            "columns": list(table_columns(group)),
            "overall": OVERALL_DEFINITIONS.get(benchmark, "mean of the tag pass rates"),
            "rows": [row.to_dict() for row in group],
        }
    return json.dumps(payload, indent=2, allow_nan=False) + "\n"


# --------------------------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d232a;
background:#f6f7f9;line-height:1.4}
h1{margin:0 0 4px}h2{margin-top:28px;border-bottom:2px solid #d8dde3;padding-bottom:4px}
.note{color:#5b6673;font-size:.9em}
.scroll{overflow-x:auto}table.lb{border-collapse:collapse;background:#fff;margin:8px 0 16px;font-size:.9em}
table.lb th,table.lb td{border:1px solid #d8dde3;padding:4px 8px;text-align:right;white-space:nowrap}
table.lb th{background:#eef1f4}table.lb td.t{text-align:left}table.lb td.best{font-weight:700}
details.task{background:#fff;border:1px solid #d8dde3;border-radius:8px;margin:10px 0;padding:8px 12px}
details.task>summary{cursor:pointer;font-weight:600}
.tag{display:inline-block;background:#e3e8ee;border-radius:4px;padding:0 6px;font-size:.85em;margin-right:6px}
.eps{display:flex;flex-wrap:wrap;gap:10px;margin-top:8px}
.ep{border:1px solid #e3e8ee;border-radius:6px;padding:6px 8px;background:#fff;width:min-content;min-width:300px;
max-width:100%;overflow-x:auto}
.ep h4{margin:2px 0 6px;font-size:.85em;font-weight:600}
.pass{color:#fff;background:#2e8b57;border-radius:4px;padding:0 6px}
.fail{color:#fff;background:#c0392b;border-radius:4px;padding:0 6px}
.grid{display:flex;gap:8px;align-items:flex-start}
.card{flex:0 0 170px;width:170px;border:2px solid #e3e8ee;border-radius:6px;padding:6px;font-size:.78em;
background:#fbfcfd}
.card.final{border-color:#2e8b57;background:#f1faf4}
.card img{width:100%;height:auto;image-rendering:pixelated;border-radius:4px;background:#ddd}
.card .k{color:#5b6673}.card p{margin:3px 0;overflow-wrap:anywhere;white-space:pre-wrap}
"""


def _e(value: Any) -> str:
    """Text made safe for HTML (element content and quoted attribute values)."""
    return html.escape(str(value), quote=True)


def _image_src(record: Mapping[str, Any], relative: str, report_dir: Path) -> str:
    run_dir = Path(str(record.get(RUN_DIR_KEY, report_dir.parent)))
    path = os.path.relpath(run_dir / relative, report_dir)
    return _e(quote(Path(path).as_posix()))


def _html_table(benchmark: str, group: Sequence[Row]) -> str:
    columns = table_columns(group)
    best = max((r.overall for r in group if not math.isnan(r.overall)), default=math.nan)
    head = ["agent", "generator", "rounds", *columns, "overall", "per seed", "reward", "viol/ep", "img/ep", "n"]
    out = [f"<h2>{_e(BENCHMARK_TITLES.get(benchmark, benchmark))}</h2>",
           f"<p class='note'>Overall: {_e(OVERALL_DEFINITIONS.get(benchmark, 'mean of the tag pass rates'))}; "
           "per seed, then mean ± std over seeds. † = some columns missing.</p>",
           "<div class='scroll'><table class='lb'><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head)
           + "</tr></thead><tbody>"]
    for row in group:
        overall = f"{_fmt(row.overall)} ± {_fmt(row.overall_std)}" + (" †" if row.partial else "")
        cells = [f"<td class='t'>{_e(row.key.agent)}</td>", f"<td class='t'>{_e(row.key.generator)}</td>",
                 f"<td>{row.key.max_rounds}</td>"]
        cells += [f"<td>{_e(_fmt(row.column_mean.get(c, math.nan)))}</td>" for c in columns]
        cells += [f"<td class='{'best' if row.overall == best else ''}'>{_e(overall)}</td>",
                  f"<td>{_e(' / '.join(_fmt(v) for v in row.overall_per_seed))}</td>",
                  f"<td>{_e(_fmt(row.mean_reward))}</td>", f"<td>{_e(_fmt(row.violations_per_episode, 2))}</td>",
                  f"<td>{_e(_fmt(row.images_per_episode, 2))}</td>", f"<td>{row.n}</td>"]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _html_episode(record: Mapping[str, Any], report_dir: Path) -> str:
    key = row_key(record)
    passed = bool(record.get("passed"))
    badge = "<span class='pass'>PASS</span>" if passed else "<span class='fail'>FAIL</span>"
    final = record.get("final_image")
    decisions = {int(d["image"]): d for d in record.get("decisions") or [] if isinstance(d, Mapping) and "image" in d}
    head = (f"<h4>{_e(key.label)} · seed {_e(record.get('seed'))}<br>{badge} score "
            f"{_e(_fmt(float(record.get('score', 0.0))))} · reward {_e(_fmt(float(record.get('reward', 0.0))))}"
            f" · final image {_e(final if final is not None else 'none')}"
            f" · violations {_e(record.get('violations', 0))}</h4>")
    cards = []
    images = list(record.get("images") or [])
    rounds = list(record.get("rounds") or [])
    for index in range(max(len(images), len(rounds))):
        number = index + 1
        info = rounds[index] if index < len(rounds) and isinstance(rounds[index], Mapping) else {}
        if index < len(images) and images[index]:
            picture = f"<img loading='lazy' src='{_image_src(record, images[index], report_dir)}' alt='round {number}'>"
        else:
            picture = "<p class='k'>(image not saved)</p>"
        decision = decisions.get(number)
        verdict = ""
        if decision is not None:
            correct = decision.get("correct")
            mark = "" if correct is None else (" ✓" if correct else " ✗")
            verdict = f"<p><span class='k'>decision:</span> {_e(decision.get('kind', ''))}{_e(mark)}</p>"
        cards.append(
            f"<div class='card{' final' if final == number else ''}'>{picture}"
            f"<p><b>round {number}</b>{' · <b>final</b>' if final == number else ''} · {_e(info.get('tool', ''))}"
            f" · seed {_e(info.get('seed', ''))}</p>"
            f"<p><span class='k'>prompt:</span> {_e(info.get('prompt', ''))}</p>"
            f"<p><span class='k'>judge:</span> {_e(info.get('judge') or '—')}</p>{verdict}</div>"
        )
    return f"<div class='ep'>{head}<div class='grid'>{''.join(cards)}</div></div>"


def render_html(rows: Sequence[Row], records: Sequence[Mapping[str, Any]], report_dir: Path,
                open_tasks: int = 10) -> str:
    """The self-contained HTML report: the leaderboard, then per task (and per row and seed) every
    round's image, the prompt the agent wrote, its verdict and decision, the final choice and
    pass/fail. Every piece of text is escaped; the page has no script and loads nothing from the
    network (images are relative paths from ``report_dir``). The first ``open_tasks`` tasks are unfolded.
    """
    order = {name: index for index, name in enumerate(BENCHMARK_COLUMNS)}
    tasks: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        tasks[(str(record.get("benchmark", "custom")), str(record.get("task_id", "")))].append(record)
    task_keys = sorted(tasks, key=lambda k: (order.get(k[0], len(order)), k[0],
                                             int(tasks[k][0].get("task_index", 0)), k[1]))
    parts = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             "<title>GenAgent benchmark report</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>GenAgent benchmark report</h1>",
             f"<p class='note'>{len(records)} episodes, {len(rows)} rows, {len(task_keys)} tasks.</p>"]
    for benchmark, group in rows_by_benchmark(rows).items():
        parts.append(_html_table(benchmark, group))
    parts.append("<h2>Tasks</h2>")
    for number, (benchmark, task_id) in enumerate(task_keys):
        episodes = sorted(tasks[(benchmark, task_id)], key=lambda r: (row_key(r), int(r.get("seed", 0))))
        first = episodes[0]
        passed = sum(bool(r.get("passed")) for r in episodes)
        parts.append(
            f"<details class='task'{' open' if number < open_tasks else ''}><summary>"
            f"<span class='tag'>{_e(BENCHMARK_TITLES.get(benchmark, benchmark))}</span>"
            f"<span class='tag'>{_e(first.get('tag', ''))}</span>{_e(task_id)} — {_e(first.get('prompt', ''))}"
            f" <span class='note'>({passed}/{len(episodes)} passed)</span></summary>"
        )
        parts.append("<div class='eps'>" + "".join(_html_episode(r, report_dir) for r in episodes) + "</div>")
        parts.append("</details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -------------------------------------------------------------------------------------------- plots


def plot_scaling(rows: Sequence[Row], path: Path) -> Path:
    """Overall score vs max_rounds, one line per (agent, generator), one panel per benchmark, with
    the standard deviation over seeds as error bars: the test-time scaling curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = rows_by_benchmark(rows)
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(5.5 * max(len(groups), 1), 4), squeeze=False)
    for ax, (benchmark, group) in zip(axes[0], groups.items()):
        lines: dict[tuple[str, str], list[Row]] = defaultdict(list)
        for row in group:
            lines[(row.key.agent, row.key.generator)].append(row)
        for (agent, generator), members in lines.items():
            members.sort(key=lambda r: r.key.max_rounds)
            ax.errorbar([r.key.max_rounds for r in members], [r.overall for r in members],
                        yerr=[0.0 if math.isnan(r.overall_std) else r.overall_std for r in members],
                        marker="o", capsize=3, label=f"{agent} · {generator}")
        rounds = sorted({r.key.max_rounds for r in group})
        ax.set_xticks(rounds)
        ax.set_xlabel("max rounds")
        ax.set_ylabel("overall score")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{BENCHMARK_TITLES.get(benchmark, benchmark)}: test-time scaling")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_generators(rows: Sequence[Row], path: Path) -> Path:
    """Overall score per generator, grouped by agent (and round budget), one panel per benchmark,
    with the standard deviation over seeds: cross-tool generalisation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = rows_by_benchmark(rows)
    fig, axes = plt.subplots(1, max(len(groups), 1), figsize=(6.5 * max(len(groups), 1), 4), squeeze=False)
    for ax, (benchmark, group) in zip(axes[0], groups.items()):
        clusters = list(dict.fromkeys((r.key.agent, r.key.max_rounds) for r in group))
        generators = list(dict.fromkeys(r.key.generator for r in group))
        colours = {g: f"C{i % 10}" for i, g in enumerate(generators)}
        width = 0.8 / max(len(generators), 1)
        labelled: set[str] = set()
        for c, (agent, rounds) in enumerate(clusters):
            present = [r for g in generators for r in group
                       if r.key.generator == g and (r.key.agent, r.key.max_rounds) == (agent, rounds)]
            for i, row in enumerate(present):  # the bars of a cluster are centred on its tick
                ax.bar(c + (i - (len(present) - 1) / 2) * width, 0.0 if math.isnan(row.overall) else row.overall,
                       width=width, yerr=0.0 if math.isnan(row.overall_std) else row.overall_std, capsize=2,
                       color=colours[row.key.generator],
                       label=None if row.key.generator in labelled else row.key.generator)
                labelled.add(row.key.generator)
        ax.set_xticks(range(len(clusters)))
        ax.set_xticklabels([f"{agent}\n{rounds} rd" for agent, rounds in clusters], fontsize=8)
        ax.set_ylabel("overall score")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{BENCHMARK_TITLES.get(benchmark, benchmark)}: score per generator")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, title="generator", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ writing


@dataclass
class Report:
    """What :func:`write_reports` read and built (for callers that want the rows too)."""

    rows: list[Row]
    records: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)


def build_report(out: Path, runs: Sequence[Path] | None = None) -> Report:
    """Read the runs (default: ``out`` itself), build the rows and write every report file into
    ``<out>/report/``; returns the rows, records and the files written."""
    out = Path(out)
    run_dirs = [Path(run) for run in runs] if runs else [out]
    records = read_runs(run_dirs)
    if not records:
        raise ValueError(f"no result records in {', '.join(str(r) for r in run_dirs)}")
    rows = build_rows(records)
    report_dir = out / REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "markdown": report_dir / "leaderboard.md",
        "csv": report_dir / "leaderboard.csv",
        "json": report_dir / "leaderboard.json",
        "html": report_dir / "index.html",
        "scaling_plot": report_dir / "scaling.png",
        "generators_plot": report_dir / "generators.png",
    }
    files["markdown"].write_text(render_markdown(rows), encoding="utf-8")
    files["csv"].write_text(render_csv(rows), encoding="utf-8")
    files["json"].write_text(render_json(rows, run_dirs), encoding="utf-8")
    files["html"].write_text(render_html(rows, records, report_dir.resolve()), encoding="utf-8")
    plot_scaling(rows, files["scaling_plot"])
    plot_generators(rows, files["generators_plot"])
    return Report(rows=rows, records=records, files=files)


def write_reports(out: Path, runs: list[Path] | None = None) -> dict[str, Path]:
    """Write the leaderboard (``leaderboard.md``/``.csv``/``.json``), ``index.html`` and the plots
    (``scaling.png``, ``generators.png``) into ``<out>/report/`` from the run folders ``runs``
    (default: ``out`` itself); returns ``{"markdown", "csv", "json", "html", "scaling_plot",
    "generators_plot"}`` → path."""
    return build_report(out, runs).files
