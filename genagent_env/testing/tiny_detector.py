"""A tiny, randomly initialised OWLv2 detector for offline tests of :mod:`genagent_env.scorers.detector`.

``tiny_owlv2()`` builds ``Owlv2ForObjectDetection`` from a small ``Owlv2Config`` and an
``Owlv2Processor`` made without the Hub: the CLIP BPE tokenizer is written out from open_clip's
bundled ``bpe_simple_vocab_16e6.txt.gz`` as ``vocab.json`` / ``merges.txt`` by
:func:`genagent_env.testing.clip_tokenizer.clip_tokenizer_files` (the same vocabulary the real
OWLv2 checkpoints use), and the image processor resizes to a small square.
``tiny_owlv2(path)`` saves both with ``save_pretrained`` and returns them as loaded back with
``from_pretrained`` — the route a real checkpoint folder takes.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

from genagent_env.testing import save_and_reload
from genagent_env.testing.clip_tokenizer import clip_tokenizer_files

#: Side of the (square, padded) images the tiny detector sees.
TINY_IMAGE_SIZE = 32


def tiny_owlv2_processor() -> Owlv2Processor:
    """An ``Owlv2Processor`` with CLIP's real tokenizer and a :data:`TINY_IMAGE_SIZE` image processor."""
    folder = clip_tokenizer_files()
    tokenizer = CLIPTokenizer.from_pretrained(str(folder), pad_token="!")  # OWL pads with "!"
    image_processor = Owlv2ImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE})
    return Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer)


def tiny_owlv2_config() -> Owlv2Config:
    """One-layer text and vision towers, 32 wide (OWLv2 needs ``projection_dim`` = the text width),
    8-pixel patches on 32-pixel images (16 boxes)."""
    text = {"vocab_size": 49408, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 16}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": TINY_IMAGE_SIZE, "patch_size": 8}
    return Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)


def tiny_owlv2(path: str | Path | None = None, seed: int = 0) -> tuple[Owlv2ForObjectDetection, Owlv2Processor]:
    """``(model, processor)`` of a tiny random OWLv2, in eval mode on the CPU.

    Args:
        path: If given, a folder to ``save_pretrained`` both into; they are then returned as loaded
            back with ``from_pretrained(path)``.
        seed: Seed of the random initialisation.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Owlv2ForObjectDetection(tiny_owlv2_config())
    processor = tiny_owlv2_processor()
    if path is not None:
        model, processor = save_and_reload(model, processor, path)
    return model.eval(), processor
