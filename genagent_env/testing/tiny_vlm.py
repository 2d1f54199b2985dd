"""A tiny, randomly initialised Qwen2-VL (model + processor) for offline tests of the VLM judge and
the LLM agent (and :func:`tiny_qwen2_lm`, a text-only Qwen2 with the same tokenizer).

:func:`tiny_qwen2_vl` builds everything from configs — no download: a byte-level BPE tokenizer
trained in memory with the ``tokenizers`` library (plus Qwen's special tokens and a Qwen2-VL chat
template), a :class:`~transformers.Qwen2VLImageProcessor` with a small pixel budget, and a
:class:`~transformers.Qwen2VLForConditionalGeneration` with one text layer, one vision block and
hidden size 32. It generates a few tokens for a 64×64 image on a CPU in well under a second. Its
answers are random text: tests use it to check shapes and plumbing, never verdicts.

With ``path`` the model and processor are saved with ``save_pretrained`` and loaded back with
``from_pretrained`` (offline), so the loading path users run on real checkpoints is exercised too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Qwen's special tokens, in the order they get ids after the trained vocabulary.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: The Qwen2-VL chat template (images become ``<|vision_start|><|image_pad|><|vision_end|>``).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "Does the image show exactly two red circles? Answer yes or no.",
    "Yes. No. yes no first second tie A B 1 2",
    "Consistency: 2 Realism: 1 Aesthetic Quality: 0",
    "Which image fits the request better, the first or the second?",
    "a photo of a blue square on the left and three green stars above it",
    "You are a helpful assistant. The user asks for an image.",
]


def _tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_CORPUS, trainer=trainer)
    bpe.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_qwen2_vl(path: str | Path | None = None, *, seed: int = 0) -> tuple[Any, Any]:
    """Build a tiny random Qwen2-VL and its processor; return ``(model, processor)``.

    Args:
        path: If given, save both there with ``save_pretrained`` and return them reloaded with
            ``from_pretrained`` (``local_files_only``), the way a real checkpoint is loaded.
        seed: Seed for the random weights (the same seed gives the same model).
    """
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = _tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    # Patch 14, merge 2: a 64x64 image is resized to 56x56 = 16 patches = 4 image tokens.
    image_processor = Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56)
    video_processor = Qwen2VLVideoProcessor(min_pixels=28 * 28, max_pixels=56 * 56)  # the processor requires one
    processor = Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )

    hidden = 32
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 2048,
            # head_dim 16 -> 8 rotary frequencies split over (time, height, width)
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": hidden,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    if path is None:
        return model, processor
    path = Path(path)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    model = Qwen2VLForConditionalGeneration.from_pretrained(path, local_files_only=True).eval()
    processor = Qwen2VLProcessor.from_pretrained(path, local_files_only=True)
    return model, processor


def tiny_qwen2_lm(path: str | Path | None = None, *, seed: int = 0) -> tuple[Any, Any]:
    """Build a tiny random text-only Qwen2 LM and its tokenizer (the one of :func:`tiny_qwen2_vl`,
    with the same chat template); return ``(model, tokenizer)``. For tests of text-only LLM paths.

    Args:
        path: If given, save both there and return them reloaded with ``from_pretrained``
            (``local_files_only``).
        seed: Seed for the random weights.
    """
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = _tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    if path is None:
        return model, tokenizer
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    model = Qwen2ForCausalLM.from_pretrained(path, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer
