"""GenEval's detector-based procedure for real images, checking the GenEval++ checklist.

Pipeline per image (GenEval, Ghosh et al. 2023, with an open-vocabulary detector in place of its
COCO Mask2Former, as GenEval++-style evaluations of open class names need):

1. **Detect** with a zero-shot detector from transformers, queried with the task's class names:
   OWLv2 / OWL-ViT (``Owlv2ForObjectDetection``, queries ``"a photo of a {class}"``) or Grounding
   DINO and its kin (``AutoModelForZeroShotObjectDetection``, queries ``"{class}"``), chosen by the
   checkpoint's ``model_type``.
2. **Keep** (:func:`keep_detections`) per class the boxes scoring above
   :attr:`GenEvalThresholds.detection` (0.3), or :attr:`~GenEvalThresholds.counting` (0.9) for
   counting tasks, at most :attr:`~GenEvalThresholds.max_objects` (16) per class, best first.
3. **Colour** each kept box of a class whose colour matters: CLIP zero-shot classification of the
   box crop among the ten GenEval colours, with GenEval's prompts ``"a photo of a {color} {class}"``,
   ``"a photo of a {color}-colored {class}"``, ``"a photo of a {color} object"`` (embeddings averaged).
4. **Check** (:func:`evaluate`, a pure function over detections ``{"class", "box", "score", "color"}``;
   an item's *instances* are the kept detections of its class, and of its colour where it names one):

   - ``count``: exactly ``count`` instances (GenEval++; GenEval itself asked for at least);
   - ``region``: at least one instance and every instance's box centre in that half of the image;
   - ``position`` (``[relation, index]``): for every pair of instances, the centre relation holds by
     a margin of 0.1 of the image width (left/right) or height (above/below);
   - ``size``: a ``larger`` item's smallest box covers at least 1.5 times the area of the largest box
     of the items it is compared with (those labelled the opposite way, else all other items);
     ``smaller`` the other way round;
   - ``exclude``: fewer than ``count`` instances.

``Score.score`` is the fraction of checks that pass, ``passed`` that all do, and ``details`` has the
layout of the ShapesWorld verifier: ``checks`` (``{"check", "item", "ok", "message"}``), ``failed``
(the messages of the failed checks) and ``detected`` (the kept detections, with ``centroid`` and
``area``).

GenEval's thresholds were set for Mask2Former's scores; OWLv2 and Grounding DINO score lower, so
re-tune them (``DetectorScorer(thresholds=GenEvalThresholds(...))``) before comparing numbers.

Nothing is downloaded here; fetch the checkpoints once, e.g.::

    hf download google/owlv2-base-patch16-ensemble          # or IDEA-Research/grounding-dino-tiny
    hf download timm/vit_large_patch14_clip_224.openai      # colour classifier, ViT-L-14 / openai
    scorer = DetectorScorer(detector="google/owlv2-base-patch16-ensemble", device="cuda")
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from genagent_env.scorers.base import Score, Scorer
from genagent_env.scorers.clip import OpenCLIPModel, default_device, load_open_clip
from genagent_env.tasks.schema import COLORS, plural_noun

if TYPE_CHECKING:
    from PIL.Image import Image

#: GenEval's colour prompts; ``{color}`` and ``{cls}`` are filled in.
COLOR_TEMPLATES = ("a photo of a {color} {cls}", "a photo of a {color}-colored {cls}", "a photo of a {color} object")


@dataclass(frozen=True)
class GenEvalThresholds:
    """GenEval's decision thresholds (its ``evaluate_images.py`` defaults).

    Attributes:
        detection: A box counts when its score is above this.
        counting: The same, for tasks whose tag is in ``counting_tags``.
        counting_tags: Tags of counting tasks: GenEval's ``counting`` and GenEval++'s ``count``.
        max_objects: At most this many boxes per class are kept (the best ones).
        position_margin: Fraction of the image width / height a position relation must hold by.
        size_ratio: How many times the area a ``larger`` object must cover.
    """

    detection: float = 0.3
    counting: float = 0.9
    counting_tags: tuple[str, ...] = ("counting", "count")
    max_objects: int = 16
    position_margin: float = 0.1
    size_ratio: float = 1.5

    def for_task(self, task: Mapping[str, Any]) -> float:
        """The score a box must beat in this task."""
        return self.counting if task.get("tag") in self.counting_tags else self.detection


# -- the checks: pure functions over detections --------------------------------------------------

def centroid(detection: Mapping[str, Any]) -> tuple[float, float]:
    """Centre ``(x, y)`` of a detection's ``box`` ``(x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = detection["box"]
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0


def area(detection: Mapping[str, Any]) -> float:
    """Area of a detection's box in pixels."""
    x0, y0, x1, y1 = detection["box"]
    return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def keep_detections(
    task: Mapping[str, Any], detections: Sequence[Mapping[str, Any]], thresholds: GenEvalThresholds
) -> list[Mapping[str, Any]]:
    """The detections GenEval keeps: score above the task's threshold, at most ``max_objects`` per
    class, best first (grouped by class in first-seen order)."""
    cut = thresholds.for_task(task)
    by_class: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for detection in detections:
        if float(detection["score"]) > cut:
            by_class[detection["class"]].append(detection)
    kept: list[Mapping[str, Any]] = []
    for found in by_class.values():
        kept.extend(sorted(found, key=lambda d: -float(d["score"]))[: thresholds.max_objects])
    return kept


def _noun(item: Mapping[str, Any], count: int) -> str:
    colour = f"{item['color']} " if item.get("color") else ""
    return f"{colour}{plural_noun(str(item['class']), count)}"


def _instances(item: Mapping[str, Any], detections: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    colour = item.get("color")
    return [d for d in detections if d["class"] == item["class"] and (not colour or d.get("color") == colour)]


def _every(item: Mapping[str, Any]) -> str:
    """"the red apple" for one object, "every red apple" for several."""
    return f"{'the' if int(item['count']) == 1 else 'every'} {_noun(item, 1)}"


def _count_check(i: int, item: Mapping[str, Any], detections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    found = _instances(item, detections)
    want = int(item["count"])
    ok = len(found) == want
    if ok:
        message = f"there {'is' if want == 1 else 'are'} exactly {want} {_noun(item, want)}, as asked"
    else:
        message = f"expected exactly {want} {_noun(item, want)}, found {len(found)}"
        if item.get("color"):
            others = [d for d in detections if d["class"] == item["class"] and d.get("color") != item["color"]]
            if others:
                colours = sorted({str(d.get("color")) for d in others})
                nouns = plural_noun(str(item["class"]), len(others))
                message += f" (and {len(others)} {nouns} in {' and '.join(colours)})"
    return {"check": "count", "item": i, "ok": ok, "message": message}


_HALF = {"left": "left half", "right": "right half", "above": "top half", "below": "bottom half"}
_RELATION_WORDS = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}


def _in_region(detection: Mapping[str, Any], region: str, width: int, height: int) -> bool:
    x, y = centroid(detection)
    return {"left": x < width / 2, "right": x > width / 2, "above": y < height / 2, "below": y > height / 2}[region]


def _region_check(i: int, item: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
                  width: int, height: int) -> dict[str, Any]:
    found = _instances(item, detections)
    region = str(item["region"])
    outside = [d for d in found if not _in_region(d, region, width, height)]
    ok = bool(found) and not outside
    where = f"the {_HALF[region]} of the image"
    if not found:
        message = f"expected {_every(item)} in {where}, but there is no {_noun(item, 1)}"
    elif ok:
        message = f"{_every(item)} is in {where}"
    elif len(found) == 1:
        message = f"expected {_every(item)} in {where}, but it is not"
    else:
        verb = "is" if len(outside) == 1 else "are"
        message = f"expected {_every(item)} in {where}; {len(outside)} of {len(found)} {verb} not"
    return {"check": "region", "item": i, "ok": ok, "message": message}


def _holds(a: Mapping[str, Any], b: Mapping[str, Any], relation: str, width: int, height: int,
           margin: float) -> bool:
    (ax, ay), (bx, by) = centroid(a), centroid(b)
    if relation == "left of":
        return ax < bx - margin * width
    if relation == "right of":
        return ax > bx + margin * width
    if relation == "above":
        return ay < by - margin * height
    return ay > by + margin * height


def _position_check(i: int, item: Mapping[str, Any], include: Sequence[Mapping[str, Any]],
                    detections: Sequence[Mapping[str, Any]], width: int, height: int,
                    margin: float) -> dict[str, Any]:
    relation, j = item["position"]
    other = include[j]
    found, reference = _instances(item, detections), _instances(other, detections)
    pairs = [(a, b) for a in found for b in reference if a is not b]
    bad = [p for p in pairs if not _holds(p[0], p[1], relation, width, height, margin)]
    ok = bool(pairs) and not bad
    phrase = f"{_every(item)} {{}} {_RELATION_WORDS[relation]} {_every(other)}"
    if not pairs:
        missing = _noun(item, 1) if not found else _noun(other, 1)
        message = f"expected {phrase.format('to be')}, but there is no {missing}"
    elif ok:
        message = phrase.format("is")
    else:
        axis = "width" if relation in ("left of", "right of") else "height"
        by = f"by at least {margin:.0%} of the image {axis}"
        if len(pairs) == 1:
            message = f"expected {phrase.format('to be')} ({by}), but it is not"
        else:
            message = f"expected {phrase.format('to be')} ({by}); {len(bad)} of {len(pairs)} pairs are not"
    return {"check": "position", "item": i, "ok": ok, "message": message}


def _size_check(i: int, item: Mapping[str, Any], include: Sequence[Mapping[str, Any]],
                detections: Sequence[Mapping[str, Any]], ratio: float) -> dict[str, Any]:
    label = str(item["size"])
    opposite = "smaller" if label == "larger" else "larger"
    compared = [j for j, other in enumerate(include) if j != i and other.get("size") == opposite]
    compared = compared or [j for j in range(len(include)) if j != i]
    found = _instances(item, detections)
    others = [d for j in compared for d in _instances(include[j], detections) if all(d is not f for f in found)]
    subject = f"the {_noun(item, int(item['count']))}"
    names = " and ".join(f"the {_noun(include[j], int(include[j]['count']))}" for j in compared) or "the other objects"
    if not found or not others:
        missing = _noun(item, 2) if not found else " or ".join(_noun(include[j], 2) for j in compared)
        missing = missing or "other objects"
        message = f"expected {subject} to be clearly {label} than {names}, but there are no {missing}"
        return {"check": "size", "item": i, "ok": False, "message": message}
    if label == "larger":
        ok = min(area(d) for d in found) >= ratio * max(area(d) for d in others)
    else:
        ok = ratio * max(area(d) for d in found) <= min(area(d) for d in others)
    verb = "is" if int(item["count"]) == 1 else "are"
    if ok:
        message = f"{subject} {verb} clearly {label} than {names}"
    else:
        message = (f"expected {subject} to be clearly {label} than {names} (at least {ratio:g} times the area), "
                   f"but {'it is' if verb == 'is' else 'they are'} not")
    return {"check": "size", "item": i, "ok": ok, "message": message}


def _exclude_check(i: int, item: Mapping[str, Any], detections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    found = _instances(item, detections)
    limit = int(item["count"])
    ok = len(found) < limit
    if limit == 1:
        message = f"there are no {_noun(item, 2)}" if ok else f"expected no {_noun(item, 2)}, found {len(found)}"
    else:
        message = (f"there are fewer than {limit} {_noun(item, limit)}" if ok
                   else f"expected fewer than {limit} {_noun(item, limit)}, found {len(found)}")
    return {"check": "exclude", "item": i, "ok": ok, "message": message}


def evaluate(
    task: Mapping[str, Any],
    detections: Sequence[Mapping[str, Any]],
    width: int,
    height: int,
    thresholds: GenEvalThresholds = GenEvalThresholds(),
) -> list[dict[str, Any]]:
    """Every check of the task's checklist against raw detections (see the module docstring).

    ``detections`` are dicts with ``class``, ``box`` ``(x0, y0, x1, y1)`` in pixels, ``score`` and,
    where a colour matters, ``color``; they are first filtered with :func:`keep_detections`.
    """
    kept = keep_detections(task, detections, thresholds)
    include = list(task.get("include", []))
    checks = []
    for i, item in enumerate(include):
        checks.append(_count_check(i, item, kept))
        if item.get("region"):
            checks.append(_region_check(i, item, kept, width, height))
        if item.get("position"):
            checks.append(_position_check(i, item, include, kept, width, height, thresholds.position_margin))
        if item.get("size"):
            checks.append(_size_check(i, item, include, kept, thresholds.size_ratio))
    for i, item in enumerate(task.get("exclude", []) or []):
        checks.append(_exclude_check(i, item, kept))
    return checks


# -- the models -----------------------------------------------------------------------------------

def load_detector(name_or_path: str, *, device: str = "cpu", cache_dir: str | None = None) -> tuple[Any, Any]:
    """``(model, processor)`` of a zero-shot detector from a local folder or a cached Hub id, never
    downloading: OWLv2 / OWL-ViT by their classes, anything else (Grounding DINO...) through
    ``AutoModelForZeroShotObjectDetection`` and ``AutoProcessor``."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name_or_path, cache_dir=cache_dir, local_files_only=True)
    except OSError as error:
        raise FileNotFoundError(
            f"detector {name_or_path!r} is neither a local folder nor in the Hugging Face cache, and nothing is "
            f"downloaded here; fetch it once with `hf download {name_or_path}`"
        ) from error
    if config.model_type == "owlv2":
        from transformers import Owlv2ForObjectDetection as Model, Owlv2Processor as Processor
    elif config.model_type == "owlvit":
        from transformers import OwlViTForObjectDetection as Model, OwlViTProcessor as Processor
    else:
        from transformers import AutoModelForZeroShotObjectDetection as Model, AutoProcessor as Processor
    model = Model.from_pretrained(name_or_path, cache_dir=cache_dir, local_files_only=True)
    processor = Processor.from_pretrained(name_or_path, cache_dir=cache_dir, local_files_only=True)
    return model.to(device).eval(), processor


class ZeroShotDetector:
    """Batched open-vocabulary detection: images and per-image class lists in, raw detections out."""

    def __init__(self, model: Any, processor: Any, *, device: str, batch_size: int,
                 query_template: str | None = None, text_threshold: float = 0.25) -> None:
        self.model = model.to(device).eval()
        self.processor = processor
        self.device = device
        self.batch_size = batch_size
        self.is_owl = model.config.model_type in ("owlv2", "owlvit")
        self.query_template = query_template or ("a photo of a {}" if self.is_owl else "{}")
        self.text_threshold = text_threshold

    @torch.inference_mode()
    def detect(self, images: Sequence[Image], classes: Sequence[Sequence[str]],
               min_score: float) -> list[list[dict[str, Any]]]:
        """Per image, ``{"class", "box", "score"}`` for every box scoring above ``min_score``.

        Images with the same class list are batched together (so each image's result does not
        depend on its batch: OWL pads the query lists of a batch to the same length).
        """
        out: list[list[dict[str, Any]]] = [[] for _ in images]
        groups: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for index, names in enumerate(classes):
            if names:
                groups[tuple(names)].append(index)
        for names, indices in groups.items():
            queries = [self.query_template.format(name) for name in names]
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                for index, found in zip(chunk, self._detect([images[i] for i in chunk], names, queries, min_score)):
                    out[index] = found
        return out

    def _detect(self, images: list[Image], names: tuple[str, ...], queries: list[str],
                min_score: float) -> list[list[dict[str, Any]]]:
        sizes = [(image.height, image.width) for image in images]
        inputs = self.processor(images=images, text=[queries] * len(images), return_tensors="pt").to(self.device)
        outputs = self.model(**inputs)
        if self.is_owl:
            results = self.processor.post_process_grounded_object_detection(
                outputs, threshold=min_score, target_sizes=sizes)
            labels = [[names[int(k)] if int(k) < len(names) else None for k in r["labels"]] for r in results]
        else:
            results = self.processor.post_process_grounded_object_detection(
                outputs, input_ids=inputs["input_ids"], threshold=min_score,
                text_threshold=self.text_threshold, target_sizes=sizes)
            labels = [[self._class_of(str(text), names, queries) for text in r.get("text_labels", r["labels"])]
                      for r in results]
        found = []
        for (height, width), result, names_found in zip(sizes, results, labels):
            detections = []
            for score, box, name in zip(result["scores"].tolist(), result["boxes"].tolist(), names_found):
                if name is None or score <= min_score:
                    continue
                limits = (width, height, width, height)
                x0, y0, x1, y1 = (min(max(v, 0.0), float(limit)) for v, limit in zip(box, limits))
                detections.append({"class": name, "box": (x0, y0, x1, y1), "score": float(score)})
            found.append(detections)
        return found

    @staticmethod
    def _class_of(text: str, names: Sequence[str], queries: Sequence[str]) -> str | None:
        """The class a Grounding DINO phrase names: its exact query, else the longest query in it."""
        text = text.strip().lower()
        for name, query in zip(names, queries):
            if text == query.lower():
                return name
        inside = [(len(q), n) for n, q in zip(names, queries) if q.lower() in text or (text and text in q.lower())]
        return max(inside)[1] if inside else None


class ColorClassifier:
    """GenEval's CLIP zero-shot colour classifier of box crops (one text classifier per class)."""

    def __init__(self, clip: OpenCLIPModel) -> None:
        self.clip = clip
        self._weights: dict[str, torch.Tensor] = {}

    def _classifier(self, cls: str) -> torch.Tensor:
        if cls not in self._weights:
            texts = [t.format(color=c, cls=cls) for c in COLORS for t in COLOR_TEMPLATES]
            embeddings = self.clip.embed_texts(texts).reshape(len(COLORS), len(COLOR_TEMPLATES), -1).mean(1)
            self._weights[cls] = torch.nn.functional.normalize(embeddings, dim=-1)
        return self._weights[cls]

    def classify(self, crops: Sequence[Image], classes: Sequence[str]) -> list[str]:
        """The colour of each crop, ``crops[i]`` being an object of class ``classes[i]``."""
        if not crops:
            return []
        features = self.clip.embed_images(crops)
        return [COLORS[int((self._classifier(c) @ f).argmax())] for f, c in zip(features, classes)]


def _crop(image: Image, box: Sequence[float]) -> Image:
    x0, y0, x1, y1 = box
    left, top = min(int(math.floor(x0)), image.width - 1), min(int(math.floor(y0)), image.height - 1)
    return image.crop((left, top, max(left + 1, int(math.ceil(x1))), max(top + 1, int(math.ceil(y1)))))


class DetectorScorer(Scorer):
    """GenEval's detector + CLIP-colour procedure on the GenEval++ checklist (see the module docstring).

    Args:
        detector: A local folder or cached Hub id of a zero-shot detector (default
            ``"google/owlv2-base-patch16-ensemble"``), ignored when ``model`` is given.
        model, processor: An already built detector and its processor, instead of ``detector``.
        clip_model_name, clip_pretrained: The open_clip colour classifier (GenEval's ViT-L-14 /
            openai by default), as in :class:`~genagent_env.scorers.clip.CLIPScorer`.
        clip_model, clip_preprocess, clip_tokenizer: An already built open_clip model, instead.
        device: Default: a GPU when there is one.
        batch_size: Images per detector pass and crops per CLIP pass.
        thresholds: GenEval's thresholds (:class:`GenEvalThresholds`).
        query_template: How a class becomes a detector query; default ``"a photo of a {}"`` for OWL,
            ``"{}"`` for Grounding DINO.
        text_threshold: Grounding DINO's phrase threshold.
        cache_dir: Where cached checkpoints are looked up.
    """

    name = "detector"

    def __init__(
        self,
        *,
        detector: str = "google/owlv2-base-patch16-ensemble",
        model: Any = None,
        processor: Any = None,
        clip_model_name: str = "ViT-L-14",
        clip_pretrained: str | None = "openai",
        clip_model: torch.nn.Module | None = None,
        clip_preprocess: Any = None,
        clip_tokenizer: Any = None,
        device: str | None = None,
        batch_size: int = 16,
        thresholds: GenEvalThresholds | None = None,
        query_template: str | None = None,
        text_threshold: float = 0.25,
        cache_dir: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        device = device or default_device()
        if model is None:
            if processor is not None:
                raise ValueError("pass processor only together with model")
            model, processor = load_detector(detector, device=device, cache_dir=cache_dir)
        elif processor is None:
            raise ValueError("a detector model passed directly needs its processor too")
        if clip_model is None:
            if clip_preprocess is not None or clip_tokenizer is not None:
                raise ValueError("pass clip_preprocess and clip_tokenizer only together with clip_model")
            clip_model, clip_preprocess, clip_tokenizer = load_open_clip(
                clip_model_name, clip_pretrained, device=device, cache_dir=cache_dir)
        elif clip_preprocess is None or clip_tokenizer is None:
            raise ValueError("a CLIP model passed directly needs its preprocess and tokenizer too")
        self.thresholds = thresholds or GenEvalThresholds()
        self.detector = ZeroShotDetector(model, processor, device=device, batch_size=batch_size,
                                         query_template=query_template, text_threshold=text_threshold)
        self.colors = ColorClassifier(OpenCLIPModel(clip_model, clip_preprocess, clip_tokenizer, device, batch_size))

    def detect(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[list[dict[str, Any]]]:
        """Per image, the detections GenEval keeps for its task, with ``color`` for the classes
        whose colour the task asks about (``None`` for the others)."""
        images = [image.convert("RGB") for image in images]
        classes = [list(dict.fromkeys(item["class"] for item in [*t.get("include", []), *(t.get("exclude") or [])]))
                   for t in tasks]
        floor = min(self.thresholds.detection, self.thresholds.counting)
        raw = self.detector.detect(images, classes, floor)
        kept = [[dict(d, color=None) for d in keep_detections(t, found, self.thresholds)]
                for t, found in zip(tasks, raw)]
        wanted = [{item["class"] for item in [*t.get("include", []), *(t.get("exclude") or [])] if item.get("color")}
                  for t in tasks]
        jobs = [(i, d) for i, found in enumerate(kept) for d in found if d["class"] in wanted[i]]
        colours = self.colors.classify([_crop(images[i], d["box"]) for i, d in jobs], [d["class"] for _, d in jobs])
        for (_, d), colour in zip(jobs, colours):
            d["color"] = colour
        return kept

    def score(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        if len(images) != len(tasks):
            raise ValueError(f"got {len(images)} images for {len(tasks)} tasks")
        scores = []
        for image, task, found in zip(images, tasks, self.detect(images, tasks)):
            checks = evaluate(task, found, image.width, image.height, self.thresholds)
            passed = sum(1 for c in checks if c["ok"])
            detected = [{"class": d["class"], "color": d["color"], "box": tuple(d["box"]), "score": d["score"],
                         "centroid": centroid(d), "area": area(d)} for d in found]
            scores.append(Score(
                passed=passed == len(checks),
                score=passed / len(checks) if checks else 1.0,
                details={"checks": checks, "failed": [c["message"] for c in checks if not c["ok"]],
                         "detected": detected},
            ))
        return scores

    def parse_prompt(self, prompt: str) -> dict[str, Any]:
        raise ValueError(
            "the detector scorer checks a GenEval++ checklist and cannot read one from a bare prompt; "
            "reset with options={'task': {...}} holding 'include' items"
        )

    def validate_task(self, task: Mapping[str, Any]) -> None:
        """Needs at least one include item, GenEval colours, and include counts it can detect."""
        if not task.get("include"):
            raise ValueError("the detector scorer needs a task with at least one include item")
        for kind, items in (("include", task["include"]), ("exclude", task.get("exclude") or [])):
            for i, item in enumerate(items):
                if item.get("color") is not None and item["color"] not in COLORS:
                    raise ValueError(f"the detector scorer cannot check colour {item['color']!r} of {kind} item {i}; "
                                     f"GenEval colours are: {', '.join(COLORS)}")
                if kind == "include" and int(item["count"]) > self.thresholds.max_objects:
                    raise ValueError(f"include item {i} asks for {item['count']} {item['class']}s, more than the "
                                     f"{self.thresholds.max_objects} detections kept per class")

    def close(self) -> None:
        self.detector.model.to("cpu")
        self.colors.clip.model.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
