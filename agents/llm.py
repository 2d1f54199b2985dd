"""An agent driven by a Hugging Face causal LM or vision-language model through its chat template.

:class:`LLMAgent` reads the env's whole chat, ``info["messages"]`` (system prompt, user request,
its own earlier turns, tool turns with the images, violation messages as user turns), renders it
with the processor's chat template and generates the next message. It works with any model whose
processor (or tokenizer) has a chat template and whose ``generate`` follows the transformers API:

1. ``text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)``
   for each episode;
2. ``inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)`` with left
   padding, ``images`` being every image of the batch in the order the texts show them (``None``
   when there is none); a plain tokenizer is called as ``tokenizer(texts, ...)``;
3. ``model.generate(**inputs, max_new_tokens=..., do_sample=..., ..., return_dict_in_generate=True,
   output_scores=True)``;
4. each completion is cut after its first end-of-turn token and decoded with
   ``skip_special_tokens=True``.

**Vision or text only.** A multimodal processor (one with an ``image_processor``) gets the images:
every message's content is passed as a list of parts (``{"type": "image", "image": PIL.Image}`` and
``{"type": "text", "text": ...}``), the format of multimodal chat templates. With a plain
tokenizer (a text-only LLM) each image part becomes the text ``[image]`` and each message's parts
are joined into one string, so the model knows an image was made but cannot see it.

**Sampling.** Only the constructor's settings shape the distribution: ``do_sample``,
``temperature``, ``top_k`` (0: off) and ``top_p`` (1: off). Other logits processors a checkpoint's
``generation_config`` may switch on (repetition penalty, n-gram blocking, ...) are switched off, so
that the log-probabilities recorded for training are those of the distribution actually sampled
from; the checkpoint's end-of-turn, padding and BOS token ids are used.

**Long chats.** The prompt may hold at most ``max_context_tokens`` (default: the model's
``max_position_embeddings``) minus ``max_new_tokens`` tokens, image tokens included. A longer chat
keeps its head (the leading system messages and the first user message: the protocol and the
request) and the latest turns that fit, dropping whole exchanges from the oldest (an assistant
turn with the tool or user replies that follow it); :attr:`Generation.dropped_messages` counts
what was left out. If even the head and the generation prompt alone do not fit, its images become
``[image]`` and the rendered text is cut from the left to the budget (:attr:`Generation.prompt_cut`).
The agent always answers. A tokenizer without a padding token gets its end token as one.

**Training.** After each :meth:`LLMAgent.act` or :meth:`LLMAgent.act_batch`,
:attr:`LLMAgent.last_generations` holds one :class:`Generation` per episode: the prompt and
completion token ids and the log-probability of each completion token under the sampling
distribution. :func:`completion_logprobs` recomputes those log-probabilities with one forward pass
(teacher forcing), with gradients, for policy-gradient trainers.

**Seeding.** ``reset(seed)`` re-seeds the agent's own random stream (a ``torch.Generator``);
each sampled generation draws a seed from it and samples under a forked global RNG, so a run is
reproducible and the caller's RNG state is left alone. Greedy decoding draws nothing.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.base import Agent
from genagent_env.extras import needs

with needs("diffusers", "the LLM agent (torch and transformers)"):
    import torch

#: The text an image part becomes for a text-only model.
IMAGE_PLACEHOLDER = "[image]"

#: Generation settings that would add logits processors beyond the sampling settings; each is set
#: to its neutral value on every ``generate`` call (a checkpoint's ``generation_config`` may set them).
_NEUTRAL_GENERATION = {
    "num_beams": 1, "num_return_sequences": 1, "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "min_length": 0,
    "min_new_tokens": None, "sequence_bias": None, "guidance_scale": None, "forced_bos_token_id": None,
    "forced_eos_token_id": None, "remove_invalid_values": False, "exponential_decay_length_penalty": None,
    "suppress_tokens": None, "begin_suppress_tokens": None, "min_p": None, "top_h": None, "typical_p": 1.0,
    "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "watermarking_config": None, "renormalize_logits": False,
    "penalty_alpha": None, "dola_layers": None, "stop_strings": None, "max_length": None,
}


@dataclass
class Generation:
    """What the agent generated for one episode at one step.

    Attributes:
        text: The message sent to the env (the completion decoded without special tokens).
        prompt_ids: The prompt's token ids (padding removed; image placeholders expanded).
        completion_ids: The generated token ids, up to and including the end-of-turn token (no end
            token when ``max_new_tokens`` ran out first).
        logprobs: Per completion token, its log-probability under the sampling distribution (with
            temperature, top-k and top-p applied as ``generate`` applied them; greedy: the plain
            log-softmax of the logits).
        image_tokens: How many image tokens the prompt holds.
        dropped_messages: How many messages of the chat were left out to fit the context.
        prompt_cut: Whether even the chat's head did not fit, so the rendered prompt (its images
            written as ``[image]``) was cut from the left.
    """

    text: str
    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    image_tokens: int = 0
    dropped_messages: int = 0
    prompt_cut: bool = False


# ---------------------------------------------------------------------------------- chats


def is_multimodal(processor: Any) -> bool:
    """Whether ``processor`` takes images (a multimodal processor) rather than being a plain tokenizer."""
    return getattr(processor, "image_processor", None) is not None


def _tokenizer_of(processor: Any) -> Any:
    return processor.tokenizer if is_multimodal(processor) else processor


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if content is None:
        return []
    return [dict(part) if isinstance(part, Mapping) else {"type": "text", "text": str(part)} for part in content]


def _is_image(part: Mapping[str, Any]) -> bool:
    return part.get("type") == "image" or "image" in part


def chat_messages(messages: Sequence[Mapping[str, Any]], multimodal: bool) -> list[dict[str, Any]]:
    """The env's messages as chat templates expect them: for a multimodal processor every content a
    list of image and text parts (roles, tool names and images kept); for a text-only tokenizer
    every content one string, each image part written as :data:`IMAGE_PLACEHOLDER`."""
    out = []
    for message in messages:
        converted = dict(message)
        parts = _parts(message.get("content"))
        if multimodal:
            converted["content"] = parts
        else:
            texts = [IMAGE_PLACEHOLDER if _is_image(part) else str(part.get("text", "")) for part in parts]
            converted["content"] = "\n".join(text for text in texts if text)
        out.append(converted)
    return out


def chat_images(messages: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The images of ``messages`` in the order the chat shows them."""
    images: list[Any] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            images.extend(part["image"] for part in content if isinstance(part, Mapping) and "image" in part)
    return images


def _head_length(messages: Sequence[Mapping[str, Any]]) -> int:
    """How many leading messages are always kept: the system messages and the first user message."""
    index = 0
    while index < len(messages) and messages[index].get("role") == "system":
        index += 1
    if index < len(messages) and messages[index].get("role") == "user":
        index += 1
    return index


def _exchanges(messages: Sequence[Mapping[str, Any]], start: int) -> list[int]:
    """Where each droppable exchange begins after the head: at every assistant turn (and at
    ``start`` when the tail does not begin with one)."""
    cuts = [i for i in range(start, len(messages)) if messages[i].get("role") == "assistant"]
    if start < len(messages) and (not cuts or cuts[0] != start):
        cuts.insert(0, start)
    return cuts


@dataclass
class _Prompt:
    text: str
    images: list[Any]
    dropped: int = 0
    cut: bool = False  # cut from the left to the budget (last resort; no images)


class _PromptBuilder:
    """Renders chats into model inputs for one processor, within a token budget."""

    def __init__(self, processor: Any, budget: int | None) -> None:
        self.processor = processor
        self.multimodal = is_multimodal(processor)
        self.tokenizer = _tokenizer_of(processor)
        self.budget = budget
        if self.tokenizer.pad_token_id is None and self.tokenizer.eos_token is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    def render(self, messages: Sequence[Mapping[str, Any]], dropped: int = 0, images: bool = True) -> _Prompt:
        chat = chat_messages(messages, self.multimodal and images)
        text = self.processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        if not isinstance(text, str):  # some processors return a list for one chat
            text = text[0]
        return _Prompt(text, chat_images(messages) if self.multimodal and images else [], dropped)

    @contextmanager
    def _sides(self, padding: str, truncation: str = "left") -> Iterator[None]:
        tokenizer = self.tokenizer
        saved = (tokenizer.padding_side, getattr(tokenizer, "truncation_side", "right"))
        tokenizer.padding_side, tokenizer.truncation_side = padding, truncation
        try:
            yield
        finally:
            tokenizer.padding_side, tokenizer.truncation_side = saved

    def encode(self, prompts: Sequence[_Prompt], padding: str = "left") -> Any:
        """The processor's batch for ``prompts`` (``BatchFeature``/``BatchEncoding`` of tensors)."""
        texts = [prompt.text for prompt in prompts]
        kwargs: dict[str, Any] = {"return_tensors": "pt", "padding": True, "add_special_tokens": False}
        if self.budget is not None and any(prompt.cut for prompt in prompts):
            kwargs.update(truncation=True, max_length=self.budget)
        with self._sides(padding):
            if self.multimodal:
                images = [image for prompt in prompts for image in prompt.images]
                return self.processor(text=texts, images=images or None, **kwargs)
            return self.processor(texts, **kwargs)

    def _length(self, prompt: _Prompt) -> int:
        return int(self.encode([prompt])["attention_mask"].sum())

    def fit(self, messages: Sequence[Mapping[str, Any]]) -> _Prompt:
        """The prompt of ``messages`` within the budget (see the module docstring)."""
        prompt = self.render(messages)
        if self.budget is None or self._length(prompt) <= self.budget:
            return prompt
        return self._shorten(messages)

    def _shorten(self, messages: Sequence[Mapping[str, Any]]) -> _Prompt:
        assert self.budget is not None
        head = _head_length(messages)
        for cut in _exchanges(messages, head)[1:]:
            prompt = self.render([*messages[:head], *messages[cut:]], dropped=cut - head)
            if self._length(prompt) <= self.budget:
                return prompt
        last = self.render(messages[:head], dropped=len(messages) - head, images=False)
        last.cut = True
        return last

    def fit_all(self, chats: Sequence[Sequence[Mapping[str, Any]]]) -> list[_Prompt]:
        """:meth:`fit` for a batch: one processor call when every chat fits (the common case)."""
        prompts = [self.render(messages) for messages in chats]
        if self.budget is None:
            return prompts
        lengths = self.encode(prompts)["attention_mask"].sum(dim=1).tolist()
        return [prompt if length <= self.budget else self._shorten(messages)
                for prompt, length, messages in zip(prompts, lengths, chats)]


# ---------------------------------------------------------------------------------- models


def _model_device(model: Any) -> torch.device:
    device = getattr(model, "device", None)
    if isinstance(device, torch.device):
        return device
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def _model_dtype(model: Any) -> torch.dtype | None:
    dtype = getattr(model, "dtype", None)
    return dtype if isinstance(dtype, torch.dtype) else None


def max_positions(model: Any) -> int | None:
    """The model's ``max_position_embeddings`` (of its text config), if it has one."""
    config = getattr(model, "config", None)
    if config is None:
        return None
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text_config, "max_position_embeddings", None) or getattr(config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.flatten().tolist()]
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _image_token_id(model: Any, processor: Any) -> int | None:
    for owner in (processor, getattr(model, "config", None)):
        value = getattr(owner, "image_token_id", None)
        if isinstance(value, int):
            return value
    token = getattr(processor, "image_token", None)
    if isinstance(token, str):
        value = _tokenizer_of(processor).convert_tokens_to_ids(token)
        return value if isinstance(value, int) else None
    return None


def _to_model(batch: Any, model: Any, device: torch.device) -> Any:
    batch = batch.to(device)
    dtype = _model_dtype(model)
    if dtype is not None and dtype.is_floating_point and dtype != torch.float32:
        for key, value in batch.items():
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                batch[key] = value.to(dtype)
    return batch


def _warp(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Log-probabilities of ``logits`` (rows of vocabulary scores) after temperature, top-k and
    top-p, applied as ``generate`` applies them when sampling."""
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    scores = logits.float()
    dummy = torch.zeros((scores.shape[0], 1), dtype=torch.long, device=scores.device)
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(dummy, scores)
    if top_k:
        scores = TopKLogitsWarper(top_k=top_k)(dummy, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p=top_p)(dummy, scores)
    return torch.log_softmax(scores, dim=-1)


_PER_TOKEN_SUFFIXES = ("_ids", "_mask")


def _per_token_keys(batch: Mapping[str, Any]) -> list[str]:
    shape = batch["input_ids"].shape
    return [key for key, value in batch.items()
            if key != "input_ids" and isinstance(value, torch.Tensor) and key.endswith(_PER_TOKEN_SUFFIXES)
            and value.dim() >= 2 and tuple(value.shape[:2]) == tuple(shape)]


@dataclass
class CompletionScores:
    """What one teacher-forced pass over chats and their completions gives (:func:`score_completions`).

    Attributes:
        logprobs: One 1-D float tensor per completion, its length the completion's.
        prompt_states: ``(n, hidden)``: the last layer's hidden state at each chat's last prompt
            token (the state in which the agent chose its message: a value head reads it), or
            ``None`` unless asked for.
        span_logprobs: With ``spans``: per chat, the log-probabilities of each span's tokens.
        span_states: With ``spans`` and ``prompt_states``: per chat, ``(n_spans, hidden)``, the
            hidden state just before each span.
    """

    logprobs: list[torch.Tensor]
    prompt_states: torch.Tensor | None = None
    span_logprobs: list[list[torch.Tensor]] | None = None
    span_states: list[torch.Tensor] | None = None


def score_completions(
    model: Any,
    processor: Any,
    messages_list: Sequence[Sequence[Mapping[str, Any]]],
    completions: Sequence[Sequence[int] | str],
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    max_context_tokens: int | None = None,
    max_new_tokens: int = 0,
    prompt_states: bool = False,
    spans: Sequence[Sequence[tuple[int, int]]] | None = None,
) -> CompletionScores:
    """Per-token log-probabilities of ``completions`` after the chats ``messages_list`` (and, with
    ``prompt_states=True``, the hidden state before each completion), by one teacher-forced
    forward pass, with gradients unless called under ``torch.no_grad()``.

    Args:
        model, processor: As given to :class:`LLMAgent`.
        messages_list: One chat per completion, as ``info["messages"]`` was when the agent acted.
        completions: The generated token ids (:attr:`Generation.completion_ids`), or text (tokenized
            without special tokens).
        temperature, top_k, top_p: The sampling settings whose distribution to score (defaults: the
            plain log-softmax, as for greedy decoding).
        max_context_tokens, max_new_tokens: The agent's settings, so that a chat too long for the
            context is shortened exactly as when the agent acted.
        prompt_states: Also return the last layer's hidden state at each last prompt token.
        spans: Per chat, ``(start, length)`` ranges of its whole sequence (prompt, then completion)
            whose tokens to score too, each given what comes before it in that sequence. A
            multi-turn trajectory whose earlier turns are prefixes of its last turn's prompt is
            scored in one pass this way: the last turn as the completion, the earlier ones as spans.
    """
    if len(messages_list) != len(completions):
        raise ValueError(f"got {len(messages_list)} chats for {len(completions)} completions")
    if not messages_list:
        return CompletionScores([], None)
    limit = max_context_tokens or max_positions(model)
    builder = _PromptBuilder(processor, None if limit is None else limit - max_new_tokens)
    tokenizer = builder.tokenizer
    device = _model_device(model)
    batch = builder.encode(builder.fit_all(messages_list), padding="left")
    ids = [list(c) if not isinstance(c, str) else tokenizer(c, add_special_tokens=False)["input_ids"]
           for c in completions]
    mask = batch["attention_mask"].bool()
    keys = _per_token_keys(batch)
    rows: dict[str, list[torch.Tensor]] = {key: [] for key in ["input_ids", *keys]}
    prompt_lengths = []
    for i, completion in enumerate(ids):
        real = mask[i]
        prompt_lengths.append(int(real.sum()))
        tail = torch.tensor(completion, dtype=batch["input_ids"].dtype)
        rows["input_ids"].append(torch.cat([batch["input_ids"][i][real], tail]))
        for key in keys:
            value = batch[key][i][real]
            ones = torch.full((len(completion), *value.shape[1:]), int(key == "attention_mask"), dtype=value.dtype)
            rows[key].append(torch.cat([value, ones]))
    width = max(len(row) for row in rows["input_ids"])
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    for key, values in rows.items():
        padded = []
        for value in values:  # right padding: the real tokens keep positions 0..n-1, as when generating
            extra = torch.full((width - len(value), *value.shape[1:]), pad if key == "input_ids" else 0,
                               dtype=value.dtype)
            padded.append(torch.cat([value, extra]))
        batch[key] = torch.stack(padded)
    batch = _to_model(batch, model, device)
    output = model(**batch, output_hidden_states=prompt_states)
    logits = output.logits
    out = []
    for i, completion in enumerate(ids):
        start = prompt_lengths[i]
        if not completion:
            out.append(logits.new_zeros(0, dtype=torch.float32))
            continue
        steps = logits[i, start - 1: start - 1 + len(completion)]
        logp = _warp(steps, temperature, top_k, top_p)
        target = torch.tensor(completion, device=logp.device).unsqueeze(-1)
        out.append(logp.gather(-1, target).squeeze(-1))
    states = None
    if prompt_states:
        last = output.hidden_states[-1]
        states = torch.stack([last[i, prompt_lengths[i] - 1] for i in range(len(ids))])
    span_logprobs: list[list[torch.Tensor]] | None = None
    span_states: list[torch.Tensor] | None = None
    if spans is not None:
        if len(spans) != len(ids):
            raise ValueError(f"got spans for {len(spans)} chats, not {len(ids)}")
        span_logprobs, span_states = [], []
        for i, ranges in enumerate(spans):
            row = []
            for start, length in ranges:
                if start < 1 or start + length > prompt_lengths[i] + len(ids[i]):
                    raise ValueError(f"span ({start}, {length}) is outside chat {i}'s sequence")
                logp = _warp(logits[i, start - 1: start - 1 + length], temperature, top_k, top_p)
                target = batch["input_ids"][i, start: start + length].to(logp.device).unsqueeze(-1)
                row.append(logp.gather(-1, target).squeeze(-1))
            span_logprobs.append(row)
            if prompt_states:
                last = output.hidden_states[-1]
                span_states.append(last[i, [start - 1 for start, _ in ranges]])
    return CompletionScores(out, states, span_logprobs, span_states if prompt_states else None)


def completion_logprobs(
    model: Any,
    processor: Any,
    messages_list: Sequence[Sequence[Mapping[str, Any]]],
    completions: Sequence[Sequence[int] | str],
    *,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    max_context_tokens: int | None = None,
    max_new_tokens: int = 0,
) -> list[torch.Tensor]:
    """Per-token log-probabilities of ``completions`` after the chats ``messages_list``, by one
    teacher-forced forward pass (with gradients unless called under ``torch.no_grad()``): the
    ``logprobs`` of :func:`score_completions`, whose arguments these are.

    Returns:
        One 1-D float tensor per completion, its length the completion's.
    """
    return score_completions(model, processor, messages_list, completions, temperature=temperature, top_k=top_k,
                             top_p=top_p, max_context_tokens=max_context_tokens,
                             max_new_tokens=max_new_tokens).logprobs


# ---------------------------------------------------------------------------------- the agent


class LLMAgent(Agent):
    """An agent that writes each message with a Hugging Face causal LM or VLM (see the module
    docstring for the contract with the model, processor and chat template).

    Args:
        model: A transformers model with ``generate`` (``AutoModelForImageTextToText``,
            ``AutoModelForCausalLM``, a peft-wrapped one, ...), in eval mode.
        processor: Its multimodal processor, or its tokenizer for a text-only model (images then
            appear as the text ``[image]``). Needs a chat template.
        max_new_tokens: The longest message, in tokens.
        do_sample: Sample (``True``) or decode greedily.
        temperature, top_p, top_k: The sampling distribution (``top_k=0`` and ``top_p=1`` are off);
            ignored when greedy.
        seed: Seeds the agent's random stream until ``reset(seed)`` re-seeds it (``None``: fresh entropy).
        device: Moves the model there; default: where the model is.
        batch_size: The most episodes in one ``generate`` call (default: all that ``act_batch`` gets).
        max_context_tokens: The context the prompt and the message share (default: the model's
            ``max_position_embeddings``); longer chats are shortened (module docstring).
        name: The agent's name in reports.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        max_new_tokens: int = 256,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        seed: int | None = None,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        max_context_tokens: int | None = None,
        name: str = "llm",
    ) -> None:
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        if not isinstance(top_k, int) or top_k < 0:
            raise ValueError(f"top_k must be an int >= 0 (0: off), got {top_k!r}")
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        if getattr(processor, "chat_template", None) is None and getattr(
                _tokenizer_of(processor), "chat_template", None) is None:
            raise ValueError(f"{type(processor).__name__} has no chat template; LLMAgent renders the chat with one")
        limit = max_context_tokens or max_positions(model)
        if max_context_tokens is not None and (not isinstance(max_context_tokens, int) or max_context_tokens < 1):
            raise ValueError(f"max_context_tokens must be a positive int or None, got {max_context_tokens!r}")
        if limit is not None and limit <= max_new_tokens:
            raise ValueError(f"the context ({limit} tokens) leaves no room for a prompt before "
                             f"max_new_tokens={max_new_tokens}")
        if device is not None:
            model = model.to(device)
        self.model = model
        self.processor = processor
        self.max_new_tokens = max_new_tokens
        self.do_sample = bool(do_sample)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.top_k = int(top_k)
        self.batch_size = batch_size
        self.max_context_tokens = max_context_tokens
        self.name = name
        self.device = torch.device(device) if device is not None else _model_device(model)
        self.context_limit = limit
        self._builder = _PromptBuilder(processor, None if limit is None else limit - max_new_tokens)
        self._image_token_id = _image_token_id(model, processor)
        config = getattr(model, "generation_config", None)
        tokenizer = self._builder.tokenizer
        self.eos_token_ids = list(dict.fromkeys(
            _ids(getattr(config, "eos_token_id", None)) + _ids(tokenizer.eos_token_id)))
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = getattr(config, "pad_token_id", None)
        self.pad_token_id = int(pad) if pad is not None else (self.eos_token_ids[0] if self.eos_token_ids else 0)
        self._generator = torch.Generator()
        self._generator.manual_seed(secrets.randbits(63) if seed is None else int(seed))
        #: One :class:`Generation` per episode of the latest ``act``/``act_batch`` call.
        self.last_generations: list[Generation] = []

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        trust_remote_code: bool = False,
        model_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> LLMAgent:
        """Load a checkpoint folder (a ``save_pretrained`` model with its processor or tokenizer)
        with the transformers Auto classes, offline (``local_files_only=True``).

        The processor is ``AutoProcessor`` (a plain tokenizer for a text-only checkpoint), else
        ``AutoTokenizer``; the model ``AutoModelForImageTextToText``, else ``AutoModelForCausalLM``.
        A model type registered with ``AutoConfig.register`` (and its model class with the Auto
        classes) loads like a built-in one. ``trust_remote_code`` runs code shipped in the folder:
        only for folders you trust. ``model_kwargs`` go to the model's ``from_pretrained`` (``dtype``,
        ``device_map``, ``attn_implementation``, ...); ``kwargs`` to :class:`LLMAgent`.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such checkpoint folder (a model saved with save_pretrained)")
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} has no config.json: not a transformers checkpoint folder")
        with needs("diffusers", "LLMAgent.from_pretrained"):
            from transformers import (
                AutoModelForCausalLM,
                AutoModelForImageTextToText,
                AutoProcessor,
                AutoTokenizer,
            )
        common = {"local_files_only": True, "trust_remote_code": trust_remote_code}
        try:
            processor = AutoProcessor.from_pretrained(folder, **common)
        except (OSError, ValueError, KeyError, TypeError):
            processor = AutoTokenizer.from_pretrained(folder, **common)
        options = {**common, **dict(model_kwargs or {})}
        try:
            model = AutoModelForImageTextToText.from_pretrained(folder, **options)
        except ValueError as vision_error:  # not a vision-language model type
            try:
                model = AutoModelForCausalLM.from_pretrained(folder, **options)
            except ValueError as error:
                raise ValueError(f"{folder}: neither AutoModelForImageTextToText ({vision_error}) nor "
                                 f"AutoModelForCausalLM ({error}) loads this checkpoint") from error
        model.eval()
        return cls(model, processor, **kwargs)

    # ------------------------------------------------------------------ acting

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the random stream with ``seed`` (``None``: keep drawing from the current one)."""
        if seed is not None:
            self._generator = torch.Generator()
            self._generator.manual_seed(int(seed))

    def spawn(self) -> LLMAgent:
        """A copy sharing the model, with a random stream of its own (seeded from this one's)."""
        twin = copy.copy(self)
        twin._generator = torch.Generator()
        twin._generator.manual_seed(self._draw_seed())
        twin.last_generations = []
        return twin

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        """The next message for one episode (from ``info["messages"]``)."""
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        """The next message of several episodes, with one ``generate`` call per ``batch_size`` of them."""
        if len(observations) != len(infos):
            raise ValueError(f"got {len(observations)} observations and {len(infos)} infos")
        chats = [info["messages"] for info in infos]
        size = self.batch_size or max(len(chats), 1)
        generations: list[Generation] = []
        for start in range(0, len(chats), size):
            generations.extend(self.generate(chats[start:start + size]))
        self.last_generations = generations
        return [generation.text for generation in generations]

    def completion_logprobs(self, messages_list: Sequence[Sequence[Mapping[str, Any]]],
                            completions: Sequence[Sequence[int] | str]) -> list[torch.Tensor]:
        """:func:`completion_logprobs` with this agent's model, processor and settings."""
        return self.score_completions(messages_list, completions).logprobs

    def score_completions(self, messages_list: Sequence[Sequence[Mapping[str, Any]]],
                          completions: Sequence[Sequence[int] | str], prompt_states: bool = False) -> CompletionScores:
        """:func:`score_completions` with this agent's model, processor and sampling settings (the
        distribution its messages were drawn from)."""
        sampling = self.do_sample
        return score_completions(self.model, self.processor, messages_list, completions,
                                 temperature=self.temperature if sampling else 1.0,
                                 top_k=self.top_k if sampling else 0, top_p=self.top_p if sampling else 1.0,
                                 max_context_tokens=self.context_limit, max_new_tokens=self.max_new_tokens,
                                 prompt_states=prompt_states)

    def _draw_seed(self) -> int:
        return int(torch.randint(0, 2**62, (1,), generator=self._generator))

    def encode(self, chats: Sequence[Sequence[Mapping[str, Any]]]) -> Any:
        """The inputs of one ``model.generate`` call for ``chats``, as :meth:`generate` builds them:
        each prompt fitted to the context, left-padded, images processed, on the model's device."""
        return _to_model(self._builder.encode(self._builder.fit_all(chats)), self.model, self.device)

    def generation_kwargs(self) -> dict[str, Any]:
        """The keyword arguments :meth:`generate` passes to ``model.generate`` (sampling settings,
        stop tokens, scores)."""
        from transformers import GenerationConfig

        known = GenerationConfig()
        kwargs: dict[str, Any] = {key: value for key, value in _NEUTRAL_GENERATION.items() if hasattr(known, key)}
        kwargs.update(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample, return_dict_in_generate=True,
                      output_scores=True, pad_token_id=self.pad_token_id)
        if self.eos_token_ids:
            kwargs["eos_token_id"] = self.eos_token_ids
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        else:
            kwargs.update(temperature=1.0, top_p=1.0, top_k=None)
        return kwargs

    def _rng(self) -> Any:
        """A forked global RNG seeded from the agent's stream (sampling only)."""
        if not self.do_sample:
            return nullcontext()
        seed = self._draw_seed()
        devices = [self.device] if self.device.type == "cuda" else []

        @contextmanager
        def forked() -> Iterator[None]:
            with torch.random.fork_rng(devices=devices):
                torch.random.default_generator.manual_seed(seed)
                if devices:
                    with torch.cuda.device(self.device):
                        torch.cuda.manual_seed(seed)
                yield

        return forked()

    @torch.no_grad()
    def generate(self, chats: Sequence[Sequence[Mapping[str, Any]]]) -> list[Generation]:
        """One ``generate`` call for ``chats`` (each an ``info["messages"]``); one :class:`Generation` each."""
        if not chats:
            return []
        prompts = self._builder.fit_all(chats)
        batch = _to_model(self._builder.encode(prompts), self.model, self.device)
        with self._rng():
            out = self.model.generate(**batch, **self.generation_kwargs())
        width = batch["input_ids"].shape[1]
        completions = out.sequences[:, width:]
        if out.scores:
            scores = torch.stack([score.float() for score in out.scores], dim=1)
            logprobs = torch.log_softmax(scores, dim=-1).gather(-1, completions.unsqueeze(-1)).squeeze(-1)
        else:
            logprobs = completions.new_zeros(completions.shape, dtype=torch.float32)
        tokenizer = self._builder.tokenizer
        eos = set(self.eos_token_ids)
        mask = batch["attention_mask"].bool()
        generations = []
        for i, prompt in enumerate(prompts):
            ids = completions[i].tolist()
            end = next((k + 1 for k, token in enumerate(ids) if token in eos), len(ids))
            ids = ids[:end]
            prompt_ids = batch["input_ids"][i][mask[i]].tolist()
            image_tokens = 0 if self._image_token_id is None else prompt_ids.count(self._image_token_id)
            generations.append(Generation(
                text=tokenizer.decode(ids, skip_special_tokens=True),
                prompt_ids=prompt_ids,
                completion_ids=ids,
                logprobs=[float(v) for v in logprobs[i, :end].tolist()],
                image_tokens=image_tokens,
                dropped_messages=prompt.dropped,
                prompt_cut=prompt.cut,
            ))
        return generations

    def __repr__(self) -> str:
        sampling = (f"do_sample=True, temperature={self.temperature}, top_p={self.top_p}, top_k={self.top_k}"
                    if self.do_sample else "greedy")
        return f"LLMAgent({type(self.model).__name__}, {sampling}, max_new_tokens={self.max_new_tokens})"


__all__ = ["IMAGE_PLACEHOLDER", "CompletionScores", "Generation", "LLMAgent", "chat_images", "chat_messages",
           "completion_logprobs", "is_multimodal", "max_positions", "score_completions"]
