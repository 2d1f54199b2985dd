"""DetectorScorer: GenEval's check logic on hand-made detections, and the scorer on a tiny random
OWLv2 + tiny open_clip, offline."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("open_clip")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from genagent_env.scorers.base import Score  # noqa: E402
from genagent_env.scorers.detector import (  # noqa: E402
    DetectorScorer,
    GenEvalThresholds,
    ZeroShotDetector,
    evaluate,
    keep_detections,
)
from genagent_env.tasks.schema import COLORS, normalize_task  # noqa: E402
from genagent_env.testing.tiny_clip import tiny_open_clip  # noqa: E402
from genagent_env.testing.tiny_detector import tiny_owlv2  # noqa: E402
from tests.helpers import assert_batched_detection_equals_one_by_one, make_detector_scorer  # noqa: E402

W = H = 100


def det(cls: str, x: float, y: float, side: float = 10.0, score: float = 0.95,
        color: str | None = None) -> dict[str, Any]:
    """A detection of ``cls`` centred at (x, y) with a square box."""
    half = side / 2
    return {"class": cls, "box": (x - half, y - half, x + half, y + half), "score": score, "color": color}


def task(include: list[dict[str, Any]], exclude: list[dict[str, Any]] | None = None,
         tag: str = "color_pos") -> dict[str, Any]:
    raw: dict[str, Any] = {"tag": tag, "include": include, "prompt": "p"}
    if exclude is not None:
        raw["exclude"] = exclude
    return normalize_task(raw)


def results(t: dict[str, Any], detections: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(c["check"], c["ok"]) for c in evaluate(t, detections, W, H)]


# -- the pure GenEval check logic -------------------------------------------------------------------

def test_count_is_exact_and_counts_only_the_asked_colour() -> None:
    t = task([{"class": "apple", "count": 3, "color": "red"}], tag="color_count")
    two_red = [det("apple", 20, 20, color="red"), det("apple", 50, 50, color="red"),
               det("apple", 80, 80, color="green")]
    (check,) = evaluate(t, two_red, W, H)
    assert set(check) == {"check", "item", "ok", "message"}
    assert (check["check"], check["item"], check["ok"]) == ("count", 0, False)
    assert check["message"] == "expected exactly 3 red apples, found 2 (and 1 apple in green)"
    three = [*two_red[:2], det("apple", 80, 80, color="red")]
    assert results(t, three) == [("count", True)]
    assert results(t, [*three, det("apple", 10, 90, color="red")]) == [("count", False)]  # 4 is not exactly 3


def test_detection_threshold_is_0_3_and_counting_uses_0_9() -> None:
    t = task([{"class": "dog", "count": 1}], tag="single_object")
    assert results(t, [det("dog", 50, 50, score=0.25)]) == [("count", False)]  # ignored
    assert results(t, [det("dog", 50, 50, score=0.35)]) == [("count", True)]
    counting = task([{"class": "dog", "count": 1}], tag="count")
    assert results(counting, [det("dog", 50, 50, score=0.85)]) == [("count", False)]
    assert results(counting, [det("dog", 50, 50, score=0.95)]) == [("count", True)]
    geneval_counting = task([{"class": "dog", "count": 2}], tag="counting")
    one_sure = [det("dog", 20, 50, score=0.95), det("dog", 80, 50, score=0.5)]
    assert results(geneval_counting, one_sure) == [("count", False)]
    lenient = GenEvalThresholds(detection=0.1, counting=0.5)
    assert [c["ok"] for c in evaluate(counting, [det("dog", 50, 50, score=0.6)], W, H, lenient)] == [True]


def test_at_most_16_objects_per_class_are_kept_best_first() -> None:
    many = [det("bird", 5 * i, 50, side=2, score=0.4 + 0.01 * i) for i in range(20)]
    t = task([{"class": "bird", "count": 16}], exclude=[{"class": "bird", "count": 17}], tag="color")
    assert results(t, many) == [("count", True), ("exclude", True)]
    kept = keep_detections(t, many, GenEvalThresholds())
    assert len(kept) == 16 and [d["score"] for d in kept] == sorted((d["score"] for d in many), reverse=True)[:16]


def test_region_uses_the_box_centre() -> None:
    t = task([{"class": "cup", "count": 2, "region": "left"}])
    assert results(t, [det("cup", 20, 20), det("cup", 40, 80, side=30)]) == [("count", True), ("region", True)]
    checks = evaluate(t, [det("cup", 20, 20), det("cup", 60, 80)], W, H)
    assert [c["ok"] for c in checks] == [True, False]
    assert checks[1]["message"] == "expected every cup in the left half of the image; 1 of 2 is not"
    absent = evaluate(task([{"class": "cup", "count": 1, "region": "above"}]), [], W, H)[1]
    assert not absent["ok"] and "there is no cup" in absent["message"]


def test_position_needs_a_margin_of_a_tenth_of_the_image() -> None:
    t = task([{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["right of", 0]}])
    assert results(t, [det("cat", 30, 50), det("dog", 45, 50)])[-1] == ("position", True)  # 15 > 10
    assert results(t, [det("cat", 30, 50), det("dog", 38, 50)])[-1] == ("position", False)  # 8 < 10
    below = task([{"class": "cat", "count": 1}, {"class": "dog", "count": 1, "position": ["below", 0]}])
    assert results(below, [det("cat", 50, 20), det("dog", 50, 40)])[-1] == ("position", True)
    message = evaluate(t, [det("cat", 30, 50), det("dog", 38, 50)], W, H)[-1]["message"]
    assert message == ("expected the dog to be to the right of the cat (by at least 10% of the image width), "
                       "but it is not")


def test_size_needs_an_area_ratio_of_1_5() -> None:
    t = task([{"class": "ball", "count": 1, "size": "larger"}, {"class": "box", "count": 1, "size": "smaller"}],
             tag="pos_size")
    big, small = det("ball", 30, 50, side=13), det("box", 70, 50, side=10)  # 169 vs 100
    assert results(t, [big, small]) == [("count", True), ("size", True), ("count", True), ("size", True)]
    close = det("ball", 30, 50, side=11.5)  # 132 vs 100
    assert results(t, [close, small]) == [("count", True), ("size", False), ("count", True), ("size", False)]


def test_exclude_means_fewer_than_count() -> None:
    t = task([{"class": "car", "count": 1}], exclude=[{"class": "truck", "count": 2}])
    assert results(t, [det("car", 50, 50), det("truck", 10, 10)]) == [("count", True), ("exclude", True)]
    checks = evaluate(t, [det("car", 50, 50), det("truck", 10, 10), det("truck", 90, 90)], W, H)
    assert checks[1]["message"] == "expected fewer than 2 trucks, found 2" and not checks[1]["ok"]
    one_sure = [det("car", 50, 50), det("truck", 10, 10, score=0.2), det("truck", 90, 90)]
    assert results(t, one_sure)[1] == ("exclude", True)


def test_grounding_dino_phrases_map_back_to_classes() -> None:
    names, queries = ("hot dog", "dog"), ["hot dog", "dog"]
    assert ZeroShotDetector._class_of("hot dog", names, queries) == "hot dog"
    assert ZeroShotDetector._class_of("dog", names, queries) == "dog"
    assert ZeroShotDetector._class_of("a big dog", names, queries) == "dog"
    assert ZeroShotDetector._class_of("cat", names, queries) is None


# -- the scorer on tiny models -----------------------------------------------------------------------

TASKS = [
    task([{"class": "apple", "count": 2, "color": "red"}], tag="color_count"),
    task([{"class": "cat", "count": 1, "region": "left"}, {"class": "dog", "count": 1, "position": ["right of", 0]}],
         exclude=[{"class": "car", "count": 1}]),
    task([{"class": "apple", "count": 2, "color": "red"}], tag="color_count"),
    task([{"class": "ball", "count": 1, "size": "larger"}, {"class": "box", "count": 1, "size": "smaller"}],
         tag="pos_size"),
]


def images() -> list[Image.Image]:
    out = []
    for i in range(len(TASKS)):
        image = Image.new("RGB", (48 + 8 * i, 40), (200, 40 * i, 30))
        image.paste((30, 30, 220), (4 + 4 * i, 6, 20 + 4 * i, 24))
        out.append(image)
    return out


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("owlv2")
    tiny_owlv2(folder)
    model, preprocess, tokenizer = tiny_open_clip()
    return {"folder": str(folder), "clip_model": model, "clip_preprocess": preprocess, "clip_tokenizer": tokenizer}


make = make_detector_scorer  # the scorer on this file's tiny detector (tests/helpers.py)


@pytest.fixture(scope="module")
def permissive(parts: dict[str, Any]) -> DetectorScorer:
    """Every box of the random detector kept, so the colour classifier runs too."""
    return make(parts, batch_size=2, thresholds=GenEvalThresholds(detection=0.0, counting=0.0))


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
        assert detected and len(detected) <= 16 * len({i["class"] for i in [*t["include"], *t.get("exclude", [])]})
        for d in detected:
            assert set(d) == {"class", "color", "box", "score", "centroid", "area"}
            wants_colour = any(i.get("color") and i["class"] == d["class"] for i in t["include"])
            assert (d["color"] in COLORS) if wants_colour else d["color"] is None
    json.dumps([s.to_dict() for s in scores])


def test_batched_equals_one_by_one(permissive: DetectorScorer) -> None:
    assert_batched_detection_equals_one_by_one(permissive, images(), TASKS)


def test_model_passed_directly_matches_the_saved_folder(parts: dict[str, Any], permissive: DetectorScorer) -> None:
    model, processor = tiny_owlv2()  # same seed, same weights
    direct = DetectorScorer(model=model, processor=processor, clip_model=parts["clip_model"],
                            clip_preprocess=parts["clip_preprocess"], clip_tokenizer=parts["clip_tokenizer"],
                            device="cpu", thresholds=permissive.thresholds)
    a, b = direct.score(images()[:2], TASKS[:2]), permissive.score(images()[:2], TASKS[:2])
    assert [s.details["checks"] for s in a] == [s.details["checks"] for s in b]


def test_default_thresholds_are_genevals(parts: dict[str, Any]) -> None:
    scorer = make(parts)
    assert scorer.thresholds == GenEvalThresholds(0.3, 0.9, ("counting", "count"), 16, 0.1, 1.5)
    counting = task([{"class": "apple", "count": 2}], tag="count")
    scores = scorer.score(images()[:2], [TASKS[0], counting])
    for score, cut in zip(scores, (0.3, 0.9)):
        assert all(d["score"] > cut for d in score.details["detected"])
        assert len(score.details["detected"]) <= 16


def test_tasks_it_cannot_check_are_errors(permissive: DetectorScorer, tmp_path) -> None:
    with pytest.raises(ValueError, match="include"):
        permissive.validate_task(normalize_task({"include": [], "prompt": "p"}))
    with pytest.raises(ValueError, match="colour"):
        permissive.validate_task(task([{"class": "apple", "count": 1, "color": "teal"}]))
    with pytest.raises(ValueError, match="17"):
        permissive.validate_task(task([{"class": "apple", "count": 17}]))
    with pytest.raises(ValueError, match="checklist"):
        permissive.parse_prompt("two apples")
    with pytest.raises(FileNotFoundError, match="download"):
        DetectorScorer(detector="google/owlv2-base-patch16-ensemble", cache_dir=str(tmp_path), device="cpu")


def test_env_episode_end_to_end(permissive: DetectorScorer) -> None:
    from tests.helpers import one_episode

    info = one_episode(permissive, TASKS[1], images()[1])
    (score,) = info["scores"]
    assert [c["check"] for c in score["details"]["checks"]] == ["count", "region", "count", "position", "exclude"]
