"""The ShapesWorld verifier: agreement with the renderer's own record, checks, messages, robustness."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from genagent_env.shapes.generator import ShapesGenerator
from genagent_env.shapes.renderer import MIN_SIDE, PlannedObject, render, shape_mask
from genagent_env.shapes.suite import make_shapes_geneval
from genagent_env.shapes.verifier import ShapesVerifier, classify, detect, evaluate
from genagent_env.shapes.vocab import ASPECT, SHAPES
from genagent_env.tasks.prompts import explicit_prompt
from genagent_env.tools.base import GenerationRequest


def test_verifier_agrees_with_the_scene_record_on_2000_scenes():
    """Each check evaluated on what the renderer says it drew and on what the verifier sees."""
    rng = np.random.default_rng(7)
    tasks = make_shapes_geneval("test") + make_shapes_geneval("train")[::7]
    generators = [ShapesGenerator(preset) for preset in ("weak", "medium", "strong")]
    agree = total = 0
    disagreements = []
    for _ in range(2000):
        task = tasks[int(rng.integers(len(tasks)))]
        prompt = task["prompt"] if rng.random() < 0.5 else explicit_prompt(task)
        size = int(rng.choice([96, 128, 128, 128, 192]))
        generator = generators[int(rng.integers(3))]
        [(image, record)] = generator.generate_with_records(
            [GenerationRequest(prompt, int(rng.integers(2**32)), size, size)])
        from_record = evaluate(task, record["objects"], size, size)
        from_pixels = evaluate(task, detect(image), size, size)
        for a, b in zip(from_record, from_pixels, strict=True):
            total += 1
            agree += a["ok"] == b["ok"]
            if a["ok"] != b["ok"]:
                disagreements.append((task["prompt"], a["message"], b["message"]))
    assert total > 5000
    assert agree / total >= 0.995, disagreements[:5]


def test_every_shape_is_recognised_at_every_drawn_size():
    for shape in SHAPES:
        for side in range(MIN_SIDE, 120):
            assert classify(shape_mask(shape, round(side * ASPECT[shape]), side)) == shape
            # and in boxes a pixel off its aspect (as after resizing)
            for dw in (-1, 1):
                assert classify(shape_mask(shape, round(side * ASPECT[shape]) + dw, side + 2)) == shape


def _scene(plan: list[PlannedObject], size: int = 128, seed: int = 0) -> Image.Image:
    pixels, _ = render(plan, size, size, np.random.default_rng(seed))
    return Image.fromarray(pixels)


LEFT, RIGHT, TOP = (0.0, 0.4, 0.0, 1.0), (0.6, 1.0, 0.0, 1.0), (0.0, 1.0, 0.0, 0.4)


def test_checks_and_messages():
    image = _scene([PlannedObject("circle", "red", 1.0, LEFT), PlannedObject("circle", "red", 1.0, LEFT),
                    PlannedObject("square", "blue", 1.0, RIGHT)])
    task = {"tag": "custom", "prompt": "x", "include": [
        {"class": "circle", "count": 2, "color": "red", "region": "left"},
        {"class": "square", "count": 1, "color": "blue", "position": ["right of", 0]},
        {"class": "star", "count": 3}],
        "exclude": [{"class": "circle", "count": 3}, {"class": "heart", "count": 1}]}
    [score] = ShapesVerifier().score([image], [task])
    checks = score.details["checks"]
    assert [(c["check"], c["item"], c["ok"]) for c in checks] == [
        ("count", 0, True), ("region", 0, True), ("count", 1, True), ("position", 1, True), ("count", 2, False),
        ("exclude", 0, True), ("exclude", 1, True)]
    assert score.details["failed"] == ["expected exactly 3 stars, found 0"]
    assert not score.passed and score.score == pytest.approx(6 / 7)
    assert checks[0]["message"] == "there are exactly 2 red circles, as asked"
    assert {d["class"] for d in score.details["detected"]} == {"circle", "square"}
    assert set(score.details["detected"][0]) == {"class", "color", "centroid", "area"}


def test_colour_mistakes_are_named_in_the_message():
    image = _scene([PlannedObject("square", "red")])
    task = {"tag": "color", "prompt": "x", "include": [{"class": "square", "count": 1, "color": "blue"}]}
    [score] = ShapesVerifier().score([image], [task])
    assert score.details["failed"] == ["expected exactly 1 blue square, found 0 (and 1 square in red)"]


def test_region_position_and_size_failures():
    image = _scene([PlannedObject("star", "white", 0.5, RIGHT), PlannedObject("heart", "black", 2.0, LEFT)])
    task = {"tag": "pos_size", "prompt": "x", "include": [
        {"class": "star", "count": 1, "region": "left", "size": "larger"},
        {"class": "heart", "count": 1, "position": ["right of", 0], "size": "smaller"}]}
    [score] = ShapesVerifier().score([image], [task])
    failed = {c["check"]: c["message"] for c in score.details["checks"] if not c["ok"]}
    assert set(failed) == {"region", "position", "size"}
    assert "left half" in failed["region"]
    assert score.score == pytest.approx(2 / 6)
    upright = _scene([PlannedObject("star", "white", 2.0, LEFT), PlannedObject("heart", "black", 0.5, RIGHT)])
    [score] = ShapesVerifier().score([upright], [task])
    assert score.passed, score.details["failed"]


def test_above_and_below():
    image = _scene([PlannedObject("ring", "green", 1.0, TOP), PlannedObject("cross", "pink", 1.0, (0, 1, 0.6, 1))])
    task = {"tag": "custom", "prompt": "x", "include": [
        {"class": "ring", "count": 1, "region": "above", "position": ["above", 1]},
        {"class": "cross", "count": 1, "region": "below"}]}
    [score] = ShapesVerifier().score([image], [task])
    assert score.passed, score.details["failed"]


def test_mild_jpeg_and_resizing_do_not_change_what_is_seen():
    generator, verifier = ShapesGenerator(image_size=256), ShapesVerifier()
    tasks = make_shapes_geneval("test")[::10]
    images = generator.generate([GenerationRequest(t["prompt"], i) for i, t in enumerate(tasks)])
    clean = verifier.score(images, tasks)
    for transform in (
        lambda im: Image.open(io.BytesIO(_jpeg(im))),
        lambda im: im.resize((300, 300), Image.BILINEAR),
    ):
        noisy = verifier.score([transform(im) for im in images], tasks)
        assert [s.passed for s in noisy] == [s.passed for s in clean]


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


ODD_IMAGES = [
    Image.new("RGB", (1, 1)), Image.new("L", (5, 3)), Image.new("RGBA", (64, 64), (255, 0, 0, 0)),
    Image.new("P", (10, 10)), Image.new("1", (7, 9)), Image.new("I", (20, 20)), Image.new("F", (20, 20)),
    Image.new("I;16", (20, 20)), Image.new("CMYK", (20, 20)), Image.new("LA", (20, 20)), Image.new("RGB", (3000, 2)),
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (700, 500, 3), dtype=np.uint8)),
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (33, 257), dtype=np.uint8)),
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 4), dtype=np.uint8), "RGBA"),
]


@pytest.mark.parametrize("image", ODD_IMAGES, ids=lambda im: f"{im.mode}-{im.size[0]}x{im.size[1]}")
def test_any_image_is_scored_without_crashing(image):
    task = {"tag": "count", "prompt": "x",
            "include": [{"class": "circle", "count": 2, "color": "red", "region": "left"}],
            "exclude": [{"class": "circle", "count": 3}]}
    [score] = ShapesVerifier().score([image], [task])
    assert 0.0 <= score.score <= 1.0
    assert isinstance(score.passed, bool)


def test_parse_prompt_uses_the_reader():
    verifier = ShapesVerifier()
    assert verifier.parse_prompt("two red stars")["include"] == [{"class": "star", "count": 2, "color": "red"}]
    with pytest.raises(ValueError):
        verifier.parse_prompt("a cat on a sofa")


def test_tasks_it_cannot_check_are_refused_up_front():
    import pytest

    from genagent_env.env import GenAgentEnv
    from genagent_env.shapes.verifier import ShapesVerifier

    verifier = ShapesVerifier()
    for bad in ({"prompt": "a dog", "include": [{"class": "dog", "count": 1}]},
                {"prompt": "a mauve circle", "include": [{"class": "circle", "count": 1, "color": "mauve"}]},
                {"prompt": "nothing", "include": []}):
        with pytest.raises(ValueError, match="shapes verifier"):
            verifier.validate_task(bad)
    env = GenAgentEnv()
    with pytest.raises(ValueError, match="cannot check class 'dog'"):
        env.reset(options={"task": {"prompt": "a dog", "include": [{"class": "dog", "count": 1}]}})


def test_arrays_of_any_common_dtype_are_read_like_the_image():
    image = _scene([PlannedObject("circle", "red", 1.0, LEFT), PlannedObject("square", "blue", 1.0, RIGHT)])
    task = {"tag": "custom", "prompt": "x", "include": [
        {"class": "circle", "count": 1, "color": "red", "region": "left"},
        {"class": "square", "count": 1, "color": "blue", "position": ["right of", 0]}]}
    pixels = np.asarray(image)
    verifier = ShapesVerifier()
    variants = [image, pixels, pixels.astype(np.float32) / 255, pixels.astype(np.float64) / 255,
                pixels.astype(np.float32), pixels.transpose(2, 0, 1), pixels.astype(np.int64),
                np.dstack([pixels, np.full(pixels.shape[:2], 255, dtype=np.uint8)])]
    for variant in variants:
        [score] = verifier.score([variant], [task])
        assert score.passed, (getattr(variant, "dtype", None), score.details)
        assert "error" not in score.details


@pytest.mark.parametrize("thing", [None, "an image", np.zeros((2, 2, 2, 2)), np.full((8, 8, 3), -1.0),
                                   np.full((8, 8, 3), np.nan), np.full((8, 8, 3), 1000), np.zeros((8, 8, 7))])
def test_what_is_not_an_image_gets_a_failing_score_with_an_error(thing):
    task = {"tag": "count", "prompt": "x", "include": [{"class": "circle", "count": 1}]}
    [score] = ShapesVerifier().score([thing], [task])
    assert not score.passed and score.score == 0.0
    assert score.details["error"].startswith("cannot read the image")


def test_counts_it_cannot_draw_are_refused():
    verifier = ShapesVerifier()
    for count in (0, 9, 12, -1, 2.5, "3", None, True):
        with pytest.raises(ValueError, match=r"include item 0 \('circle'.*1 to 8"):
            verifier.validate_task({"prompt": "x", "include": [{"class": "circle", "count": count}]})
    verifier.validate_task({"prompt": "x", "include": [{"class": "circle", "count": 8}],
                            "exclude": [{"class": "circle", "count": 9}]})
    with pytest.raises(ValueError, match=r"exclude item 0 \('circle'.*1 to 9"):
        verifier.validate_task({"prompt": "x", "include": [{"class": "circle", "count": 8}],
                                "exclude": [{"class": "circle", "count": 10}]})


def test_every_suite_task_is_valid():
    verifier = ShapesVerifier()
    for split in ("test", "train"):
        for task in make_shapes_geneval(split):
            verifier.validate_task(task)
