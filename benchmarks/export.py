"""Export one leaderboard row's final images in the layouts the official evaluators read.

    python -m benchmarks.export RUN_DIR --format geneval --agent scripted --generator flux-dev \\
        --rounds 4 --seed 0 --out exports/geneval

One row (agent, generator, max_rounds) and one seed are picked from the run's ``results.jsonl``;
each task contributes the image the agent chose (``final_image``):

``geneval``    GenEval's ``evaluation/evaluate_images.py`` layout: ``<out>/<NNNNN>/metadata.jsonl``
               (the task's line of ``evaluation_metadata.jsonl``, as GenEval writes it with
               ``json.dump``, without our added keys such as ``id``) and
               ``<out>/<NNNNN>/samples/0000.png``; ``NNNNN`` is the task's index in the suite file.
``geneval++``  Echo-4o's GenEval++ evaluator: ``<out>/image/<k>.jpg``, ``k`` the task's 1-based line
               number in ``Geneval++.jsonl``.
``wise``       WISE's evaluator: ``<out>/<prompt_id>.png``.

An episode that ended with no image is exported as a black image (``missing="blank"``, the default),
so the evaluator counts it as the failure it is instead of leaving the task out of the average;
``missing="skip"`` leaves it out. The GenEval layout needs the suite's metadata lines: they are read
from the records' ``suite`` when that is a file (or a registered suite, ``name`` or ``name:split``), or from ``suite=``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import tyro
from PIL import Image

from benchmarks.report import RUN_DIR_KEY, read_records

Format = Literal["geneval", "geneval++", "wise"]
#: The keys of a GenEval metadata line; anything else (``id``, ``split``...) is ours.
GENEVAL_KEYS = ("tag", "include", "exclude", "prompt")
#: Size of the placeholder for an episode without an image.
BLANK_SIZE = (512, 512)


@dataclass
class ExportResult:
    """What :func:`export_run` wrote: the folder, the image files, and the task ids whose episode
    had no image (exported blank, or skipped)."""

    out: Path
    files: list[Path] = field(default_factory=list)
    missing_images: list[str] = field(default_factory=list)
    missing_tasks: list[int] = field(default_factory=list)


def select_row(records: Sequence[Mapping[str, Any]], *, agent: str, generator: str, rounds: int, seed: int,
               benchmark: str) -> list[Mapping[str, Any]]:
    """The records of one row and seed on ``benchmark``, one per task, in task order.

    Raises ``ValueError`` saying what the run holds when nothing matches, and when two records of
    the row claim the same task index.
    """
    picked = [r for r in records if r.get("agent") == agent and r.get("generator") == generator
              and int(r.get("max_rounds", -1)) == rounds and int(r.get("seed", -1)) == seed
              and r.get("benchmark") == benchmark]
    if not picked:
        present = sorted({f"{r.get('benchmark')} {r.get('agent')}:{r.get('generator')}:{r.get('max_rounds')} "
                          f"seed {r.get('seed')}" for r in records})
        raise ValueError(f"no {benchmark} records for {agent}:{generator}:{rounds} seed {seed}; "
                         f"the run holds: {', '.join(present) or 'nothing'}")
    by_index: dict[int, Mapping[str, Any]] = {}
    for record in picked:
        index = int(record["task_index"])
        if index in by_index:
            raise ValueError(f"task index {index} appears twice ({by_index[index]['task_id']!r}, "
                             f"{record['task_id']!r}): more than one suite in this row?")
        by_index[index] = record
    return [by_index[i] for i in sorted(by_index)]


def final_image(record: Mapping[str, Any]) -> Image.Image | None:
    """The image the agent chose (``final_image``, 1-based, resolved against the run folder), as RGB,
    or ``None`` when the episode made no image."""
    final = record.get("final_image")
    images = record.get("images") or []
    if final is None or not 1 <= int(final) <= len(images):
        return None
    if images[int(final) - 1] is None:
        raise ValueError(f"task {record.get('task_id')!r}: the final image was not saved by the run "
                         "(--save-images none?); it cannot be exported")
    path = Path(str(record.get(RUN_DIR_KEY, "."))) / images[int(final) - 1]
    with Image.open(path) as image:
        return image.convert("RGB")


def geneval_metadata_lines(suite: str | Path, split: str = "test") -> list[dict[str, Any]]:
    """The metadata lines of a GenEval-style suite, in file order, as GenEval reads them.

    ``suite`` is a JSONL file (each non-empty line parsed as is, so the original keys and their
    order are kept; keys outside :data:`GENEVAL_KEYS` are dropped) or a registered suite name
    (its tasks for ``split``, reduced to :data:`GENEVAL_KEYS`), also written ``name:split`` as the
    runner records it (``shapes-geneval:test``).
    """
    path = Path(suite)
    if not path.is_file() and ":" in str(suite):
        name, _, named_split = str(suite).rpartition(":")
        from genagent_env.tasks.suites import SUITES

        if name in SUITES:
            suite, split = name, named_split
    if path.is_file():
        # Lines end at "\n" only (str.splitlines would also cut a prompt at U+2028 or U+0085).
        text = path.read_text(encoding="utf-8-sig")
        lines = [json.loads(line) for line in text.split("\n") if line.strip()]
    else:
        from genagent_env.tasks.suites import SUITES, resolve_suite

        if str(suite) not in SUITES:
            raise ValueError(f"suite {str(suite)!r} is neither a file nor a registered suite; pass suite=PATH "
                             "(the evaluation_metadata.jsonl the run used)")
        lines = resolve_suite(str(suite), split)
    return [{key: value for key, value in line.items() if key in GENEVAL_KEYS} for line in lines]


def _image_or_blank(record: Mapping[str, Any], missing: str, result: ExportResult) -> Image.Image | None:
    image = final_image(record)
    if image is None:
        result.missing_images.append(str(record.get("task_id")))
        if missing == "blank":
            return Image.new("RGB", BLANK_SIZE, (0, 0, 0))
    return image


def export_geneval(records: Sequence[Mapping[str, Any]], out: Path, *, suite: str | Path | None = None,
                   split: str = "test", missing: str = "blank") -> ExportResult:
    """Write GenEval's layout (see the module doc) for one row's records."""
    result = ExportResult(out=Path(out))
    if suite is None:  # the records' suite: a path (from the working folder or the run folder) or a name
        suite = str(records[0].get("suite", ""))
        beside_run = Path(str(records[0].get(RUN_DIR_KEY, "."))) / suite
        if suite and not Path(suite).is_file() and beside_run.is_file():
            suite = beside_run
    metadata = geneval_metadata_lines(suite, split)
    done: set[int] = set()
    for record in records:
        index = int(record["task_index"])
        if not 0 <= index < len(metadata):
            raise ValueError(f"task {record['task_id']!r}: index {index} is outside the suite ({len(metadata)} lines)")
        line = metadata[index]
        if str(line.get("prompt", "")).strip() != str(record.get("prompt", "")).strip():
            raise ValueError(f"task {record['task_id']!r}: its prompt {record.get('prompt')!r} is not line {index} "
                             f"of the suite ({line.get('prompt')!r}); wrong suite file?")
        image = _image_or_blank(record, missing, result)
        if image is None:
            continue
        folder = result.out / f"{index:0>5}"
        (folder / "samples").mkdir(parents=True, exist_ok=True)
        with open(folder / "metadata.jsonl", "w", encoding="utf-8") as handle:
            # As GenEval's generation script writes it: json.dump's ASCII escapes, so any text
            # (lone surrogates too) is written, and json.load reads it back unchanged.
            json.dump(line, handle, ensure_ascii=True)
        target = folder / "samples" / "0000.png"
        image.save(target)
        result.files.append(target)
        done.add(index)
    result.missing_tasks = [i for i in range(len(metadata)) if i not in done]
    return result


def export_geneval_pp(records: Sequence[Mapping[str, Any]], out: Path, *, missing: str = "blank") -> ExportResult:
    """Write Echo-4o's GenEval++ layout: ``<out>/image/<task_index + 1>.jpg``."""
    result = ExportResult(out=Path(out))
    folder = result.out / "image"
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        image = _image_or_blank(record, missing, result)
        if image is None:
            continue
        target = folder / f"{int(record['task_index']) + 1}.jpg"
        image.save(target, format="JPEG", quality=95)
        result.files.append(target)
    return result


def wise_prompt_id(record: Mapping[str, Any]) -> int:
    """The WISE ``prompt_id`` of a record (its ``wise`` fields, else its ``wise/<id>`` task id)."""
    wise = record.get("wise")
    if isinstance(wise, Mapping) and "prompt_id" in wise:
        return int(wise["prompt_id"])
    task_id = str(record.get("task_id", ""))
    if task_id.startswith("wise/") and task_id[5:].isdigit():
        return int(task_id[5:])
    raise ValueError(f"task {task_id!r} has no WISE prompt_id")


def export_wise(records: Sequence[Mapping[str, Any]], out: Path, *, missing: str = "blank") -> ExportResult:
    """Write WISE's layout: ``<out>/<prompt_id>.png``."""
    result = ExportResult(out=Path(out))
    result.out.mkdir(parents=True, exist_ok=True)
    for record in records:
        image = _image_or_blank(record, missing, result)
        if image is None:
            continue
        target = result.out / f"{wise_prompt_id(record)}.png"
        image.save(target)
        result.files.append(target)
    return result


def export_run(run: Path, format: Format, *, agent: str, generator: str, rounds: int, seed: int, out: Path,
               suite: str | Path | None = None, split: str = "test", missing: str = "blank") -> ExportResult:
    """Export one row and seed of the run folder ``run`` in ``format`` into ``out``."""
    if missing not in ("blank", "skip"):
        raise ValueError(f"missing must be 'blank' or 'skip', got {missing!r}")
    records = select_row(read_records(run), agent=agent, generator=generator, rounds=rounds, seed=seed,
                         benchmark=format)
    if format == "geneval":
        return export_geneval(records, out, suite=suite, split=split, missing=missing)
    if format == "geneval++":
        return export_geneval_pp(records, out, missing=missing)
    if format == "wise":
        return export_wise(records, out, missing=missing)
    raise ValueError(f"unknown format {format!r}")


@dataclass
class Args:
    """Export one row's final images for an official evaluator."""

    run: tyro.conf.Positional[Path]
    """run folder (holding results.jsonl)"""
    format: Format
    """geneval (evaluate_images.py), geneval++ (Echo-4o) or wise"""
    agent: str
    generator: str
    rounds: int
    """the row's max_rounds"""
    out: Path
    """output folder"""
    seed: int = 0
    suite: Path | None = None
    """GenEval only: the evaluation_metadata.jsonl the run used (default: the records' suite)"""
    split: str = "test"
    """GenEval only, for a registered suite name: its split"""
    missing: Literal["blank", "skip"] = "blank"
    """an episode without an image: a black image (counts as a failure) or left out"""


def main(args: Args) -> ExportResult:
    """Run the export and print what was written."""
    result = export_run(args.run, args.format, agent=args.agent, generator=args.generator, rounds=args.rounds,
                        seed=args.seed, out=args.out, suite=args.suite, split=args.split, missing=args.missing)
    print(f"{len(result.files)} images written to {result.out}/ ({args.format})")
    if result.missing_images:
        print(f"{len(result.missing_images)} episodes had no image ({args.missing}): {result.missing_images[:10]}")
    if result.missing_tasks:
        print(f"{len(result.missing_tasks)} suite tasks have no record in this run: {result.missing_tasks[:10]}")
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
