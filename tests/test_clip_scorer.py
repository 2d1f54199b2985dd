"""CLIPScorer on a tiny random open_clip model, offline: shape of the results, batching, loading,
pairwise comparison, clear errors for weights that are not cached, and a whole env episode."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("open_clip")

from PIL import Image  # noqa: E402

from genagent_env.scorers.base import PairwiseComparator, Score  # noqa: E402
from genagent_env.scorers.clip import CLIPSCORE_WEIGHT, CLIPScorer  # noqa: E402
from genagent_env.testing.tiny_clip import TINY_CLIP_NAME, tiny_open_clip  # noqa: E402

COLOURS = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (250, 250, 250), (10, 10, 10)]


def images() -> list[Image.Image]:
    out = []
    for i, colour in enumerate(COLOURS):
        image = Image.new("RGB", (40 + 8 * i, 36), colour)
        image.paste((128, 128, 128), (4 * i, 4, 4 * i + 12, 20))
        out.append(image)
    return out


TASKS = [{"tag": "prompt", "include": [], "prompt": p}
         for p in ["a red apple", "a green apple", "a blue car", "a red apple", "two black dogs"]]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("clip") / "tiny.safetensors"
    tiny_open_clip(path)
    return str(path)


@pytest.fixture(scope="module")
def scorer(checkpoint: str) -> CLIPScorer:
    return CLIPScorer(model_name=TINY_CLIP_NAME, pretrained=checkpoint, device="cpu", batch_size=2)


def test_scores_have_the_documented_shape(scorer: CLIPScorer) -> None:
    scores = scorer.score(images(), TASKS)
    assert len(scores) == len(TASKS)
    for score, task in zip(scores, TASKS):
        assert isinstance(score, Score) and isinstance(score.passed, bool)
        assert 0.0 <= score.score <= 1.0
        assert {"cosine", "prompt", "checks", "failed"} <= set(score.details)
        assert score.details["prompt"] == task["prompt"]
        assert score.score == pytest.approx(min(1.0, CLIPSCORE_WEIGHT * max(score.details["cosine"], 0.0)))
        assert score.passed == (score.score >= scorer.threshold)
        (check,) = score.details["checks"]
        assert set(check) == {"check", "item", "ok", "message"} and check["ok"] == score.passed
        assert score.details["failed"] == ([] if score.passed else [check["message"]])
    json.dumps([s.to_dict() for s in scores])


def test_batched_equals_one_by_one(scorer: CLIPScorer) -> None:
    batched = scorer.score(images(), TASKS)
    single = [scorer.score([image], [task])[0] for image, task in zip(images(), TASKS)]
    for a, b in zip(batched, single):
        assert a.details["cosine"] == pytest.approx(b.details["cosine"], abs=1e-5)


def test_loading_from_a_file_matches_the_model_passed_directly(scorer: CLIPScorer) -> None:
    model, preprocess, tokenizer = tiny_open_clip()  # same seed, same weights
    direct = CLIPScorer(model=model, preprocess=preprocess, tokenizer=tokenizer, device="cpu")
    got = [s.details["cosine"] for s in direct.score(images(), TASKS)]
    want = [s.details["cosine"] for s in scorer.score(images(), TASKS)]
    assert got == pytest.approx(want, abs=1e-5)


def test_threshold_and_weight_are_configurable(checkpoint: str) -> None:
    lenient = CLIPScorer(model_name=TINY_CLIP_NAME, pretrained=checkpoint, device="cpu", threshold=0.0, weight=100.0)
    scores = lenient.score(images(), TASKS)
    assert all(s.passed for s in scores)
    assert all(s.score in (0.0, 1.0) or 0 < s.score < 1 for s in scores)
    with pytest.raises(ValueError):
        CLIPScorer(model_name=TINY_CLIP_NAME, pretrained=checkpoint, device="cpu", threshold=1.5)


def test_compare_prefers_the_higher_score(scorer: CLIPScorer) -> None:
    assert isinstance(scorer, PairwiseComparator)
    first, second = images()[:4], images()[1:5]
    tasks = TASKS[:4]
    scores_first, scores_second = scorer.score(first, tasks), scorer.score(second, tasks)
    expected = [(b.score > a.score) - (b.score < a.score) for a, b in zip(scores_first, scores_second)]
    assert scorer.compare(tasks, first, second) == expected
    assert scorer.compare(tasks, first, first) == [0, 0, 0, 0]


def test_tie_margin(checkpoint: str) -> None:
    tied = CLIPScorer(model_name=TINY_CLIP_NAME, pretrained=checkpoint, device="cpu", tie_margin=1.0)
    assert tied.compare(TASKS[:4], images()[:4], images()[1:5]) == [0, 0, 0, 0]


def test_uncached_tag_is_a_clear_error_not_a_download(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="download"):
        CLIPScorer(model_name="ViT-B-32", pretrained="openai", device="cpu", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="tags"):
        CLIPScorer(model_name="ViT-B-32", pretrained="no-such-tag", device="cpu")
    model, preprocess, _ = tiny_open_clip()
    with pytest.raises(ValueError):
        CLIPScorer(model=model, preprocess=preprocess, device="cpu")


def test_env_episode_end_to_end(scorer: CLIPScorer) -> None:
    from genagent_env.env import GenAgentEnv

    def paint(prompt: str, seed: int) -> Image.Image:
        return Image.new("RGB", (32, 32), COLOURS[seed % len(COLOURS)])

    suite = [{"tag": "color", "include": [{"class": "apple", "count": 1, "color": "red"}],
              "prompt": "a red apple", "id": "clip/0"}]
    env = GenAgentEnv(suite=suite, generators={"paint": paint}, scorer=scorer, image_size=32)
    obs, info = env.reset(seed=0, options={"task_index": 0})
    call = {"name": "paint", "arguments": {"prompt": "a red apple", "seed": 0}}
    action = f"<think>draw it</think><tool_call>{json.dumps(call)}</tool_call>"
    obs, reward, terminated, truncated, info = env.step(action)
    assert not terminated and obs["image"].shape == (32, 32, 3)
    obs, reward, terminated, truncated, info = env.step("<judge>looks red</judge><answer>done</answer>")
    assert terminated and not truncated
    (score,) = info["scores"]
    score = score if isinstance(score, dict) else score.to_dict()
    assert 0.0 <= score["score"] <= 1.0 and "cosine" in score["details"]
    assert set(info["reward_components"]) == {"outcome", "reflection", "format"}
    assert info["reward_components"]["format"] == 0.0
    env.close()
