"""Generators as tools: the batch-first interface, the registry, and the wrappers for plain functions."""

from genagent_env.tools.base import FunctionGenerator, GenerationRequest, Generator, prompt_and_seed_schema
from genagent_env.tools.registry import GENERATORS, make_generator, register_generator

__all__ = [
    "GENERATORS",
    "FunctionGenerator",
    "GenerationRequest",
    "Generator",
    "make_generator",
    "prompt_and_seed_schema",
    "register_generator",
]
