"""A vision-language model as the judge: GenEval++ checklists, WISE's WiScore, and pairwise preference.

The GenAgent paper scores images with a VLM reward model; GenEval++ uses GPT-4.1 as its judge and
WISE uses GPT-4o. :class:`VLMJudgeScorer` runs any Hugging Face VLM whose processor has a
Qwen2-VL-style chat template (images as ``{"type": "image"}`` content parts) through transformers,
with greedy, batched, left-padded generation::

    from genagent_env import GenAgentEnv
    from genagent_env.scorers.vlm_judge import VLMJudgeScorer

    judge = VLMJudgeScorer("Qwen/Qwen2.5-VL-7B-Instruct", procedure="geneval++", dtype="bfloat16")
    env = GenAgentEnv(suite="Geneval++.jsonl", generators=..., scorer=judge, comparator=judge)

or, already loaded, ``VLMJudgeScorer(model, processor)``. ``trust_remote_code`` is off unless you
set it. The judge is both a :class:`Scorer` and a :class:`PairwiseComparator`; the env uses it
for preference only when it is also passed as ``comparator=``.

Procedures:

- ``"geneval++"`` — the task's checklist becomes strict yes/no questions, one per check: the exact
  count of each item (with its colour), its region, its position relative to another item, its
  size, and each excluded object. ``question_style="per_check"`` (default) asks each in its own
  prompt; ``"checklist"`` asks them all in one numbered prompt. ``passed`` = every answer is yes
  (or, with ``threshold``, the fraction of yes ≥ threshold); ``score`` = fraction of yes. A task
  without a checklist (a bare prompt) gets one question: does the image match the request?
- ``"wise"`` — WISE's protocol: consistency, realism and aesthetic quality, each 0–2, combined as
  WiScore = (0.7·C + 0.2·R + 0.1·A) / 2 ∈ [0, 1] (the ``score``). The default ``threshold`` is 0.7:
  with integer sub-scores WiScore ≥ 0.7 exactly when consistency is 2, so an image *passes* when
  the judge finds the prompt fully realised, whatever its realism and aesthetics. WISE itself
  reports the mean WiScore (use ``score`` and ``reward_weights`` with a continuous outcome for that).

Answers are parsed leniently (case, punctuation, Markdown emphasis, extra words, JSON); an answer
that still cannot be read fails its check, with a message saying so (a WISE sub-score that cannot
be read counts as 0 and is listed in ``details["unreadable"]``). Pairwise answers that cannot be
read are a tie. Override :meth:`VLMJudgeScorer.generate` to put any other text backend behind the
same prompts and parsers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from genagent_env.extras import needs
from genagent_env.scorers.base import PairwiseComparator, Score, Scorer
from genagent_env.tasks.wording import REGION_HALVES, describe_item, item_noun, region_half, relation_phrase

if TYPE_CHECKING:
    from PIL.Image import Image

Procedure = Literal["geneval++", "wise"]
QuestionStyle = Literal["per_check", "checklist"]

#: A conversation for the judge: chat messages (images as ``{"type": "image"}`` parts) and the
#: images those parts stand for, in order.
Conversation = tuple[list[dict[str, Any]], list["Image"]]

SYSTEM_PROMPT = (
    "You are a meticulous, strict judge of images made by text-to-image models. "
    "Look at the image carefully and answer exactly in the format asked, with no explanation."
)
WISE_WEIGHTS = {"consistency": 0.7, "realism": 0.2, "aesthetic_quality": 0.1}

_MARKUP = re.compile(r"[*_`#>\"']")
_RANGE = re.compile(r"[(<\[]\s*0\s*(?:-|–|to)\s*2\s*[)>\]]")
_YES = {"yes", "true", "correct", "y"}
_NO = {"no", "false", "incorrect", "n"}


# ----------------------------------------------------------------------------- parsers


def _clean(text: str) -> str:
    return _MARKUP.sub(" ", str(text)).strip().lower()


def parse_yes_no(text: str) -> bool | None:
    """``"Yes."``, ``"**YES**"``, ``"no, it does not"`` -> True / False; ``""``, ``"maybe"``,
    or an answer saying both yes and no without leading with one -> None (unreadable)."""
    words = re.findall(r"[a-z]+", _clean(text))
    if not words:
        return None
    if words[0] in _YES:
        return True
    if words[0] in _NO:
        return False
    said = {True for w in words if w in _YES} | {False for w in words if w in _NO}
    return said.pop() if len(said) == 1 else None


def _from_json(text: str) -> Any:
    """The first JSON object or list embedded in ``text`` (code fences and prose around it are fine)."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text[match.start():])
        except json.JSONDecodeError:
            continue
        if isinstance(value, (dict, list)):
            return value
    return None


def _verdict(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):  # {"answer": "yes"} or {"ok": true}
        for key in ("answer", "ok", "passed", "result", "value"):
            if key in value:
                return _verdict(value[key])
        return None
    if isinstance(value, str):
        return parse_yes_no(value)
    return None


def parse_checklist_answers(text: str, n: int) -> list[bool | None]:
    """Read ``n`` yes/no answers from one reply: a JSON list or object (``{"1": "yes", ...}``,
    ``{"answers": [...]}``), numbered lines (``"1. yes"``, ``"2) No"``), or exactly ``n`` bare lines.
    Each answer that cannot be read is None."""
    answers: list[bool | None] = [None] * n
    data = _from_json(text)
    if isinstance(data, Mapping) and "answers" in data:
        data = data["answers"]
    if isinstance(data, list):
        for i, value in enumerate(data[:n]):
            answers[i] = _verdict(value)
        return answers
    if isinstance(data, Mapping):
        for key, value in data.items():
            number = re.search(r"\d+", str(key))
            if number and 1 <= int(number.group()) <= n:
                answers[int(number.group()) - 1] = _verdict(value)
        return answers
    lines = [line for line in str(text).splitlines() if line.strip()]
    numbered = False
    for line in lines:
        match = re.match(r"\s*[*_#>\-\s]*(?:q(?:uestion)?\s*)?(\d+)\s*[.):\-]\s*(.*)", line, re.IGNORECASE)
        if match and 1 <= int(match.group(1)) <= n:
            numbered = True
            index = int(match.group(1)) - 1
            if answers[index] is None:
                answers[index] = parse_yes_no(match.group(2))
    if not numbered and len(lines) == n:
        answers = [parse_yes_no(line) for line in lines]
    return answers


def parse_wise_scores(text: str) -> dict[str, float | None]:
    """``"Consistency: 2\\nRealism: 1.5\\nAesthetic Quality: 0"`` -> the three sub-scores in [0, 2];
    a missing, non-numeric or out-of-range one is None. Also reads a JSON object with those keys."""
    scores: dict[str, float | None] = dict.fromkeys(WISE_WEIGHTS, None)
    data = _from_json(text)
    if isinstance(data, Mapping):
        for key, value in data.items():
            name = _wise_key(str(key))
            if name and isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 2:
                scores[name] = float(value)
        if all(v is not None for v in scores.values()):
            return scores
    text = _RANGE.sub(" ", _clean(text))  # an echoed "(0-2)" or "<0-2>" is not a score
    pattern = r"(consistency|realism|aesthetic(?:[\s_]+quality)?|aesthetics)[^0-9a-z\n]*(\d+(?:\.\d+)?)?"
    for key, value in re.findall(pattern, text):
        name = _wise_key(key)
        if name and scores[name] is None and value and 0 <= float(value) <= 2:
            scores[name] = float(value)
    return scores


def _wise_key(key: str) -> str | None:
    key = key.strip().lower()
    if key.startswith("consisten"):
        return "consistency"
    if key.startswith("realis"):
        return "realism"
    if key.startswith("aesthetic"):
        return "aesthetic_quality"
    return None


def wiscore(consistency: float, realism: float, aesthetic_quality: float) -> float:
    """WISE's WiScore: ``(0.7·C + 0.2·R + 0.1·A) / 2`` for sub-scores in [0, 2], so in [0, 1]."""
    return round((0.7 * consistency + 0.2 * realism + 0.1 * aesthetic_quality) / 2, 12)  # 2,2,2 -> exactly 1.0


def parse_preference(text: str) -> int | None:
    """Which image the reply prefers: ``1`` the second (``"second"``, ``"2"``, ``"B"``), ``-1`` the
    first (``"first"``, ``"1"``, ``"A"``), ``0`` a tie; None when it cannot be read."""
    words = re.findall(r"[a-z0-9]+", _clean(text))
    if not words:
        return None
    first_words = {"first", "1", "one", "former"}
    second_words = {"second", "2", "two", "latter"}
    tie_words = {"tie", "tied", "equal", "equally", "same", "both", "neither", "draw"}
    # A lone letter is an answer only when it is (nearly) the whole reply: "a" is also an article.
    core = [w for w in words if w not in {"image", "picture", "the", "answer", "is", "option"}]
    if len(core) == 1 and core[0] in {"a", "b"}:
        return -1 if core[0] == "a" else 1
    for word in words:
        if word in first_words:
            return -1
        if word in second_words:
            return 1
        if word in tie_words:
            return 0
    return None


# ---------------------------------------------------------------------------- questions


def _phrase(item: Mapping[str, Any]) -> str:
    """``{"class": "circle", "color": "red", "count": 2}`` -> ``"red circles"`` (no count)."""
    return item_noun(item, max(2, int(item.get("count", 1))))


def _the(item: Mapping[str, Any]) -> str:
    """ "the red circle" for one object, "the red circles" for several."""
    return f"the {item_noun(item, 1 if int(item.get('count', 1)) == 1 else 2)}"


def checklist_questions(task: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The task's checks as strict yes/no questions: ``[{"check", "item", "question"}]``.

    One question per check, as GenEval++ checks: exact count (with colour) of every included item,
    its region, its position relative to another item, its size, and every excluded object. A task
    without a checklist gets a single ``"prompt"`` question about the whole request.
    """
    include = list(task.get("include") or [])
    questions: list[dict[str, Any]] = []
    for i, item in enumerate(include):
        count = int(item["count"])
        is_are = "Is there" if count == 1 else "Are there"
        questions.append({"check": "count", "item": i,
                          "question": f"{is_are} exactly {describe_item(item)} in the image (no more, no fewer)?"})
        if item.get("region") in REGION_HALVES:
            subject = f"Is {_the(item)}" if count == 1 else f"Are all the {_phrase(item)}"
            questions.append({"check": "region", "item": i,
                              "question": f"{subject} in {region_half(item['region'])}?"})
        if item.get("position"):
            relation, other = item["position"]
            subject = f"Is {_the(item)}" if count == 1 else f"Are {_the(item)}"
            where = f"{relation_phrase(relation)} {_the(include[other])}"
            questions.append({"check": "position", "item": i, "question": f"{subject} {where}?"})
        if item.get("size") in ("larger", "smaller"):
            others = [o for j, o in enumerate(include) if j != i]
            than = " and ".join(_the(o) for o in others) or "the other objects"
            subject = f"Is {_the(item)}" if count == 1 else f"Are {_the(item)}"
            questions.append({"check": "size", "item": i, "question": f"{subject} clearly {item['size']} than {than}?"})
    for i, item in enumerate(task.get("exclude") or []):
        count = int(item["count"])
        if count == 1:
            question = f"Is the image free of any {item_noun(item, 1)}?"
        else:
            question = f"Does the image contain fewer than {count} {_phrase(item)}?"
        questions.append({"check": "exclude", "item": i, "question": question})
    if not questions:
        questions.append({"check": "prompt", "item": None,
                          "question": f"Does the image match the request: \"{task['prompt']}\"?"})
    return questions


# -------------------------------------------------------------------------------- judge


class VLMJudgeScorer(Scorer, PairwiseComparator):
    """A VLM that judges images: GenEval++ yes/no checklists or WISE's WiScore, and pairwise preference.

    Args:
        model: A Hugging Face model id or local path (loaded with ``AutoModelForImageTextToText``),
            or an already loaded model (then pass ``processor`` too).
        processor: The model's processor; loaded with ``AutoProcessor`` from ``model`` when None.
        procedure: ``"geneval++"`` (yes/no checklist) or ``"wise"`` (WiScore).
        question_style: ``"per_check"`` (one prompt per check) or ``"checklist"`` (one numbered
            prompt per image); GenEval++ only.
        threshold: GenEval++: None means pass only when every check is yes, a number means pass
            when the fraction of yes reaches it. WISE: pass when WiScore ≥ threshold (default 0.7,
            i.e. consistency 2).
        pairwise_both_orders: Ask each pairwise question in both orders and call it a tie unless
            both agree (removes the judge's position bias at twice the cost).
        device: Where to run (default: ``"cuda"`` when available, else ``"cpu"``); ignored for a
            model passed in or one placed with ``model_kwargs={"device_map": ...}``.
        dtype: The weights' dtype when loading (``"auto"``, ``"bfloat16"``, a ``torch.dtype``).
        max_new_tokens: Tokens to generate per answer (default: 8 per yes/no question, 24 per
            pairwise, 64 for WISE and checklists).
        batch_size: Conversations per ``generate`` call.
        trust_remote_code: Passed to ``from_pretrained``; off unless you set it.
        min_pixels, max_pixels: Qwen-VL image budget given to ``AutoProcessor`` when loading.
        system_prompt: The judge's system message.
        model_kwargs: Extra ``from_pretrained`` arguments for the model.
    """

    name = "vlm-judge"

    def __init__(
        self,
        model: str | Any = "Qwen/Qwen2.5-VL-7B-Instruct",
        processor: Any | None = None,
        *,
        procedure: Procedure = "geneval++",
        question_style: QuestionStyle = "per_check",
        threshold: float | None = None,
        pairwise_both_orders: bool = False,
        device: str | None = None,
        dtype: Any = "auto",
        max_new_tokens: int | None = None,
        batch_size: int = 8,
        trust_remote_code: bool = False,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        system_prompt: str = SYSTEM_PROMPT,
        model_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if procedure not in ("geneval++", "wise"):
            raise ValueError(f"procedure must be 'geneval++' or 'wise', got {procedure!r}")
        if question_style not in ("per_check", "checklist"):
            raise ValueError(f"question_style must be 'per_check' or 'checklist', got {question_style!r}")
        if threshold is not None and not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1] or be None, got {threshold!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_new_tokens is not None and (not isinstance(max_new_tokens, int) or max_new_tokens < 1):
            raise ValueError(f"max_new_tokens must be a positive integer or None, got {max_new_tokens!r}")
        self.procedure: Procedure = procedure
        self.question_style: QuestionStyle = question_style
        self.threshold = 0.7 if threshold is None and procedure == "wise" else threshold
        self.pairwise_both_orders = pairwise_both_orders
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.system_prompt = system_prompt
        self.model, self.processor = self._load(
            model, processor, device, dtype, trust_remote_code, min_pixels, max_pixels, dict(model_kwargs or {})
        )

    @staticmethod
    def _load(model: Any, processor: Any, device: str | None, dtype: Any, trust_remote_code: bool,
              min_pixels: int | None, max_pixels: int | None, model_kwargs: dict[str, Any]) -> tuple[Any, Any]:
        with needs("scorers", "the VLM judge"):
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor

        if processor is None:
            if not isinstance(model, str):
                raise ValueError("pass the processor along with a loaded model")
            pixels = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
            processor = AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code, **pixels)
        if isinstance(model, str):
            if isinstance(dtype, str) and dtype != "auto":
                dtype = getattr(torch, dtype)
            placed = "device_map" in model_kwargs
            model = AutoModelForImageTextToText.from_pretrained(
                model, dtype=dtype, trust_remote_code=trust_remote_code, **model_kwargs
            )
            if not placed:
                model = model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        elif device is not None:
            model = model.to(device)
        model.eval()
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"  # batched generation continues every row from its last token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, processor

    # ---------------------------------------------------------------- text generation

    def generate(self, conversations: Sequence[Conversation], max_new_tokens: int) -> list[str]:
        """The model's greedy reply to each conversation, in batches of ``batch_size``.

        This is the only method that runs the model; everything else builds prompts and parses
        replies, so a subclass can put another backend (an API, vLLM) behind the same judge.
        """
        import torch

        if self.model is None:
            raise RuntimeError("this judge was closed; build a new VLMJudgeScorer")
        replies: list[str] = []
        for start in range(0, len(conversations), self.batch_size):
            batch = conversations[start:start + self.batch_size]
            texts = [
                self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                for messages, _ in batch
            ]
            images = [image for _, conversation_images in batch for image in conversation_images]
            inputs = self.processor(
                text=texts, images=images or None, padding=True, padding_side="left", return_tensors="pt"
            ).to(self.model.device)
            with torch.inference_mode():
                output = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            new_tokens = output[:, inputs["input_ids"].shape[1]:]
            replies.extend(self.processor.batch_decode(new_tokens, skip_special_tokens=True))
        return [reply.strip() for reply in replies]

    def _conversation(self, images: Sequence[Image], text: str) -> Conversation:
        content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": text})
        messages = [{"role": "system", "content": [{"type": "text", "text": self.system_prompt}]},
                    {"role": "user", "content": content}]
        return messages, [_rgb(image) for image in images]

    # --------------------------------------------------------------------- pointwise

    def score(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        if len(images) != len(tasks):
            raise ValueError(f"got {len(images)} images for {len(tasks)} tasks")
        if not images:
            return []
        if self.procedure == "wise":
            return self._score_wise(images, tasks)
        if self.question_style == "checklist":
            return self._score_checklist(images, tasks)
        return self._score_per_check(images, tasks)

    def _score_per_check(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        per_task = [checklist_questions(task) for task in tasks]
        conversations = [
            self._conversation([image], _yes_no_prompt(task["prompt"], q["question"]))
            for image, task, questions in zip(images, tasks, per_task)
            for q in questions
        ]
        replies = iter(self.generate(conversations, self.max_new_tokens or 8))
        scores = []
        for questions in per_task:
            raw = [next(replies) for _ in questions]
            scores.append(self._checklist_score(questions, [parse_yes_no(r) for r in raw], raw))
        return scores

    def _score_checklist(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        per_task = [checklist_questions(task) for task in tasks]
        conversations = [
            self._conversation([image], _checklist_prompt(task["prompt"], questions))
            for image, task, questions in zip(images, tasks, per_task)
        ]
        longest = max(len(q) for q in per_task)
        replies = self.generate(conversations, self.max_new_tokens or max(64, 8 * longest))
        return [
            self._checklist_score(questions, parse_checklist_answers(reply, len(questions)), [reply])
            for questions, reply in zip(per_task, replies)
        ]

    def _checklist_score(self, questions: Sequence[Mapping[str, Any]], answers: Sequence[bool | None],
                         raw: list[str]) -> Score:
        checks = []
        for question, answer in zip(questions, answers):
            text = question["question"]
            if answer is None:
                message = f"the judge's answer was unreadable, so this check fails: {text}"
            else:
                message = f"the judge said {'yes' if answer else 'no'}: {text}"
            checks.append({"check": question["check"], "item": question["item"], "ok": answer is True,
                           "message": message})
        fraction = sum(c["ok"] for c in checks) / len(checks)
        passed = all(c["ok"] for c in checks) if self.threshold is None else fraction >= self.threshold
        return Score(passed=passed, score=fraction, details={
            "procedure": "geneval++",
            "checks": checks,
            "failed": [c["message"] for c in checks if not c["ok"]],
            "raw": raw,
        })

    def _score_wise(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        conversations = [self._conversation([image], _wise_prompt(task)) for image, task in zip(images, tasks)]
        replies = self.generate(conversations, self.max_new_tokens or 64)
        scores = []
        for reply in replies:
            parsed = parse_wise_scores(reply)
            unreadable = [name for name, value in parsed.items() if value is None]
            sub = {name: (value if value is not None else 0.0) for name, value in parsed.items()}
            value = min(1.0, max(0.0, wiscore(sub["consistency"], sub["realism"], sub["aesthetic_quality"])))
            failed = [f"the judge's {name.replace('_', ' ')} score was unreadable (counted as 0)"
                      for name in unreadable]
            if sub["consistency"] < 2:
                failed.append(f"consistency {sub['consistency']:g}/2: the image does not fully realise the prompt")
            scores.append(Score(passed=value >= float(self.threshold or 0.0) - 1e-9, score=value, details={
                "procedure": "wise",
                **sub,
                "wiscore": value,
                "unreadable": unreadable,
                "failed": failed,
                "raw": [reply],
            }))
        return scores

    # ---------------------------------------------------------------------- pairwise

    def compare(
        self, tasks: Sequence[Mapping[str, Any]], first: Sequence[Image], second: Sequence[Image]
    ) -> list[int]:
        """Per pair: 1 if the judge prefers ``second[i]``, -1 if ``first[i]``, 0 for a tie or an
        unreadable answer."""
        if not len(tasks) == len(first) == len(second):
            raise ValueError(f"got {len(tasks)} tasks, {len(first)} first and {len(second)} second images")
        if not tasks:
            return []
        conversations = [self._conversation([a, b], _pairwise_prompt(task["prompt"]))
                         for task, a, b in zip(tasks, first, second)]
        if self.pairwise_both_orders:
            conversations += [self._conversation([b, a], _pairwise_prompt(task["prompt"]))
                              for task, a, b in zip(tasks, first, second)]
        replies = self.generate(conversations, self.max_new_tokens or 24)
        forward = [parse_preference(reply) or 0 for reply in replies[:len(tasks)]]
        if not self.pairwise_both_orders:
            return forward
        backward = [-(parse_preference(reply) or 0) for reply in replies[len(tasks):]]
        return [f if f == b else 0 for f, b in zip(forward, backward)]

    def close(self) -> None:
        """Drop the model (and free its GPU memory). Safe to call twice."""
        if getattr(self, "model", None) is None:
            return
        self.model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover - torch is needed to build the judge at all
            pass


# ---------------------------------------------------------------------------- prompts


def _rgb(image: Any) -> Image:
    from PIL import Image as PILImage

    if not isinstance(image, PILImage.Image):
        import numpy as np

        image = PILImage.fromarray(np.asarray(image, dtype=np.uint8))
    return image.convert("RGB")


def _yes_no_prompt(prompt: str, question: str) -> str:
    return (
        f"This image was generated for the request: \"{prompt}\".\n"
        f"Question: {question}\n"
        "Be strict: count exactly, and answer no if anything is missing, extra or unclear.\n"
        "Answer with one word: yes or no."
    )


def _checklist_prompt(prompt: str, questions: Sequence[Mapping[str, Any]]) -> str:
    lines = "\n".join(f"{i}. {q['question']}" for i, q in enumerate(questions, start=1))
    return (
        f"This image was generated for the request: \"{prompt}\".\n"
        f"Answer each question about the image strictly (count exactly; no if unsure):\n{lines}\n"
        f"Reply with exactly {len(questions)} line(s), one per question, in the form \"1. yes\" or \"1. no\"."
    )


def _wise_prompt(task: Mapping[str, Any]) -> str:
    wise = task.get("wise")
    if not isinstance(wise, Mapping):
        wise = {}
    explanation = wise.get("Explanation") or task.get("explanation")
    context = f"\nWhat the prompt means: \"{explanation}\"" if explanation else ""
    return (
        f"Rate this image generated for the prompt: \"{task['prompt']}\"{context}\n"
        "Score three aspects, each 0, 1 or 2, and be very strict (2 is rare):\n"
        "- Consistency: does the image show exactly what the prompt means? 0 = misses or contradicts it, "
        "1 = partly, 2 = completely and unambiguously.\n"
        "- Realism: 0 = physically implausible, 1 = minor flaws, 2 = indistinguishable from a photograph.\n"
        "- Aesthetic Quality: 0 = unappealing, 1 = acceptable, 2 = exceptional composition and colour.\n"
        "Reply with exactly three lines and nothing else:\nConsistency: <0-2>\nRealism: <0-2>\nAesthetic Quality: <0-2>"
    )


def _pairwise_prompt(prompt: str) -> str:
    return (
        f"Two images were generated for the request: \"{prompt}\". The first image is shown first, "
        "the second image second.\n"
        "Which image fits the request better (objects, counts, colours, positions, sizes)?\n"
        "Answer with one word: first, second, or tie."
    )
