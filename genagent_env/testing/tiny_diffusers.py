"""Tiny, randomly initialised diffusers pipelines for offline tests of :mod:`genagent_env.tools.diffusers_generator`.

``tiny_sd_pipeline()`` is a ``StableDiffusionPipeline`` and ``tiny_flux_pipeline()`` a ``FluxPipeline``
with the real classes (UNet / FLUX transformer, VAE, CLIP and T5 text encoders, tokenizers,
schedulers) at toy sizes, so a 32 x 32 or 64 x 64 image takes a fraction of a second on a CPU. Their
images are noise; what they test is the wrapper: seeding, batching, dtypes, saving and loading.

Nothing is downloaded. The CLIP tokenizer's byte-pair merges come from the vocabulary file that
``open_clip`` ships (the first few hundred merges are enough; see
:mod:`genagent_env.testing.clip_tokenizer`); the T5 tokenizer is a small unigram
model over letters and digits. The weights are drawn after ``torch.manual_seed(seed)``, so the same
call builds the same pipeline. With ``path``, the pipeline is written with ``save_pretrained`` and
read back with ``DiffusionPipeline.from_pretrained``, which exercises the code that loads real
checkpoints from a folder.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

from genagent_env.testing.clip_tokenizer import clip_vocab_and_merges

#: How many of the CLIP byte-pair merges the tiny tokenizer keeps (the real one has 48 894).
TINY_CLIP_MERGES = 500


def tiny_clip_tokenizer() -> Any:
    """A ``CLIPTokenizer`` with the real CLIP pre-tokenisation and a ~1 000-token vocabulary."""
    from transformers import CLIPTokenizer

    vocab, merges = clip_vocab_and_merges(TINY_CLIP_MERGES)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def tiny_t5_tokenizer() -> Any:
    """A ``T5TokenizerFast`` (unigram, like T5's) over single characters and a few common words."""
    from transformers import T5TokenizerFast

    words = ["a", "an", "the", "of", "and", "red", "green", "blue", "cat", "dog", "circle", "square"]
    pieces = ["<pad>", "</s>", "<unk>"] + [f"\u2581{w}" for w in words] + ["\u2581"]
    pieces += list(string.ascii_letters + string.digits + string.punctuation)
    vocab = [(piece, 0.0 if index < 3 else -float(index) / 10) for index, piece in enumerate(pieces)]
    return T5TokenizerFast(vocab=vocab, extra_ids=0, model_max_length=512)


def tiny_clip_text_encoder(vocab_size: int, hidden_size: int = 32) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        projection_dim=hidden_size,
        max_position_embeddings=77,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    return CLIPTextModel(config).eval()


def _tiny_clip_text(seed: int) -> tuple[Any, Any]:
    """Seed torch, then the tiny CLIP tokenizer and a text encoder over its vocabulary."""
    import torch

    torch.manual_seed(seed)
    tokenizer = tiny_clip_tokenizer()
    return tokenizer, tiny_clip_text_encoder(len(tokenizer))


def _tiny_vae(latent_channels: int, sample_size: int, **options: Any) -> Any:
    """A two-block ``AutoencoderKL`` 8 and 16 channels wide (downsampling by 2)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=sample_size,
        **options,
    )


def tiny_sd_pipeline(path: str | os.PathLike[str] | None = None, seed: int = 0) -> Any:
    """A tiny ``StableDiffusionPipeline`` (no safety checker); its native size is 64 x 64."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel

    tokenizer, text_encoder = _tiny_clip_text(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
    )
    vae = _tiny_vae(latent_channels=4, sample_size=64)
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _round_trip(pipeline, path)


def tiny_flux_pipeline(path: str | os.PathLike[str] | None = None, seed: int = 0) -> Any:
    """A tiny ``FluxPipeline`` with FLUX's 16 latent channels and 2 x 2 latent packing; its VAE
    downsamples by 2, so sizes must be multiples of 4 (try 32 x 32)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import T5Config, T5EncoderModel

    tokenizer, text_encoder = _tiny_clip_text(seed)
    tokenizer_2 = tiny_t5_tokenizer()
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
        )
    ).eval()
    latent_channels = 16
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=latent_channels * 4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    vae = _tiny_vae(latent_channels=latent_channels, sample_size=32, use_quant_conv=False,
                    use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611)
    pipeline = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    # FLUX's default size is 128 latent pixels times the VAE factor (1024 px); keep the toy's at 32.
    pipeline.default_sample_size = 16
    return _round_trip(pipeline, path)


def _round_trip(pipeline: Any, path: str | os.PathLike[str] | None) -> Any:
    if path is None:
        return pipeline
    from diffusers import DiffusionPipeline

    Path(path).mkdir(parents=True, exist_ok=True)
    pipeline.save_pretrained(path)
    return DiffusionPipeline.from_pretrained(path, local_files_only=True)
