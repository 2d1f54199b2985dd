"""A tiny, randomly initialised Grounding DINO for offline tests of :mod:`genagent_env.scorers.detector`.

``tiny_grounding_dino()`` builds ``GroundingDinoForObjectDetection`` from a small
``GroundingDinoConfig`` (a one-block-per-stage Swin backbone from transformers, not timm, a one-layer
BERT text encoder, one encoder and one decoder layer, 16 queries) and a ``GroundingDinoProcessor``
made without the Hub: a ``BertTokenizerFast`` over a small word-level vocabulary written to a
temporary folder (BERT's special tokens, ``.``, the ShapesWorld shapes and colours and a few GenEval
classes, :data:`TINY_VOCAB`) and a ``GroundingDinoImageProcessor`` resizing to
:data:`TINY_IMAGE_SIZE` pixels. ``tiny_grounding_dino(path)`` saves both with ``save_pretrained``
and returns them as loaded back with ``from_pretrained(path, local_files_only=True)`` — the route a
real checkpoint folder takes (``config.model_type`` is ``"grounding-dino"``, so
:func:`~genagent_env.scorers.detector.load_detector` loads it through
``AutoModelForZeroShotObjectDetection`` and ``AutoProcessor``).
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertTokenizerFast,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
    SwinConfig,
)

from genagent_env.shapes.vocab import SHAPES
from genagent_env.tasks.schema import COLORS
from genagent_env.testing import save_and_reload

#: Longest side (and shortest) of the images the tiny detector sees.
TINY_IMAGE_SIZE = 64

#: Longest text (in tokens) the tiny detector reads; the model's ``max_text_len``.
TINY_MAX_TEXT_LEN = 32

#: The tokenizer's vocabulary: BERT's special tokens, ``.``, ShapesWorld's shapes and colours (=
#: GenEval's ten), and a few GenEval / COCO class words ("hot" + "dog" makes a two-word class).
TINY_VOCAB: tuple[str, ...] = tuple(dict.fromkeys([
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "a", "photo", "of", "object",
    *SHAPES, *COLORS,
    "apple", "cat", "dog", "hot", "car", "truck", "ball", "box", "cup", "bird", "person", "banana",
]))


@lru_cache(maxsize=1)
def bert_vocab_folder() -> Path:
    """A folder with ``vocab.txt`` of :data:`TINY_VOCAB` (written once per process)."""
    folder = Path(tempfile.mkdtemp(prefix="genagent-tiny-bert-vocab-"))
    (folder / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    return folder


def tiny_grounding_dino_processor() -> GroundingDinoProcessor:
    """A ``GroundingDinoProcessor`` with a word-level BERT tokenizer over :data:`TINY_VOCAB` and a
    :data:`TINY_IMAGE_SIZE` image processor."""
    tokenizer = BertTokenizerFast.from_pretrained(str(bert_vocab_folder()), local_files_only=True,
                                                  do_lower_case=True, model_max_length=TINY_MAX_TEXT_LEN)
    image_processor = GroundingDinoImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE, "longest_edge": TINY_IMAGE_SIZE})
    return GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)


def tiny_grounding_dino_config() -> GroundingDinoConfig:
    """Swin with one block per stage (8 → 64 channels, out stages 2-4) under a 64-wide, two-head
    deformable encoder (one layer) and decoder (two layers) with 16 queries, and a one-layer 16-wide BERT.

    ``d_model`` is 64 because the input projections' ``GroupNorm(32, d_model)`` needs two channels a
    group on the 1 x 1 top feature map; the decoder has two layers because transformers (5.x) ties
    ``bbox_embed.1..`` to ``bbox_embed.0`` and fails to build with a single decoder layer.
    """
    backbone = SwinConfig(image_size=TINY_IMAGE_SIZE, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                          num_heads=[1, 1, 2, 2], window_size=2, mlp_ratio=2.0,
                          out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=len(TINY_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=TINY_MAX_TEXT_LEN, pad_token_id=0)
    return GroundingDinoConfig(
        backbone_config=backbone, text_config=text, use_timm_backbone=False,
        d_model=64, num_queries=16, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2, decoder_n_points=2,
        num_feature_levels=4, max_text_len=TINY_MAX_TEXT_LEN, disable_custom_kernels=True,
    )


def tiny_grounding_dino(
    path: str | Path | None = None, seed: int = 0
) -> tuple[GroundingDinoForObjectDetection, GroundingDinoProcessor]:
    """``(model, processor)`` of a tiny random Grounding DINO, in eval mode on the CPU.

    Args:
        path: If given, a folder to ``save_pretrained`` both into; they are then returned as loaded
            back with ``from_pretrained(path, local_files_only=True)``.
        seed: Seed of the random initialisation.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GroundingDinoForObjectDetection(tiny_grounding_dino_config())
    processor = tiny_grounding_dino_processor()
    if path is not None:
        model, processor = save_and_reload(model, processor, path)
    return model.eval(), processor
