"""Generators by name: ``generators="shapes-strong"`` and :func:`register_generator` for your own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genagent_env.registry import Registry
from genagent_env.tools.base import FunctionGenerator, Generator

GENERATORS: Registry[Generator] = Registry("generator", entry_point_group="genagent_env.generators")
_SHAPES = "genagent_env.shapes.generator:ShapesGenerator"
GENERATORS.register("shapes", _SHAPES, preset="medium")
GENERATORS.register("shapes-weak", _SHAPES, preset="weak")
GENERATORS.register("shapes-medium", _SHAPES, preset="medium")
GENERATORS.register("shapes-strong", _SHAPES, preset="strong")


def register_generator(name: str, factory: Callable[..., Any] | str, **defaults: Any) -> None:
    """Register a generator factory by name: a class or function that returns a :class:`Generator`
    (or a plain ``(prompt, seed) -> image`` function), or a lazy ``"module:attribute"`` path to one."""
    GENERATORS.register(name, factory, **defaults)


def make_generator(spec: str | Generator | Callable[..., Any], name: str | None = None) -> Generator:
    """A generator from a registered name, a :class:`Generator`, or a plain ``(prompt, seed) -> image``."""
    if isinstance(spec, Generator):
        return spec
    if isinstance(spec, str):
        built = GENERATORS.make(spec)
        # A factory may return a plain (prompt, seed) -> image function: wrap it under its name.
        return built if isinstance(built, Generator) else FunctionGenerator(built, name=spec)
    if callable(spec):
        return FunctionGenerator(spec, name=name)
    raise TypeError(
        f"a generator must be a registered name, a Generator or a function (prompt, seed) -> image; got {spec!r}"
    )
