"""``genagent-tiny``: a small vision-language model, a Qwen2 decoder that reads object slots.

:class:`GenAgentTinyForConditionalGeneration` is a Hugging Face model: a
:class:`~agents.tiny.perception.ShapesPerception` CNN turns each image into
:data:`~agents.tiny.perception.MAX_SLOTS` object slots, a linear projector maps each slot into the
decoder's embedding space, and the slot embeddings replace the ``<|slot|>`` tokens the processor
put where the image is in the chat. The decoder is ``transformers``' Qwen2 (rotary attention, KV
cache, ``generate``). ``save_pretrained`` / ``from_pretrained`` write and read config and
safetensors weights; importing :mod:`agents.tiny` registers the ``genagent_tiny`` model type with
the ``Auto`` classes.

The perception CNN is pretrained alone and then frozen (its slots are read without gradients), as
real VLMs come with a pretrained vision tower.

With ``copy_head=True`` the model also has a *copy head* (a pointer, as in pointer-generator
networks): at every position it attends over the earlier positions of the sequence and may emit the
token that followed the one it points at, instead of writing from the vocabulary. One softmax
shares the mass between "write from the vocabulary" and every earlier position, so the output is
still one distribution over the vocabulary (the logits are its log-probabilities). A model this
small learns to copy a tool name it has never seen, or a request's colour-shape pairs in order,
far more easily by pointing than by routing the token through its layers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Qwen2Config, Qwen2ForCausalLM

from agents.tiny.perception import CENTROID_FEATURES, SLOT_FEATURES, ShapesPerception, read_slots, slot_features

#: How many leading turns a scoped copy head may copy from (``"all"``: every earlier token).
COPY_SCOPES = {"all": 0, "system": 1, "request": 2}
#: What a slot adds to its projection: its words' embeddings, or a table of its own.
SLOT_EMBEDDINGS = ("words", "learned")
#: The copy head's initial score for writing from the vocabulary (e^6 ~ 400 earlier positions' worth).
COPY_WRITE_BIAS = 6.0


class GenAgentTinyConfig(Qwen2Config):
    """A Qwen2 decoder config plus the eyes and the copy head.

    Args:
        perception_width: Width of the perception CNN.
        slot_token_id: Id of ``<|slot|>``, the placeholder an image's slots replace.
        slot_centroids: Slots also carry the centre of their objects (x, y), for relations such as
            "left of" between objects in the same half.
        copy_head: Add the copy head (a pointer over earlier tokens).
        copy_dim: Width of the copy head's queries and keys.
        copy_scope: What the copy head may point at: ``"all"`` earlier tokens; the ``"system"``
            turn only (the tool names); or the ``"request"``: the system turn and the user's
            request after it (what a rewrite copies), but not the agent's own messages or the
            tool turns, so that what a judgment says about an image is not copied from an earlier
            judgment of another image.
        turn_token_id: Id of the token that opens each turn (``<|im_start|>``), which is how a
            scoped copy head finds the first turns.
        slot_embeddings: What a slot adds to its projection besides the projector: ``"words"``, the
            mean input embedding of the words that name its features (tied to the vocabulary, so
            training the words moves it too); ``"learned"``, a table of its own (one row per slot
            feature) that :meth:`~GenAgentTinyForConditionalGeneration.set_slot_words` starts at
            those word embeddings and training moves apart from the vocabulary, so that two words the
            decoder writes in the same places ("left", "right") cannot pull a slot's sides together.
    """

    model_type = "genagent_tiny"

    def __init__(self, perception_width: int = 32, slot_token_id: int = 0, copy_head: bool = False,
                 copy_dim: int = 64, copy_scope: str = "all", turn_token_id: int = -1, slot_centroids: bool = False,
                 slot_embeddings: str = "words", **kwargs: Any) -> None:
        if copy_scope not in COPY_SCOPES:
            raise ValueError(f"copy_scope must be one of {sorted(COPY_SCOPES)}, got {copy_scope!r}")
        if copy_head and copy_scope != "all" and turn_token_id < 0:
            raise ValueError(f"copy_scope={copy_scope!r} needs turn_token_id (the token that opens each turn)")
        if slot_embeddings not in SLOT_EMBEDDINGS:
            raise ValueError(f"slot_embeddings must be one of {SLOT_EMBEDDINGS}, got {slot_embeddings!r}")
        self.slot_embeddings = slot_embeddings
        self.perception_width = perception_width
        self.slot_token_id = slot_token_id
        self.slot_centroids = slot_centroids
        self.copy_head = copy_head
        self.copy_dim = copy_dim
        self.copy_scope = copy_scope
        self.turn_token_id = turn_token_id
        super().__init__(**kwargs)

    @property
    def slot_feature_count(self) -> int:
        return SLOT_FEATURES + (CENTROID_FEATURES if self.slot_centroids else 0)


class GenAgentTinyForConditionalGeneration(Qwen2ForCausalLM):
    """Qwen2 causal LM whose ``<|slot|>`` positions hold the projected object slots of the images.

    ``forward`` takes ``pixel_values`` ``(n_images, 3, 128, 128)`` in [0, 1], in the order the
    images appear in the batch's chats (each image is :data:`MAX_SLOTS` slot tokens).
    """

    config_class = GenAgentTinyConfig

    def __init__(self, config: GenAgentTinyConfig) -> None:
        super().__init__(config)
        self.perception = ShapesPerception(config.perception_width)
        self.projector = nn.Sequential(nn.Linear(config.slot_feature_count, config.hidden_size), nn.GELU(),
                                       nn.Linear(config.hidden_size, config.hidden_size))
        #: (config.slot_feature_count, vocab): which words name each slot feature (its shape, colour,
        #: count, halves), filled from the tokenizer by :func:`slot_word_matrix`. A slot's embedding adds the
        #: mean embedding of its words (or, with learned slot embeddings, rows of a table started there), so
        #: reading a slot and writing its words starts out easy.
        self.register_buffer("slot_words", torch.zeros(config.slot_feature_count, config.vocab_size))
        if config.slot_embeddings == "learned":
            self.slot_embedding = nn.Parameter(torch.zeros(config.slot_feature_count, config.hidden_size))
        if config.copy_head:
            self.copy = CopyHead(config.hidden_size, config.copy_dim)
        self.post_init()
        if config.copy_head:
            # Start out writing: with a zero bias each of a few hundred earlier positions would get as
            # much mass as the whole vocabulary, and tokens not seen before would be nearly unreachable.
            with torch.no_grad():
                self.copy.write.bias.fill_(COPY_WRITE_BIAS)

    @torch.no_grad()
    def set_slot_words(self, matrix: torch.Tensor) -> None:
        """Fill :attr:`slot_words` (from :func:`slot_word_matrix`) and, with learned slot embeddings,
        start their table at those words' embeddings."""
        self.slot_words.copy_(matrix)
        if self.config.slot_embeddings == "learned":
            weight = self.get_input_embeddings().weight
            self.slot_embedding.copy_(matrix.to(weight.dtype) @ weight)

    def image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(n_images * MAX_SLOTS, hidden)``: each image's slots, projected (perception frozen)."""
        with torch.no_grad():
            was_training = self.perception.training
            self.perception.eval()
            density, size = self.perception(pixel_values.float())
            self.perception.train(was_training)
            centroids = self.config.slot_centroids
            features = torch.stack([slot_features(slots, centroids) for slots in read_slots(density, size)])
        return self.embed_slots(features).flatten(0, 1)

    def embed_slots(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., hidden)``: slot feature rows ``(..., slot_feature_count)`` (from
        :func:`~agents.tiny.perception.slot_features`) projected, plus their words' embeddings or the
        learned table's rows (``config.slot_embeddings``)."""
        first: nn.Linear = self.projector[0]  # type: ignore[assignment]
        features = features.to(first.weight.dtype)
        if self.config.slot_embeddings == "learned":
            words = features @ self.slot_embedding
        else:
            words = (features @ self.slot_words.to(features.dtype)) @ self.get_input_embeddings().weight
        return self.projector(features) + words

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Any = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        pixel_values: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        if pixel_values is not None and input_ids is not None and inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
            slots = input_ids == self.config.slot_token_id
            images = self.image_embeddings(pixel_values)
            if int(slots.sum()) != images.shape[0]:
                raise ValueError(f"the chats hold {int(slots.sum())} slot tokens but the images give {images.shape[0]}")
            inputs_embeds = inputs_embeds.masked_scatter(slots.unsqueeze(-1), images.to(inputs_embeds.dtype))
            if self.config.copy_head:
                return self._forward_with_copy(input_ids, inputs_embeds, attention_mask, position_ids, cache, labels,
                                               use_cache, logits_to_keep, **kwargs)
            input_ids = None
        elif self.config.copy_head:
            if input_ids is None:
                raise ValueError("the copy head points at input tokens: pass input_ids, not only inputs_embeds")
            inputs_embeds = self.get_input_embeddings()(input_ids) if inputs_embeds is None else inputs_embeds
            return self._forward_with_copy(input_ids, inputs_embeds, attention_mask, position_ids, cache, labels,
                                           use_cache, logits_to_keep, **kwargs)
        output = super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                 cache=cache, inputs_embeds=inputs_embeds, labels=labels, use_cache=use_cache,
                                 logits_to_keep=logits_to_keep, **kwargs)
        output.logits[..., self.config.slot_token_id] = float("-inf")  # see _forward_with_copy
        return output

    def _forward_with_copy(self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor,
                           attention_mask: torch.Tensor | None, position_ids: Any, cache: Any, labels: Any,
                           use_cache: bool | None, logits_to_keep: int | torch.Tensor, **kwargs: Any) -> Any:
        from transformers.modeling_outputs import CausalLMOutputWithPast

        outputs = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                             cache=cache, use_cache=use_cache, **kwargs)
        hidden = outputs.last_hidden_state
        new = input_ids.shape[1]
        key_mask = attention_mask[:, -new:] if attention_mask is not None else None
        # The copy memory lives on the generation cache (the prompt's pass fills it, each new token adds one).
        memory = getattr(outputs, "cache", None) if use_cache else None
        # The model never writes an image placeholder: a generated <|slot|> would have no image behind it.
        vocab_logits = self.lm_head(hidden)
        vocab_logits[..., self.config.slot_token_id] = float("-inf")
        copyable = self._copyable(input_ids, key_mask, memory)
        logits = self.copy(hidden, input_ids, vocab_logits, key_mask, memory, never=self.config.slot_token_id,
                           copyable=copyable)
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            logits = logits[:, -logits_to_keep:]
        elif not isinstance(logits_to_keep, int):
            logits = logits[:, logits_to_keep]
        loss = None
        if labels is not None:
            loss = self.loss_function(logits=logits, labels=labels, vocab_size=self.config.vocab_size, **kwargs)
        return CausalLMOutputWithPast(loss=loss, logits=logits, cache=outputs.cache,
                                      hidden_states=outputs.hidden_states, attentions=outputs.attentions)

    def _copyable(self, input_ids: torch.Tensor, key_mask: torch.Tensor | None, memory: Any) -> torch.Tensor | None:
        """Which of the new tokens the copy head may emit (``None``: all): with a scoped copy head,
        the tokens inside the first one or two turns. The number of turns opened so far rides on
        the cache."""
        leading = COPY_SCOPES[self.config.copy_scope]
        if not leading:
            return None
        opens = (input_ids == self.config.turn_token_id).long()
        if key_mask is not None:
            opens = opens * key_mask.long()
        before = getattr(memory, "_copy_turns", None) if memory is not None else None
        turns = opens.cumsum(1) + (before if before is not None else 0)
        if memory is not None:
            memory._copy_turns = turns[:, -1:]
        return (turns >= 1) & (turns <= leading) & (opens == 0)

    def prepare_inputs_for_generation(self, *args: Any, is_first_iteration: bool | None = False,
                                      **kwargs: Any) -> dict[str, Any]:
        inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        if not is_first_iteration:  # the images are in the cache after the prompt's pass
            inputs.pop("pixel_values", None)
        return dict(inputs)


class CopyHead(nn.Module):
    """Pointer over earlier positions: at position ``t`` one softmax over "write" (the LM head's
    distribution) and every pair ``(s, s + 1)`` with ``s + 1 <= t``, whose key is the state at ``s``
    and whose output is the token at ``s + 1``. Returns log-probabilities over the vocabulary.

    During ``generate`` the keys of the positions seen so far (and the last one, whose next token is
    not known yet) are kept on the cache object, so each new token costs one row of attention.
    """

    def __init__(self, hidden_size: int, dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden_size, dim, bias=False)
        self.key = nn.Linear(hidden_size, dim, bias=False)
        self.write = nn.Linear(hidden_size, 1)  # the score of writing from the vocabulary
        self.scale = dim ** -0.5

    def forward(self, hidden: torch.Tensor, input_ids: torch.Tensor, vocab_logits: torch.Tensor,
                key_mask: torch.Tensor | None, memory: Any = None, never: int | None = None,
                copyable: torch.Tensor | None = None) -> torch.Tensor:
        """Log-probabilities ``(batch, new, vocab)``; ``never``: a token id the pointer must not emit;
        ``copyable`` ``(batch, new)``: which of the new tokens the pointer may emit (default all)."""
        batch, new, _ = hidden.shape
        keys = self.key(hidden)
        valid = torch.ones(batch, new, dtype=torch.bool, device=hidden.device) if key_mask is None else key_mask.bool()
        # A pair (s, s + 1) may be used when both of its tokens are real and its output s + 1 is copyable.
        emit = valid if copyable is None else valid & copyable
        past = getattr(memory, "_copy_state", None) if memory is not None else None
        if past is not None:  # earlier keys, and the pending last key whose next token is input_ids[:, 0]
            old_keys, old_next, old_valid, pending, pending_valid = past
            pair_keys = torch.cat([old_keys, pending, keys[:, :-1]], 1)
            pair_next = torch.cat([old_next, input_ids], 1)
            pair_valid = torch.cat([old_valid, pending_valid & emit[:, :1], emit[:, 1:] & valid[:, :-1]], 1)
        else:
            pair_keys, pair_next = keys[:, :-1], input_ids[:, 1:]
            pair_valid = emit[:, 1:] & valid[:, :-1]
        if memory is not None:
            memory._copy_state = (pair_keys, pair_next, pair_valid, keys[:, -1:], valid[:, -1:])
        pairs = pair_keys.shape[1]
        # New query i may use the pairs whose output token it has already seen: the first
        # ``pairs - new + 1``, and one more per position after it.
        scores = torch.einsum("bqd,bkd->bqk", self.query(hidden), pair_keys) * self.scale
        seen = pairs - new + 1 + torch.arange(new, device=hidden.device)
        visible = torch.arange(pairs, device=hidden.device)[None, :] < seen[:, None]
        allowed = visible[None] & pair_valid[:, None, :]
        if never is not None:
            allowed = allowed & (pair_next != never)[:, None, :]
        scores = scores.float().masked_fill(~allowed, float("-inf"))
        weights = torch.cat([self.write(hidden).float(), scores], -1).softmax(-1)
        probs = weights[..., :1] * vocab_logits.float().softmax(-1)
        index = pair_next[:, None, :].expand(batch, new, pairs)
        probs = probs.scatter_add(-1, index, weights[..., 1:])
        logprobs = probs.clamp_min(1e-12).log()
        if never is not None:
            logprobs[..., never] = float("-inf")
        return logprobs.to(vocab_logits.dtype)


def slot_word_matrix(tokenizer: Any, vocab_size: int, centroids: bool = False) -> torch.Tensor:
    """``(SLOT_FEATURES (+ CENTROID_FEATURES with centroids), vocab_size)``: each slot feature's
    words as a distribution over token ids — the shape (singular and plural), the colour, the count
    as digits, the half (left, right, top, bottom) — with and without a leading space, as the
    descriptions write them."""
    from agents.tiny.perception import COLOURS, MAX_COUNT_BIN
    from genagent_env.shapes.vocab import SHAPES, plural

    def ids(words: list[str]) -> list[int]:
        out: list[int] = []
        for word in words:
            for form in (word, " " + word):
                out += tokenizer(form, add_special_tokens=False)["input_ids"]
        return out

    rows = [ids([shape, plural(shape)]) for shape in SHAPES] + [ids([colour]) for colour in COLOURS]
    rows += [ids([str(k)]) for k in range(MAX_COUNT_BIN + 1)] + [ids([h]) for h in ("left", "right", "top", "bottom")]
    rows += [[]] * (1 + (CENTROID_FEATURES if centroids else 0))  # size and centre have no words of their own
    matrix = torch.zeros(len(rows), vocab_size)
    for r, token_ids in enumerate(rows):
        for token in token_ids:
            matrix[r, token] += 1.0 / len(token_ids)
    return matrix


def register() -> None:
    """Let ``AutoConfig``, ``AutoModelForCausalLM``, ``AutoModelForImageTextToText`` and
    ``AutoProcessor`` load ``genagent_tiny`` folders (so ``LLMAgent.from_pretrained`` does too)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    try:
        AutoConfig.register("genagent_tiny", GenAgentTinyConfig)
    except ValueError:  # already registered
        return
    AutoModelForCausalLM.register(GenAgentTinyConfig, GenAgentTinyForConditionalGeneration)
    AutoModelForImageTextToText.register(GenAgentTinyConfig, GenAgentTinyForConditionalGeneration)
    from transformers import AutoProcessor

    from agents.tiny.processor import TinyProcessor

    AutoProcessor.register(GenAgentTinyConfig, TinyProcessor)


__all__ = ["COPY_SCOPES", "CopyHead", "GenAgentTinyConfig", "GenAgentTinyForConditionalGeneration", "register",
           "slot_word_matrix"]
