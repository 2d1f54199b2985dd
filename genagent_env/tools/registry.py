"""Generators by name: ``generators="shapes-strong"``, :func:`register_generator` for your own, and
services by address (``"http://127.0.0.1:8000/flux-dev"``, ``"serve:flux-dev"``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genagent_env.registry import Registry
from genagent_env.tools.base import FunctionGenerator, Generator
from genagent_env.tools.remote import is_remote_spec

GENERATORS: Registry[Generator] = Registry("generator", entry_point_group="genagent_env.generators")
_SHAPES = "genagent_env.shapes.generator:ShapesGenerator"
GENERATORS.register("shapes", _SHAPES, preset="medium")
GENERATORS.register("shapes-weak", _SHAPES, preset="weak")
GENERATORS.register("shapes-medium", _SHAPES, preset="medium")
GENERATORS.register("shapes-strong", _SHAPES, preset="strong")

# diffusers models (loaded on first use, from the local Hugging Face cache; see
# genagent_env.tools.diffusers_generator). Defaults are the ones their model cards and papers use.
_DIFFUSERS = "genagent_env.tools.diffusers_generator:DiffusersGenerator"
GENERATORS.register("diffusers", "genagent_env.tools.diffusers_generator:diffusers_generator")
GENERATORS.register(
    "flux-dev", _DIFFUSERS, model="black-forest-labs/FLUX.1-dev", cuda_dtype="bfloat16",
    num_inference_steps=50, guidance_scale=3.5, height=1024, width=1024, pipeline_kwargs={"max_sequence_length": 512},
)
GENERATORS.register(
    "flux-schnell", _DIFFUSERS, model="black-forest-labs/FLUX.1-schnell", cuda_dtype="bfloat16",
    num_inference_steps=4, guidance_scale=0.0, height=1024, width=1024, pipeline_kwargs={"max_sequence_length": 256},
)
GENERATORS.register(
    "sd35", _DIFFUSERS, model="stabilityai/stable-diffusion-3.5-large", cuda_dtype="bfloat16",
    num_inference_steps=28, guidance_scale=3.5, height=1024, width=1024,
)
GENERATORS.register(
    "sdxl", _DIFFUSERS, model="stabilityai/stable-diffusion-xl-base-1.0", cuda_dtype="float16",
    num_inference_steps=50, guidance_scale=5.0, height=1024, width=1024,
)
GENERATORS.register(
    "sd15", _DIFFUSERS, model="stable-diffusion-v1-5/stable-diffusion-v1-5", cuda_dtype="float16",
    num_inference_steps=50, guidance_scale=7.5, height=512, width=512,
)
GENERATORS.register(
    "sana", _DIFFUSERS, model="Efficient-Large-Model/Sana_1600M_1024px_diffusers",
    cuda_dtype="bfloat16", num_inference_steps=20, guidance_scale=4.5, height=1024, width=1024,
)
GENERATORS.register(
    "pixart", _DIFFUSERS, model="PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", cuda_dtype="float16",
    num_inference_steps=20, guidance_scale=4.5, height=1024, width=1024,
)


def register_generator(name: str, factory: Callable[..., Any] | str, **defaults: Any) -> None:
    """Register a generator factory by name: a class or function that returns a :class:`Generator`
    (or a plain ``(prompt, seed) -> image`` function), or a lazy ``"module:attribute"`` path to one."""
    GENERATORS.register(name, factory, **defaults)


def make_generator(spec: str | Generator | Callable[..., Any], name: str | None = None) -> Generator:
    """A generator from a registered name, a remote service's name (``http://HOST:PORT/APP``,
    ``serve:APP``; see :mod:`genagent_env.tools.remote`), a :class:`Generator`, or a plain
    ``(prompt, seed) -> image``."""
    if isinstance(spec, Generator):
        return spec
    if isinstance(spec, str):
        if is_remote_spec(spec):  # "http://HOST:PORT/APP" or "serve:APP": served elsewhere
            from genagent_env.tools.remote import remote_generator

            return remote_generator(spec)
        built = GENERATORS.make(spec)
        # A factory may return a plain (prompt, seed) -> image function: wrap it under its name.
        return built if isinstance(built, Generator) else FunctionGenerator(built, name=spec)
    if callable(spec):
        return FunctionGenerator(spec, name=name)
    raise TypeError(
        f"a generator must be a registered name, a Generator or a function (prompt, seed) -> image; got {spec!r}"
    )
