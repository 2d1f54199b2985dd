"""Optional extras: a missing one is an import error that says which extra to install.

The core package needs only gymnasium, numpy, Pillow, scipy, jsonschema and tyro. Real generators,
model scorers, benchmark reports and SB3 policies need an extra (``pip install 'genagent-env[NAME]'``,
see ``pyproject.toml``). Code on a user-facing path imports such a module inside :func:`needs`, or
through :func:`require`, so that a missing one raises a :class:`ModuleNotFoundError` (an
``ImportError``) naming the module, the feature and the install command, instead of a bare
``No module named 'torch'``::

    with needs("scorers", "the CLIP scorer"):
        import open_clip
        import torch
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

#: The extra that provides each optional top-level module (``pyproject.toml``'s optional dependencies).
EXTRA_OF: dict[str, str] = {
    "torch": "diffusers", "diffusers": "diffusers", "transformers": "diffusers", "accelerate": "diffusers",
    "safetensors": "diffusers", "open_clip": "scorers", "torchvision": "scorers",
    "matplotlib": "bench", "tqdm": "bench", "jinja2": "bench",
    "stable_baselines3": "sb3", "tensorboard": "sb3",
}


def install_hint(extra: str) -> str:
    """The command that installs ``extra``: ``pip install 'genagent-env[extra]'``."""
    return f"pip install 'genagent-env[{extra}]'"


def missing_extra(error: ModuleNotFoundError, extra: str, feature: str | None = None) -> ModuleNotFoundError:
    """``error`` reworded with the extra to install (the module's ``name`` is kept)."""
    module = error.name or "a module"
    what = f"{feature} needs" if feature else "this needs"
    message = f"No module named {module!r}: {what} the optional extra {extra!r}; install it with {install_hint(extra)}"
    return ModuleNotFoundError(message, name=error.name, path=error.path)


@contextmanager
def needs(extra: str, feature: str | None = None) -> Iterator[None]:
    """Imports in this block that fail for a missing module raise :func:`missing_extra`'s error."""
    try:
        yield
    except ModuleNotFoundError as error:
        if "optional extra" in str(error):  # already explained by an inner block
            raise
        raise missing_extra(error, extra, feature) from error


def require(module: str, extra: str | None = None, feature: str | None = None) -> ModuleType:
    """Import ``module``; if it (or a module it needs) is missing, raise a ``ModuleNotFoundError``
    naming the extra to install (``extra``, default: the one :data:`EXTRA_OF` gives its top-level name)."""
    extra = extra or EXTRA_OF.get(module.partition(".")[0], "all")
    with needs(extra, feature):
        return importlib.import_module(module)
