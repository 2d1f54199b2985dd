"""A tiny, randomly initialised open_clip model for offline tests of :mod:`genagent_env.scorers.clip`.

``tiny_open_clip()`` registers a small model config with ``open_clip.add_model_config`` (name
:data:`TINY_CLIP_NAME`) and builds it with ``open_clip.create_model_and_transforms``; its tokenizer
is open_clip's bundled BPE tokenizer, so nothing is downloaded. ``tiny_open_clip(path)`` also saves
the weights to ``path`` with safetensors and loads them back through the public route a user takes
with a real checkpoint (``create_model_and_transforms(name, pretrained=path)``), which reads
``.safetensors`` files without unpickling anything.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import open_clip
import torch
from safetensors.torch import save_file

#: The name the tiny config is registered under.
TINY_CLIP_NAME = "genagent-tiny-clip"

#: ViT image tower and text transformer, one layer each, 16-dimensional joint embedding.
TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}

_registered: Path | None = None


def register_tiny_clip_config() -> str:
    """Register :data:`TINY_CLIP_CONFIG` with open_clip (once per process) and return its name."""
    global _registered
    if _registered is None:
        folder = Path(tempfile.mkdtemp(prefix="genagent-tiny-clip-"))
        (folder / f"{TINY_CLIP_NAME}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
        open_clip.add_model_config(folder)
        _registered = folder
    return TINY_CLIP_NAME


def tiny_open_clip(path: str | Path | None = None, seed: int = 0) -> tuple[torch.nn.Module, Any, Any]:
    """``(model, preprocess, tokenizer)`` of a tiny random CLIP, in eval mode on the CPU.

    Args:
        path: If given, a ``.safetensors`` file to save the weights to; the returned model is then
            the one loaded back from it with ``pretrained=path``.
        seed: Seed of the random initialisation (the same seed gives the same weights).
    """
    name = register_tiny_clip_config()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=str(path))
    model.eval()
    return model, preprocess, open_clip.get_tokenizer(name)
