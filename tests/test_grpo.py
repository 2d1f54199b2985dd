"""Multi-turn GRPO/PPO (examples/train_grpo.py): resampling, advantages, token weights, recorded
generations, resuming with the same next batch, and 2 processes under ``accelerate launch``."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from examples.train_grpo import (
    Args,
    Sample,
    gae,
    group_advantages,
    has_signal,
    main,
    play,
    resample_by_turns,
    score,
    scoring_units,
    split_evenly,
    token_weights,
    turn_samples,
)

ROOT = Path(__file__).resolve().parents[1]
#: A few small steps: 2 tasks x 4 rollouts, 2 kept per task, on shapes-geneval only.
SMALL = ["--tasks-per-step", "2", "--rollouts-per-task", "4", "--group-size", "2", "--num-envs", "4",
         "--suites", "shapes-geneval", "--suite-shares", "1", "--threads", "1", "--max-new-tokens", "120"]


def _trajectory(turns: int, reward: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(turns=[{}] * turns, reward=reward)


def test_resampling_spreads_the_kept_rollouts_over_turn_counts():
    rollouts = [_trajectory(2) for _ in range(9)] + [_trajectory(3) for _ in range(2)] + [_trajectory(5)]
    kept = resample_by_turns(rollouts, 8, random.Random(0))
    counts = {n: sum(1 for t in kept if len(t.turns) == n) for n in (2, 3, 5)}
    assert len(kept) == 8 and len({id(t) for t in kept}) == 8
    assert counts == {2: 5, 3: 2, 5: 1}  # every long one is kept; the short ones fill the rest
    even = [_trajectory(2) for _ in range(6)] + [_trajectory(4) for _ in range(6)]
    kept = resample_by_turns(even, 8, random.Random(1))
    assert sorted(len(t.turns) for t in kept) == [2, 2, 2, 2, 4, 4, 4, 4]


def test_group_advantages_are_centred_and_scaled_only_when_asked():
    scaled = group_advantages([1.0, 0.0, 0.0, 1.0], scale=True)
    assert sum(scaled) == pytest.approx(0.0) and scaled[0] == pytest.approx(1.0, rel=1e-3)
    assert group_advantages([1.0, 0.0, 0.0, 1.0], scale=False) == pytest.approx([0.5, -0.5, -0.5, 0.5], rel=1e-3)
    assert group_advantages([0.7, 0.7, 0.7], scale=True) == [0.0, 0.0, 0.0]  # no signal, no gradient
    assert not has_signal([0.7, 0.7, 0.7]) and has_signal([0.7, 0.7, 0.9])


def test_token_weights_average_as_trl_loss_types_do():
    samples = [Sample([], [1] * 3, trajectory=0, turn=0, reward=0.0),
               Sample([], [1] * 1, trajectory=0, turn=1, reward=1.0),
               Sample([], [1] * 6, trajectory=1, turn=0, reward=0.0)]

    def per_trajectory(loss_type: str) -> list[float]:
        weights = token_weights(samples, 2, Args(loss_type=loss_type, max_new_tokens=10))
        totals = [0.0, 0.0]
        for sample, weight in zip(samples, weights):
            totals[sample.trajectory] += weight * len(sample.completion)
        return totals

    assert per_trajectory("grpo") == pytest.approx([0.5, 0.5])  # each trajectory counts the same
    assert per_trajectory("dapo") == pytest.approx([0.4, 0.6])  # each token counts the same
    assert per_trajectory("dr_grpo") == pytest.approx([4 / 20, 6 / 20])  # a constant denominator


def test_gae_over_turns_with_gamma_one_and_lambda_one_is_return_minus_value():
    samples = [Sample([], [1], trajectory=0, turn=k, reward=r) for k, r in enumerate([0.0, 0.0, 1.0])]
    samples += [Sample([], [1], trajectory=1, turn=0, reward=0.2)]
    for sample, value in zip(samples, [0.5, 0.6, 0.8, 0.1]):
        sample.old_value = value
    gae(samples, gamma=1.0, lam=1.0)
    assert [s.ret for s in samples] == pytest.approx([1.0, 1.0, 1.0, 0.2])
    raw = [0.5, 0.4, 0.2, 0.1]  # return minus value, then normalised over the batch
    mean = sum(raw) / 4
    std = (sum((r - mean) ** 2 for r in raw) / 4) ** 0.5
    assert [s.advantage for s in samples] == pytest.approx([(r - mean) / std for r in raw], rel=1e-5)


def test_rollouts_record_each_message_with_the_prompt_it_was_sampled_from():
    from agents.rollout import run_episodes
    from agents.tiny import load_agent
    from genagent_env.vector import GenAgentVectorEnv

    agent = load_agent("tiny-sft", do_sample=True, seed=3)
    envs = GenAgentVectorEnv(3, max_rounds=2, autoreset_mode="disabled")
    trajectories = run_episodes(envs, agent, seed=11, options={"task_index": 7})
    envs.close()
    chats, completions, sampled = [], [], []
    for trajectory in trajectories:
        assert len(trajectory.generations) == len(trajectory.turns)
        for turn, record in zip(trajectory.turns, trajectory.generations):
            assert record is not None and record.generation.text == turn["action"]
            chats.append(trajectory.messages[: record.context])
            completions.append(record.generation.completion_ids)
            sampled.append(record.generation.logprobs)
        assert "generations" not in trajectory.to_dict()
    with torch.no_grad():
        recomputed = agent.completion_logprobs(chats, completions)
    for again, then in zip(recomputed, sampled):
        assert again.tolist() == pytest.approx(then, abs=2e-3)


def test_one_pass_per_trajectory_scores_every_turn_as_a_pass_per_turn_does():
    from agents.rollout import run_episodes
    from agents.tiny import load_agent
    from genagent_env.vector import GenAgentVectorEnv

    agent = load_agent("tiny-sft", do_sample=True, seed=5)
    envs = GenAgentVectorEnv(6, max_rounds=3, generators="shapes-weak", autoreset_mode="disabled")
    trajectories = run_episodes(envs, agent, seed=2, options={"task_index": 3})
    envs.close()
    samples = turn_samples(trajectories)
    units = scoring_units(samples, single_pass=True)
    assert sorted(i for unit in units for i in unit) == list(range(len(samples)))
    assert sum(len(unit) > 1 for unit in units) >= 2  # multi-turn trajectories share a pass
    assert len(units) < len(samples)
    args = Args()
    with torch.no_grad():
        joint, joint_states = score(agent.model, agent.processor, samples, units, args, states=True)
        apart, apart_states = score(agent.model, agent.processor, samples, scoring_units(samples, False), args,
                                    states=True)
    for i, sample in enumerate(samples):
        assert joint[i].shape == (len(sample.completion),)
        assert torch.allclose(joint[i], apart[i], atol=1e-4), i
        assert torch.allclose(joint_states[i], apart_states[i], atol=1e-4), i


def test_a_turn_whose_tokens_are_not_a_prefix_of_the_last_turn_is_scored_on_its_own():
    samples = [Sample(chat=[], completion=[5, 6], trajectory=0, turn=0, reward=0.0, prompt=[1, 2]),
               Sample(chat=[], completion=[9], trajectory=0, turn=1, reward=0.0, prompt=[1, 2, 5, 7, 8]),
               Sample(chat=[], completion=[4], trajectory=0, turn=2, reward=0.0, prompt=[1, 2, 5, 7, 8, 9, 3])]
    assert scoring_units(samples, single_pass=True) == [[0], [2, 1]]  # turn 0's message re-tokenized as 5 7
    assert scoring_units(samples, single_pass=False) == [[0], [1], [2]]


def test_shared_env_seed_gives_a_group_the_same_tool_luck_and_its_own_sampling():
    from agents.tiny import load_agent
    from genagent_env.vector import GenAgentVectorEnv

    # A hot agent, so that the rollouts' sampling differences show within four rollouts.
    agent = load_agent("tiny-sft", do_sample=True, temperature=2.0, seed=5)
    envs = {"shapes-geneval": GenAgentVectorEnv(4, max_rounds=2, autoreset_mode="disabled")}
    drawn = [("shapes-geneval", 7, [101, 202, 303, 404])]
    shared = play(envs, agent, drawn, shared_env_seed=True)[0].trajectories
    apart = play(envs, agent, drawn)[0].trajectories
    envs["shapes-geneval"].close()

    def tool_seeds(trajectory) -> list[int]:
        return [r["seed"] for r in trajectory.rounds]

    # One env seed: the k-th tool call of every rollout draws the same seed ...
    firsts = {tool_seeds(t)[0] for t in shared if t.rounds}
    assert len(firsts) == 1
    # ... while each rollout still samples its own messages.
    assert len({tuple(turn["action"] for turn in t.turns) for t in shared}) > 1
    # Without it, each rollout has an env seed of its own.
    assert len({tool_seeds(t)[0] for t in apart if t.rounds}) > 1


def _run(out: Path, *extra: str, steps: int) -> list[dict]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(ROOT / "examples" / "train_grpo.py"), "--out", str(out), "--steps", str(steps),
               "--save-every", "1", *SMALL, *extra]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]


def test_a_resumed_run_continues_with_the_same_batch_and_optimizer_state(tmp_path: Path):
    from safetensors.torch import load_file

    straight = _run(tmp_path / "straight", steps=2)
    _run(tmp_path / "resumed", steps=1)
    resumed = _run(tmp_path / "resumed", steps=2)
    assert [r["step"] for r in resumed] == [1, 2]  # step 1 is not played again
    for record in straight:  # 2 groups a step; a step whose groups all lack signal has nothing to learn
        assert record["frac_reward_zero_std"] in (0.0, 0.5, 1.0)
        assert record["frac_reward_zero_std"] < 1.0 or record["loss"] == 0.0
    for key in ("tasks", "seeds", "reward", "turns", "agent_tokens"):
        assert resumed[1][key] == straight[1][key], key
    assert resumed[1]["loss"] == pytest.approx(straight[1]["loss"], abs=1e-6)
    a = load_file(str(tmp_path / "straight" / "training_state" / "policy.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "training_state" / "policy.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    first = load_file(str(tmp_path / "straight" / "model.safetensors"))
    start = load_file(str(ROOT / "agents" / "tiny" / "checkpoints" / "tiny-sft" / "model.safetensors"))
    assert any(not torch.equal(first[k], start[k]) for k in start if k in first)  # it trained


def test_minibatches_split_every_unit_once_in_near_equal_parts():
    units = [[i] for i in range(10)]
    parts = split_evenly(units, 4)
    assert len(parts) == 4 and {len(p) for p in parts} == {2, 3}
    assert [u for p in parts for u in p] == units
    assert split_evenly(units, 1) == [units]


def test_each_minibatch_is_an_optimizer_step(tmp_path: Path):
    records = _run(tmp_path / "minibatches", "--num-minibatches", "2", steps=1)
    assert records[0]["optimizer_steps"] == 2
    optimizer = torch.load(str(tmp_path / "minibatches" / "training_state" / "optimizer.bin"), weights_only=True)
    assert {float(state["step"]) for state in optimizer["state"].values()} == {2.0}
    with pytest.raises(ValueError, match="num-minibatches"):
        main(Args(num_minibatches=99, tasks_per_step=2, group_size=2, rollouts_per_task=4, out=tmp_path / "bad"))


def test_ppo_with_a_value_head_runs_and_saves_it(tmp_path: Path):
    from safetensors.torch import load_file

    records = _run(tmp_path / "ppo", "--algo", "ppo", steps=1)
    assert records[0]["step"] == 1
    head = load_file(str(tmp_path / "ppo" / "training_state" / "value_head.safetensors"))
    assert float(head["bias"].abs().sum()) > 0  # the value head moved from its zero start


def test_two_processes_under_accelerate_launch(tmp_path: Path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
               str(ROOT / "examples" / "train_grpo.py"), "--out", str(tmp_path / "ddp"), "--steps", "1", *SMALL]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "ddp" / "model.safetensors").is_file()
    assert len((tmp_path / "ddp" / "steps.jsonl").read_text().splitlines()) == 1  # the main process logs
