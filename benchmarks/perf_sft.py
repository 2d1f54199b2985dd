"""SFT step speed of genagent-tiny in bf16 autocast against float32 (the baseline), on the same batches.

    python -m benchmarks.perf_sft                  # tiny-sft's architecture, about two minutes here
    python -m benchmarks.perf_sft --episodes 512 --steps 40

The teacher plays ``--episodes`` train-split episodes as ``examples/train_sft.py`` has them; they are
encoded with the shipped ``tiny-sft`` tokenizer and batched by length as SFT batches them. Each
setting trains a copy of the shipped model for ``--steps`` optimizer steps (AdamW, the SFT learning
rate; collating, forward, backward) on the same batches in the same order, the settings taking
turns ``--repeats`` times so that machine load falls on both alike. Prints one table measured in
one run: steps/s, trajectories/s, the mean loss over the steps and the ratio to float32.

bf16 pays where the hardware has bf16 arithmetic (GPUs; CPUs with AVX512-BF16 or AMX); elsewhere
the CPU emulates it and the ratio falls below 1, so measure before passing
``train_sft.py --mixed-precision bf16``.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
import tyro


@dataclass
class Args:
    episodes: int = 256
    """teacher episodes encoded into the batches"""
    steps: int = 30
    """optimizer steps timed per setting and repeat"""
    repeats: int = 2
    """times each setting is timed (taking turns); the fastest is reported"""
    batch_size: int = 16
    """trajectories per step (the SFT default)"""
    threads: int = 2
    """torch CPU threads"""
    seed: int = 0
    """seed of the teacher episodes and the batch order"""


def timed_steps(model: Any, samples: list[tuple], plan: list[list[int]], pad_id: int, lr: float,
                bf16: bool) -> tuple[float, float]:
    """Seconds for one optimizer step per batch of ``plan``, and the mean loss over them."""
    from examples.train_sft import collate

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    model.train()
    losses = []
    started = time.perf_counter()
    for group in plan:
        batch = collate([samples[i] for i in group], pad_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return time.perf_counter() - started, sum(losses) / len(losses)


def main(args: Args) -> list[str]:
    from agents.tiny import CHECKPOINTS
    from agents.tiny.model import GenAgentTinyForConditionalGeneration
    from agents.tiny.processor import TinyProcessor
    from examples.train_sft import Args as SFTArgs
    from examples.train_sft import batches, chat_of, encode, teacher_trajectories

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    folder = CHECKPOINTS / "tiny-sft"
    processor = TinyProcessor.from_pretrained(folder)
    model = GenAgentTinyForConditionalGeneration.from_pretrained(folder)
    model.perception.requires_grad_(False)  # frozen, as SFT has it
    sft = replace(SFTArgs(), seed=args.seed, episodes=args.episodes)
    samples = [encode(processor, *chat_of(t)) for _, t, _ in teacher_trajectories(sft)]
    samples = [sample for sample in samples if len(sample[0]) <= sft.max_len]
    plan = batches([len(ids) for ids, _, _ in samples], args.batch_size, random.Random(args.seed))
    plan = [plan[i % len(plan)] for i in range(args.steps)]
    settings = {"float32 (baseline)": False, "bf16 autocast": True}
    best = {name: float("inf") for name in settings}
    loss = {}
    for _ in range(args.repeats):
        for name, bf16 in settings.items():
            seconds, loss[name] = timed_steps(copy.deepcopy(model), samples, plan, processor.tokenizer.pad_token_id,
                                              sft.lr, bf16)
            best[name] = min(best[name], seconds)
    base = args.steps / best["float32 (baseline)"]
    lines = [f"SFT steps of genagent-tiny (tiny-sft's architecture), {len(samples)} teacher trajectories, "
             f"batches of {args.batch_size}, {args.steps} steps, fastest of {args.repeats}, {args.threads} threads",
             "| setting | steps/s | trajectories/s | mean loss | ratio to float32 |",
             "|---|---:|---:|---:|---:|"]
    for name in settings:
        rate = args.steps / best[name]
        lines.append(f"| {name} | {rate:.2f} | {rate * args.batch_size:.1f} | {loss[name]:.4f} | {rate / base:.2f}× |")
    print("\n".join(lines), flush=True)
    return lines


if __name__ == "__main__":
    main(tyro.cli(Args))
