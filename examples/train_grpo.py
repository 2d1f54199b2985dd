"""Multi-turn GRPO (or PPO) of the reference agent over whole trajectories (CleanRL-style: one readable file).

    python examples/train_grpo.py                                     # tiny-sft -> runs/tiny-grpo, 2 CPU cores
    python examples/train_grpo.py --algo ppo                          # PPO: a value head, GAE over turns
    python examples/train_grpo.py --no-resample                       # ablation: G rollouts, no resampling
    python examples/train_grpo.py --reflection-weight 0               # ablation: no pairwise reward
    accelerate launch --num_processes 2 --cpu examples/train_grpo.py --steps 2 --tasks-per-step 2
    accelerate launch examples/train_grpo.py --init /ckpt/qwen2.5-vl-7b-sft --lora-rank 64 \\
        --generator flux-dev --lr 1e-6 --tasks-per-step 30 --max-new-tokens 2048   # real scale

Each step:

1. **Rollouts.** ``tasks_per_step`` tasks are drawn from the *train* splits of ``--suites``; each
   is played ``rollouts_per_task`` (G′) times by the current policy, sampling, through a
   :class:`~genagent_env.vector.GenAgentVectorEnv` (tool calls of all episodes batched per step).
   Every message's token ids and log-probabilities come back with the trajectory
   (:class:`agents.rollout.AgentTurn`). The reward is the env's, per trajectory: outcome (the final
   image passes) + reflection accuracy (the retry/submit decisions against the verifier) − a format
   penalty, weighted by ``--outcome-weight``/``--reflection-weight``/``--format-penalty``.
2. **Trajectory resampling** (the paper's): of the G′ rollouts of a task, G are kept, spread as
   evenly as possible over their numbers of turns, so that the many short trajectories of an
   agent that mostly submits at once do not dominate the gradient. ``--no-resample`` plays G
   rollouts and keeps them all. ``--shared-env-seed`` plays a task's rollouts on one env seed
   (common random numbers): a prompt written in two rollouts draws the same image, so the rewards
   of a group differ by what the policy wrote and decided, not by the tool's luck; the policy
   still samples each rollout with a seed of its own.
3. **Advantages.** GRPO: each trajectory's reward minus its group's mean, divided by the group's
   standard deviation (``--no-scale-rewards``: not divided, as Dr. GRPO recommends); every token
   of every agent turn of the trajectory gets it. PPO (``--algo ppo``): a value head reads the
   state before each turn; GAE over the turns (``--gamma``, ``--gae-lambda``), normalised over the batch.
4. **Loss**, on the agent's tokens only, across all turns: the clipped ratio objective
   (``--epsilon``, ``--epsilon-high``), plus ``--kl-coef`` × the k3 estimate of KL to the starting
   model (0 by default, as in the paper: no reference model is kept). Tokens are averaged as TRL's
   ``loss_type`` does: ``grpo`` per trajectory then over trajectories, ``dr_grpo`` a sum over a
   constant (trajectories × ``max_new_tokens``), ``dapo`` over all tokens of the batch.
   ``--update-epochs`` passes over each batch, each in ``--num-minibatches`` optimizer steps (both 1:
   on-policy, the ratio is 1 and only its gradient counts).
5. **Bookkeeping.** ``accelerate`` (many processes or GPUs, each with its own tasks), LoRA through
   ``peft`` (``--lora-rank``), TensorBoard (``charts/``, ``losses/``, ``rewards/``, ``eval/``), a
   progress bar, a checkpoint every ``--save-every`` steps (weights, optimizer, scheduler, RNG
   states, step) that a rerun resumes from, with the same next batch: a step's tasks, seeds and
   sampling depend only on ``--seed`` and the step. Every ``--eval-every`` steps the policy plays
   the test split through the benchmark runner (``benchmarks.run``), greedily.

Writes ``<out>/`` as a Hugging Face model folder (``agents.tiny.load_agent(out)`` or ``--agents
llm:<out>`` plays it), ``<out>/steps.jsonl`` (one line per step) and ``<out>/training_state/``.
"""

from __future__ import annotations

import copy
import json
import math
import random
import statistics
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import tyro


@dataclass
class Args:
    seed: int = 0
    """seed of the tasks, the env and sampling seeds of every step, and the value head"""
    out: Path = Path("runs/tiny-grpo")
    """the model folder (and training_state/ for resuming, steps.jsonl, tensorboard/, eval/)"""
    init: str = "tiny-sft"
    """the starting policy: a shipped agent name (tiny-sft) or a Hugging Face checkpoint folder (an SFT model)"""
    suites: tuple[str, ...] = ("shapes-geneval", "shapes-wise")
    """registered suites or task files whose train split the tasks come from"""
    suite_shares: tuple[float, ...] = (0.6, 0.4)
    """share of each suite's tasks in a step"""
    generator: str = "shapes-medium"
    """the tool the policy calls (a registered name or module:factory)"""
    scorer: str = "shapes"
    """the verifier that judges the images (the reward)"""
    max_rounds: int = 2
    """the most image-producing tool calls per episode"""
    outcome_weight: float = 0.7
    """pointwise reward: paid when the final image passes"""
    reflection_weight: float = 0.3
    """pairwise reward: paid times the reflection accuracy (0: the ablation without it)"""
    format_penalty: float = 0.2
    """subtracted once when any turn broke the protocol"""
    algo: Literal["grpo", "ppo"] = "grpo"
    """grpo: group-normalised trajectory rewards; ppo: a value head and GAE over turns"""
    loss_type: Literal["grpo", "dr_grpo", "dapo"] = "grpo"
    """how token losses are averaged (TRL's names): per trajectory, over a constant, or over all tokens"""
    scale_rewards: bool = True
    """divide advantages by the group's standard deviation (GRPO; Dr. GRPO turns it off)"""
    tasks_per_step: int = 8
    """tasks per step and process (the paper: 30, for a batch of 240 trajectories at G = 8)"""
    rollouts_per_task: int = 12
    """G′: rollouts played per task (the paper: 12)"""
    group_size: int = 8
    """G: rollouts kept per task after resampling by number of turns (the paper: 8)"""
    resample: bool = True
    """keep G of G′ spread evenly over turn counts; off: play G rollouts and keep them all"""
    shared_env_seed: bool = False
    """play all rollouts of a task on one env seed, so the same prompt draws the same image in each
    (common random numbers: less of the reward's spread is the tool's luck); sampling seeds differ"""
    temperature: float = 1.0
    """sampling temperature of the rollouts"""
    top_p: float = 1.0
    """nucleus sampling of the rollouts (1: off)"""
    max_new_tokens: int = 200
    """longest message in tokens (the paper: up to 16 384 tokens per trajectory)"""
    lr: float = 2e-5
    """learning rate (the paper's GRPO of Qwen2.5-VL-7B: 1e-6)"""
    value_lr: float = 1e-3
    """PPO: learning rate of the new value head"""
    epsilon: float = 0.2
    """clip range of the ratio, below 1"""
    epsilon_high: float | None = None
    """clip range above 1 (None: epsilon; DAPO's clip-higher uses 0.28)"""
    kl_coef: float = 0.0
    """KL penalty to the starting model (0, as in the paper: no reference model is loaded)"""
    update_epochs: int = 1
    """passes over each batch (TRL's num_iterations)"""
    num_minibatches: int = 1
    """optimizer steps per pass over each batch (CleanRL's num_minibatches, TRL's steps_per_generation):
    the batch's trajectories are shuffled and split into that many minibatches, one step each, so a
    batch of rollouts moves the policy more than one step's worth (the ratio is clipped from the second on)"""
    chunk_size: int = 64
    """agent turns per forward/backward pass (gradients accumulate: the result does not depend on it)"""
    single_pass: bool = True
    """score all turns of a trajectory in one pass over its last turn's sequence (exact: the earlier
    turns are prefixes of it), rather than one pass per turn over each turn's whole prompt"""
    gamma: float = 1.0
    """PPO: discount over turns"""
    gae_lambda: float = 0.95
    """PPO: GAE lambda over turns"""
    vf_coef: float = 0.5
    """PPO: weight of the value loss"""
    max_grad_norm: float = 1.0
    """gradient clipping"""
    steps: int = 200
    """optimizer steps; training stops at whichever of steps and minutes comes first"""
    minutes: float = 60.0
    """wall-clock budget (rollouts included, evaluations not)"""
    warmup: int = 5
    """steps of linear learning-rate warm-up (then constant, as in the paper)"""
    num_envs: int = 48
    """sub-environments of the rollout vector env"""
    lora_rank: int = 0
    """LoRA rank through peft (0: train every weight)"""
    threads: int = 2
    """torch CPU threads per process"""
    save_every: int = 10
    """steps between checkpoints"""
    eval_every: int = 0
    """steps between evaluations on the test split through the benchmark runner (0: none)"""
    eval_suite: str = "shapes-geneval"
    """the suite evaluated on (its test split)"""
    eval_limit: int | None = None
    """evaluate on the first N test tasks only"""


# ----------------------------------------------------------------------------- policy


def load_policy(args: Args) -> tuple[Any, Any]:
    """The starting model and processor: a shipped tiny agent by name, or a checkpoint folder."""
    import agents.tiny  # noqa: F401  (registers genagent_tiny with the Auto classes)
    from agents.llm import LLMAgent

    path = agents.tiny.CHECKPOINTS / args.init if args.init in agents.tiny.SHIPPED else Path(args.init)
    agent = LLMAgent.from_pretrained(path, max_new_tokens=args.max_new_tokens)
    return agent.model, agent.processor


def with_lora(model: Any, rank: int) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    return get_peft_model(model, config)


def rollout_agent(model: Any, processor: Any, args: Args, seed: int) -> Any:
    from agents.llm import LLMAgent

    return LLMAgent(model, processor, do_sample=True, temperature=args.temperature, top_p=args.top_p,
                    max_new_tokens=args.max_new_tokens, seed=seed, name="policy")


# ----------------------------------------------------------------------------- rollouts


@dataclass
class Group:
    """The rollouts of one task."""

    suite: str
    task_index: int
    trajectories: list[Any]


def draw_tasks(args: Args, step: int, rank: int, sizes: dict[str, int]) -> list[tuple[str, int, list[int]]]:
    """``(suite, task index, env seeds)`` of a step: a function of the seed, step and process only,
    so a resumed run draws the batch the interrupted one would have."""
    rng = random.Random(f"{args.seed}/{step}/{rank}")
    played = args.rollouts_per_task if args.resample else args.group_size
    drawn = []
    for _ in range(args.tasks_per_step):
        suite = rng.choices(args.suites, weights=args.suite_shares)[0]
        drawn.append((suite, rng.randrange(sizes[suite]), [rng.randrange(2**31) for _ in range(played)]))
    return drawn


def play(envs: dict[str, Any], agent: Any, drawn: list[tuple[str, int, list[int]]],
         shared_env_seed: bool = False) -> list[Group]:
    """Every rollout of the step's tasks, one vector env per suite, grouped by task. Each rollout's
    seed seeds the env and the agent's sampling; with ``shared_env_seed`` the env of every rollout
    of a task gets the task's first seed (the same tool luck) and the agent still its own."""
    from agents.rollout import EpisodeSpec, stream_episodes

    groups = [Group(suite, index, []) for suite, index, _ in drawn]
    for suite, vector_env in envs.items():
        jobs = [(g, seed) for g, (s, index, seeds) in enumerate(drawn) if s == suite for seed in seeds]
        specs = [EpisodeSpec(seed=drawn[g][2][0] if shared_env_seed else seed, agent_seed=seed,
                             options={"task_index": drawn[g][1]}) for g, seed in jobs]
        found = dict(stream_episodes(vector_env, agent, specs))
        for j, (g, _) in enumerate(jobs):
            groups[g].trajectories.append(found[j])
    return groups


def resample_by_turns(trajectories: list[Any], size: int, rng: random.Random) -> list[Any]:
    """``size`` of ``trajectories``, spread as evenly as possible over their numbers of turns: take
    one from each turn count in turn (at random within it) until ``size`` are taken."""
    buckets: dict[int, list[Any]] = defaultdict(list)
    for trajectory in trajectories:
        buckets[len(trajectory.turns)].append(trajectory)
    for bucket in buckets.values():
        rng.shuffle(bucket)
    keys = sorted(buckets)
    rng.shuffle(keys)
    chosen: list[Any] = []
    while len(chosen) < min(size, len(trajectories)):
        for key in keys:
            if buckets[key] and len(chosen) < size:
                chosen.append(buckets[key].pop())
    return chosen


# ----------------------------------------------------------------------------- advantages and samples


@dataclass
class Sample:
    """One agent turn to train on: its prompt chat, the message's token ids, the trajectory it belongs to."""

    chat: list[dict[str, Any]]
    completion: list[int]
    trajectory: int
    turn: int
    reward: float  # the env's reward for this step (PPO's per-turn rewards)
    prompt: list[int] = field(default_factory=list)  # the prompt's token ids as the agent saw them
    advantage: float = 0.0
    ret: float = 0.0  # PPO: the GAE return the value head regresses on
    old_logprobs: torch.Tensor | None = None
    old_value: float = 0.0


def has_signal(rewards: list[float]) -> bool:
    """Whether a group's rewards differ at all; a group whose rollouts all score the same gets
    zero advantages and adds nothing to the gradient (exact equality, so rounding noise does not
    pose as a signal)."""
    return max(rewards) != min(rewards)


def group_advantages(rewards: list[float], scale: bool) -> list[float]:
    """GRPO: each reward minus the group mean, over the group's standard deviation when ``scale``."""
    if not has_signal(rewards):
        return [0.0] * len(rewards)
    mean = statistics.fmean(rewards)
    std = statistics.pstdev(rewards) if scale else 1.0
    return [(r - mean) / (std + 1e-4) for r in rewards]


def turn_samples(trajectories: list[Any]) -> list[Sample]:
    """Every agent turn with a recorded generation (a turn without tokens, e.g. an empty message, is skipped)."""
    samples = []
    for t, trajectory in enumerate(trajectories):
        for k, turn in enumerate(trajectory.generations):
            if turn is None or not turn.generation.completion_ids:
                continue
            samples.append(Sample(chat=trajectory.messages[: turn.context],
                                  completion=list(turn.generation.completion_ids), trajectory=t, turn=k,
                                  reward=float(trajectory.turns[k]["reward"]),
                                  prompt=list(turn.generation.prompt_ids)))
    return samples


def gae(samples: list[Sample], gamma: float, lam: float) -> None:
    """PPO: advantages and returns over each trajectory's turns, from ``old_value`` and ``reward``."""
    by_trajectory: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_trajectory[sample.trajectory].append(sample)
    for turns in by_trajectory.values():
        turns.sort(key=lambda s: s.turn)
        running, next_value = 0.0, 0.0  # the episode ends after its last turn
        for sample in reversed(turns):
            delta = sample.reward + gamma * next_value - sample.old_value
            running = delta + gamma * lam * running
            sample.advantage, sample.ret = running, running + sample.old_value
            next_value = sample.old_value
    values = [s.advantage for s in samples]
    mean, std = statistics.fmean(values), statistics.pstdev(values)
    for sample in samples:
        sample.advantage = (sample.advantage - mean) / (std + 1e-8)


def token_weights(samples: list[Sample], n_trajectories: int, args: Args) -> list[float]:
    """Each sample's weight per token in the batch loss (TRL's ``loss_type``)."""
    if args.loss_type == "dapo":
        total = sum(len(s.completion) for s in samples)
        return [1.0 / max(total, 1)] * len(samples)
    if args.loss_type == "dr_grpo":
        return [1.0 / (n_trajectories * args.max_new_tokens)] * len(samples)
    per_trajectory: dict[int, int] = defaultdict(int)
    for sample in samples:
        per_trajectory[sample.trajectory] += len(sample.completion)
    return [1.0 / (n_trajectories * per_trajectory[s.trajectory]) for s in samples]


# ----------------------------------------------------------------------------- loss


def scoring_units(samples: list[Sample], single_pass: bool) -> list[list[int]]:
    """Sample indices grouped into units scored by one sequence each. With ``single_pass`` a
    trajectory's turns share its last turn's sequence when each earlier turn's prompt and message
    are a prefix of it (the common case: each prompt is the previous one plus the message and the
    tool's reply); a turn that is not (the chat was shortened to fit, or a message's tokens were
    not the ones its text re-tokenizes to) is a unit of its own. The last turn comes first."""
    by_trajectory: dict[int, list[int]] = defaultdict(list)
    for i, sample in enumerate(samples):
        by_trajectory[sample.trajectory].append(i)
    units = []
    for indices in by_trajectory.values():
        indices.sort(key=lambda i: samples[i].turn)
        if not single_pass:
            units += [[i] for i in indices]
            continue
        last = samples[indices[-1]]
        whole = last.prompt + last.completion
        unit = [indices[-1]]
        for i in indices[:-1]:
            sequence = samples[i].prompt + samples[i].completion
            if samples[i].prompt and whole[: len(sequence)] == sequence:
                unit.append(i)
            else:
                units.append([i])
        units.append(unit)
    return units


def score(model: Any, processor: Any, samples: list[Sample], units: list[list[int]], args: Args,
          states: bool) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Log-probabilities of each sample's message (and, with ``states``, the hidden state before
    it), by sample index, from one teacher-forced pass over the units' sequences."""
    from agents.llm import score_completions

    heads = [samples[unit[0]] for unit in units]
    spans = [[(len(samples[i].prompt), len(samples[i].completion)) for i in unit[1:]] for unit in units]
    scored = score_completions(model, processor, [s.chat for s in heads], [s.completion for s in heads],
                               temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                               prompt_states=states, spans=spans)
    logprobs: dict[int, torch.Tensor] = {}
    hidden: dict[int, torch.Tensor] = {}
    for u, unit in enumerate(units):
        logprobs[unit[0]] = scored.logprobs[u]
        assert scored.span_logprobs is not None
        logprobs.update(zip(unit[1:], scored.span_logprobs[u]))
        if states:
            assert scored.prompt_states is not None and scored.span_states is not None
            hidden[unit[0]] = scored.prompt_states[u]
            hidden.update(zip(unit[1:], scored.span_states[u]))
    return logprobs, hidden


def split_evenly(units: list[list[int]], parts: int) -> list[list[list[int]]]:
    """Units in ``parts`` minibatches of as equal a number of units as can be, in order."""
    bounds = [round(k * len(units) / parts) for k in range(parts + 1)]
    return [units[bounds[k]:bounds[k + 1]] for k in range(parts)]


def pack(units: list[list[int]], size: int) -> list[list[list[int]]]:
    """Units in chunks of at most ``size`` turns (a unit is never split: one pass scores it whole)."""
    chunks: list[list[list[int]]] = [[]]
    for unit in units:
        if chunks[-1] and sum(len(u) for u in chunks[-1]) + len(unit) > size:
            chunks.append([])
        chunks[-1].append(unit)
    return [chunk for chunk in chunks if chunk]


def main(args: Args) -> None:
    from accelerate import Accelerator
    from torch.utils.tensorboard import SummaryWriter
    from tqdm.auto import tqdm

    from benchmarks.run import tool_call_counts
    from genagent_env.vector import GenAgentVectorEnv

    if args.group_size < 2 or args.rollouts_per_task < args.group_size:
        raise ValueError("need 2 <= group_size <= rollouts_per_task (a group of one has no advantage)")
    if not 1 <= args.num_minibatches <= args.tasks_per_step * args.group_size:
        raise ValueError(f"--num-minibatches must be between 1 and the trajectories a process keeps per step "
                         f"({args.tasks_per_step} tasks x {args.group_size} = {args.tasks_per_step * args.group_size})")
    if args.update_epochs < 1:
        raise ValueError("--update-epochs must be at least 1")
    if len(args.suite_shares) != len(args.suites):
        raise ValueError(f"--suite-shares has {len(args.suite_shares)} values for {len(args.suites)} suites")
    torch.set_num_threads(args.threads)
    accelerator = Accelerator()
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    state_dir = args.out / "training_state"

    model, processor = load_policy(args)
    reference = None
    if args.kl_coef > 0:  # the starting model, frozen (with LoRA: the base, adapters off)
        reference = None if args.lora_rank > 0 else copy.deepcopy(model).eval().requires_grad_(False)
    if args.lora_rank > 0:
        model = with_lora(model, args.lora_rank)
    hidden = int(model.config.get_text_config().hidden_size)
    value_head = torch.nn.Linear(hidden, 1)
    torch.nn.init.zeros_(value_head.weight)
    torch.nn.init.zeros_(value_head.bias)
    parameters = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": args.lr}]
    if args.algo == "ppo":
        parameters.append({"params": list(value_head.parameters()), "lr": args.value_lr})
    optimizer = torch.optim.AdamW(parameters, weight_decay=0.0, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / max(1, args.warmup)))
    # The model is not wrapped for DDP: rollouts and scoring call it directly, and the gradients are
    # averaged across processes by hand before each optimizer step (see sync_gradients).
    policy = model.to(accelerator.device)
    value_head = value_head.to(accelerator.device)
    optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    step, spent = 0, 0.0
    if (state_dir / "step.json").exists():
        from safetensors.torch import load_model

        accelerator.load_state(str(state_dir))  # optimizer, scheduler, RNG states
        load_model(policy, str(state_dir / "policy.safetensors"))
        load_model(value_head, str(state_dir / "value_head.safetensors"))
        saved = json.loads((state_dir / "step.json").read_text())
        step, spent = int(saved["step"]), float(saved["spent"])
        accelerator.print(f"resumed at step {step}")

    weights = {"outcome": args.outcome_weight, "reflection": args.reflection_weight,
               "format_penalty": args.format_penalty}
    envs = {suite: GenAgentVectorEnv(args.num_envs, suite=suite, split="train", generators=args.generator,
                                     scorer=args.scorer, max_rounds=args.max_rounds, reward_weights=weights,
                                     autoreset_mode="disabled")
            for suite in dict.fromkeys(args.suites)}
    sizes = {suite: len(vector_env.config.tasks) for suite, vector_env in envs.items()}
    writer = SummaryWriter(str(args.out / "tensorboard")) if accelerator.is_main_process else None
    log = (args.out / "steps.jsonl").open("a", encoding="utf-8") if accelerator.is_main_process else None
    clock = time.time() - spent
    progress = tqdm(total=args.steps, initial=step, disable=not accelerator.is_main_process, desc=args.algo)

    while step < args.steps and time.time() - clock < args.minutes * 60:
        # 1. Rollouts: the current policy, sampling; tasks and seeds from (seed, step, process) only.
        started = time.time()
        policy.eval()
        drawn = draw_tasks(args, step, accelerator.process_index, sizes)
        agent = rollout_agent(policy, processor, args,
                              seed=random.Random(f"agent/{args.seed}/{step}/{accelerator.process_index}").randrange(2**62))
        groups = play(envs, agent, drawn, args.shared_env_seed)
        rollout_s = time.time() - started

        # 2. Resampling by number of turns, then 3. advantages.
        rng = random.Random(f"resample/{args.seed}/{step}/{accelerator.process_index}")
        kept: list[Any] = []
        trajectory_advantages: list[float] = []
        silent_groups = 0
        for group in groups:
            chosen = (resample_by_turns(group.trajectories, args.group_size, rng) if args.resample
                      else group.trajectories)
            kept += chosen
            silent_groups += not has_signal([t.reward for t in chosen])
            trajectory_advantages += group_advantages([t.reward for t in chosen], args.scale_rewards)
        samples = turn_samples(kept)
        for sample in samples:
            sample.advantage = trajectory_advantages[sample.trajectory]
        n_traj = len(kept)
        weights_per_token = token_weights(samples, n_traj, args)
        units = scoring_units(samples, args.single_pass)

        # 4. Loss and update. The first pass (no gradients) gives the old log-probs and values.
        policy.train()
        if args.update_epochs > 1 or args.num_minibatches > 1 or args.algo == "ppo":
            with torch.no_grad():
                for chunk in pack(units, args.chunk_size):
                    logprobs, states = score(policy, processor, samples, chunk, args, states=args.algo == "ppo")
                    for i, scored in logprobs.items():
                        samples[i].old_logprobs = scored.detach()
                    if args.algo == "ppo":
                        values = value_head(torch.stack(list(states.values())).float()).squeeze(-1).tolist()
                        for i, value in zip(states, values):
                            samples[i].old_value = float(value)
            if args.algo == "ppo":
                gae(samples, args.gamma, args.gae_lambda)
        stats: dict[str, list[float]] = defaultdict(list)
        high = args.epsilon if args.epsilon_high is None else args.epsilon_high
        shuffler = random.Random(f"order/{args.seed}/{step}")
        # Each minibatch's loss is scaled up to a whole batch's, so the step size does not depend
        # on how the batch is split (the token weights sum over the whole batch).
        minibatch_scale = float(args.num_minibatches)
        for _ in range(args.update_epochs):
            order = list(units)
            shuffler.shuffle(order)
            for minibatch in split_evenly(order, args.num_minibatches):
                for chunk_units in pack(minibatch, args.chunk_size):
                    indices = [i for unit in chunk_units for i in unit]
                    chunk = [samples[i] for i in indices]
                    scored_logprobs, scored_states = score(policy, processor, samples, chunk_units, args,
                                                           states=args.algo == "ppo")
                    loss = torch.zeros((), device=accelerator.device)
                    for i, sample in zip(indices, chunk):
                        logprobs = scored_logprobs[i]
                        old = sample.old_logprobs if sample.old_logprobs is not None else logprobs.detach()
                        ratio = torch.exp(logprobs - old)
                        advantage = torch.tensor(sample.advantage, device=logprobs.device)
                        per_token = -torch.min(ratio * advantage, ratio.clamp(1 - args.epsilon, 1 + high) * advantage)
                        if args.kl_coef > 0:
                            with torch.no_grad():
                                if reference is not None:
                                    ref = score(reference, processor, [sample], [[0]], args, states=False)[0][0]
                                else:
                                    with policy.disable_adapter():
                                        ref = score(policy, processor, [sample], [[0]], args, states=False)[0][0]
                            kl = torch.exp(ref - logprobs) - (ref - logprobs) - 1
                            per_token = per_token + args.kl_coef * kl
                            stats["kl"].append(float(kl.detach().mean()))
                        loss = loss + minibatch_scale * weights_per_token[i] * per_token.sum()
                        stats["clipfrac"].append(float(((ratio.detach() - 1).abs() > args.epsilon).float().mean()))
                        stats["ratio"].append(float(ratio.detach().mean()))
                    if args.algo == "ppo":
                        values = value_head(torch.stack([scored_states[i] for i in indices]).float()).squeeze(-1)
                        returns = torch.tensor([s.ret for s in chunk], device=values.device)
                        value_loss = minibatch_scale * 0.5 * ((values - returns) ** 2).sum() / max(len(samples), 1)
                        loss = loss + args.vf_coef * value_loss
                        stats["value"].append(float(value_loss.detach()) / minibatch_scale * len(samples) / len(chunk))
                    stats["loss"].append(float(loss.detach()) / minibatch_scale)
                    accelerator.backward(loss)
                trained = [p for group in parameters for p in group["params"]]
                sync_gradients(accelerator, trained)
                torch.nn.utils.clip_grad_norm_(trained, args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
        scheduler.step()
        step += 1

        # 5. Logs, checkpoint, evaluation.
        components = defaultdict(list)
        for trajectory in kept:
            for key, value in trajectory.reward_components.items():
                components[key].append(float(value))
        calls = [tool_call_counts(t.turns, len(t.rounds)) for t in kept]
        record = {
            "step": step, "tasks": [[suite, index] for suite, index, _ in drawn],
            "seeds": [seeds for _, _, seeds in drawn],
            "reward": statistics.fmean(t.reward for t in kept),
            "reward_all_rollouts": statistics.fmean(t.reward for g in groups for t in g.trajectories),
            # TRL's name: the share of groups with one reward for all, so no GRPO gradient
            "frac_reward_zero_std": silent_groups / max(len(groups), 1),
            "passed": statistics.fmean(float(t.passed) for t in kept),
            "turns": statistics.fmean(len(t.turns) for t in kept),
            "tool_call_failure_rate": sum(failed for _, failed in calls) / max(sum(n for n, _ in calls), 1),
            "format_violations": statistics.fmean(float(t.violations > 0) for t in kept),
            "loss": sum(stats["loss"]),
            "rollout_s": rollout_s, "step_s": time.time() - started,
            "rewards": {key: statistics.fmean(values) for key, values in components.items()},
            "agent_tokens": sum(len(s.completion) for s in samples),
            # the share of tokens whose ratio left the clip range: how far the minibatches and epochs
            # after the first moved the policy away from the one that played the rollouts
            "clipfrac": statistics.fmean(stats["clipfrac"]) if stats["clipfrac"] else 0.0,
            "optimizer_steps": args.update_epochs * args.num_minibatches,
        }
        if log is not None and writer is not None:
            log.write(json.dumps(record) + "\n")
            log.flush()
            writer.add_scalar("charts/reward", record["reward"], step)
            writer.add_scalar("charts/passed", record["passed"], step)
            writer.add_scalar("charts/turns_per_trajectory", record["turns"], step)
            writer.add_scalar("charts/frac_reward_zero_std", record["frac_reward_zero_std"], step)
            writer.add_scalar("charts/tool_call_failure_rate", record["tool_call_failure_rate"], step)
            writer.add_scalar("charts/learning_rate", scheduler.get_last_lr()[0], step)
            writer.add_scalar("charts/rollout_tokens_per_s", record["agent_tokens"] / max(rollout_s, 1e-9), step)
            for key, value in record["rewards"].items():
                writer.add_scalar(f"rewards/{key}", value, step)
            for key, values in stats.items():
                writer.add_scalar(f"losses/{key}", statistics.fmean(values) if key != "loss" else sum(values), step)
        progress.update(1)
        progress.set_postfix(reward=f"{record['reward']:.3f}", passed=f"{record['passed']:.2f}",
                             turns=f"{record['turns']:.2f}")
        if step % args.save_every == 0 or step >= args.steps:
            save(accelerator, policy, value_head, processor, state_dir, step, time.time() - clock)
        if args.eval_every and step % args.eval_every == 0:
            paused = time.time()
            evaluate(args, accelerator, policy, processor, step, writer)
            clock += time.time() - paused  # evaluations do not count against the budget
    progress.close()
    save(accelerator, policy, value_head, processor, state_dir, step, time.time() - clock)
    for vector_env in envs.values():
        vector_env.close()
    if accelerator.is_main_process:
        final = policy.merge_and_unload() if args.lora_rank > 0 else policy
        final.save_pretrained(args.out, safe_serialization=True)
        processor.save_pretrained(args.out)
        (args.out / "grpo_args.json").write_text(json.dumps(
            {**asdict(args), "out": str(args.out), "steps_done": step, "minutes": (time.time() - clock) / 60},
            indent=2))
        print(f"saved {args.out} after {step} steps in {(time.time() - clock) / 60:.1f} min", flush=True)


def sync_gradients(accelerator: Any, parameters: list[torch.nn.Parameter]) -> None:
    """Average the gradients over processes (what DDP does), each having trained on its own tasks."""
    if accelerator.num_processes == 1:
        return
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        parameter.grad = accelerator.reduce(parameter.grad, reduction="mean")


def save(accelerator: Any, policy: Any, value_head: Any, processor: Any, state_dir: Path, step: int,
         spent: float) -> None:
    """A checkpoint a rerun resumes from: the weights and value head (safetensors), the optimizer,
    scheduler and RNG states (``accelerate``'s state), the tokenizer, and the step."""
    import shutil

    from safetensors.torch import save_model

    # Written beside the last checkpoint and swapped in whole: an interruption mid-save leaves the last one.
    fresh, stale = state_dir.with_name(state_dir.name + ".new"), state_dir.with_name(state_dir.name + ".old")
    accelerator.wait_for_everyone()
    accelerator.save_state(str(fresh))
    if accelerator.is_main_process:
        save_model(policy, str(fresh / "policy.safetensors"))
        save_model(value_head, str(fresh / "value_head.safetensors"))
        processor.save_pretrained(fresh)
        (fresh / "step.json").write_text(json.dumps({"step": step, "spent": spent}))
        shutil.rmtree(stale, ignore_errors=True)
        if state_dir.exists():
            state_dir.rename(stale)
        fresh.rename(state_dir)
        shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()


def evaluate(args: Args, accelerator: Any, policy: Any, processor: Any, step: int, writer: Any) -> None:
    """The policy, greedy, on the test split through the benchmark runner; the overall score to TensorBoard."""
    from agents.llm import LLMAgent
    from benchmarks.results import load_results
    from benchmarks.run import Args as RunArgs
    from benchmarks.run import run

    if not accelerator.is_main_process:
        return
    policy.eval()
    agent = LLMAgent(policy, processor, max_new_tokens=args.max_new_tokens, name=f"step-{step}")
    folder = args.out / "eval" / f"step-{step}"
    run(RunArgs(agents=(agent.name,), generators=(args.generator,), max_rounds=(args.max_rounds,), seeds=1,
                suite=args.eval_suite, limit=args.eval_limit, out=folder, save_images="none", quiet=True),
        agents={agent.name: agent})
    records = load_results(folder)
    passed = statistics.fmean(float(r["passed"]) for r in records) if records else math.nan
    print(f"step {step}: {args.eval_suite} test pass rate {passed:.3f} ({len(records)} episodes)", flush=True)
    if writer is not None:
        writer.add_scalar(f"eval/{args.eval_suite}_passed", passed, step)
    policy.train()


if __name__ == "__main__":
    main(tyro.cli(Args))
