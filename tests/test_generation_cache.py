"""GenerationCache (LRU, stable keys, on-disk store) and generate_requests (dedupe, batches, failures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from genagent_env.env import GenAgentEnv
from genagent_env.shapes.generator import ShapesGenerator
from genagent_env.tools.base import FunctionGenerator, GenerationRequest, Generator
from genagent_env.tools.cache import GenerationCache
from genagent_env.tools.dispatch import generate_requests
from tests.helpers import COLOUR_TASKS, ColourScorer

REPO = Path(__file__).resolve().parents[1]


def solid(rgb: tuple[int, int, int], size: int = 4) -> Image.Image:
    return Image.new("RGB", (size, size), rgb)


def noise(prompt: str, seed: int) -> Image.Image:
    """An image that depends on every pixel of (prompt, seed), so equal pixels mean the same image."""
    rng = np.random.default_rng([seed, *prompt.encode()])
    return Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))


class Noise(Generator):
    """Records every ``generate`` call; fails (or misbehaves) as ``mode`` says."""

    name = "noise"

    def __init__(self, mode: str = "ok", sleep_s: float = 0.0) -> None:
        self.mode, self.sleep_s = mode, sleep_s
        self.calls: list[list[GenerationRequest]] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        self.calls.append(list(requests))
        time.sleep(self.sleep_s)
        if self.mode == "boom" and any("boom" in r.prompt for r in requests):
            raise RuntimeError("boom in the batch")
        images: list[Any] = [noise(r.prompt, r.seed) for r in requests]
        if self.mode == "one-too-many":
            images.append(images[0])
        if self.mode == "not-a-list":
            return None  # type: ignore[return-value]
        return images


class StableNoise(Noise):
    """A generator that names its images stably, so that other instances and processes share them."""

    def cache_id(self) -> str:
        return "noise:v1"


class Uncached(Noise):
    def cache_id(self) -> None:
        return None


def same(a: Image.Image, b: Image.Image) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------------------------- LRU


def test_lru_evicts_the_least_recently_used_and_get_refreshes():
    cache = GenerationCache(max_entries=2, max_bytes=None)
    a, b, c = solid((255, 0, 0)), solid((0, 255, 0)), solid((0, 0, 255))
    cache.put("a", a)
    cache.put("b", b)
    assert same(cache.get("a"), a)  # a is now the most recent
    cache.put("c", c)
    assert cache.get("b") is None and same(cache.get("a"), a) and same(cache.get("c"), c)
    assert len(cache) == 2 and cache.stats.evictions == 1


def test_images_go_in_and_come_out_as_copies():
    cache = GenerationCache()
    original = solid((255, 0, 0))
    cache.put("a", original)
    original.paste((0, 0, 255), (0, 0, 4, 4))  # the caller changes its image after storing it
    handed_out = cache.get("a")
    handed_out.paste((0, 255, 0), (0, 0, 4, 4))  # and an episode changes the one it got
    assert same(cache.get("a"), solid((255, 0, 0)))


def test_max_bytes_bounds_memory_and_an_oversized_image_is_not_kept():
    cache = GenerationCache(max_entries=100, max_bytes=140)  # a 4 x 4 image is 64 bytes in PIL: two fit
    for key in "abc":
        cache.put(key, solid((1, 2, 3)))
    assert cache.get("a") is None and cache.get("b") is not None and cache.get("c") is not None
    assert cache.nbytes == 128 and cache.stats.evictions == 1
    cache.put("huge", solid((9, 9, 9), size=10))  # 400 bytes, more than the whole budget
    assert cache.get("huge") is None
    assert len(cache) == 2 and cache.nbytes == 128 and cache.stats.evictions == 1  # nothing else was dropped
    assert cache.info() == {"hits": 0, "misses": 0, "disk_hits": 0, "disk_errors": 0, "generator_calls": 0,
                            "evictions": 1, "entries": 2, "bytes": 128}


# ------------------------------------------------------------------------------------- keys

KEY_REQUEST = GenerationRequest("two red circles", 7, 64, 48, {"b": 1, "a": [1, 2]})
KEY_SCRIPT = (
    "from genagent_env.shapes.generator import ShapesGenerator\n"
    "from genagent_env.tools.base import GenerationRequest\n"
    "from genagent_env.tools.cache import GenerationCache\n"
    "print(GenerationCache.key(ShapesGenerator('strong'), "
    "GenerationRequest('two red circles', 7, 64, 48, {'a': [1, 2], 'b': 1})))\n"
)


def test_key_is_stable_across_processes():
    here = GenerationCache.key(ShapesGenerator("strong"), KEY_REQUEST)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    there = subprocess.run([sys.executable, "-c", KEY_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                           check=True, timeout=60).stdout.strip()
    assert here == there and len(here) == 64


def test_key_changes_with_every_part_of_the_request_and_the_tool():
    tool = ShapesGenerator("strong")
    base = GenerationRequest("a red circle", 1, 64, 64, {"steps": 4})
    variants = [
        (tool, base),
        (tool, GenerationRequest("a red circle.", 1, 64, 64, {"steps": 4})),
        (tool, GenerationRequest("a red circle", 2, 64, 64, {"steps": 4})),
        (tool, GenerationRequest("a red circle", 1, 96, 64, {"steps": 4})),
        (tool, GenerationRequest("a red circle", 1, 64, 96, {"steps": 4})),
        (tool, GenerationRequest("a red circle", 1, 64, 64, {"steps": 5})),
        (tool, GenerationRequest("a red circle", 1, 64, 64, {})),
        (tool, GenerationRequest("a red circle", 1, None, None, {"steps": 4})),
        (ShapesGenerator("weak"), base),
        (ShapesGenerator("strong", image_size=64), base),
    ]
    keys = [GenerationCache.key(t, r) for t, r in variants]
    assert all(isinstance(k, str) for k in keys) and len(set(keys)) == len(keys)
    assert GenerationCache.key(ShapesGenerator("strong"), base) == keys[0]  # another instance, same settings


def test_a_generator_without_cache_id_is_never_cached():
    tool, cache = Uncached(), GenerationCache()
    request = GenerationRequest("a cat", 3)
    assert GenerationCache.key(tool, request) is None
    generate_requests(tool, [request, request], cache=cache)
    generate_requests(tool, [request], cache=cache)
    assert [len(c) for c in tool.calls] == [2, 1] and len(cache) == 0 and cache.stats.hits == 0


# ----------------------------------------------------------------------------------- on disk


def test_a_second_cache_on_the_same_folder_finds_the_image(tmp_path):
    request = GenerationRequest("a blue square", 5)
    first_tool, second_tool = StableNoise(), StableNoise()
    [made] = generate_requests(first_tool, [request], cache=GenerationCache(directory=tmp_path))
    assert len(list(tmp_path.rglob("*.png"))) == 1
    second = GenerationCache(directory=tmp_path)  # empty memory, e.g. a resumed run
    [found] = generate_requests(second_tool, [request], cache=second)
    assert second_tool.calls == [] and same(found, made)
    assert (second.stats.disk_hits, second.stats.hits, second.stats.misses) == (1, 1, 0)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_file_on_disk_is_a_miss_and_is_regenerated(tmp_path, damage):
    request = GenerationRequest("a blue square", 5)
    [made] = generate_requests(Noise(), [request], cache=GenerationCache(directory=tmp_path))
    [path] = tmp_path.rglob("*.png")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a png at all")
    tool, cache = Noise(), GenerationCache(directory=tmp_path)
    [again] = generate_requests(tool, [request], cache=cache)
    assert len(tool.calls) == 1 and same(again, made)
    assert (cache.stats.misses, cache.stats.disk_hits) == (1, 0)
    fresh = GenerationCache(directory=tmp_path)  # the regenerated image was written back
    assert same(fresh.get(GenerationCache.key(tool, request)), made) and fresh.stats.disk_hits == 1


def test_from_any():
    default = GenerationCache.from_any(True)
    assert isinstance(default, GenerationCache) and default.max_entries == 1024 and default.max_bytes == 256 * 2**20
    assert GenerationCache.from_any(False) is None and GenerationCache.from_any(None) is None
    small = GenerationCache.from_any({"max_entries": 3, "max_bytes": None})
    assert small.max_entries == 3 and small.max_bytes is None
    shared = GenerationCache()
    assert GenerationCache.from_any(shared) is shared
    for junk in ("yes", 1, 0, [True], 2.5):
        with pytest.raises(TypeError):
            GenerationCache.from_any(junk)


# ------------------------------------------------------------------ function generators' ids

TOOL_CALL = '<tool_call>{"name": "paint", "arguments": {"prompt": "a thing", "seed": 2}}</tool_call>'


def _first_image(function: Any, cache: GenerationCache) -> np.ndarray:
    env = GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": function}, scorer=ColourScorer(),
                      generation_cache=cache, image_size=8)
    env.reset(seed=0, options={"task_index": 0})
    *_, info = env.step(TOOL_CALL)
    return np.asarray(info["images"][0])


def painter(rgb: tuple[int, int, int]) -> Any:
    def draw(prompt: str, seed: int) -> Image.Image:
        return solid(rgb, 8)

    return draw


class Painter:
    def __init__(self, rgb: tuple[int, int, int]) -> None:
        self.rgb = rgb

    def draw(self, prompt: str, seed: int) -> Image.Image:
        return solid(self.rgb, 8)


@pytest.mark.parametrize("make", [painter, lambda rgb: (lambda prompt, seed: solid(rgb, 8))], ids=["closure", "lambda"])
def test_closures_with_one_qualname_do_not_share_cache_entries(make):
    cache = GenerationCache()
    red, blue = _first_image(make((255, 0, 0)), cache), _first_image(make((0, 0, 255)), cache)
    assert tuple(red[0, 0]) == (255, 0, 0) and tuple(blue[0, 0]) == (0, 0, 255)


def test_bound_methods_of_different_objects_do_not_share_cache_entries():
    cache = GenerationCache()
    red, blue = _first_image(Painter((255, 0, 0)).draw, cache), _first_image(Painter((0, 0, 255)).draw, cache)
    assert tuple(red[0, 0]) == (255, 0, 0) and tuple(blue[0, 0]) == (0, 0, 255)


# --------------------------------------------------------------------------- generate_requests


def test_identical_requests_in_one_call_generate_once():
    tool, cache = Noise(), GenerationCache()
    a, b = GenerationRequest("a cat", 1), GenerationRequest("a dog", 1)
    out = generate_requests(tool, [a, b, a, GenerationRequest("a cat", 1)], cache=cache)
    assert tool.calls == [[a, b]]
    assert same(out[0], out[2]) and same(out[0], out[3]) and not same(out[0], out[1])
    assert cache.info()["hits"] == 2 and cache.info()["misses"] == 2 and cache.info()["generator_calls"] == 1
    generate_requests(tool, [b], cache=cache)  # now from memory
    assert len(tool.calls) == 1 and cache.stats.hits == 3


def test_batch_size_splits_the_calls_and_keeps_the_order():
    tool = Noise()
    requests = [GenerationRequest(f"prompt {i}", i) for i in range(5)]
    out = generate_requests(tool, requests, batch_size=2)
    assert [len(c) for c in tool.calls] == [2, 2, 1]
    assert all(same(image, noise(r.prompt, r.seed)) for image, r in zip(out, requests))
    with pytest.raises(ValueError):
        generate_requests(tool, requests, batch_size=0)


def test_a_failing_batch_is_retried_per_request_so_only_the_culprit_fails():
    tool, cache = Noise("boom"), GenerationCache()
    requests = [GenerationRequest("a cat", 1), GenerationRequest("boom", 2), GenerationRequest("a dog", 3)]
    out = generate_requests(tool, requests, cache=cache)
    assert isinstance(out[1], RuntimeError) and "boom" in str(out[1])
    assert same(out[0], noise("a cat", 1)) and same(out[2], noise("a dog", 3))
    assert [len(c) for c in tool.calls] == [3, 1, 1, 1] and len(cache) == 2  # an error is not cached
    tool.calls.clear()
    out = generate_requests(tool, requests, cache=cache)
    assert tool.calls == [[requests[1]]] and isinstance(out[1], RuntimeError)


class Stuck(Noise):
    """Hangs until released (at most 30 s), recording each call as it starts."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        self.calls.append(list(requests))
        self.release.wait(30)
        return [noise(r.prompt, r.seed) for r in requests]


def test_a_stuck_tool_times_out_once_for_the_batch_and_once_alone_not_once_per_request():
    tool = Stuck()
    requests = [GenerationRequest(str(k), k) for k in range(4)]
    start = time.perf_counter()
    try:
        out = generate_requests(tool, requests, timeout_s=0.05)
    finally:
        elapsed = time.perf_counter() - start
        tool.release.set()
    assert all(isinstance(o, TimeoutError) for o in out)
    assert tool.calls == [requests, requests[:1]]  # the batch, then the first alone; the rest not tried
    assert elapsed < 10  # gave up on the stuck tool (which holds for 30 s) instead of waiting for it


class PerRequestSleep(Noise):
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        time.sleep(0.05 * len(requests))
        return super().generate(requests)


def test_the_deadline_is_per_request_so_a_batch_is_not_held_to_the_deadline_of_one(monkeypatch):
    from genagent_env.tools import dispatch

    deadlines: list[float | None] = []
    real = dispatch.call_with_timeout

    def recording(function: Any, timeout_s: float | None) -> Any:
        deadlines.append(timeout_s)
        return real(function, timeout_s)

    monkeypatch.setattr(dispatch, "call_with_timeout", recording)
    tool = PerRequestSleep()
    # 6 x 0.05 s of work: more than one request's deadline (0.25 s), far less than the batch's (1.5 s)
    out = generate_requests(tool, [GenerationRequest(str(k), k) for k in range(6)], timeout_s=0.25)
    assert all(isinstance(o, Image.Image) for o in out) and len(tool.calls) == 1
    assert deadlines == [pytest.approx(6 * 0.25)]
    deadlines.clear()
    generate_requests(tool, [GenerationRequest(str(k), k) for k in range(3)], timeout_s=0.25, batch_size=2)
    assert deadlines == [pytest.approx(0.5), pytest.approx(0.25)]


def test_a_user_timeout_error_inside_the_tool_is_retried_per_request():
    class FlakySocket(Noise):
        def generate(self, requests: Sequence[GenerationRequest]) -> list[Any]:
            if any(r.prompt == "slow" for r in requests):
                raise TimeoutError("read timed out")  # the tool's own error, not the env's deadline
            return super().generate(requests)

    out = generate_requests(FlakySocket(), [GenerationRequest("slow", 1), GenerationRequest("fast", 2)], timeout_s=5)
    assert isinstance(out[0], TimeoutError) and isinstance(out[1], Image.Image)


def test_instances_of_one_generator_class_do_not_share_entries_by_default():
    class Solid(Generator):
        name = "solid"

        def __init__(self, colour: tuple[int, int, int]) -> None:
            self.colour = colour

        def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
            return [solid(self.colour) for _ in requests]

    cache = GenerationCache()
    request = GenerationRequest("x", 1)
    [red] = generate_requests(Solid((255, 0, 0)), [request], cache=cache)
    [blue] = generate_requests(Solid((0, 0, 255)), [request], cache=cache)
    assert same(red, solid((255, 0, 0))) and same(blue, solid((0, 0, 255)))


@pytest.mark.parametrize("mode", ["one-too-many", "not-a-list"])
def test_a_wrong_number_of_images_is_an_error_outcome(mode):
    tool = Noise(mode)
    out = generate_requests(tool, [GenerationRequest("a", 1), GenerationRequest("b", 2)], cache=GenerationCache())
    assert all(isinstance(o, ValueError) and "images for" in str(o) for o in out)


def test_a_broken_image_fails_only_its_request():
    class HalfNaN(Noise):
        def generate(self, requests):
            return [np.full((8, 8, 3), np.nan) if r.seed == 2 else noise(r.prompt, r.seed) for r in requests]

    out = generate_requests(HalfNaN(), [GenerationRequest("a", 1), GenerationRequest("b", 2)])
    assert same(out[0], noise("a", 1)) and isinstance(out[1], ValueError) and "NaN" in str(out[1])


def test_the_env_counts_cache_use_in_info():
    cache = GenerationCache()
    env = GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": noise}, scorer=ColourScorer(), generation_cache=cache)
    env.reset(seed=0, options={"task_index": 0})
    assert env.reset(seed=0)[1]["generation_cache"] == {"hits": 0, "misses": 0, "disk_hits": 0, "disk_errors": 0,
                                                        "generator_calls": 0, "evictions": 0, "entries": 0, "bytes": 0}
    call = json.dumps({"name": "paint", "arguments": {"prompt": "a red thing", "seed": 4}})
    *_, info = env.step(f"<tool_call>{call}</tool_call>")
    assert info["generation_cache"] == {"hits": 0, "misses": 1, "disk_hits": 0, "disk_errors": 0, "generator_calls": 1,
                                        "evictions": 0, "entries": 1, "bytes": 16 * 16 * 4}
    assert "generation_cache" not in GenAgentEnv(suite=COLOUR_TASKS, generators={"paint": noise},
                                                 scorer=ColourScorer()).reset(seed=0)[1]


def test_decorated_closures_that_copy_a_name_do_not_share_entries():
    import functools

    def tinted(colour: tuple[int, int, int]):
        def paint(prompt: str, seed: int) -> Image.Image:
            return solid(colour)

        @functools.wraps(paint)
        def logged(prompt: str, seed: int) -> Image.Image:
            return paint(prompt, seed)

        return logged

    cache = GenerationCache()
    request = GenerationRequest("x", 1)
    [red] = generate_requests(FunctionGenerator(tinted((255, 0, 0))), [request], cache=cache)
    [blue] = generate_requests(FunctionGenerator(tinted((0, 0, 255))), [request], cache=cache)
    assert same(red, solid((255, 0, 0))) and same(blue, solid((0, 0, 255)))
