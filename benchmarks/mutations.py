"""Mutation run: break named behaviours one at a time in a copy of the project and check that the
tests meant to guard each one notice.

    python -m benchmarks.mutations                      # every mutation (a few minutes on 2 cores)
    python -m benchmarks.mutations --only writer-no-fsync clip-weight-ignored
    python -m benchmarks.mutations --list               # names, what each breaks, which tests guard it

(``genagent-mutations`` is the console-script name for it, should it be added to ``[project.scripts]``
as ``benchmarks.mutations:cli``.)

The project (tracked files plus untracked ones git does not ignore, i.e. the working tree as it is)
is copied to a temporary folder once. Each :class:`Mutation` is a small textual patch: every
``old`` text must occur in its file exactly ``count`` times, or the run stops with an error naming
the mutation (a patch whose target moved must be updated, never silently skipped; the test
``tests/test_mutations.py`` checks that every patch still applies, without running the suites).
The patched copy runs ``python -m pytest -x -q`` on the mutation's tests, and the file is put back
before the next one. A mutation is *caught* when pytest reports failed tests (exit code 1); exit
code 0 means it *survived*; anything else (a collection error, a timeout) is an *error*, which
proves nothing. Before the mutations, the same tests run on the unpatched copy and must pass.

Prints a table (mutation, caught, first failing test, seconds); exits 1 when any mutation survived
or errored, 2 when the unpatched tests fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tyro

ROOT = Path(__file__).resolve().parents[1]


class MutationRotted(RuntimeError):
    """A mutation's target text is not in the source as often as it should be."""


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` by ``new`` in ``path`` (relative to the project root); ``old`` must occur
    exactly ``count`` times."""

    path: str
    old: str
    new: str
    count: int = 1


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]
    """test files or node ids, relative to the project root"""


_WRITER_LINE = "        written = os.write(self._fd, line)\n"

MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "reflection-weight-ignored",
        "the configured reflection weight is ignored: the default 0.3 is always paid",
        (Edit("genagent_env/rewards.py", '"reflection": weights.reflection * accuracy,',
              '"reflection": 0.3 * accuracy,'),),
        ("tests/test_env_protocol.py",),
    ),
    Mutation(
        "outcome-weight-ignored",
        "the configured outcome weight is ignored: the default 0.7 is always paid",
        (Edit("genagent_env/rewards.py", "outcome = weights.outcome * float(bool(final_score.passed))",
              "outcome = 0.7 * float(bool(final_score.passed))"),),
        ("tests/test_env_protocol.py",),
    ),
    Mutation(
        "format-penalty-ignored",
        "the configured format penalty is ignored: the default 0.2 is always subtracted",
        (Edit("genagent_env/rewards.py", '"format": -weights.format_penalty if violations else 0.0,',
              '"format": -0.2 if violations else 0.0,'),),
        ("tests/test_env_protocol.py",),
    ),
    Mutation(
        "continuous-outcome-ignored",
        "continuous_outcome=True still pays outcome x passed",
        (Edit("genagent_env/rewards.py", "elif weights.continuous_outcome:", "elif False:"),),
        ("tests/test_env_protocol.py",),
    ),
    Mutation(
        "tie-is-a-preference",
        "a retry counts as correct when the comparator calls the new image a tie",
        (Edit("genagent_env/rewards.py", "and preference == 1", "and preference in (0, 1)"),),
        ("tests/test_env_protocol.py",),
    ),
    Mutation(
        "judge-missing-not-a-violation",
        "a turn after a new image without <judge> is not a format violation",
        (Edit("genagent_env/episode.py",
              "turn.missing_judge = state.judge_pending and not (parsed is not None and parsed.starts_with_judge)",
              "turn.missing_judge = False"),),
        ("tests/test_env_protocol.py",),
    ),
    Mutation(
        "seed-string-coerced",
        'a seed written as a string ("7") is accepted and turned into the integer 7',
        (
            Edit("genagent_env/protocol.py",
                 '"integer": lambda _, value: isinstance(value, int) and not isinstance(value, bool),',
                 '"integer": lambda _, value: (isinstance(value, int) and not isinstance(value, bool))'
                 ' or (isinstance(value, str) and value.isdigit()),'),
            Edit("genagent_env/episode.py", 'seed = arguments.pop("seed", None)\n',
                 'seed = arguments.pop("seed", None)\n'
                 '            seed = int(seed) if isinstance(seed, str) else seed\n'),
        ),
        ("tests/test_env_protocol.py",),
    ),
    Mutation(
        "writer-no-fsync",
        "ResultsWriter.write never fsyncs",
        (Edit("benchmarks/results.py", "        os.fsync(self._fd)\n", "        pass\n"),),
        ("tests/test_results_writer.py",),
    ),
    Mutation(
        "writer-two-records-per-write",
        "ResultsWriter holds a record back and writes two per os.write",
        (Edit("benchmarks/results.py", _WRITER_LINE,
              '        self._held = getattr(self, "_held", b"") + line\n'
              '        if self._held.count(b"\\n") < 2:\n'
              "            return\n"
              '        line, self._held = self._held, b""\n' + _WRITER_LINE),),
        ("tests/test_results_writer.py",),
    ),
    Mutation(
        "writer-splits-a-record",
        "ResultsWriter writes each record in two os.write calls",
        (Edit("benchmarks/results.py", _WRITER_LINE,
              "        written = os.write(self._fd, line[: len(line) // 2])\n"
              "        written += os.write(self._fd, line[len(line) // 2 :])\n"),),
        ("tests/test_results_writer.py",),
    ),
    Mutation(
        "vector-env-generates-per-request",
        "the vector env sends each sub-environment's request in its own generate call",
        (Edit("genagent_env/stepping.py",
              "groups.setdefault((id(tool), id(config.generation_cache), config.tool_timeout_s), []).append(index)",
              "groups.setdefault((id(tool), index, config.tool_timeout_s), []).append(index)"),),
        ("tests/test_batching_counts.py",),
    ),
    Mutation(
        "dispatch-ignores-batching",
        "generate_requests calls the generator once per request instead of once per batch",
        (Edit("genagent_env/tools/dispatch.py", "size = batch_size or max(len(to_generate), 1)", "size = 1"),),
        ("tests/test_batching_counts.py",),
    ),
    Mutation(
        "batch-deadline-of-one-request",
        "a batch of n requests gets one request's deadline instead of n times it",
        (Edit("genagent_env/tools/dispatch.py", "deadline = None if timeout_s is None else timeout_s * len(batch)",
              "deadline = timeout_s"),),
        ("tests/test_generation_cache.py",),
    ),
    Mutation(
        "cache-key-ignores-seed",
        "the generation cache key leaves out the seed: another seed is served the cached image",
        (Edit("genagent_env/tools/cache.py", "            int(request.seed),\n", ""),),
        ("tests/test_generation_cache.py",),
    ),
    Mutation(
        "clip-weight-ignored",
        "CLIPScorer ignores its weight and always uses CLIPScore's 2.5",
        (Edit("genagent_env/scorers/clip.py", "value = min(1.0, self.weight * max(cosine, 0.0))",
              "value = min(1.0, CLIPSCORE_WEIGHT * max(cosine, 0.0))"),),
        ("tests/test_clip_scorer.py",),
    ),
    Mutation(
        "judge-unreadable-counts-as-yes",
        "the VLM judge passes a check whose answer it could not read",
        (Edit("genagent_env/scorers/vlm_judge.py", '"ok": answer is True,', '"ok": answer is not False,'),),
        ("tests/test_vlm_judge.py",),
    ),
    Mutation(
        "sb3-agent-ignores-its-policy",
        "the SB3 agent always plays strategy 0 instead of asking its model",
        (Edit("wrappers/sb3_agent.py",
              "action, _ = self.model.predict(features, deterministic=self.deterministic)",
              "action = 0"),),
        ("tests/test_sb3.py",),
    ),
    Mutation(
        "readme-stated-output-wrong",
        "the README's quick start states a reward its example does not print",
        (Edit("README.md", "# 1.0 {'outcome': 0.7, 'reflection': 0.3, 'format': 0.0} True",
              "# 0.7 {'outcome': 0.7, 'reflection': 0.0, 'format': 0.0} True"),),
        ("tests/test_readme.py",),
    ),
    Mutation(
        "perf-verdict-always-pass",
        "benchmarks.perf prints PASS whatever the ratio",
        (Edit("benchmarks/perf.py", "'PASS' if ratio >= args.target else 'FAIL'", "'PASS'", count=2),),
        ("tests/test_perf_benchmark.py::test_the_report_computes_each_ratio_and_verdict_from_the_rows",),
    ),
)


# --------------------------------------------------------------------------------- patching


def patched(mutation: Mutation, root: Path) -> dict[Path, str]:
    """The mutated text of every file the mutation touches (nothing written). Raises
    :class:`MutationRotted` when a target text is not found exactly ``count`` times."""
    texts: dict[Path, str] = {}
    for edit in mutation.edits:
        path = root / edit.path
        if not path.is_file():
            raise MutationRotted(f"{mutation.name}: {edit.path} does not exist")
        text = texts.get(path, path.read_text(encoding="utf-8"))
        found = text.count(edit.old)
        if found != edit.count:
            raise MutationRotted(
                f"{mutation.name}: expected {edit.count} occurrence(s) of {edit.old!r} in {edit.path}, found {found}; "
                "update the mutation in benchmarks/mutations.py"
            )
        texts[path] = text.replace(edit.old, edit.new)
    return texts


def check_all(mutations: Sequence[Mutation], root: Path = ROOT) -> None:
    """Every patch applies to the source under ``root``, gives code that compiles, and names test
    files that exist. Raises ``MutationRotted`` (or ``SyntaxError``) otherwise."""
    names = [m.name for m in mutations]
    if len(set(names)) != len(names):
        raise MutationRotted(f"mutation names repeat: {names}")
    for mutation in mutations:
        for path, text in patched(mutation, root).items():
            if text == path.read_text(encoding="utf-8"):
                raise MutationRotted(f"{mutation.name}: the patch changes nothing in {path.name}")
            if path.suffix == ".py":
                compile(text, str(path), "exec")
        for test in mutation.tests:
            if not (root / test.split("::")[0]).is_file():
                raise MutationRotted(f"{mutation.name}: the test file {test} does not exist")


def copy_project(destination: Path, root: Path = ROOT) -> None:
    """Copy the working tree: tracked files and untracked ones git does not ignore."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=True,
    ).stdout.decode("utf-8", "surrogateescape")
    for name in filter(None, listing.split("\0")):
        source = root / name
        if not source.is_file():  # deleted in the working tree but still in the index
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


# ---------------------------------------------------------------------------------- running


@dataclass
class Outcome:
    mutation: str
    verdict: str  # "caught", "SURVIVED", "error"
    seconds: float
    detail: str = ""
    output: str = field(default="", repr=False)


def _environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy), env.get("PYTHONPATH", "")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a restored file must never meet its mutant's bytecode
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def run_tests(copy: Path, tests: Sequence[str], timeout_s: float) -> tuple[int, str, float]:
    """``pytest -x -q`` on ``tests`` in ``copy``: (exit code, output, seconds); 124 on a timeout."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=copy, env=_environment(copy), capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as expired:
        output = (expired.stdout or b"").decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        return 124, output, time.perf_counter() - start
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def _first_failure(output: str) -> str:
    match = re.search(r"^(?:FAILED|ERROR) (.+?)(?: - |$)", output, flags=re.MULTILINE)
    return match.group(1) if match else ""


def _check_imports_from(copy: Path) -> None:
    code = "import genagent_env, benchmarks; print(genagent_env.__file__); print(benchmarks.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=copy, env=_environment(copy), capture_output=True,
                          text=True, check=True)
    for line in done.stdout.split():
        if not Path(line).resolve().is_relative_to(copy.resolve()):
            raise RuntimeError(f"the copy imports the project from {line}, not from {copy}")


def run_mutation(mutation: Mutation, copy: Path, timeout_s: float) -> Outcome:
    texts = patched(mutation, copy)
    originals = {path: path.read_text(encoding="utf-8") for path in texts}
    try:
        for path, text in texts.items():
            path.write_text(text, encoding="utf-8")
        code, output, seconds = run_tests(copy, mutation.tests, timeout_s)
    finally:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")
    if code == 1:
        return Outcome(mutation.name, "caught", seconds, _first_failure(output), output)
    if code == 0:
        return Outcome(mutation.name, "SURVIVED", seconds, "all tests passed", output)
    reason = "timed out" if code == 124 else f"pytest exit code {code}"
    return Outcome(mutation.name, "error", seconds, f"{reason} {_first_failure(output)}".strip(), output)


def table(outcomes: Sequence[Outcome]) -> list[str]:
    width = max([len("mutation"), *(len(o.mutation) for o in outcomes)])
    lines = [f"{'mutation':<{width}}  {'caught':<8}{'seconds':>8}  first failing test",
             "-" * (width + 60)]
    for o in outcomes:
        caught = {"caught": "yes", "SURVIVED": "NO", "error": "error"}[o.verdict]
        detail = o.detail if len(o.detail) <= 100 else o.detail[:99] + "…"
        lines.append(f"{o.mutation:<{width}}  {caught:<8}{o.seconds:>8.1f}  {detail}")
    return lines


@dataclass
class Args:
    only: tuple[str, ...] = ()
    """run only these mutations (default: all)"""
    list: bool = False
    """print the mutations and exit"""
    timeout_s: float = 900.0
    """per test run"""
    keep: bool = False
    """keep the temporary copy (its path is printed)"""
    baseline: bool = True
    """first run the unpatched tests (they must pass, or nothing is proven)"""
    verbose: bool = False
    """print pytest's output of every run"""


def main(args: Args) -> int:
    known = {m.name: m for m in MUTATIONS}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        print(f"unknown mutation(s) {unknown}; known: {sorted(known)}", file=sys.stderr)
        return 2
    chosen = [known[name] for name in args.only] if args.only else list(MUTATIONS)
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.description}\n    tests: {' '.join(m.tests)}")
        return 0
    check_all(chosen)  # fail loudly before copying anything
    scratch = Path(tempfile.mkdtemp(prefix="genagent-mutations-"))
    copy = scratch / "project"
    try:
        copy_project(copy)
        _check_imports_from(copy)
        print(f"copy: {copy}", flush=True)
        if args.baseline:
            tests = list(dict.fromkeys(t for m in chosen for t in m.tests))
            code, output, seconds = run_tests(copy, tests, args.timeout_s)
            print(f"unpatched tests: exit {code} in {seconds:.0f} s", flush=True)
            if code != 0:
                print(output[-4000:])
                print("the unpatched tests fail: fix them before reading anything into the mutations", file=sys.stderr)
                return 2
        outcomes = []
        for mutation in chosen:
            outcome = run_mutation(mutation, copy, args.timeout_s)
            outcomes.append(outcome)
            print(f"  {mutation.name}: {outcome.verdict} ({outcome.seconds:.0f} s)", flush=True)
            if args.verbose or outcome.verdict == "error":
                print(outcome.output[-3000:])
        print()
        print("\n".join(table(outcomes)))
        bad = [o.mutation for o in outcomes if o.verdict != "caught"]
        print(f"\n{len(outcomes) - len(bad)} of {len(outcomes)} mutations caught"
              + (f"; not caught: {', '.join(bad)}" if bad else ""))
        return 1 if bad else 0
    finally:
        if args.keep:
            print(f"kept {copy}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def cli() -> None:
    sys.exit(main(tyro.cli(Args)))


if __name__ == "__main__":
    cli()
