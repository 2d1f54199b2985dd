"""Tiny, randomly initialised models built from configs, for offline tests of the real-model code.

Each builder makes a model small enough to run on a CPU in a second, saves it with
``save_pretrained`` and loads it back with ``from_pretrained`` where the library has them, so the
loading code users run on real checkpoints is exercised too. Nothing here downloads anything.
"""

from __future__ import annotations

from typing import Any


def save_and_reload(model: Any, processor: Any, path: Any) -> tuple[Any, Any]:
    """``save_pretrained`` a model and its processor into ``path`` and load both back offline with
    ``from_pretrained(path, local_files_only=True)``, so the loading code users run is exercised."""
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return (type(model).from_pretrained(path, local_files_only=True),
            type(processor).from_pretrained(path, local_files_only=True))
