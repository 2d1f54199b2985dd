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
4. **Check** (:func:`evaluate`, a pure function over detections ``{"class", "box", "score", "color"}``):
   the GenEval++ checklist of :func:`genagent_env.scorers.checklist.evaluate_checklist` (its module
   docstring defines each check; GenEval itself asked for at least ``count``), over the kept
   detections as instances, with each box's centre as its centroid and the box's area as its area,
   and :attr:`~GenEvalThresholds.position_margin` (0.1) and :attr:`~GenEvalThresholds.size_ratio` (1.5).

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
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genagent_env.extras import needs
from genagent_env.scorers.base import Score, Scorer
from genagent_env.scorers.checklist import evaluate_checklist
from genagent_env.scorers.clip import OpenCLIPModel, default_device, load_open_clip
from genagent_env.tasks.schema import COLORS

with needs("scorers", "the detector scorer"):
    import torch

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


def _as_instances(detections: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Detections as the checklist's instances: ``class``, ``color`` (``None`` where absent),
    ``centroid`` and ``area`` of the box (the same detection object gives the same instance)."""
    made: dict[int, dict[str, Any]] = {}
    return [made.setdefault(id(d), {"class": d["class"], "color": d.get("color"),
                                    "centroid": centroid(d), "area": area(d)}) for d in detections]


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
    kept = _as_instances(keep_detections(task, detections, thresholds))
    return evaluate_checklist(task, kept, width, height, position_margin=thresholds.position_margin,
                              size_ratio=thresholds.size_ratio)


# -- the models -----------------------------------------------------------------------------------

def load_detector(name_or_path: str, *, device: str = "cpu", cache_dir: str | None = None) -> tuple[Any, Any]:
    """``(model, processor)`` of a zero-shot detector from a local folder or a cached Hub id, never
    downloading: OWLv2 / OWL-ViT by their classes, anything else (Grounding DINO...) through
    ``AutoModelForZeroShotObjectDetection`` and ``AutoProcessor``."""
    with needs("scorers", "the detector scorer"):
        from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name_or_path, cache_dir=cache_dir, local_files_only=True)
    except OSError as error:
        raise FileNotFoundError(
            f"detector {name_or_path!r} is neither a local folder nor in the Hugging Face cache, and nothing is "
            f"downloaded here; fetch it once with `hf download {name_or_path}`"
        ) from error
    if config.model_type == "owlv2":
        from transformers import Owlv2ForObjectDetection as Model
        from transformers import Owlv2Processor as Processor
    elif config.model_type == "owlvit":
        from transformers import OwlViTForObjectDetection as Model
        from transformers import OwlViTProcessor as Processor
    else:
        from transformers import AutoModelForZeroShotObjectDetection as Model
        from transformers import AutoProcessor as Processor
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

        Only images with the same class list are batched together, and for Grounding DINO only
        images of the same size too, so that each image's result does not depend on its batch
        (OWL pads the query lists of a batch to one length; Grounding DINO's backbone would see
        the padding of smaller images; OWL resizes every image to one square, so size is free).
        """
        out: list[list[dict[str, Any]]] = [[] for _ in images]
        groups: dict[tuple[tuple[str, ...], tuple[int, int] | None], list[int]] = defaultdict(list)
        for index, names in enumerate(classes):
            if names:
                groups[(tuple(names), None if self.is_owl else images[index].size)].append(index)
        for (names, _), indices in groups.items():
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
            labels = [[self._class_of(str(text), names, queries)
                       for text in (r["text_labels"] if "text_labels" in r else r["labels"])]
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
        """The class a Grounding DINO phrase names. The phrase is decoded with special tokens and
        may span several "."-separated queries: the first piece that is exactly a query wins,
        else the longest query a piece contains (or is part of)."""
        cleaned = re.sub(r"\[(?:CLS|SEP|PAD)\]", " ", text, flags=re.IGNORECASE).lower()
        pieces = [" ".join(piece.split()) for piece in cleaned.split(".")]
        pieces = [piece for piece in pieces if piece]
        lowered = [query.lower() for query in queries]
        for piece in pieces:
            if piece in lowered:
                return names[lowered.index(piece)]
        inside = [(len(q), n) for piece in pieces for n, q in zip(names, lowered) if q in piece or piece in q]
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
