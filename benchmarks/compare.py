"""Is agent B better than agent A? Paired differences with bootstrap intervals over tasks.

    python -m benchmarks.compare runs/sft runs/grpo --base tiny-sft
    python -m benchmarks.compare runs/x --base tiny-sft --agents tiny-grpo --metric reflection
    python -m benchmarks.compare runs/wise-sft runs/wise-grpo --base tiny-sft --metric rewrite

Two agents run on the same tasks with the same seeds see the same scenes and the same tool
randomness, so most of the spread between their pass rates is the tasks', not the agents'. This
pairs each episode of an agent with the base agent's episode of the same (suite, generator,
max_rounds, task, seed) and reports the mean difference with a 95 % interval from a *cluster*
bootstrap: whole tasks are resampled with replacement (all their seeds together), because the seeds
of one task are not independent draws. Episodes without a partner are left out and counted.

Run folders are read as the leaderboard reads them (an episode in two folders counts once, the
first folder given wins). Prints one Markdown row per (agent, suite, generator, max_rounds): the
paired episodes, both means, the difference and its interval, and the difference per seed.

Several training seeds of one method (``tiny-grpo`` trained with seeds 0, 1 and 2) compare as a
*pool*: ``--pool grpo`` adds a row per (suite, generator, max_rounds) whose difference is, per
episode, the mean over the compared agents of agent minus base (episodes every one of them played),
so its mean is the mean of their differences. Its interval resamples tasks, as every row's does;
the spread between the training seeds is in the agents' own rows.

    python -m benchmarks.compare runs/sft runs/grpo-s0 runs/grpo-s1 runs/grpo-s2 --base tiny-sft --pool grpo
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro

from benchmarks.report import has_literal_request, read_runs, rewrite_resolved

Metric = Literal["passed", "score", "reward", "outcome", "reflection", "format", "violations", "turns", "rewrite"]
#: Metrics read from the record's ``reward_components`` rather than the record itself.
_COMPONENTS = ("outcome", "reflection", "format")


@dataclass
class Args:
    """Paired comparison of agents against a base agent."""

    runs: tyro.conf.Positional[list[Path]]
    """run folders (each holding results.jsonl); the base and the other agents may be in different ones"""
    base: str
    """the agent every other agent is compared with (as the runs name it, e.g. tiny-sft)"""
    agents: list[str] = field(default_factory=list)
    """agents to compare (default: every other agent in the runs)"""
    generators: list[str] = field(default_factory=list)
    """only these generators (default: all)"""
    max_rounds: list[int] = field(default_factory=list)
    """only these round budgets (default: all)"""
    metric: Metric = "passed"
    """what is compared: the pass rate, the graded score, the reward or one of its components
    (outcome, reflection, format), format violations, agent turns per episode, or (shapes-wise
    episodes only) whether the first tool prompt resolved the task's facts"""
    resamples: int = 2000
    """bootstrap resamples of the tasks"""
    confidence: float = 0.95
    """width of the interval"""
    seed: int = 0
    """seed of the bootstrap"""
    pool: str | None = None
    """also compare the agents as one method under this name (their training seeds, say): per
    episode, the mean of their differences from the base"""


@dataclass(frozen=True)
class Comparison:
    """One agent against the base on one (suite, generator, max_rounds)."""

    agent: str
    suite: str
    generator: str
    max_rounds: int
    paired: int
    """episodes that both agents played (same task and seed)"""
    unpaired: int
    """this agent's episodes in the group that the base did not play"""
    tasks: int
    base_mean: float
    agent_mean: float
    difference: float
    """agent minus base, mean over the paired episodes"""
    low: float
    high: float
    """the bootstrap interval of ``difference``"""
    per_seed: dict[int, float]
    """the difference on each seed's paired episodes"""


def metric_applies(record: Mapping[str, Any], metric: Metric) -> bool:
    """Whether an episode has a value of ``metric``: ``rewrite`` needs a task with a literal
    request (``wise["Explanation"]``, as shapes-wise tasks have); the others apply to every episode."""
    return metric != "rewrite" or has_literal_request(record)


def metric_value(record: Mapping[str, Any], metric: Metric) -> float:
    """One episode's value of ``metric``."""
    if metric == "rewrite":
        return float(rewrite_resolved(record))
    if metric in _COMPONENTS:
        return float(record.get("reward_components", {}).get(metric, 0.0))
    return float(record[metric])


def bootstrap_interval(per_task: Sequence[Sequence[float]], resamples: int, confidence: float,
                       rng: np.random.Generator) -> tuple[float, float]:
    """The ``confidence`` interval of the mean over episodes when whole tasks are resampled; each
    inner sequence holds one task's paired differences."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    sums = np.array([sum(task) for task in per_task], dtype=float)
    counts = np.array([len(task) for task in per_task], dtype=float)
    picks = rng.integers(0, len(per_task), size=(resamples, len(per_task)))
    means = sums[picks].sum(1) / counts[picks].sum(1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def _comparison(agent: str, group: tuple[str, str, int], diffs: Mapping[tuple[str, int], float],
                base_values: Mapping[tuple[str, int], float], unpaired: int, resamples: int, confidence: float,
                rng: np.random.Generator) -> Comparison:
    """The row of one agent (or pool) on one group from its paired differences by (task, seed)."""
    per_task: dict[str, list[float]] = defaultdict(list)
    per_seed: dict[int, list[float]] = defaultdict(list)
    for (task_id, seed_index), diff in diffs.items():
        per_task[task_id].append(diff)
        per_seed[seed_index].append(diff)
    low, high = bootstrap_interval(list(per_task.values()), resamples, confidence, rng)
    base_mean = float(np.mean([base_values[key] for key in diffs]))
    difference = float(np.mean(list(diffs.values())))
    suite, generator, rounds = group
    return Comparison(
        agent=agent, suite=suite, generator=generator, max_rounds=rounds, paired=len(diffs), unpaired=unpaired,
        tasks=len(per_task), base_mean=base_mean, agent_mean=base_mean + difference, difference=difference,
        low=low, high=high, per_seed={s: float(np.mean(d)) for s, d in sorted(per_seed.items())})


def compare(records: Iterable[Mapping[str, Any]], base: str, agents: Sequence[str] = (),
            metric: Metric = "passed", resamples: int = 2000, confidence: float = 0.95,
            seed: int = 0, pool: str | None = None) -> list[Comparison]:
    """Pair every other agent's episodes with ``base``'s and compare them on ``metric``; with
    ``pool``, add a row per group for the agents taken together (see the module docstring), after
    theirs.

    Episodes ``metric`` does not apply to are left out (:func:`metric_applies`).

    Raises ``ValueError`` when ``base`` or one of ``agents`` played no episode, when an agent
    shares no (suite, generator, max_rounds) with the base, when a pool has fewer than two agents,
    or when ``metric`` applies to none of the episodes.
    """
    records = list(records)
    kept = [record for record in records if metric_applies(record, metric)]
    if records and not kept:
        raise ValueError(f"--metric {metric} applies to shapes-wise episodes (tasks with a literal request in "
                         "wise['Explanation']); the runs hold none")
    groups: dict[tuple[str, str, str, int], dict[tuple[str, int], float]] = defaultdict(dict)
    for record in kept:
        group = (record["agent"], record["suite"], record["generator"], int(record["max_rounds"]))
        groups[group][(record["task_id"], int(record["seed"]))] = metric_value(record, metric)
    present = sorted({agent for agent, *_ in groups})
    if base not in present:
        raise ValueError(f"no episodes of the base agent {base!r}; the runs hold {present}")
    wanted = list(agents) or [agent for agent in present if agent != base]
    missing = [agent for agent in wanted if agent not in present]
    if missing:
        raise ValueError(f"no episodes of {missing}; the runs hold {present}")
    if pool is not None and len(wanted) < 2:
        raise ValueError(f"a pool takes at least two agents, got {wanted}")
    rng = np.random.default_rng(seed)
    out: list[Comparison] = []
    for agent in wanted:
        found = False
        for (name, suite, generator, rounds), values in sorted(groups.items()):
            base_values = groups.get((base, suite, generator, rounds))
            if name != agent or base_values is None:
                continue
            keys = sorted(key for key in values if key in base_values)
            if not keys:
                continue
            found = True
            diffs = {key: values[key] - base_values[key] for key in keys}
            out.append(_comparison(agent, (suite, generator, rounds), diffs, base_values, len(values) - len(keys),
                                   resamples, confidence, rng))
        if not found:
            raise ValueError(f"{agent!r} and the base {base!r} share no episode (same suite, generator, "
                             "max_rounds, task and seed)")
    if pool is not None:
        for suite, generator, rounds in sorted({(c.suite, c.generator, c.max_rounds) for c in out}):
            base_values = groups[(base, suite, generator, rounds)]
            members = [groups.get((agent, suite, generator, rounds), {}) for agent in wanted]
            keys = sorted(set(base_values).intersection(*members))
            if not keys:
                continue
            diffs = {key: float(np.mean([values[key] for values in members])) - base_values[key] for key in keys}
            unpaired = len(set().union(*members) - set(keys))
            out.append(_comparison(pool, (suite, generator, rounds), diffs, base_values, unpaired, resamples,
                                   confidence, rng))
    return out


def render_markdown(comparisons: Sequence[Comparison], base: str, metric: Metric, confidence: float) -> str:
    """The comparisons as a Markdown table."""
    percent = f"{confidence:.0%}"
    lines = [f"| agent | suite | generator | rounds | paired (tasks) | {base} | agent | difference ({metric}) | "
             f"{percent} interval | per seed |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for c in comparisons:
        seeds = ", ".join(f"{s}: {d:+.3f}" for s, d in c.per_seed.items())
        lines.append(f"| {c.agent} | {c.suite} | {c.generator} | {c.max_rounds} | {c.paired} ({c.tasks}) | "
                     f"{c.base_mean:.3f} | {c.agent_mean:.3f} | {c.difference:+.3f} | "
                     f"{c.low:+.3f} to {c.high:+.3f} | {seeds} |")
    unpaired = sum(c.unpaired for c in comparisons)
    if unpaired:
        lines.append(f"\n{unpaired} episode(s) had no partner in the base's runs and were left out.")
    return "\n".join(lines)


def main(args: Args) -> list[Comparison]:
    records = [r for r in read_runs(args.runs)
               if (not args.generators or r["generator"] in args.generators)
               and (not args.max_rounds or int(r["max_rounds"]) in args.max_rounds)]
    comparisons = compare(records, args.base, args.agents, args.metric, args.resamples, args.confidence, args.seed,
                          args.pool)
    print(render_markdown(comparisons, args.base, args.metric, args.confidence))
    return comparisons


if __name__ == "__main__":
    main(tyro.cli(Args))
