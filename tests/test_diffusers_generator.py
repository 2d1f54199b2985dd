"""DiffusersGenerator with tiny random pipelines (genagent_env.testing.tiny_diffusers), offline."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("open_clip")

from genagent_env.testing.tiny_diffusers import tiny_flux_pipeline, tiny_sd_pipeline  # noqa: E402
from genagent_env.tools.base import GenerationRequest  # noqa: E402
from genagent_env.tools.diffusers_generator import (  # noqa: E402
    DiffusersGenerationError,
    DiffusersGenerator,
    ModelWeightsMissingError,
)
from genagent_env.tools.registry import GENERATORS  # noqa: E402


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def sd() -> DiffusersGenerator:
    return DiffusersGenerator(tiny_sd_pipeline(), name="tiny-sd", num_inference_steps=3, height=32, width=32)


@pytest.fixture(scope="module")
def flux() -> DiffusersGenerator:
    return DiffusersGenerator(
        tiny_flux_pipeline(), name="tiny-flux", num_inference_steps=3, height=32, width=32,
        pipeline_kwargs={"max_sequence_length": 32},
    )


def call(prompt: str, seed: int | None = None, tool: str = "tool", **arguments: Any) -> str:
    payload = {"prompt": prompt, **({} if seed is None else {"seed": seed}), **arguments}
    return f"<tool_call>{json.dumps({'name': tool, 'arguments': payload})}</tool_call>"


def pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.float32) / 255.0


@pytest.mark.parametrize("which", ["sd", "flux"])
def test_episode_end_to_end(which: str, request: pytest.FixtureRequest, colour_env: Any) -> None:
    generator = request.getfixturevalue(which)
    env = colour_env(generators={"tool": generator})
    env.reset(seed=0, options={"task_index": 0})
    observation, _, _, _, info = env.step(call("something red", seed=3))
    assert info["round"] == 1 and len(info["images"]) == 1, observation["text"]
    assert info["images"][0].mode == "RGB" and info["images"][0].size == (32, 32)
    assert observation["image"].any()
    observation, reward, terminated, _, info = env.step("<judge>Not red.</judge><answer>done</answer>")
    assert terminated and set(info["reward_components"]) == {"outcome", "reflection", "format"}
    assert reward == pytest.approx(sum(info["reward_components"].values()))


@pytest.mark.parametrize("which", ["sd", "flux"])
def test_batched_call_equals_single_calls(which: str, request: pytest.FixtureRequest) -> None:
    generator = request.getfixturevalue(which)
    requests = [GenerationRequest("a red cat", 1), GenerationRequest("a blue dog", 2), GenerationRequest("a cat", 1)]
    generator.max_batch_size = 2  # splits the batch too
    try:
        batched = generator.generate(requests)
    finally:
        generator.max_batch_size = 4
    singles = [generator.generate([r])[0] for r in requests]
    for one, many in zip(singles, batched):
        assert np.abs(pixels(one) - pixels(many)).max() <= 1e-3 + 1 / 255  # uint8 rounding
    assert np.abs(pixels(batched[0]) - pixels(batched[1])).max() > 0.05  # seeds and prompts matter


class FakePipeline:
    """A pipeline that raises, hangs, or returns what it is told; it records its calls."""

    def __init__(self, mode: str) -> None:
        self.mode, self.calls, self.release = mode, [], threading.Event()

    def __call__(self, prompt: Any = None, negative_prompt: Any = None, num_inference_steps: int = 10,
                 guidance_scale: float = 5.0, height: int | None = None, width: int | None = None,
                 generator: Any = None, output_type: str = "pil") -> Any:
        self.calls.append({"prompt": prompt, "negative_prompt": negative_prompt, "steps": num_inference_steps,
                           "guidance_scale": guidance_scale, "height": height, "width": width})
        n = len(prompt)
        if self.mode == "raise":
            raise RuntimeError("CUDA error: device-side assert triggered")
        if self.mode == "hang":
            self.release.wait(10)
        fill = {"nan": np.nan, "black": 0.0}.get(self.mode, 0.5)
        return SimpleNamespace(images=np.full((n, height or 16, width or 16, 3), fill, dtype=np.float32))


@pytest.mark.parametrize(("mode", "expected"), [("raise", "device-side assert"), ("nan", "NaN"), ("black", "black")])
def test_failures_become_error_observations(mode: str, expected: str, colour_env: Any) -> None:
    env = colour_env(generators={"tool": DiffusersGenerator(FakePipeline(mode))})
    env.reset(seed=0, options={"task_index": 0})
    observation, _, terminated, truncated, info = env.step(call("something red", seed=1))
    assert expected in observation["text"] and "failed" in observation["text"]
    assert not (terminated or truncated) and info["round"] == 0 and info["violations"] == 0
    if mode != "raise":
        assert "bfloat16" in observation["text"] or "float16" in observation["text"]
    env.step(call("something red", seed=2))  # the episode goes on
    assert env.unwrapped.episode.state.turn == 2


def test_hanging_pipeline_times_out(colour_env: Any) -> None:
    fake = FakePipeline("hang")
    env = colour_env(generators={"tool": DiffusersGenerator(fake)}, tool_timeout_s=0.3)
    env.reset(seed=0, options={"task_index": 0})
    try:
        observation, _, terminated, _, info = env.step(call("something red", seed=1))
        assert "did not answer" in observation["text"] and not terminated and info["round"] == 0
        # While the abandoned call still runs, a new one is refused at once instead of racing it.
        observation, *_ = env.step(call("something red", seed=2))
        assert "busy" in observation["text"]
    finally:
        fake.release.set()


def test_exposed_arguments_schema_validation_and_call(colour_env: Any) -> None:
    fake = FakePipeline("ok")
    tool = DiffusersGenerator(fake, expose=("steps", "guidance", "width", "height", "negative_prompt"),
                              limits={"width": (16, 64), "height": (16, 64)})
    properties = tool.parameters()["properties"]
    assert properties["num_inference_steps"] == {**properties["num_inference_steps"], "type": "integer", "minimum": 1}
    assert properties["guidance_scale"]["type"] == "number" and properties["width"]["maximum"] == 64
    assert properties["negative_prompt"]["type"] == "string"
    env = colour_env(generators={"tool": tool})
    env.reset(seed=0, options={"task_index": 0})
    _, _, _, _, info = env.step(call("something red", seed=1, num_inference_steps="7"))
    assert info["violations"] == 1 and not fake.calls
    _, _, _, _, info = env.step(call("something red", seed=1, width=1000))
    assert info["violations"] == 2 and not fake.calls
    env.step(call("something red", seed=1, num_inference_steps=7, guidance_scale=2.5, width=40, height=24,
                  negative_prompt="blur"))
    assert fake.calls[-1] == {"prompt": ["something red"], "negative_prompt": ["blur"], "steps": 7,
                              "guidance_scale": 2.5, "height": 24, "width": 40}
    assert env.unwrapped.episode.state.images[-1].size == (40, 24)
    with pytest.raises(ValueError, match="cannot expose"):
        DiffusersGenerator(fake, expose=("eta",))


def test_exposed_arguments_reach_a_real_pipeline(sd: DiffusersGenerator) -> None:
    tool = DiffusersGenerator(sd.pipeline, expose=("steps", "width", "negative_prompt"), num_inference_steps=2)
    assert "negative_prompt" in tool.parameters()["properties"]
    image = tool.generate([GenerationRequest("a cat", 1, width=48, height=32, extra={"negative_prompt": "dog"})])[0]
    assert image.size == (48, 32)
    with pytest.raises(ValueError, match="does not take"):
        tool.generate([GenerationRequest("a cat", 1, extra={"guidance_scale": 3.0})])


@pytest.mark.parametrize("preset", ["flux-dev", "sd15"])
def test_presets_without_weights_say_what_to_download(
    preset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(ModelWeightsMissingError) as caught:
        GENERATORS.make(preset)
    message = str(caught.value)
    model_id = {"flux-dev": "black-forest-labs/FLUX.1-dev", "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5"}
    assert f"huggingface-cli download {model_id[preset]}" in message and "HF_HOME" in message
    assert str(tmp_path) in message
    assert ("FLUX.1-dev is gated" in message) == (preset == "flux-dev")
    assert "license" in message


@pytest.mark.parametrize("builder", [tiny_sd_pipeline, tiny_flux_pipeline])
def test_loads_a_saved_pipeline_folder_offline(builder: Any, tmp_path: Path) -> None:
    folder = tmp_path / "My_Tiny-Model"
    loaded = builder(folder)  # save_pretrained + DiffusionPipeline.from_pretrained
    tool = DiffusersGenerator(str(folder), num_inference_steps=2, height=32, width=32, device="cpu")
    assert tool.name == "my_tiny-model"
    direct = DiffusersGenerator(loaded, num_inference_steps=2, height=32, width=32)
    a, b = tool.generate([GenerationRequest("a cat", 5)])[0], direct.generate([GenerationRequest("a cat", 5)])[0]
    assert np.abs(pixels(a) - pixels(b)).max() <= 1e-3 + 1 / 255
    tool.close()
    tool.close()
    with pytest.raises(RuntimeError, match="closed"):
        tool.generate([GenerationRequest("a cat", 5)])


def test_generation_errors_are_typed() -> None:
    with pytest.raises(DiffusersGenerationError, match="NaN"):
        DiffusersGenerator(FakePipeline("nan")).generate([GenerationRequest("x", 0)])
