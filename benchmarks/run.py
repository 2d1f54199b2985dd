"""Leaderboard-style benchmark runs: agents × generators × ``max_rounds`` × seeds over a task suite.

    python -m benchmarks.run                                   # the ShapesWorld test suite, default grid
    python -m benchmarks.run --agents passthrough scripted --generators shapes-weak shapes-strong \\
        --max-rounds 1 2 --seeds 3 --tasks-per-tag 10 --out runs/shapes
    python -m benchmarks.run --suite Geneval++.jsonl --scorer vlm-judge --generators flux-dev \\
        --tool-timeout-s 300 --out runs/genevalpp-flux
    python -m benchmarks.run --suite WISE/data/natural_science.json --scorer my_pkg.judges:wise_judge
    accelerate launch --num_processes 8 -m benchmarks.run ...   # or torchrun: sharded, see below

Every episode becomes one line of ``<out>/results.jsonl`` (schema: :class:`benchmarks.results.ResultRecord`)
and its images go to ``<out>/images/<agent>/<generator>/r<rounds>/s<seed>/<task id>/image_<k>.png``, each
name made one path component by :func:`safe_name` (one-to-one: ``x/y`` is ``x%2Fy``, ``x_y`` stays
``x_y``). Each record stores its images' paths, so readers never rebuild them (runs written before
the names were one-to-one, ``x/y`` as ``x_y``, stay readable; see :func:`image_dir`). The reports
are written to ``<out>/report/`` at the end of every run, ``--quiet`` or not.

**Resuming.** Rerunning a command reads the keys already in ``<out>`` and runs only the missing
items, so a run killed at any point (Ctrl-C, SIGKILL, a preempted node) loses at most the episode
in flight. A rerun with *different grid arguments* (more agents, generators, rounds, seeds, tasks)
into the same folder adds the new items and keeps the old ones; the suite, split, scorer and
benchmark must stay the same (a different one is refused: start a new folder). ``<out>/run.json``
holds the latest arguments and, under ``history``, those of earlier invocations.

**Plugging in agents, generators and scorers.** Each is a registered name or an import path
``module:factory``; the factory is called with no arguments. ``--agents llm:PATH`` plays a Hugging
Face LM or VLM checkpoint folder through :class:`agents.llm.LLMAgent` (greedy, batched over the
vector env's episodes). For other settings write a factory, e.g. ``my_pkg.llm_agent:load`` with
``def load(): return LLMAgent.from_pretrained("ckpt/step-2000", do_sample=True)``,
and pass ``--agents my_pkg.llm_agent:load``. An agent with ``privileged = True`` gets the task's
checklist in ``info["task"]`` (as ``scripted`` and ``resample`` do). A generator import path may
also name a plain ``(prompt, seed) -> PIL.Image`` function. ``sb3:model.zip`` is a saved
Stable-Baselines3 policy, playing through :mod:`wrappers` (``wrappers.sb3_agent.load_sb3_agent``).
**Loading it unpickles code from the zip** (SB3's format stores pickled Python objects; a crafted
file runs arbitrary code on load): only pass files you trust. The runner says so on stderr.

**Scale-out.** Under ``accelerate launch`` or ``torchrun`` (``WORLD_SIZE`` > 1) each process takes
the items ``i % world_size == rank``, appends to ``results.rank<rank>.jsonl``, and rank 0 waits for
the others (``PartialState.wait_for_everyone`` when accelerate set up the process group; otherwise
for every rank's completion marker ``results.rank<k>.done``) and merges the shards into
``results.jsonl``. Plain ``RANK``/``WORLD_SIZE`` environment variables are enough, e.g. one process
per GPU started by hand. With one process nothing of this happens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import tyro

from benchmarks.results import (
    GENEVAL_PP_ALIASES,
    RESULTS_FILE,
    RUN_FILE,
    Benchmark,
    ResultRecord,
    ResultsWriter,
    RoundRecord,
    load_results,
    merge_results,
    record_key,
    shard_file,
    stored_form,
)
from genagent_env.registry import takes_no_arguments

if TYPE_CHECKING:
    from agents.base import Agent
    from agents.rollout import EpisodeSpec, Trajectory
    from genagent_env.scorers.base import Scorer
    from genagent_env.tools.base import Generator
    from genagent_env.vector import GenAgentVectorEnv

#: The seven GenEval tags (GenEval's ``evaluation_metadata.jsonl``).
GENEVAL_TAGS = frozenset({"single_object", "two_object", "counting", "colors", "position", "color_attr"})
#: Agents that read the task's checklist and so need ``privileged=True`` envs.
PRIVILEGED_AGENTS = frozenset({"scripted", "resample"})
#: The env seed of seed index ``s`` on task ``i`` is ``s * SEED_STRIDE + i`` (as the old leaderboard).
SEED_STRIDE = 100_003
_SAFE_BYTES = re.compile(rb"[^A-Za-z0-9._-]")
#: The longest image folder name :func:`safe_name` gives (longer ones end in a hash).
MAX_NAME = 120
#: An opening ``<tool_call>`` tag as the protocol reads it (any case, spaces inside the brackets).
_TOOL_CALL_TAG = re.compile(r"<\s*tool_call\s*>", re.IGNORECASE)


@dataclass
class Args:
    """A grid of benchmark episodes and where to write them."""

    agents: tuple[str, ...] = ("passthrough", "resample", "scripted", "random")
    """agents: passthrough, scripted, resample, random, llm:PATH (a Hugging Face LM/VLM checkpoint folder
    driven by agents.llm.LLMAgent), or an import path module:factory returning an agents.Agent (e.g. a
    function that loads a trained checkpoint), or sb3:model.zip (a saved SB3 policy;
    WARNING: loading it unpickles the zip, which can run arbitrary code: only load files you trust)"""
    generators: tuple[str, ...] = ("shapes-weak", "shapes-medium", "shapes-strong")
    """generators: registered names (shapes-weak, shapes-medium, shapes-strong, flux-dev, sdxl, ...),
    module:factory (returning a Generator or a (prompt, seed) -> image function; or that function itself), or
    a served generator: http://HOST:PORT/APP or serve:APP (see genagent-serve)"""
    max_rounds: tuple[int, ...] = (1, 2, 4)
    """values of max_rounds (the most image-producing tool calls per episode) to run"""
    seeds: int = 3
    """seeds per task (seed indices 0..N-1; the env seed is seed * 100003 + task_index)"""
    suite: str = "shapes-geneval"
    """registered suite (shapes-geneval) or a task file: GenEval metadata JSONL, GenEval++ JSONL, WISE JSON"""
    split: str = "test"
    """split of a registered suite (shapes-geneval: test or train)"""
    scorer: str = "shapes"
    """scorer: a registered name (shapes, clip, detector, vlm-judge) or module:factory"""
    benchmark: Literal["auto", "geneval++", "geneval", "wise", "shapes-wise", "custom"] = "auto"
    """how results aggregate; auto guesses from the suite (shapes-wise, GenEval++ tags, GenEval tags, WISE tasks)"""
    tasks_per_tag: int | None = None
    """use only the first N tasks of each tag"""
    limit: int | None = None
    """use only the first N tasks (after --tasks-per-tag)"""
    out: Path = Path("runs/shapes-leaderboard")
    """run folder: results.jsonl, run.json, images/ (rerunning into it resumes)"""
    save_images: Literal["all", "final", "none"] = "all"
    """which images to write as PNG: every round's, the submitted one, or none"""
    tool_timeout_s: float | None = None
    """a tool call that takes longer is an error message to the agent (default: wait)"""
    merge_timeout_s: float | None = None
    """sharded runs without accelerate's process group: how long rank 0 waits for the other ranks"""
    num_envs: int = 8
    """episodes played together in one vector env (their tool calls and scoring are batched)"""
    quiet: bool = False
    """no progress bar and nothing printed (the reports are still written to <out>/report/)"""


@dataclass(frozen=True)
class Item:
    """One grid item: an episode to run (or skip, when its key is already in the run folder)."""

    agent: str
    generator: str
    max_rounds: int
    task_index: int
    task_id: str
    seed: int

    @property
    def key(self) -> str:
        return record_key(self.agent, self.generator, self.max_rounds, self.task_id, self.seed)


# ---------------------------------------------------------------------------------- specs


def _import_path(spec: str) -> Any:
    from genagent_env.registry import load_attribute

    try:
        return load_attribute(spec)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot import {spec!r}: {error}") from error


def _is_import_path(spec: str) -> bool:
    from genagent_env.tools.remote import is_remote_spec

    return ":" in spec and not spec.startswith(("sb3:", "llm:")) and not is_remote_spec(spec)


def build_agent(spec: str, scorer: Scorer) -> Agent:
    """The agent named by ``spec`` (see :class:`Args`); ``scorer`` is the teacher's, for scripted agents."""
    from agents import make_agent
    from agents.base import Agent

    if spec.startswith("sb3:"):
        return _sb3_agent(spec[len("sb3:"):])
    if spec.startswith("llm:"):
        return _llm_agent(spec[len("llm:"):])
    if _is_import_path(spec):
        agent = _import_path(spec)
        if not isinstance(agent, Agent):
            agent = agent()
        if not isinstance(agent, Agent):
            raise TypeError(f"agent factory {spec!r} returned {type(agent).__name__}, not an agents.Agent")
        return agent
    kwargs = {"scorer": scorer} if spec in PRIVILEGED_AGENTS else {}
    try:
        return make_agent(spec, **kwargs)
    except KeyError as error:
        raise ValueError(f"{error.args[0]}; or pass an import path module:factory") from None


def _sb3_agent(path: str) -> Agent:
    """``sb3:<path>``: unpickles the zip (see :func:`wrappers.sb3_agent.load_sb3_agent`, which warns on
    stderr); a missing stable-baselines3 is a ``ModuleNotFoundError`` naming the ``sb3`` extra."""
    from wrappers.sb3_agent import load_sb3_agent

    if not Path(path).is_file():
        raise ValueError(f"sb3:{path}: no such file (a model saved by stable-baselines3's model.save)")
    return load_sb3_agent(path)


def _llm_agent(path: str) -> Agent:
    """``llm:<path>``: :meth:`agents.llm.LLMAgent.from_pretrained` on a checkpoint folder (greedy
    decoding; it acts for all the episodes of a vector env in one batch)."""
    if not Path(path).is_dir():
        raise ValueError(f"llm:{path}: no such folder (a Hugging Face checkpoint saved with save_pretrained)")
    import agents.tiny  # noqa: F401  (registers genagent_tiny: its checkpoints load by path too)
    from agents.llm import LLMAgent

    return LLMAgent.from_pretrained(path)


def is_privileged(spec: str, agent: Agent) -> bool:
    """Whether the agent reads the checklist: the scripted teachers, or ``agent.privileged``."""
    return spec in PRIVILEGED_AGENTS or bool(getattr(agent, "privileged", False))


def build_generator(spec: str) -> Generator:
    """The generator named by ``spec``: a registered name, or ``module:factory`` (see :class:`Args`)."""
    from genagent_env.tools.base import Generator
    from genagent_env.tools.registry import make_generator

    if not _is_import_path(spec):
        return make_generator(spec)
    target = _import_path(spec)
    if isinstance(target, Generator):
        return target
    if callable(target) and not takes_no_arguments(target):  # a (prompt, seed) -> image function itself
        return make_generator(target)
    return make_generator(target())


def build_scorer(spec: str) -> Scorer:
    """The scorer named by ``spec``: a registered name or ``module:factory``."""
    from genagent_env.scorers.base import Scorer
    from genagent_env.scorers.registry import make_scorer

    if not _is_import_path(spec):
        return make_scorer(spec)
    target = _import_path(spec)
    scorer = target if isinstance(target, Scorer) else target()
    if not isinstance(scorer, Scorer):
        raise TypeError(f"scorer factory {spec!r} returned {type(scorer).__name__}, not a Scorer")
    return scorer


# ---------------------------------------------------------------------------------- suite


def load_suite(args: Args) -> tuple[str, list[dict[str, Any]]]:
    """The suite's display name (``shapes-geneval:test`` or the path) and its tasks, filtered by
    ``--tasks-per-tag`` and ``--limit``. Each task keeps its index in the full suite as ``_index``."""
    from genagent_env.tasks.suites import SUITES, resolve_suite

    tasks = resolve_suite(args.suite, args.split)
    name = f"{args.suite}:{args.split}" if args.suite in SUITES else args.suite
    picked: list[dict[str, Any]] = []
    per_tag: dict[str, int] = {}
    for index, task in enumerate(tasks):
        if args.tasks_per_tag is not None and per_tag.get(task["tag"], 0) >= args.tasks_per_tag:
            continue
        per_tag[task["tag"]] = per_tag.get(task["tag"], 0) + 1
        picked.append({**task, "_index": index})
    if args.limit is not None:
        picked = picked[: args.limit]
    ids = [str(task.get("id")) for task in picked]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{args.suite}: task ids repeat; results are keyed by task id")
    return name, picked


def guess_benchmark(suite: str, tasks: Sequence[Mapping[str, Any]]) -> Benchmark:
    """``geneval++`` for shapes-geneval and GenEval++ tags (also Echo-4o's names), ``geneval`` for
    GenEval tags, ``wise`` for WISE tasks, else ``custom``."""
    from genagent_env.tasks.schema import GENEVAL_PP_TAGS

    if suite.startswith("shapes-geneval"):
        return "geneval++"
    if suite.startswith("shapes-wise"):  # pixel-verified: pass rates per WISE category
        return "shapes-wise"
    tags = {task["tag"] for task in tasks}
    if all("wise" in task for task in tasks):
        return "wise"
    genevalpp = set(GENEVAL_PP_TAGS) | set(GENEVAL_PP_ALIASES)
    # Echo-4o's GenEval++ file reuses two GenEval tag names (color_attr, counting): its name decides.
    named_pp = re.sub(r"[^a-z+]", "", Path(suite).name.lower()).startswith(("geneval++", "genevalpp"))
    if tags <= genevalpp and (named_pp or not tags <= GENEVAL_TAGS):
        return "geneval++"
    if tags <= GENEVAL_TAGS:
        return "geneval"
    return "custom"


def grid(args: Args, tasks: Sequence[Mapping[str, Any]]) -> list[Item]:
    """Every item of the grid, in a fixed order (shards take every ``world_size``-th)."""
    for spec in (*args.agents, *args.generators):
        if "|" in spec:
            raise ValueError(f"{spec!r}: '|' separates the fields of result keys and may not appear in a name")
    return [
        Item(agent, generator, int(rounds), int(task["_index"]), str(task["id"]), seed)
        for agent in args.agents
        for generator in args.generators
        for rounds in args.max_rounds
        for task in tasks
        for seed in range(args.seeds)
    ]


# ---------------------------------------------------------------------------------- distribution


@dataclass
class Dist:
    """This process's place in a sharded run."""

    rank: int = 0
    world: int = 1
    state: Any = None  # accelerate.PartialState when accelerate set up the process group

    def barrier(self) -> bool:
        """Wait for every process if a process group exists; False when there is none."""
        if self.state is not None and self.world > 1:
            self.state.wait_for_everyone()
            return True
        return False


def detect_dist() -> Dist:
    """Rank and world size: accelerate's ``PartialState`` under ``accelerate launch``/``torchrun``,
    else the ``RANK``/``WORLD_SIZE`` environment variables (one process: rank 0 of 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    if world <= 1:
        return Dist()
    # Only a launcher sets LOCAL_RANK + MASTER_ADDR; then accelerate can build the process group.
    if os.environ.get("LOCAL_RANK") is not None and os.environ.get("MASTER_ADDR"):
        try:
            from accelerate import PartialState
        except ImportError:
            pass
        else:
            state = PartialState()
            if state.num_processes > 1:
                return Dist(rank=state.process_index, world=state.num_processes, state=state)
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside [0, WORLD_SIZE={world})")
    return Dist(rank=rank, world=world)


def _done_marker(out: Path, rank: int) -> Path:
    return out / f"results.rank{rank}.done"


def _wait_for_shards(out: Path, dist: Dist, keys_by_rank: Mapping[int, set[str]], fingerprint: str,
                     started: float, timeout_s: float | None) -> None:
    """Rank 0, without a process group: wait until every rank has finished.

    A rank has finished when it wrote its marker for this grid (``fingerprint``) since this run
    started (it ended, perhaps with an error, leaving items to a rerun), or wrote it earlier and all
    its keys are on disk (a rank with nothing to do may finish before rank 0 starts).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    waiting = set(range(1, dist.world))
    while waiting:
        present = {record["key"] for record in load_results(out)}
        for rank in sorted(waiting):
            marker = _done_marker(out, rank)
            try:
                ours = json.loads(marker.read_text()).get("fingerprint") == fingerprint
                fresh = marker.stat().st_mtime >= started - 1.0
            except (FileNotFoundError, json.JSONDecodeError):  # not there yet, or being written
                continue
            if ours and (fresh or keys_by_rank[rank] <= present):
                waiting.discard(rank)
        if not waiting:
            return
        if deadline is not None and time.monotonic() > deadline:
            print(f"rank 0: ranks {sorted(waiting)} did not finish in {timeout_s} s; merging what is there",
                  file=sys.stderr)
            return
        time.sleep(0.2)


# ---------------------------------------------------------------------------------- episodes


def safe_name(text: str) -> str:
    """``text`` as one path component, one-to-one: two different strings never give the same name.

    Letters, digits and ``._-`` are kept; every other byte of the text's UTF-8 encoding (lone
    surrogates included, as ``surrogatepass`` encodes them) is percent-encoded, ``%`` itself too:
    ``x/y`` is ``x%2Fy``, ``x_y`` stays ``x_y``, ``a%b`` is ``a%25b`` (``urllib.parse.unquote(name,
    errors="surrogatepass")`` gives the text back). ``.`` and ``..`` become ``%2E`` and ``%2E%2E``,
    the empty string ``%``. A name longer than :data:`MAX_NAME` characters is cut and ends in ``~``
    and a SHA-256 prefix of the text (``~`` is never part of an encoded name, so the two kinds of
    names cannot meet). On a case-insensitive file system (macOS, Windows) names that differ only in
    case still share a folder.
    """
    data = text.encode("utf-8", "surrogatepass")
    name = _SAFE_BYTES.sub(lambda match: f"%{match.group()[0]:02X}".encode(), data).decode("ascii")
    if name in ("", ".", ".."):
        return {"": "%", ".": "%2E", "..": "%2E%2E"}[name]
    if len(name) > MAX_NAME:
        cut = name[: MAX_NAME - 42]
        cut = cut[: cut.rfind("%")] if "%" in cut[-2:] else cut  # do not end inside an escape
        name = f"{cut}~{hashlib.sha256(data).hexdigest()[:40]}"
    return name


def image_dir(item: Item) -> Path:
    """The folder of an item's images, relative to the run folder:
    ``images/<agent>/<generator>/r<rounds>/s<seed>/<task id>``, each name through :func:`safe_name`.

    Runs written before names were one-to-one used ``_`` for every other character; their records
    keep the paths they were written with, so the reports and exports still find those images, and
    a resumed run never writes into a folder an existing record of another item uses
    (:func:`claimed_image_dirs`).
    """
    return (Path("images") / safe_name(item.agent) / safe_name(item.generator) / f"r{item.max_rounds}"
            / f"s{item.seed}" / safe_name(item.task_id))


def claimed_image_dirs(records: Iterable[Mapping[str, Any]], items: Iterable[Item]) -> dict[str, Path]:
    """For items whose :func:`image_dir` already holds images of *another* record (a folder of an
    older run whose names were not one-to-one), a folder of their own: the name with ``~`` and a hash
    of the item's key appended. Items not in the result use :func:`image_dir`."""
    owner: dict[str, str] = {}
    for record in records:
        for path in record.get("images") or ():
            if isinstance(path, str):
                owner.setdefault(Path(path).parent.as_posix(), str(record.get("key")))
    moved: dict[str, Path] = {}
    for item in items:
        folder, key = image_dir(item), stored_form(item.key)
        if owner.get(folder.as_posix(), key) != key:
            digest = hashlib.sha256(item.key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            moved[item.key] = folder.with_name(f"{folder.name}~{digest}")
    return moved


def episode_record(trajectory: Trajectory, item: Item, task: Mapping[str, Any], *, out: Path, suite: str,
                   benchmark: Benchmark, save_images: str, elapsed_s: float,
                   folder: Path | None = None) -> ResultRecord:
    """The record of one finished episode (its images written under ``out`` first, in ``folder``,
    relative to ``out``; default :func:`image_dir`)."""
    final = trajectory.final_image
    folder = image_dir(item) if folder is None else folder
    images: list[str | None] = []
    for number, image in enumerate(trajectory.images, start=1):
        if save_images == "all" or (save_images == "final" and number == final):
            relative = folder / f"image_{number}.png"
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            image.save(out / relative)
            images.append(relative.as_posix())
        else:
            images.append(None)
    score = float(trajectory.scores[final - 1]["score"]) if final and len(trajectory.scores) >= final else 0.0
    components = trajectory.reward_components
    tool_calls, failed_tool_calls = tool_call_counts(trajectory.turns, len(trajectory.rounds))
    record: ResultRecord = {
        "key": item.key, "agent": item.agent, "generator": item.generator, "max_rounds": item.max_rounds,
        "suite": suite, "benchmark": benchmark,
        "task_id": item.task_id, "task_index": item.task_index, "tag": str(task["tag"]),
        "prompt": str(task["prompt"]), "seed": item.seed, "passed": bool(trajectory.passed), "score": score,
        "reward": float(trajectory.reward),
        "reward_components": {"outcome": float(components.get("outcome", 0.0)),
                              "reflection": float(components.get("reflection", 0.0)),
                              "format": float(components.get("format", 0.0))},
        "final_image": final,
        "images": images,
        # The env writes all four keys of every round (tool and prompt are always strings); the scores
        # add whether each image passed and the error types of its failed checks (for the diagnostics).
        "rounds": [round_record(r, trajectory.scores[i] if i < len(trajectory.scores) else None, task)
                   for i, r in enumerate(trajectory.rounds)],
        "violations": int(trajectory.violations), "turns": len(trajectory.turns),
        "tool_calls": tool_calls, "failed_tool_calls": failed_tool_calls,
        "decisions": json.loads(json.dumps(trajectory.decisions, default=str)),
        "elapsed_s": round(elapsed_s, 6),
    }
    if "wise" in task:
        record["wise"] = json.loads(json.dumps(task["wise"], default=str))
    return record


def round_record(round_: Mapping[str, Any], score: Mapping[str, Any] | None, task: Mapping[str, Any]) -> RoundRecord:
    """The record of one round (an entry of ``info["rounds"]``) with its image's verdict from ``score``
    (``info["scores"][i]``): whether it ``passed`` and the error types of its failed checks
    (``errors``: :func:`genagent_env.scorers.checklist.error_types`, ``[]`` when it passed); the
    verdict is left out when the round has no score."""
    from genagent_env.scorers.checklist import error_types

    record: RoundRecord = {"tool": round_["tool"], "prompt": round_["prompt"], "seed": round_.get("seed"),
                           "judge": round_.get("judge")}
    if isinstance(score, Mapping):
        passed = bool(score.get("passed"))
        details = score.get("details")
        record["passed"] = passed
        record["errors"] = error_types(details if isinstance(details, Mapping) else {}, task, passed)
    return record


def tool_call_counts(turns: Sequence[Mapping[str, Any]], images: int) -> tuple[int, int]:
    """The agent's tool-call attempts (its messages that hold a ``<tool_call>`` tag, spelt as the
    protocol reads it) and how many of them failed: made no image (``images`` were made, each by one
    accepted call), because the env rejected the message as a format violation (broken JSON, an
    unknown tool or argument, two calls, no rounds left, ...) or the tool raised."""
    attempts = sum(1 for turn in turns if isinstance(turn.get("action"), str) and _TOOL_CALL_TAG.search(turn["action"]))
    return attempts, max(0, attempts - images)


def item_spec(item: Item) -> EpisodeSpec:
    """How the episode of ``item`` starts: env seed ``seed * SEED_STRIDE + task_index`` on its task."""
    from agents.rollout import EpisodeSpec

    return EpisodeSpec(seed=item.seed * SEED_STRIDE + item.task_index, options={"task_index": item.task_index})


class Resources:
    """Agents, generators and the scorer of a run, each built once and shared by every vector env
    that needs it (a diffusers generator must not be loaded once per ``max_rounds`` value).

    ``generators`` maps names used in ``args.generators`` to generators built already (they are
    used as they are and not closed here), ``agents`` names in ``args.agents`` to agents built
    already; other names are built from their spec.
    """

    def __init__(self, args: Args, generators: Mapping[str, Generator] | None = None,
                 agents: Mapping[str, Agent] | None = None) -> None:
        self.args = args
        self.scorer = build_scorer(args.scorer)
        self._agents: dict[str, Agent] = dict(agents or {})
        self._given = dict(generators or {})
        self._generators: dict[str, Generator] = {}
        self._envs: dict[tuple[str, int, bool, int], GenAgentVectorEnv] = {}

    def agent(self, spec: str) -> Agent:
        if spec not in self._agents:
            self._agents[spec] = build_agent(spec, self.scorer)
        return self._agents[spec]

    def players(self, spec: str, n: int) -> list[Agent]:
        """Agents for ``n`` episodes played together: one agent for all when it acts in batches,
        else one each (``spawn``: models and scorers shared)."""
        agent = self.agent(spec)
        if hasattr(agent, "act_batch"):
            return [agent] * n
        return [agent] + [agent.spawn() for _ in range(n - 1)]

    def generator(self, spec: str) -> Generator:
        if spec in self._given:
            return self._given[spec]
        if spec not in self._generators:
            self._generators[spec] = build_generator(spec)
        return self._generators[spec]

    def build_all(self, items: Iterable[Item]) -> None:
        """Build every agent and generator ``items`` need now, so that a misspelt spec or a missing
        checkpoint fails before the first episode rather than after the other agents have played."""
        for item in items:
            self.agent(item.agent)
            self.generator(item.generator)

    def vector_env(self, item: Item, num_envs: int, full_suite: list[dict[str, Any]]) -> GenAgentVectorEnv:
        from genagent_env.vector import GenAgentVectorEnv

        privileged = is_privileged(item.agent, self.agent(item.agent))
        key = (item.generator, item.max_rounds, privileged, num_envs)
        if key not in self._envs:
            self._envs[key] = GenAgentVectorEnv(
                num_envs, suite=full_suite, generators=self.generator(item.generator), scorer=self.scorer,
                max_rounds=item.max_rounds, privileged=privileged, tool_timeout_s=self.args.tool_timeout_s,
                generation_cache=False, autoreset_mode="disabled",
            )
        return self._envs[key]

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        for generator in self._generators.values():
            generator.close()
        self.scorer.close()


# ---------------------------------------------------------------------------------- run


_GRID_FIELDS = ("agents", "generators", "max_rounds", "seeds", "tasks_per_tag", "limit")
_FIXED_FIELDS = ("suite", "split", "scorer", "benchmark")


def _args_dict(args: Args) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(args), default=str))


def _write_run_file(out: Path, args: Args, benchmark: str, write: bool = True) -> None:
    """Write ``run.json`` (when ``write``); refuse a folder that holds a run of another suite,
    scorer or benchmark (every rank checks, so no shard starts into the wrong folder)."""
    path = out / RUN_FILE
    current = {**_args_dict(args), "benchmark": benchmark}
    history: list[dict[str, Any]] = []
    if path.is_file():
        previous = json.loads(path.read_text())
        history = list(previous.pop("history", []))
        for name in _FIXED_FIELDS:
            if previous.get(name) != current[name]:
                raise ValueError(
                    f"{out} holds a run with {name}={previous.get(name)!r}, not {current[name]!r}; "
                    "use another --out (only the grid arguments may change between reruns)"
                )
        if {k: previous.get(k) for k in _GRID_FIELDS} != {k: current[k] for k in _GRID_FIELDS}:
            history.append(previous)
    if not write:
        return
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps({**current, "history": history}, indent=2) + "\n")
    os.replace(temporary, path)


def run(args: Args, generators: Mapping[str, Generator] | None = None,
        agents: Mapping[str, Agent] | None = None) -> Path:
    """Run the grid of ``args`` (skipping items already in ``args.out``) and return the run folder.
    ``generators`` maps names in ``args.generators`` to generators already built (in-memory tools,
    not closed here), and ``agents`` names in ``args.agents`` to agents already built (a model being
    trained, evaluated in place); other names are built from their spec.

    In a sharded run every rank returns the folder; only rank 0 merges and reports.
    """
    from genagent_env.tasks.suites import resolve_suite

    for name in ("seeds", "tasks_per_tag", "limit", "num_envs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if not args.agents or not args.generators or not args.max_rounds:
        raise ValueError("--agents, --generators and --max-rounds each need at least one value")
    if any(rounds < 1 for rounds in args.max_rounds):
        raise ValueError(f"--max-rounds values must be positive, got {args.max_rounds}")
    started_wall = time.time()
    started = time.perf_counter()
    dist = detect_dist()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    suite_name, tasks = load_suite(args)
    benchmark = guess_benchmark(suite_name, tasks) if args.benchmark == "auto" else args.benchmark
    _write_run_file(out, args, benchmark, write=dist.rank == 0)
    items = grid(args, tasks)
    keys = "\n".join(item.key for item in items).encode("utf-8", "surrogatepass")
    fingerprint = hashlib.sha256(keys).hexdigest()[:16]
    mine = [item for index, item in enumerate(items) if index % dist.world == dist.rank]
    existing = load_results(out)
    done = {record["key"] for record in existing}
    # A key is compared as it reads back from results.jsonl (JSON joins a surrogate pair into one character).
    todo = [item for item in mine if stored_form(item.key) not in done]
    image_dirs = claimed_image_dirs(existing, todo)
    if dist.world > 1:
        _done_marker(out, dist.rank).unlink(missing_ok=True)

    by_index = {int(task["_index"]): task for task in tasks}
    full_suite = resolve_suite(args.suite, args.split)  # envs index tasks by their place in the full suite
    resources = Resources(args, generators, agents)
    target = out / RESULTS_FILE if dist.world == 1 else shard_file(out, dist.rank)
    episodes = images = 0
    try:
        resources.build_all(todo)
        with ResultsWriter(target) as writer:
            progress = _progress(len(todo), disable=args.quiet or not todo, rank=dist.rank)
            for record in play(todo, resources, by_index, full_suite, out=out, suite=suite_name, benchmark=benchmark,
                               save_images=args.save_images, num_envs=args.num_envs, image_dirs=image_dirs):
                writer.write(record)
                episodes += 1
                images += len(record["rounds"])
                progress.update(1)
            progress.close()
    finally:
        resources.close()
        if dist.world > 1:  # tell rank 0 this shard is over (even after an error: it need not wait forever)
            _done_marker(out, dist.rank).write_text(json.dumps({"fingerprint": fingerprint, "episodes": episodes}))

    if dist.world > 1 and not dist.barrier() and dist.rank == 0:
        keys_by_rank = {rank: {item.key for i, item in enumerate(items) if i % dist.world == rank}
                        for rank in range(dist.world)}
        _wait_for_shards(out, dist, keys_by_rank, fingerprint, started_wall, args.merge_timeout_s)
    if dist.rank != 0:
        return out
    if dist.world > 1 or any(out.glob("results.rank*.jsonl")):  # also tidy shards of an interrupted sharded run
        merge_results(out)
        for marker in out.glob("results.rank*.done"):
            marker.unlink(missing_ok=True)
    wall = time.perf_counter() - started
    if not args.quiet:
        print(f"\n{episodes} episodes, {images} images in {wall:.1f} s on rank 0 "
              f"({episodes / wall:.2f} episodes/s, {images / wall:.2f} images/s)"
              + (f"; {len(mine) - len(todo)} already done" if len(mine) != len(todo) else ""))
    _report(out, quiet=args.quiet)  # --quiet only silences: the reports are always written
    return out


def play(items: Sequence[Item], resources: Resources, tasks: Mapping[int, Mapping[str, Any]],
         full_suite: list[dict[str, Any]], *, out: Path, suite: str, benchmark: Benchmark, save_images: str,
         num_envs: int, image_dirs: Mapping[str, Path] | None = None) -> Iterator[ResultRecord]:
    """Play ``items`` and yield each one's record as its episode ends. Items of one agent, generator
    and ``max_rounds`` share a vector env of up to ``num_envs`` sub-environments that is kept busy
    across tasks and seeds, so their tool calls and scoring run in batches. ``image_dirs`` maps
    item keys to image folders other than :func:`image_dir` (:func:`claimed_image_dirs`)."""
    image_dirs = image_dirs or {}
    from agents.rollout import stream_episodes

    groups: dict[tuple[str, str, int], list[Item]] = {}
    for item in items:
        groups.setdefault((item.agent, item.generator, item.max_rounds), []).append(item)
    for (agent, _, _), members in groups.items():
        n = min(num_envs, len(members))
        envs = resources.vector_env(members[0], n, full_suite)
        started = time.perf_counter()
        for job, trajectory in stream_episodes(envs, resources.players(agent, n), map(item_spec, members)):
            item = members[job]
            now = time.perf_counter()
            # Episodes overlap: each one's share of the wall time since the previous record.
            yield episode_record(trajectory, item, tasks[item.task_index], out=out, suite=suite, benchmark=benchmark,
                                 save_images=save_images, elapsed_s=now - started, folder=image_dirs.get(item.key))
            started = now


class _NoProgress:
    """The progress bar of a quiet run (needs no tqdm)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, disable: bool, rank: int) -> Any:
    if disable:
        return _NoProgress()
    from genagent_env.extras import needs

    with needs("bench", "the progress bar (or pass --quiet)"):
        from tqdm.auto import tqdm

    return tqdm(total=total, disable=disable or None, desc=f"rank {rank}" if rank else "episodes",
                position=rank, unit="ep", dynamic_ncols=True)


def _report(out: Path, quiet: bool = False) -> None:
    """Write the reports (tables, HTML, plots) and, unless ``quiet``, print the leaderboard."""
    from benchmarks.report import write_reports

    files = write_reports(out)
    if not quiet:
        print(Path(files["markdown"]).read_text(encoding="utf-8", errors="replace"))
        print(f"reports written to {Path(files['markdown']).parent}")


def main() -> None:
    run(tyro.cli(Args))


if __name__ == "__main__":
    main()
