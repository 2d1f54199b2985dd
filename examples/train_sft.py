"""SFT of the reference agent on teacher trajectories (CleanRL-style: one readable file).

    python examples/train_sft.py --caption-minutes 7 --minutes 27   # the shipped tiny-sft, 2 CPU cores
    accelerate launch --num_processes 2 --cpu examples/train_sft.py --minutes 1 --episodes 64
    accelerate launch examples/train_sft.py --base-model /models/Qwen2.5-VL-7B-Instruct \\
        --lora-rank 64 --batch-size 8 --grad-accum 32 --lr 1e-5 --epochs 3 --generator flux-dev   # real scale

1. **Teacher data.** The privileged teacher (:class:`agents.tiny.teacher.DescribeFirstTeacher`)
   plays the *train* splits of ``shapes-geneval`` and ``shapes-wise`` through a vector env. Its
   messages can be written from what the student sees: the rewrite depends only on the request,
   and each judgment first describes the image (from the verifier's detections), then compares it
   with the request (``--judge-style``: the failed checks' messages, or a verdict per check).
   ``--renamed-tools`` gives a share of the trajectories a random tool name (each its own), so the
   student learns to call whatever tool the system prompt names. Trajectories in which a refinement
   made the image worse are dropped, as in the paper. ``--counterfactual-judgments`` adds judgments
   of the same images' scenes changed in one way, trained on the checks and verdict only, so that
   the checks follow the description the model has written rather than its belief about the image.
2. **Tokens and loss mask.** A sample is one whole trajectory as one token sequence (the chat
   template applied to the final messages); the loss mask is 1 exactly on the tokens of the
   agent's turns and 0 on system, user, tool and image tokens. It is found by rendering the chat up
   to each assistant turn, so it holds for any chat template.
3. **Model.** By default ``genagent-tiny`` is built from a config: the pretrained perception CNN
   (``examples/pretrain_perception.py``, frozen), a projector, a Qwen2 decoder, and a byte-level
   BPE trained here on the teacher's text. ``--base-model`` fine-tunes a Hugging Face VLM instead
   (Qwen2.5-VL), with LoRA from ``peft`` when ``--lora-rank`` > 0: the same code path.
4. **Caption pretraining** (``--caption-steps`` or ``--caption-minutes``): first, the model learns
   to describe one image in the judgments' words (the teacher's descriptions, the loss on them
   only), as VLMs align their projector on captions before instruction tuning.
   ``--rewrite-minutes`` (an experiment, off by default) then trains the first message of each
   knowledge trajectory alone; ``--first-message-weight`` instead weights that message's tokens
   inside SFT's own batches.
5. **Training.** AdamW with warm-up and cosine decay, ``accelerate`` for many processes or GPUs,
   TensorBoard (``losses/``, ``charts/``), a progress bar, checkpoints (safetensors weights,
   tokenizer, optimizer, scheduler, RNG states, step) that a rerun resumes from.

Writes ``<out>/`` as a Hugging Face model folder (``from_pretrained`` loads it; importing
``agents.tiny`` registers the ``genagent_tiny`` type) and ``<out>/training_state/``.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import tyro

from agents.tiny.teacher import JudgeStyle
from genagent_env.tools.base import GenerationRequest, Generator


@dataclass
class Args:
    seed: int = 0
    """seed of the teacher episodes, the weights and the batch order"""
    out: Path = Path("runs/tiny-sft")
    """the model folder (and training_state/ for resuming)"""
    perception: Path = Path("runs/perception/perception.safetensors")
    """the pretrained perception CNN (examples/pretrain_perception.py), or a genagent-tiny checkpoint
    (a folder, or a shipped name such as tiny-sft) whose frozen, hence still pretrained, perception to reuse"""
    perception_width: int = 32
    """the CNN width the perception checkpoint was trained with"""
    episodes: int = 20000
    """teacher episodes on the train splits"""
    suites: tuple[str, ...] = ("shapes-wise", "shapes-geneval")
    """registered suites or task files the teacher plays (their train split)"""
    wise_share: float = 0.4
    """share of the episodes on the first suite (the rest on the others, evenly)"""
    scorer: str = "shapes"
    """the teacher's verifier; its detections are what the judgments describe (shapes, detector)"""
    max_rounds: tuple[int, ...] = (2, 2, 2, 1, 4)
    """max_rounds of the teacher episodes, cycled (the student learns what rounds left means)"""
    generator: str = "shapes-medium"
    """the tool the teacher calls"""
    renamed_tools: float = 0.8
    """share of teacher episodes whose tool gets a random name, so that the student learns to call the
    tool the system prompt names rather than the one it saw most"""
    unreliable_tool: float = 0.4
    """share of the teacher's tool calls whose prompt is garbled before rendering (a colour, count, half,
    size or shape swapped), so that the images contradict the request often enough that the student
    must read them: judging by copying the request would be right most of the time otherwise"""
    judge_style: JudgeStyle = "checks"
    """the teacher's comparison after the description: the failed checks' messages, a verdict per
    check, (lookup) the description written name first and each check copying what it says
    after the group's name before its verdict, (adjacent) that description with each check
    writing the wanted value, then the group's name and what follows it (``×2 red circle ×3: no``),
    or (seen) a verdict per check where half, relation and size checks also write what the image
    shows, as count checks write the count found (``ring left: right no``)"""
    note_rounds: bool = False
    """the teacher ends a failed image's verdict with the rounds used (``It does not match (round 2
    of 2).``), copied from the tool turn, right before the choice it decides: retry, or submit when
    no round is left"""
    counterfactual_judgments: float = 0.0
    """share of the teacher's judgments written a second time for the scene changed in one way (an
    object more or fewer, a group gone or of another colour, shape, half or size, or an item set
    right) beside the same image, the loss on the checks and verdict only: there the image and the
    description disagree, so the checks can only be learned by reading the description just
    written, not from a belief about the image (``--scorer shapes`` only)"""
    base_model: str | None = None
    """a Hugging Face VLM folder to fine-tune instead of building genagent-tiny"""
    lora_rank: int = 0
    """LoRA rank through peft (0: train every weight)"""
    vocab_size: int = 1536
    """genagent-tiny: BPE vocabulary size"""
    hidden_size: int = 192
    """genagent-tiny: decoder width"""
    layers: int = 4
    """genagent-tiny: decoder layers"""
    heads: int = 4
    """genagent-tiny: attention heads (2 key/value heads)"""
    copy_head: bool = True
    """genagent-tiny: a pointer that copies earlier tokens (a tool name it has never seen)"""
    copy_scope: Literal["all", "system", "request"] = "all"
    """genagent-tiny: what the copy head may copy: every earlier token, the system turn and the
    request (tool names, the request's words for the rewrite), or the system turn only"""
    quote_tool_names: bool = True
    """genagent-tiny: the template quotes tool names as a tool call does (``tools: "shapes-weak",``),
    so that a copied name ends where it should"""
    slot_centroids: bool = True
    """genagent-tiny: image slots carry their objects' centre (for "left of" between objects in one half)"""
    slot_embeddings: Literal["words", "learned"] = "learned"
    """genagent-tiny: a slot adds its words' embeddings (tied to the vocabulary) or a table of its own
    started there (so training the words "left" and "right" cannot blur which side a slot is on)"""
    caption_minutes: float = 0.0
    """minutes of caption pretraining before SFT: the model learns to describe one image in the
    judgments' words (``<judge>image_1 shows 3 red circles (left).``), as VLMs align their
    projector on captions before instruction tuning; 0 skips it unless ``--caption-steps`` is set
    (a pretrained VLM does not need the stage)"""
    caption_steps: int = 0
    """steps of caption pretraining: a budget that reproduces on any machine (the stage stops at
    whichever of ``--caption-steps`` and ``--caption-minutes`` comes first; 0 = no limit of that kind,
    both 0 skips the stage)"""
    caption_batch_size: int = 64
    """captions per caption-pretraining step per process"""
    rewrite_minutes: float = 0.0
    """minutes of rewrite pretraining after the captions: the model learns the first message of
    the ``--rewrite-suites`` trajectories (the request resolved into literal terms, the tool
    call), the loss on that message only; 0 skips it (the shipped ``tiny-sft``). An experiment: a
    knowledge fact is one token in a trajectory of hundreds, but 4 minutes of this stage before
    the 27 of SFT left the tiny model *worse* at the facts (docs/training.md)"""
    rewrite_suites: tuple[str, ...] = ("shapes-wise",)
    """the suites whose first messages the rewrite stage trains on (those whose requests need knowledge)"""
    rewrite_batch_size: int = 16
    """first messages per rewrite-pretraining step per process"""
    first_message_weight: float = 1.0
    """loss weight of the tokens of each trajectory's first assistant message (the request
    rewritten in literal terms, the first tool call) against 1 for the agent's other tokens: a
    knowledge fact is one token of hundreds, so at 1 its share of the gradient is small"""
    max_len: int = 1024
    """longest trajectory in tokens (longer ones are dropped)"""
    batch_size: int = 16
    """trajectories per step per process"""
    grad_accum: int = 1
    """steps accumulated before each optimizer update"""
    lr: float = 2e-3
    """peak learning rate (the paper's SFT of Qwen2.5-VL-7B: 1e-5)"""
    epochs: float = 3.0
    """passes over the data (the paper: 3)"""
    minutes: float = 25.0
    """wall-clock budget; training stops at whichever of epochs and minutes comes first"""
    warmup: float = 0.03
    """share of the steps spent warming up"""
    threads: int = 2
    """torch CPU threads per process"""
    mixed_precision: Literal["no", "bf16", "fp16"] | None = None
    """autocast the steps (weights and optimizer stay float32); None: as accelerate is configured
    (``accelerate launch --mixed_precision``, else no). bf16 pays on GPUs and on CPUs with bf16
    instructions (AVX512-BF16, AMX): 1.37× the SFT steps per second on the 2 cores here
    (``python -m benchmarks.perf_sft``)"""
    log_every: int = 10
    """steps between TensorBoard points"""
    val_tasks: float = 0.0
    """share of each suite's train-split tasks kept out of the SFT data and played by the teacher
    for validation instead (0: no validation, the shipped recipe): unseen tasks, so the held-out
    numbers say how the agent generalises without touching a test split"""
    val_episodes: int = 400
    """teacher episodes on the held-out tasks (with ``--val-tasks``), split between the suites as
    the training episodes are"""
    val_every: int = 200
    """steps between validations (and at the end): the loss per agent token, the loss per
    comparison token (a judgment's checks and verdict, after its description) and the share of
    judgments whose comparison the model predicts exactly given the teacher's description"""


# ----------------------------------------------------------------------------- teacher data


_NAME_STEMS = ("gen", "paint", "draw", "render", "image", "art", "pix", "canvas", "sketch", "flux", "sd", "shapes",
               "picture", "photo", "studio", "dream", "vision", "tool")
_NAME_TAILS = ("", "-1", "-2", "-v2", "-v3", "_xl", "-xl", "-fast", "-pro", "-lite", "-dev", "-turbo", "-large",
               "-mini", ".1", "-ai", "-beta")


def random_tool_name(rng: random.Random) -> str:
    """A plausible tool name (``"paint-turbo"``, ``"flux_qb"``) for renaming the teacher's tool."""
    stem = rng.choice(_NAME_STEMS)
    join = rng.choice("-_")
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 6)))
    if rng.random() < 0.5:
        return f"{stem}{join}{word}{rng.choice(_NAME_TAILS)}"
    return f"{stem}{rng.choice(_NAME_TAILS) or join + word}"


_GARBLE_WORDS = re.compile(r"(Exactly|exactly) (\d+) \(\w+\)|[a-z]+")
_SWAPS = {"left": "right", "right": "left", "top": "bottom", "bottom": "top", "large": "small", "small": "large",
          "larger": "smaller", "smaller": "larger"}


def garble(prompt: str, rng: random.Random) -> str:
    """The prompt with one or two of its colours, shapes, counts, halves or sizes swapped for others
    throughout ("Exactly 2 (two) red circles." may become "Exactly 3 (three) blue circles.")."""
    from genagent_env.shapes.vocab import PALETTE, SHAPES, plural
    from genagent_env.tasks.wording import digits_and_word

    matches = list(_GARBLE_WORDS.finditer(prompt))
    words = sorted({m.group(0) for m in matches if m.group(2) is None})
    counts = sorted({m.group(2) for m in matches if m.group(2) is not None})
    options = ([("colour", w) for w in words if w in PALETTE] + [("shape", w) for w in words if w in SHAPES]
               + [("count", c) for c in counts] + [("swap", w) for w in words if w in _SWAPS])
    mapping: dict[str, str] = {}
    for kind, word in rng.sample(options, min(len(options), rng.choice((1, 1, 2)))):
        if kind == "colour":
            mapping[word] = rng.choice([c for c in PALETTE if c != word])
        elif kind == "shape":
            other = rng.choice([s for s in SHAPES if s != word])
            mapping[word], mapping[plural(word)] = other, plural(other)
        elif kind == "count":
            n = int(word)
            mapping[word] = str(n + rng.choice((-1, 1)) if n > 1 else 2)
        else:
            mapping[word] = _SWAPS[word]

    def replace(match: re.Match[str]) -> str:
        if match.group(2) is None:
            return mapping.get(match.group(0), match.group(0))
        if match.group(2) not in mapping:
            return match.group(0)
        return f"{match.group(1)} {digits_and_word(int(mapping[match.group(2)]))}"

    return _GARBLE_WORDS.sub(replace, prompt)


class UnreliableTool(Generator):
    """A tool that garbles a share ``rate`` of the prompts it gets (:func:`garble`, seeded by the
    request) before ``base`` renders them. The teacher still judges each image against the request,
    so its judgments stay true, but the student sees images that contradict the request far more
    often than the base tool's own mistakes would show it."""

    def __init__(self, base: Generator, rate: float) -> None:
        self.base, self.rate = base, rate
        self.name, self.description = base.name, base.description

    def parameters(self) -> dict[str, Any]:
        return self.base.parameters()

    def cache_id(self) -> str | None:
        return None  # the teacher's envs run without the generation cache

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        passed_on = []
        for request in requests:
            rng = random.Random(f"{request.seed}/{request.prompt}")
            prompt = garble(request.prompt, rng) if rng.random() < self.rate else request.prompt
            passed_on.append(GenerationRequest(prompt, request.seed, request.width, request.height, request.extra))
        return self.base.generate(passed_on)


def renamed_tool(messages: list[dict[str, Any]], old: str, new: str) -> list[dict[str, Any]]:
    """The chat with every mention of the tool ``old`` (system prompt, tool calls, tool results)
    written ``new``: the episode as it would have been played with the tool under that name."""

    def swap(content: Any) -> Any:
        if isinstance(content, str):
            return content.replace(old, new)
        if isinstance(content, list):
            return [{**part, "text": part["text"].replace(old, new)} if isinstance(part.get("text"), str) else part
                    for part in content]
        return content

    return [{**message, "content": swap(message.get("content", ""))} for message in messages]


def held_out_tasks(n_tasks: int, share: float, seed: int) -> set[int]:
    """The train-split task indices kept for validation (``--val-tasks``): a share drawn by the
    seed, the same in every process and on every rerun; none when ``share`` is 0."""
    if not 0 <= share < 1:
        raise ValueError(f"--val-tasks must be at least 0 and below 1, not {share}")
    if share == 0:
        return set()
    return set(random.Random(f"held-out {seed} {n_tasks}").sample(range(n_tasks), max(1, round(n_tasks * share))))


def teacher_trajectories(args: Args, validation: bool = False) -> list[tuple[str, Any, dict[str, Any]]]:
    """Play the teacher on the train splits; keep trajectories whose refinements never made it
    worse, each as ``(suite, trajectory, task)``. The SFT data comes from the tasks
    :func:`held_out_tasks` leaves; with ``validation``, ``--val-episodes`` come from the held-out ones."""
    from agents.rollout import EpisodeSpec, stream_episodes
    from agents.tiny.teacher import DescribeFirstTeacher
    from genagent_env.tools.registry import make_generator
    from genagent_env.vector import GenAgentVectorEnv

    rng = random.Random(args.seed + 7 if validation else args.seed)
    episodes = args.val_episodes if validation else args.episodes
    first = int(round(episodes * args.wise_share)) if len(args.suites) > 1 else episodes
    rest = [(episodes - first) // max(1, len(args.suites) - 1)] * (len(args.suites) - 1)
    kept: list[tuple[str, Any, dict[str, Any]]] = []
    dropped = 0
    for suite, n in zip(args.suites, [first, *rest]):
        for rounds in sorted(set(args.max_rounds)):
            share = args.max_rounds.count(rounds) / len(args.max_rounds)
            count = int(round(n * share))
            tool = make_generator(args.generator)
            if args.unreliable_tool > 0:
                tool = UnreliableTool(tool, args.unreliable_tool)
            envs = GenAgentVectorEnv(16, suite=suite, split="train", generators={args.generator: tool},
                                     scorer=args.scorer,
                                     max_rounds=rounds, privileged=True, autoreset_mode="disabled",
                                     generation_cache=False)
            n_tasks = len(envs.config.tasks)
            held_out = held_out_tasks(n_tasks, args.val_tasks, args.seed)
            pool = sorted(held_out) if validation else [i for i in range(n_tasks) if i not in held_out]
            specs = [EpisodeSpec(seed=rng.randrange(2**31), options={"task_index": rng.choice(pool)})
                     for _ in range(count)]
            teacher = DescribeFirstTeacher(envs.config.scorer, args.judge_style, args.note_rounds)
            for index, trajectory in stream_episodes(envs, teacher, specs):
                scores = [s["score"] for s in trajectory.scores]
                if any(later < earlier for earlier, later in zip(scores, scores[1:])):
                    dropped += 1
                    continue
                if rng.random() < args.renamed_tools:  # the same generator, under a name of its own
                    trajectory.messages = renamed_tool(trajectory.messages, args.generator, random_tool_name(rng))
                task_index = (specs[index].options or {})["task_index"]
                kept.append((suite, trajectory, envs.config.tasks[task_index]))
            envs.close()
            tool.close()
    print(f"teacher{' (validation)' if validation else ''}: {len(kept)} trajectories kept, {dropped} dropped "
          "(a refinement made the image worse)", flush=True)
    return kept


# ----------------------------------------------------------------------------- tokens and mask


def encode(processor: Any, messages: list[dict[str, Any]], images: list[Any]) -> tuple[list[int], list[int], dict]:
    """Token ids of the whole chat, the loss mask (1 on the assistant turns' tokens only) and the
    processor's image tensors (``pixel_values``, and whatever else the model takes with them)."""

    def length(chat: list[dict[str, Any]], generation_prompt: bool) -> int:
        return chat_length(processor, chat, images, generation_prompt)

    full_text = processor.apply_chat_template(messages, tokenize=False)
    batch = processor(text=[full_text], images=images or None, add_special_tokens=False, return_tensors="pt")
    ids = batch["input_ids"][0].tolist()
    mask = [0] * len(ids)
    for j, message in enumerate(messages):
        if message["role"] == "assistant":
            start, end = length(messages[:j], True), length(messages[: j + 1], False)
            mask[start:end] = [1] * (end - start)
    extras: dict[str, Any] = {}
    for key, value in batch.items():
        if key in ("input_ids", "attention_mask"):
            continue
        if value.dim() >= 2 and value.shape[0] == 1 and value.shape[1] == len(ids):
            extras[key] = value[0].tolist()  # a per-token input (e.g. token types): padded like the ids
        else:
            extras[key] = Bytes255.pack(value)  # image tensors (a dataset's images, so kept small)
    return ids, mask, extras


def chat_length(processor: Any, chat: list[dict[str, Any]], images: list[Any], generation_prompt: bool) -> int:
    """Tokens of ``chat`` as the processor encodes it (its images expanded), with the assistant's
    opening after it when ``generation_prompt``: where the next assistant turn starts."""
    text = processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=generation_prompt)
    batch = processor(text=[text], images=images[: count_images(chat)] or None, add_special_tokens=False)
    return len(batch["input_ids"][0])


@dataclass(frozen=True)
class Bytes255:
    """An image tensor whose values are all k/255 (what a processor makes of 8-bit pixels without
    normalising them), kept as uint8: a quarter of the memory for the thousands of images of a
    dataset; :meth:`restore` gives back the float tensor bit for bit."""

    data: torch.Tensor

    @staticmethod
    def pack(value: torch.Tensor) -> torch.Tensor | Bytes255:
        """``value`` as uint8 if that loses nothing, else ``value`` itself (e.g. normalised pixels)."""
        if value.dtype != torch.float32 or value.numel() == 0 or value.min() < 0 or value.max() > 1:
            return value
        data = torch.round(value * 255).to(torch.uint8)
        return Bytes255(data) if torch.equal(data.float().div_(255.0), value) else value

    @property
    def shape(self) -> torch.Size:
        return self.data.shape

    def restore(self) -> torch.Tensor:
        return self.data.float().div_(255.0)


def unpacked(value: torch.Tensor | Bytes255) -> torch.Tensor:
    return value.restore() if isinstance(value, Bytes255) else value


def chat_of(trajectory: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """The trajectory's chat as a multimodal processor takes it, and its images in order."""
    from agents.llm import chat_images, chat_messages

    return chat_messages(trajectory.messages, True), chat_images(trajectory.messages)


_DESCRIPTION = re.compile(r"<judge>(image_(\d+) shows .*?\.)(?= Checks:| It )")


def captions(chats: list[tuple[list[dict[str, Any]], list[Any]]]) -> list[tuple[list[dict[str, Any]], str, Any]]:
    """One caption per described image: ``(the tool turn that shows it, "<judge>image_k shows ...",
    the image)``, taken from the teacher's judgments."""
    from genagent_env.render import message_text

    out = []
    for messages, images in chats:
        tool_turns = [m for m in messages if m["role"] == "tool" and count_images([m])]
        for message in messages:
            if message["role"] != "assistant":
                continue
            found = _DESCRIPTION.search(message_text(message))
            if found and int(found.group(2)) <= min(len(tool_turns), len(images)):
                k = int(found.group(2))
                out.append(([tool_turns[k - 1]], f"<judge>{found.group(1)}", images[k - 1]))
    return out


def encode_caption(processor: Any, turns: list[dict[str, Any]], caption: str, image: Any
                   ) -> tuple[list[int], list[int], dict]:
    """A caption sample: the tool turn, the assistant's opening and the caption, with the loss on
    the caption's tokens only (not on an end of turn: in a trajectory the judgment goes on)."""
    ids, mask, extras = encode(processor, [*turns, {"role": "assistant", "content": [{"type": "text",
                                                                                         "text": caption}]}], [image])
    prompt = processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    n_caption = len(processor.tokenizer(prompt + caption, add_special_tokens=False)["input_ids"]) - len(
        processor.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    first = mask.index(1)
    mask = [1 if first <= i < first + n_caption else 0 for i in range(len(mask))]
    return ids, mask, extras


_ROUND = re.compile(r"round (\d+) of (\d+)")


def counterfactual_samples(processor: Any, chats: list[tuple[list[dict[str, Any]], list[Any]]],
                           tasks: list[dict[str, Any]], args: Args, rng: random.Random
                           ) -> list[tuple[list[int], list[int], dict]]:
    """For a share (``--counterfactual-judgments``) of the judgments: the chat up to that judgment,
    then the teacher's judgment of the same image's detections changed by
    :func:`agents.tiny.teacher.perturb_scene`, ending at ``</judge>``; the loss on what follows
    the description (the checks and the verdict) only. The description no longer matches the image
    it sits beside, so these tokens follow from the text alone."""
    from agents.tiny.teacher import describe_scene, judgment, perturb_scene
    from genagent_env.render import message_text
    from genagent_env.shapes.verifier import detect, evaluate

    if args.scorer != "shapes":
        raise ValueError("--counterfactual-judgments rescores changed scenes with the ShapesWorld checklist: "
                         "use --scorer shapes")
    out = []
    for (messages, images), task in zip(chats, tasks):
        for j, message in enumerate(messages):
            found = _DESCRIPTION.search(message_text(message)) if message["role"] == "assistant" else None
            if found is None or rng.random() >= args.counterfactual_judgments:
                continue
            k = int(found.group(2))
            if k > len(images):
                continue
            width, height = images[k - 1].size
            detections = detect(images[k - 1])
            changed = perturb_scene(detections, task, rng, width, height)
            if describe_scene(changed, width, height) == describe_scene(detections, width, height):
                continue  # the change does not show in words (a group across both halves, mirrored)
            rounds = _ROUND.search(message_text(messages[j - 1]))
            note = f" (round {rounds.group(1)} of {rounds.group(2)})" if args.note_rounds and rounds else ""
            text = judgment(task, changed, evaluate(task, changed, width, height), k, width, height,
                            args.judge_style, note)
            turn = {"role": "assistant", "content": [{"type": "text", "text": text}]}
            ids, mask, extras = encode(processor, [*messages[:j], turn], images[:k])
            span = comparison_span(processor, messages[:j], text)
            assert span is not None  # judgment() writes the description first
            first = last_run_start(mask)
            begin, end = first + span[0], first + span[1]
            mask = [1 if begin <= i < end else 0 for i in range(len(mask))]
            out.append((ids, mask, extras))
    return out


def comparison_span(processor: Any, history: list[dict[str, Any]], text: str) -> tuple[int, int] | None:
    """Where the comparison of the judgment in ``text`` (an assistant turn after ``history``) lies,
    in tokens from the turn's first token: every token that holds a character of what follows the
    image's description, up to and including ``</judge>`` (a token may run across either end, e.g.
    ``><`` of ``</judge><tool_call>``). None when ``text`` holds no described judgment."""
    description = _DESCRIPTION.search(text)
    if description is None:
        return None
    close = text.find("</judge>", description.end())
    stop = close + len("</judge>") if close >= 0 else len(text)
    prompt = processor.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
    encoded = processor.tokenizer(prompt + text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    first = sum(1 for begin, _ in offsets if begin < len(prompt))  # the turn's first token
    inside = [i for i, (begin, end) in enumerate(offsets)
              if end > len(prompt) + description.end() and begin < len(prompt) + stop]
    return inside[0] - first, inside[-1] + 1 - first


def validation_sample(processor: Any, messages: list[dict[str, Any]], images: list[Any]
                      ) -> tuple[list[int], list[int], dict, list[tuple[int, int]]]:
    """A held-out trajectory as :func:`encode` gives it, plus the token spans of its judgments'
    comparisons (:func:`comparison_span`, from the chat's start)."""
    from genagent_env.render import message_text

    ids, mask, extras = encode(processor, messages, images)
    spans = []
    for j, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        span = comparison_span(processor, messages[:j], message_text(message))
        if span is not None:
            start = chat_length(processor, messages[:j], images, True)
            spans.append((start + span[0], start + span[1]))
    return ids, mask, extras, spans


def validate(model: Any, samples: list[tuple[list[int], list[int], dict, list[tuple[int, int]]]],
             pad_id: int, batch_size: int = 16) -> dict[str, float]:
    """Teacher-forced scores on held-out trajectories: ``loss`` per agent token, ``comparison_loss``
    per comparison token, and ``comparison_exact``, the share of judgments whose every comparison
    token is the model's most likely one (given the teacher's description before it)."""
    device = next(model.parameters()).device
    total = {"loss": 0.0, "tokens": 0, "comparison_loss": 0.0, "comparison_tokens": 0, "exact": 0, "judgments": 0}
    was_training = model.training
    model.eval()
    order = sorted(range(len(samples)), key=lambda i: len(samples[i][0]))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = [samples[i] for i in order[start : start + batch_size]]
            batch = collate([(ids, mask, extras) for ids, mask, extras, _ in chunk], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            labels = batch.pop("labels")
            logits = model(**batch).logits[:, :-1].float()
            targets = labels[:, 1:]  # token p is predicted at position p - 1
            losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100,
                                                       reduction="none")
            right = logits.argmax(-1) == batch["input_ids"][:, 1:]
            total["loss"] += float(losses[targets != -100].sum())
            total["tokens"] += int((targets != -100).sum())
            for row, (*_, spans) in enumerate(chunk):
                for begin, end in spans:
                    total["comparison_loss"] += float(losses[row, begin - 1 : end - 1].sum())
                    total["comparison_tokens"] += end - begin
                    total["exact"] += int(right[row, begin - 1 : end - 1].all())
                    total["judgments"] += 1
    model.train(was_training)
    return {"loss": total["loss"] / max(1, total["tokens"]),
            "comparison_loss": total["comparison_loss"] / max(1, total["comparison_tokens"]),
            "comparison_exact": total["exact"] / max(1, total["judgments"])}


def last_run_start(mask: list[int]) -> int:
    """Where the last run of 1s of ``mask`` begins (the last assistant turn's first token).
    Raises ``ValueError`` when ``mask`` has no 1."""
    if not any(mask):
        raise ValueError("the loss mask trains no token: the chat has no assistant turn")
    i = len(mask) - 1
    while i >= 0 and not mask[i]:
        i -= 1
    while i > 0 and mask[i - 1]:
        i -= 1
    return i


def count_images(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages for p in (m["content"] if isinstance(m["content"], list) else [])
               if isinstance(p, dict) and p.get("type") == "image")


def exact_share(model: Any, samples: list[tuple[list[int], list[int], dict]], pad_id: int) -> float:
    """Share of samples (captions, rewrites) whose every trained token is the model's most likely
    one (teacher-forced)."""
    right = 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(samples), 64):
            chunk = samples[start : start + 64]
            batch = collate(chunk, pad_id)
            batch = {k: v.to(next(model.parameters()).device) for k, v in batch.items()}
            labels = batch.pop("labels")
            predicted = model(**batch).logits.argmax(-1)
            wanted = labels[:, 1:]
            ok = (predicted[:, :-1] == wanted) | (wanted == -100)
            right += int(ok.all(1).sum())
    model.train()
    return right / max(1, len(samples))


# ----------------------------------------------------------------------------- model


def perception_weights(path: Path, width: int) -> dict[str, torch.Tensor]:
    """The perception CNN's weights from ``path``: a file of them (``pretrain_perception.py``), or a
    genagent-tiny checkpoint folder, whose ``perception.*`` weights are the pretrained ones (SFT and
    GRPO keep them frozen, batch-norm statistics included)."""
    from safetensors.torch import load_file

    from agents.tiny import CHECKPOINTS, SHIPPED

    if str(path) in SHIPPED and not path.exists():
        path = CHECKPOINTS / str(path)
    if not path.is_dir():
        if not path.is_file():
            raise FileNotFoundError(f"no perception weights at {path}: run examples/pretrain_perception.py, or "
                                    "reuse a trained agent's with --perception tiny-sft")
        return load_file(str(path))
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").exists() else {}
    if config.get("model_type") != "genagent_tiny":
        raise ValueError(f"{path} is not a genagent-tiny checkpoint folder (its config.json has no "
                         "model_type 'genagent_tiny'); pass a perception .safetensors file or such a folder")
    if config.get("perception_width") != width:
        raise ValueError(f"{path} has a perception of width {config.get('perception_width')}, "
                         f"not --perception-width {width}")
    prefix = "perception."
    return {k[len(prefix):]: v for k, v in load_file(str(path / "model.safetensors")).items() if k.startswith(prefix)}


def build_tiny(args: Args, texts: list[str]) -> tuple[Any, Any]:
    """genagent-tiny from configs: the tokenizer trained on ``texts``, the perception loaded."""
    from agents.tiny.model import GenAgentTinyConfig, GenAgentTinyForConditionalGeneration, slot_word_matrix
    from agents.tiny.processor import END, PAD, START, TinyProcessor, train_tokenizer

    tokenizer = train_tokenizer(texts, args.vocab_size)
    processor = TinyProcessor(tokenizer, quote_tool_names=args.quote_tool_names)
    config = GenAgentTinyConfig(
        vocab_size=len(tokenizer), hidden_size=args.hidden_size, intermediate_size=int(8 * args.hidden_size / 3),
        num_hidden_layers=args.layers, num_attention_heads=args.heads, num_key_value_heads=max(1, args.heads // 2),
        max_position_embeddings=2048, tie_word_embeddings=True, perception_width=args.perception_width,
        copy_head=args.copy_head, copy_scope=args.copy_scope, turn_token_id=tokenizer.convert_tokens_to_ids(START),
        slot_centroids=args.slot_centroids, slot_embeddings=args.slot_embeddings, slot_token_id=processor.slot_token_id,
        bos_token_id=tokenizer.convert_tokens_to_ids(PAD),
        eos_token_id=tokenizer.convert_tokens_to_ids(END), pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
    )
    model = GenAgentTinyForConditionalGeneration(config)
    model.set_slot_words(slot_word_matrix(tokenizer, config.vocab_size, args.slot_centroids))
    model.perception.load_state_dict(perception_weights(args.perception, args.perception_width))
    model.perception.requires_grad_(False)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    return model, processor


def build_base(args: Args) -> tuple[Any, Any]:
    """A Hugging Face VLM to fine-tune, with LoRA adapters when ``--lora-rank`` > 0."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    assert args.base_model is not None
    processor = AutoProcessor.from_pretrained(args.base_model, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(args.base_model, local_files_only=True, dtype=torch.bfloat16)
    return model, processor


def with_lora(model: Any, rank: int) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    return get_peft_model(model, config)


# ----------------------------------------------------------------------------- training


def first_message_tokens(labels: torch.Tensor) -> torch.Tensor:
    """True on each row's first run of trained tokens: the first assistant message (agent turns
    are separated by untrained tool and user tokens)."""
    trained = (labels != -100).long()
    starts = (trained.diff(dim=1, prepend=torch.zeros_like(trained[:, :1])) == 1).cumsum(dim=1)
    return (trained == 1) & (starts == 1)


def weighted_loss(logits: torch.Tensor, labels: torch.Tensor, first: torch.Tensor, weight: float) -> torch.Tensor:
    """Next-token cross-entropy over the trained tokens, the ``first`` ones counted ``weight`` times;
    divided by the number of trained tokens, so the other tokens' gradient is what it was at weight 1."""
    targets, heavy = labels[:, 1:], first[:, 1:]
    losses = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets,
                                               ignore_index=-100, reduction="none")
    weights = torch.where(heavy, weight, 1.0) * (targets != -100)
    return (losses * weights).sum() / (targets != -100).sum().clamp(min=1)


def batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (little padding), batches in random order."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    groups = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(groups)
    return groups


def collate(samples: list[tuple[list[int], list[int], dict]], pad_id: int) -> dict[str, Any]:
    width = max(len(ids) for ids, _, _ in samples)
    input_ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(samples), width), dtype=torch.long)
    labels = torch.full((len(samples), width), -100, dtype=torch.long)
    for row, (ids, mask, _) in enumerate(samples):  # right padding for training
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        labels[row, : len(ids)] = torch.tensor([t if m else -100 for t, m in zip(ids, mask)])
    batch: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
    for key, first in samples[0][2].items():
        if isinstance(first, list):  # per-token: right-padded with zeros
            batch[key] = torch.zeros((len(samples), width), dtype=torch.long)
            for row, (_, _, extras) in enumerate(samples):
                batch[key][row, : len(extras[key])] = torch.tensor(extras[key])
        else:  # image tensors, in the order the images appear in the batch
            batch[key] = torch.cat([unpacked(extras[key]) for _, _, extras in samples if key in extras])
    return batch


def caption_pretraining(args: Args, accelerator: Any, model: Any, processor: Any,
                        chats: list[tuple[list[dict[str, Any]], list[Any]]], writer: Any) -> None:
    """Stage 1: ``--caption-minutes`` of captions (one image, its description), the loss on the
    description only; a 2 % held-out share measures how many captions come out exactly."""
    samples = [encode_caption(processor, *pair) for pair in captions(chats)]
    short_stage(args, accelerator, model, processor, samples, name="caption", minutes=args.caption_minutes,
                steps=args.caption_steps, batch_size=args.caption_batch_size, writer=writer)


def first_messages(chats: list[tuple[list[dict[str, Any]], list[Any]]]) -> list[list[dict[str, Any]]]:
    """Each chat up to and including its first assistant message (the rewrite, before any image),
    once per distinct chat."""
    from genagent_env.render import message_text

    out: dict[str, list[dict[str, Any]]] = {}
    for messages, _ in chats:
        first = next((j for j, m in enumerate(messages) if m["role"] == "assistant"), None)
        if first is not None:
            head = messages[: first + 1]
            out.setdefault("\x00".join(f"{m['role']}:{message_text(m)}" for m in head), head)
    return list(out.values())


def rewrite_pretraining(args: Args, accelerator: Any, model: Any, processor: Any,
                        chats: list[tuple[list[dict[str, Any]], list[Any]]], writer: Any) -> None:
    """Stage 2: ``--rewrite-minutes`` of first messages (the system prompt and the request, then the
    teacher's rewrite and tool call), the loss on that message only; a 2 % held-out share measures
    how many come out exactly."""
    samples = [encode(processor, head, []) for head in first_messages(chats)]
    short_stage(args, accelerator, model, processor, samples, name="rewrite", minutes=args.rewrite_minutes,
                batch_size=args.rewrite_batch_size, writer=writer)


def short_stage(args: Args, accelerator: Any, model: Any, processor: Any,
                samples: list[tuple[list[int], list[int], dict]], *, name: str, minutes: float, batch_size: int,
                writer: Any, steps: int = 0) -> None:
    """A pretraining stage on short samples before SFT: random batches for ``minutes`` or ``steps``
    (whichever ends first; 0 is no limit of that kind) at the peak learning rate after a short
    warm-up; 2 % of the samples held out, the share of them the model writes exactly printed and
    logged (``charts/{name}_exact``)."""
    from tqdm.auto import tqdm

    if not samples:
        raise ValueError(f"the {name} stage has no samples: the teacher's trajectories hold none")
    rng = random.Random(args.seed + 1)
    samples = list(samples)
    rng.shuffle(samples)
    cut = max(1, len(samples) // 50)
    held_out, train = samples[:cut], samples[cut:] or samples[:cut]
    pad_id = processor.tokenizer.pad_token_id
    trainable = [p for p in model.parameters() if p.requires_grad]
    # Not prepared: accelerate would then save (and expect on resume) its state with the SFT optimizer's.
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.95))
    draw = random.Random(args.seed * 1000 + accelerator.process_index)  # each process its own batches
    started, step = time.time(), 0
    progress = tqdm(disable=not accelerator.is_main_process, desc=f"{name}s")
    model.train()
    while True:
        # Every process stops at the same step (a process that stopped alone would hang the others).
        over = torch.tensor(float((minutes > 0 and time.time() - started >= minutes * 60)
                                  or (steps > 0 and step >= steps)), device=accelerator.device)
        if accelerator.reduce(over, "max").item() > 0:
            break
        for group in optimizer.param_groups:  # a short linear warm-up, then the peak rate
            group["lr"] = args.lr * min(1.0, (step + 1) / 30)
        batch = collate([train[i] for i in draw.sample(range(len(train)), min(len(train), batch_size))], pad_id)
        loss = model(**{k: v.to(accelerator.device) for k, v in batch.items()}).loss
        # accelerate divides every loss by --grad-accum; these steps are not accumulated.
        accelerator.backward(loss * accelerator.gradient_accumulation_steps)
        accelerator.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.3f}")
        if writer is not None and step % args.log_every == 0:
            writer.add_scalar(f"losses/{name}", loss.item(), step)
    progress.close()
    exact = exact_share(accelerator.unwrap_model(model), held_out, pad_id)
    if writer is not None:
        writer.add_scalar(f"charts/{name}_exact", exact, step)
    accelerator.print(f"{name}s: {len(train)} for training, {step} steps in {(time.time() - started) / 60:.1f} min; "
                      f"{exact:.3f} of {len(held_out)} held-out {name}s exact", flush=True)


def main(args: Args) -> None:
    from accelerate import Accelerator
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    import agents.tiny  # noqa: F401  (registers genagent_tiny with the Auto classes)

    if args.first_message_weight < 0 or args.caption_steps < 0:
        raise ValueError("--first-message-weight and --caption-steps must be 0 or more")
    if args.val_every < 1 or args.val_episodes < 1:
        raise ValueError("--val-every and --val-episodes must be 1 or more")
    held_out_tasks(1, args.val_tasks, args.seed)  # a --val-tasks out of range fails before the teacher plays
    torch.set_num_threads(args.threads)
    accelerator = Accelerator(gradient_accumulation_steps=args.grad_accum, mixed_precision=args.mixed_precision)
    accelerator.print(f"{accelerator.num_processes} process(es) on {accelerator.device}, "
                      f"mixed precision: {accelerator.mixed_precision}", flush=True)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    state_dir = args.out / "training_state"
    started = time.time()

    trajectories = teacher_trajectories(args)
    chats = [chat_of(t) for _, t, _ in trajectories]
    if args.base_model is None:
        from agents.tiny.processor import render_chat

        resuming = (state_dir / "step.json").exists()
        if resuming:  # the tokenizer must stay the one the saved weights were trained with
            from agents.tiny.model import GenAgentTinyForConditionalGeneration
            from agents.tiny.processor import TinyProcessor

            processor = TinyProcessor.from_pretrained(state_dir)
            model = GenAgentTinyForConditionalGeneration.from_pretrained(state_dir)
            model.perception.requires_grad_(False)  # frozen, as build_tiny leaves it (the optimizer's groups match)
        else:
            texts = [render_chat(messages, quote_tool_names=args.quote_tool_names) for messages, _ in chats]
            model, processor = build_tiny(args, texts)
    else:
        model, processor = build_base(args)
    if args.lora_rank > 0:
        model = with_lora(model, args.lora_rank)
    samples = []
    for messages, images in chats:
        ids, mask, extras = encode(processor, messages, images)
        if len(ids) <= args.max_len:
            samples.append((ids, mask, extras))
    if args.counterfactual_judgments > 0:
        extra = counterfactual_samples(processor, chats, [task for _, _, task in trajectories], args,
                                       random.Random(args.seed + 1))
        extra = [sample for sample in extra if len(sample[0]) <= args.max_len]
        print(f"{len(extra)} counterfactual judgments", flush=True)
        samples += extra
    validation = []
    if args.val_tasks > 0:
        held_out = [validation_sample(processor, *chat_of(t)) for _, t, _ in teacher_trajectories(args, True)]
        validation = [sample for sample in held_out if len(sample[0]) <= args.max_len]
        print(f"validation: {len(validation)} trajectories of held-out train-split tasks, "
              f"{sum(len(sample[3]) for sample in validation)} judgments", flush=True)
    lengths = [len(ids) for ids, _, _ in samples]
    print(f"{len(samples)} samples, {sum(lengths)} tokens ({np.mean(lengths):.0f} per sample, "
          f"{sum(sum(m) for _, m, _ in samples)} trained on), data ready in {time.time() - started:.0f} s", flush=True)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.95))
    per_epoch = math.ceil(len(samples) / (args.batch_size * accelerator.num_processes))
    total_steps = max(1, int(per_epoch * args.epochs) // args.grad_accum)

    def schedule(step: int) -> float:
        warm = max(1, int(args.warmup * total_steps))
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    step, spent = 0, 0.0
    if (state_dir / "step.json").exists():
        accelerator.load_state(str(state_dir))  # optimizer, scheduler, RNG states (weights loaded above)
        saved = json.loads((state_dir / "step.json").read_text())
        step, spent = saved["step"], saved["spent"]
        accelerator.print(f"resumed at step {step}")
    writer = SummaryWriter(str(args.out / "tensorboard")) if accelerator.is_main_process else None
    if (args.caption_minutes > 0 or args.caption_steps > 0) and step == 0:  # a resumed run has had them
        caption_pretraining(args, accelerator, model, processor, chats, writer)
    if args.rewrite_minutes > 0 and step == 0:
        knowledge = [chat for (suite, _, _), chat in zip(trajectories, chats) if suite in args.rewrite_suites]
        rewrite_pretraining(args, accelerator, model, processor, knowledge, writer)
    pad_id = processor.tokenizer.pad_token_id
    rng = random.Random(args.seed)
    budget = args.minutes * 60
    clock = time.time() - spent
    progress = tqdm(total=total_steps, initial=step, disable=not accelerator.is_main_process, desc="sft")
    plan: list[list[int]] = []
    for _ in range(math.ceil(args.epochs) + 1):
        plan += batches(lengths, args.batch_size, rng)
    plan = plan[accelerator.process_index :: accelerator.num_processes]
    micro = step * args.grad_accum
    scores: dict[str, float] = {}

    def validation_scores() -> dict[str, float]:
        """Validate on the main process (the others wait), print a line and log ``val/*``."""
        result: dict[str, float] = {}
        if accelerator.is_main_process:
            result = validate(accelerator.unwrap_model(model), validation, pad_id)
            if writer is not None:
                for name, value in result.items():
                    writer.add_scalar(f"val/{name}", value, step)
            progress.write(f"step {step}: held-out loss {result['loss']:.4f}, comparison loss "
                           f"{result['comparison_loss']:.4f}, comparisons exact {result['comparison_exact']:.3f}")
        accelerator.wait_for_everyone()
        return result

    model.train()
    while step < total_steps and time.time() - clock < budget and micro < len(plan):
        batch = collate([samples[i] for i in plan[micro]], pad_id)
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        with accelerator.accumulate(model):
            if args.first_message_weight == 1.0:
                loss = model(**batch).loss
            else:
                labels = batch["labels"]  # kept from the model, which would compute its own loss too
                logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
                loss = weighted_loss(logits, labels, first_message_tokens(labels), args.first_message_weight)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        micro += 1
        if micro % args.grad_accum:
            continue
        step += 1
        progress.update(1)
        progress.set_postfix(loss=f"{loss.item():.3f}")
        if writer is not None and step % args.log_every == 0:
            writer.add_scalar("losses/sft", loss.item(), step)
            writer.add_scalar("charts/learning_rate", scheduler.get_last_lr()[0], step)
            writer.add_scalar("charts/epoch", micro / max(1, per_epoch), step)
        if validation and step % args.val_every == 0:
            scores = validation_scores()
        if step % 200 == 0 or step == total_steps:
            save(accelerator, model, processor, state_dir, step, time.time() - clock)
    if validation and step % args.val_every:  # the end, when no validation just ran
        scores = validation_scores()
    progress.close()
    save(accelerator, model, processor, state_dir, step, time.time() - clock)
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        if args.lora_rank > 0:
            unwrapped = unwrapped.merge_and_unload()
        unwrapped.save_pretrained(args.out, safe_serialization=True)
        processor.save_pretrained(args.out)
        (args.out / "sft_args.json").write_text(json.dumps({**asdict(args), "out": str(args.out),
                                                            "perception": str(args.perception), "steps": step,
                                                            "minutes": (time.time() - clock) / 60,
                                                            "validation": scores}, indent=2))
        print(f"saved {args.out} after {step} steps in {(time.time() - clock) / 60:.1f} min", flush=True)


def save(accelerator: Any, model: Any, processor: Any, state_dir: Path, step: int, spent: float) -> None:
    """A checkpoint a rerun resumes from: weights and tokenizer (HF folder) plus optimizer,
    scheduler and RNG states, and the step."""
    accelerator.wait_for_everyone()
    accelerator.save_state(str(state_dir))
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(state_dir, safe_serialization=True)
        processor.save_pretrained(state_dir)
        (state_dir / "step.json").write_text(json.dumps({"step": step, "spent": spent}))


if __name__ == "__main__":
    main(tyro.cli(Args))
