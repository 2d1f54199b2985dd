"""DetectorScorer's Grounding DINO path (``AutoModelForZeroShotObjectDetection`` + ``AutoProcessor``,
phrase -> class mapping) on a tiny random Grounding DINO + tiny open_clip, offline.

Random weights give random detections: these tests check shapes and consistency, not values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("open_clip")
pytest.importorskip("transformers")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from genagent_env.scorers.base import Score  # noqa: E402
from genagent_env.scorers.detector import (  # noqa: E402
    DetectorScorer,
    GenEvalThresholds,
    ZeroShotDetector,
    evaluate,
    load_detector,
)
from genagent_env.tasks.schema import COLORS, normalize_task  # noqa: E402
from genagent_env.testing.tiny_clip import tiny_open_clip  # noqa: E402
from genagent_env.testing.tiny_grounding_dino import TINY_VOCAB, tiny_grounding_dino  # noqa: E402
from tests.helpers import assert_batched_detection_equals_one_by_one, make_detector_scorer  # noqa: E402

# A deprecated-key warning from the detector would mean it reads the old "labels" field again.
pytestmark = pytest.mark.filterwarnings("error:The key `labels`:FutureWarning")

TASKS = [normalize_task(t) for t in [
    {"tag": "count", "prompt": "two red circles", "include": [{"class": "circle", "count": 2, "color": "red"}]},
    {"tag": "position", "prompt": "a triangle to the right of a square, and no hot dog",
     "include": [{"class": "square", "count": 1}, {"class": "triangle", "count": 1, "position": ["right of", 0]}],
     "exclude": [{"class": "hot dog", "count": 1}]},
    {"tag": "count", "prompt": "two red circles", "include": [{"class": "circle", "count": 2, "color": "red"}]},
    {"tag": "color_attr", "prompt": "a blue star and a yellow heart",
     "include": [{"class": "star", "count": 1, "color": "blue"}, {"class": "heart", "count": 1, "color": "yellow"}]},
]]


def images(sizes: list[tuple[int, int]] | None = None) -> list[Image.Image]:
    """One image per task, all 48 x 40 unless ``sizes`` says otherwise."""
    out = []
    for i, size in enumerate(sizes or [(48, 40)] * len(TASKS)):
        image = Image.new("RGB", size, (200, 40 * i, 30))
        image.paste((30, 30, 220), (4 + 4 * i, 6, 20 + 4 * i, 24))
        out.append(image)
    return out


def classes_of(t: dict[str, Any]) -> set[str]:
    return {i["class"] for i in [*t["include"], *t.get("exclude", [])]}


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("grounding-dino")
    tiny_grounding_dino(folder)
    model, preprocess, tokenizer = tiny_open_clip()
    return {"folder": str(folder), "clip_model": model, "clip_preprocess": preprocess, "clip_tokenizer": tokenizer}


make = make_detector_scorer  # the scorer on this file's tiny detector (tests/helpers.py)


#: Every box kept, and every token in every phrase (so each box names some class and colours run).
PERMISSIVE = {"thresholds": GenEvalThresholds(detection=0.0, counting=0.0), "text_threshold": 0.0}


@pytest.fixture(scope="module")
def permissive(parts: dict[str, Any]) -> DetectorScorer:
    """Loaded by folder path, through load_detector's AutoModel / AutoProcessor branch."""
    return make(parts, batch_size=2, **PERMISSIVE)


def test_the_folder_loads_through_the_auto_classes(parts: dict[str, Any], permissive: DetectorScorer) -> None:
    from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor

    model, processor = load_detector(parts["folder"])
    assert model.config.model_type == "grounding-dino" and not model.training
    assert isinstance(model, GroundingDinoForObjectDetection) and isinstance(processor, GroundingDinoProcessor)
    assert not permissive.detector.is_owl and permissive.detector.query_template == "{}"
    direct, _ = tiny_grounding_dino()  # same seed, same weights
    for (name, a), b in zip(model.state_dict().items(), direct.state_dict().values()):
        assert torch.equal(a, b), name
    words = processor.tokenizer.convert_ids_to_tokens(processor.tokenizer("circle. hot dog. heart.")["input_ids"])
    assert words == ["[CLS]", "circle", ".", "hot", "dog", ".", "heart", ".", "[SEP]"]
    assert {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "."} <= set(TINY_VOCAB)


def test_scores_have_the_documented_shape(permissive: DetectorScorer) -> None:
    scores = permissive.score(images(), TASKS)
    assert len(scores) == len(TASKS)
    for score, t in zip(scores, TASKS):
        assert isinstance(score, Score) and isinstance(score.passed, bool) and 0.0 <= score.score <= 1.0
        assert set(score.details) == {"checks", "failed", "detected"}
        checks = score.details["checks"]
        assert [c["check"] for c in checks] == [c["check"] for c in evaluate(t, [], 1, 1)]
        assert score.score == pytest.approx(sum(c["ok"] for c in checks) / len(checks))
        assert score.details["failed"] == [c["message"] for c in checks if not c["ok"]]
        detected = score.details["detected"]
        assert detected and len(detected) <= 16 * len(classes_of(t))
        for d in detected:
            assert set(d) == {"class", "color", "box", "score", "centroid", "area"}
            assert d["class"] in classes_of(t)  # the phrase was mapped back to one of the task's classes
            x0, y0, x1, y1 = d["box"]
            assert 0.0 <= x0 <= x1 <= 48 and 0.0 <= y0 <= y1 <= 40
            wants_colour = any(i.get("color") and i["class"] == d["class"] for i in t["include"])
            assert (d["color"] in COLORS) if wants_colour else d["color"] is None
    assert any(d["color"] in COLORS for s in scores for d in s.details["detected"])  # colour path ran
    json.dumps([s.to_dict() for s in scores])


def test_batched_equals_one_by_one(permissive: DetectorScorer) -> None:
    assert_batched_detection_equals_one_by_one(permissive, images(), TASKS)


def test_batched_equals_one_by_one_for_images_of_different_sizes(permissive: DetectorScorer) -> None:
    sized = images([(48 + 8 * i, 40) for i in range(len(TASKS))])
    batched = permissive.detector.detect(sized, [sorted(classes_of(t)) for t in TASKS], 0.0)
    single = [permissive.detector.detect([im], [sorted(classes_of(t))], 0.0)[0] for im, t in zip(sized, TASKS)]
    for a, b in zip(batched, single):
        assert [d["class"] for d in a] == [d["class"] for d in b]
        assert [d["score"] for d in a] == pytest.approx([d["score"] for d in b], abs=1e-4)


def test_model_passed_directly_matches_the_saved_folder(parts: dict[str, Any], permissive: DetectorScorer) -> None:
    model, processor = tiny_grounding_dino()  # same seed, same weights, processor made in memory
    direct = DetectorScorer(model=model, processor=processor, clip_model=parts["clip_model"],
                            clip_preprocess=parts["clip_preprocess"], clip_tokenizer=parts["clip_tokenizer"],
                            device="cpu", **PERMISSIVE)
    a, b = direct.score(images(), TASKS), permissive.score(images(), TASKS)
    assert [s.details["checks"] for s in a] == [s.details["checks"] for s in b]
    assert [[d["class"] for d in s.details["detected"]] for s in a] == \
           [[d["class"] for d in s.details["detected"]] for s in b]


def test_phrases_map_to_task_classes_or_are_dropped(permissive: DetectorScorer) -> None:
    """With a real text threshold the phrases are partial; every kept box still names a queried class."""
    detector = ZeroShotDetector(permissive.detector.model, permissive.detector.processor, device="cpu",
                                batch_size=4, text_threshold=0.5)
    names = [sorted(classes_of(t)) for t in TASKS]
    found = detector.detect(images(), names, 0.0)
    assert len(found) == len(TASKS)
    for detections, queried in zip(found, names):
        assert len(detections) <= 16  # num_queries
        for d in detections:
            assert set(d) == {"class", "box", "score"} and d["class"] in queried and 0.0 < d["score"] <= 1.0


def test_default_thresholds_keep_only_confident_boxes(parts: dict[str, Any]) -> None:
    scorer = make(parts)
    assert scorer.thresholds == GenEvalThresholds() and scorer.detector.text_threshold == 0.25
    scores = scorer.score(images()[:2], TASKS[:2])
    for score, t in zip(scores, TASKS[:2]):
        cut = scorer.thresholds.for_task(t)
        assert all(d["score"] > cut and d["class"] in classes_of(t) for d in score.details["detected"])
        assert len(score.details["checks"]) == len(evaluate(t, [], 1, 1))


def test_env_episode_end_to_end(permissive: DetectorScorer) -> None:
    from tests.helpers import one_episode

    info = one_episode(permissive, TASKS[1], images()[1])
    (score,) = info["scores"]
    assert [c["check"] for c in score["details"]["checks"]] == ["count", "count", "position", "exclude"]
    assert {d["class"] for d in score["details"]["detected"]} <= {"square", "triangle", "hot dog"}


@pytest.mark.parametrize("phrase, expected", [("dog [SEP]", "hot dog"), ("[CLS] square . [SEP]", "square"),
                                              ("square. triangle. hot dog. [SEP]", "square"), ("cat", None),
                                              ("hot dog", "hot dog")])
def test_grounding_phrases_map_back_to_classes(phrase: str, expected: str | None) -> None:
    names = ["square", "triangle", "hot dog"]
    assert ZeroShotDetector._class_of(phrase, names, names) == expected
