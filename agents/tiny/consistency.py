"""Does an agent's judgment agree with itself? Read the teacher's ``checks``-style judgments in a
benchmark run's ``results.jsonl`` and measure each step of them against the step before::

    python -m agents.tiny.consistency runs/eval --agent tiny-sft     # a run folder or its results.jsonl

A judgment in that style describes the image, checks each item of the request against the
description, then gives a verdict::

    <judge>image_1 shows 3 red circles (left), 1 blue star. Checks: 2 red circles: 3 no;
    1 blue star: 1 yes. It does not match.</judge>

Three questions, each answerable from the text alone (no image, no verifier):

- **count = own description**: of the count checks (``2 red circles: 3 no``), the share whose
  count (3) is what the judgment's own description says of that shape and colour (summed over
  its groups; 0 when it names none);
- **yes/no follows the counts**: the share of count checks whose verdict is ``yes`` exactly when
  the two numbers are equal, with the checks whose numbers differ yet say ``yes`` counted apart;
- **verdict follows the checks**: the share of judgments that say ``It matches`` exactly when
  every check says ``yes``; and, with the verifier's verdict from the record, the share of failing
  images whose every check says ``yes`` (the image accepted).

The ``seen`` style (half, relation and size checks also write what they saw, ``ring left: right
no``) is read as ``checks`` is. Judgments in another style (``problems``, ``lookup``,
``adjacent``) or not in the teacher's form at all are counted as unread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

from genagent_env.shapes.vocab import PALETTE, SHAPES
from genagent_env.tasks.wording import plural_noun

#: Every way a shape is written (singular and plural) -> the shape.
_NOUNS = {plural_noun(shape, 2): shape for shape in SHAPES} | {shape: shape for shape in SHAPES}
_COLOUR = "|".join(re.escape(c) for c in PALETTE)
_NOUN = "|".join(re.escape(n) for n in sorted(_NOUNS, key=len, reverse=True))
_GROUP = re.compile(rf"(\d+) (?:(?:big|small) )?(?:({_COLOUR}) )?({_NOUN})\b")
_COUNT_CHECK = re.compile(rf"(?:^|; )(\d+) (?:({_COLOUR}) )?({_NOUN}): (\d+) (yes|no)\b")
_JUDGMENT = re.compile(r"image_\d+ shows (.*?)\. Checks: (.*?)\. It (matches|does not match)")
#: A check's verdict, after the count it found (``checks``) or the word for what it saw (``seen``).
_VERDICT = re.compile(r": (?:(?:\d+|left|right|top|bottom|above|below|both|near|big|small|same|none) )?(yes|no)\b")


@dataclass(frozen=True)
class CountCheck:
    """One count check as written: ``want colour shape: found verdict``."""

    want: int
    colour: str
    shape: str
    found: int
    says_yes: bool


@dataclass(frozen=True)
class ReadJudgment:
    """A ``checks``-style judgment, read: the description's groups as ``(count, colour, shape)``,
    its count checks, whether every check says ``yes``, and whether it says the image matches."""

    groups: tuple[tuple[int, str, str], ...]
    count_checks: tuple[CountCheck, ...]
    all_yes: bool
    matches: bool

    def described(self, shape: str, colour: str = "") -> int:
        """How many objects of ``shape`` (in ``colour``; any when ``""``) the description names."""
        return sum(n for n, c, s in self.groups if s == shape and (not colour or c == colour))


def read_judgment(text: str) -> ReadJudgment | None:
    """``text`` read as a ``checks``-style judgment, or ``None`` when it is not one."""
    found = _JUDGMENT.search(text)
    if found is None:
        return None
    description, checks, verdict = found.groups()
    groups = tuple((int(n), colour, _NOUNS[noun]) for n, colour, noun in _GROUP.findall(description))
    count_checks = tuple(CountCheck(int(want), colour, _NOUNS[noun], int(seen), answer == "yes")
                         for want, colour, noun, seen, answer in _COUNT_CHECK.findall(checks))
    all_yes = all(answer == "yes" for answer in _VERDICT.findall(checks))
    return ReadJudgment(groups, count_checks, all_yes, verdict == "matches")


@dataclass
class Consistency:
    """The counts behind the three questions (see the module docstring)."""

    judgments: int = 0
    unread: int = 0
    verdict_follows: int = 0
    count_checks: int = 0
    copied: int = 0
    follows_counts: int = 0
    unequal: int = 0
    unequal_yes: int = 0
    failing_images: int = 0
    failing_all_yes: int = 0

    def add(self, judgment: ReadJudgment, passed: bool | None) -> None:
        """Count one read judgment; ``passed``: the verifier's verdict on its image, if known."""
        self.judgments += 1
        self.verdict_follows += judgment.matches == judgment.all_yes
        if passed is False:
            self.failing_images += 1
            self.failing_all_yes += judgment.all_yes
        for check in judgment.count_checks:
            self.count_checks += 1
            self.copied += check.found == judgment.described(check.shape, check.colour)
            self.follows_counts += check.says_yes == (check.want == check.found)
            if check.want != check.found:
                self.unequal += 1
                self.unequal_yes += check.says_yes

    def table(self) -> str:
        """The measures as a Markdown table (shares with their counts)."""

        def share(part: int, whole: int) -> str:
            return f"{part / whole:.3f} ({part} / {whole})" if whole else "– (0)"

        rows = [("judgments read", f"{self.judgments} ({self.unread} unread)"),
                ("count = own description", share(self.copied, self.count_checks)),
                ("yes/no follows the counts", share(self.follows_counts, self.count_checks)),
                ("unequal counts said yes", share(self.unequal_yes, self.unequal)),
                ("verdict follows the checks", share(self.verdict_follows, self.judgments)),
                ("failing images with every check yes", share(self.failing_all_yes, self.failing_images))]
        return "\n".join(["| measure | value |", "|---|---:|", *(f"| {k} | {v} |" for k, v in rows)])


def consistency(records: Iterable[Mapping[str, Any]], agent: str | None = None) -> Consistency:
    """:class:`Consistency` over every round's judgment of ``records`` (benchmark episode records),
    of ``agent``'s episodes only when given."""
    out = Consistency()
    for record in records:
        if agent is not None and record.get("agent") != agent:
            continue
        for round_ in record.get("rounds", []):
            text = round_.get("judge")
            if not text:
                continue
            judgment = read_judgment(str(text))
            if judgment is None:
                out.unread += 1
                continue
            passed = round_.get("passed")
            out.add(judgment, bool(passed) if passed is not None else None)
    return out


@dataclass
class Args:
    """Judgment consistency of a benchmark run."""

    run: tyro.conf.Positional[Path]
    """a benchmark run's folder, or its ``results.jsonl``"""
    agent: str | None = None
    """only this agent's episodes (as the leaderboard names it, e.g. ``tiny-sft`` or ``llm:runs/x``)"""


def main(args: Args) -> Consistency:
    path = args.run / "results.jsonl" if args.run.is_dir() else args.run
    if not path.is_file():
        raise SystemExit(f"no results at {path}: pass a benchmark run's folder or its results.jsonl")
    with path.open(encoding="utf-8") as lines:
        result = consistency((json.loads(line) for line in lines if line.strip()), args.agent)
    print(result.table())
    return result


if __name__ == "__main__":
    main(tyro.cli(Args))
