"""Rollout speed of an LLM agent against raw ``model.generate`` on the same batches.

    python -m benchmarks.perf_rollout                       # tiny-sft on ShapesWorld, about a minute here
    python -m benchmarks.perf_rollout --agent runs/tiny-grpo --num-envs 16 64

Plays ``--episodes`` whole episodes (``max_rounds=2``) of the agent through a
:class:`~genagent_env.vector.GenAgentVectorEnv` of N sub-environments (as ``examples/train_grpo.py``
does), recording every batch of chats the agent was asked about. Then it sends the very same
batches, already tokenized, to ``model.generate`` with the same generation settings: the limit any
agent on this model can reach. Decoding is greedy, so both make the same tokens.

Prints one table, measured in one run: agent tokens/s inside ``act_batch`` (prompt building,
tokenizing, image processing, generating, decoding), the same over the whole rollout (env, tools
and scoring included), and raw ``generate`` tokens/s, with the ratios of the first two to raw.
Target: the agent inside rollouts ≥ 0.8× raw.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import tyro

from agents.base import Agent


@dataclass
class Args:
    agent: str = "tiny-sft"
    """a shipped agent name (tiny-sft, tiny-grpo) or a checkpoint folder"""
    num_envs: tuple[int, ...] = (16, 48)
    """sub-environments (the batch size of the agent's generate calls)"""
    episodes: int = 96
    """episodes played per setting"""
    generator: str = "shapes-medium"
    """the tool"""
    threads: int = 2
    """torch CPU threads"""
    seed: int = 0
    """seed of the tasks and env seeds"""


class RecordingAgent(Agent):
    """Wraps an :class:`~agents.llm.LLMAgent`: records each batch of chats and the time spent acting."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.batches: list[list[Sequence[Mapping[str, Any]]]] = []
        self.seconds = 0.0
        self.tokens = 0
        self.last_generations: list[Any] = []

    def reset(self, seed: int | None = None) -> None:
        self.agent.reset(seed)

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]]) -> list[str]:
        self.batches.append([list(info["messages"]) for info in infos])
        started = time.perf_counter()
        messages = self.agent.act_batch(observations, infos)
        self.seconds += time.perf_counter() - started
        self.last_generations = self.agent.last_generations
        self.tokens += sum(len(g.completion_ids) for g in self.last_generations)
        return messages


def raw_generate(agent: Any, batches: Sequence[Sequence[Sequence[Mapping[str, Any]]]]) -> tuple[int, float]:
    """Tokens made and seconds spent by ``model.generate`` alone on ``batches`` (tokenized beforehand)."""
    import torch

    encoded = [agent.encode(chats) for chats in batches]
    kwargs = agent.generation_kwargs()
    eos = set(agent.eos_token_ids)
    tokens, seconds = 0, 0.0
    with torch.no_grad():
        for batch in encoded:
            started = time.perf_counter()
            out = agent.model.generate(**batch, **kwargs)
            seconds += time.perf_counter() - started
            for row in out.sequences[:, batch["input_ids"].shape[1]:].tolist():
                tokens += next((k + 1 for k, token in enumerate(row) if token in eos), len(row))
    return tokens, seconds


def main(args: Args) -> list[str]:
    import random

    import torch

    from agents.rollout import EpisodeSpec, stream_episodes
    from agents.tiny import load_agent
    from genagent_env.vector import GenAgentVectorEnv

    torch.set_num_threads(args.threads)
    agent = load_agent(args.agent)
    lines = [f"rollout speed of {args.agent} (greedy, max_rounds=2, {args.generator}, {args.episodes} episodes, "
             f"{args.threads} threads)", "",
             "| N | agent in act_batch tok/s | whole rollout tok/s | raw generate tok/s | act_batch / raw | "
             "rollout / raw | target |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for n in args.num_envs:
        envs = GenAgentVectorEnv(n, generators=args.generator, max_rounds=2, autoreset_mode="disabled")
        rng = random.Random(args.seed)
        specs = [EpisodeSpec(seed=rng.randrange(2**31), options={"task_index": rng.randrange(len(envs.config.tasks))})
                 for _ in range(args.episodes)]
        recording = RecordingAgent(agent)
        started = time.perf_counter()
        for _ in stream_episodes(envs, recording, specs):
            pass
        rollout_s = time.perf_counter() - started
        envs.close()
        raw_tokens, raw_s = raw_generate(agent, recording.batches)
        raw = raw_tokens / raw_s
        acting = recording.tokens / recording.seconds
        whole = recording.tokens / rollout_s
        verdict = "PASS" if acting / raw >= 0.8 else "FAIL"
        lines.append(f"| {n} | {acting:.0f} | {whole:.0f} | {raw:.0f} | {acting / raw:.2f} | {whole / raw:.2f} | "
                     f"≥ 0.8× raw: {verdict} |")
    lines += ["", "raw: the same chats, tokenized beforehand, through model.generate with the agent's settings; "
              "act_batch adds prompt building, tokenizing, images and decoding; the whole rollout adds the env, "
              "the tool and the verifier."]
    print("\n".join(lines))
    return lines


def cli() -> None:
    main(tyro.cli(Args))


if __name__ == "__main__":
    cli()
