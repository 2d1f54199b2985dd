"""Train a Stable-Baselines3 PPO policy on ``GenAgent-v0`` through the wrappers (CleanRL-style file).

    python examples/train_sb3_ppo.py                      # train on the train split, evaluate on test
                                                          # (about 20 min on 2 CPU cores: 3 seeds)
    python examples/train_sb3_ppo.py --total-timesteps 20000 --seeds 0
    tensorboard --logdir runs/sb3_ppo

The policy chooses among named prompt strategies (:class:`wrappers.StrategyActions`: send as is,
one clause per object, digits, explicit places, "make sure" focus, re-sample, submit) and sees a
flat ``Dict`` of ``Box`` features (:class:`wrappers.FeatureObservation`: the image, hashed words
and a reading of the request, a reading of its own last prompt, the round counter). SB3's
``MultiInputPolicy`` trains on the ``shapes-geneval`` train split; evaluation runs the 280 test
tasks once per seed and prints the score (mean of the seven per-tag pass rates of the submitted
image) against a uniformly random strategy policy and every fixed single strategy. The saved
model runs in the benchmark as ``python -m benchmarks.run --agents sb3:<model.zip>``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro


@dataclass
class Args:
    total_timesteps: int = 30_000
    """environment steps of PPO training per seed"""
    seeds: tuple[int, ...] = (0, 1, 2)
    """training seeds; the table reports the mean over them"""
    n_envs: int = 4
    """parallel training envs (DummyVecEnv)"""
    n_steps: int = 128
    """PPO rollout length per env"""
    batch_size: int = 128
    """PPO minibatch size"""
    n_epochs: int = 4
    """PPO epochs per rollout"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    ent_coef: float = 0.01
    """entropy bonus"""
    gamma: float = 1.0
    """discount (the reward comes at the end of a 3-step episode)"""
    generator: str = "shapes"
    """the text-to-image tool (a registered generator name)"""
    max_rounds: int = 2
    """tool calls per episode"""
    eval_split: str = "test"
    """split the table is computed on"""
    out_dir: str = "runs/sb3_ppo"
    """where models, TensorBoard logs and results.json go (a rerun reuses the models saved there)"""
    torch_threads: int = 2
    """torch CPU threads"""


def make_env(args: Args, split: str) -> Callable[[], object]:
    """A factory of the wrapped env (strategy actions, feature observations)."""
    from wrappers import make_strategy_env

    return lambda: make_strategy_env(split=split, generators=args.generator, max_rounds=args.max_rounds)


def evaluate(policy: Callable[[dict, dict, np.random.Generator], int], args: Args, seed: int) -> float:
    """Run ``policy(obs, info, rng) -> action`` once on every task of the eval split; return the
    mean of the per-tag pass rates of the submitted images."""
    env = make_env(args, args.eval_split)()
    rng = np.random.default_rng(seed)
    passed: dict[str, list[bool]] = defaultdict(list)
    for index in range(len(env.unwrapped.tasks)):
        obs, info = env.reset(seed=seed * 100_000 + index, options={"task_index": index})
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy(obs, info, rng))
            done = terminated or truncated
        passed[info["tag"]].append(bool(info["passed"]))
    env.close()
    return float(np.mean([np.mean(v) for v in passed.values()]))


def progress_printer(seed: int, total: int, every_s: float = 15.0) -> object:
    """An SB3 callback that prints steps done, rate and time left: first after the first rollout
    (a few seconds), then every ``every_s`` seconds."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def _on_training_start(self) -> None:
            self.started = self.last = time.time()
            self.printed = False

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            now = time.time()
            if self.printed and now - self.last < every_s:
                return
            self.printed, self.last = True, now
            done = self.num_timesteps
            rate = done / max(now - self.started, 1e-9)
            print(f"  seed {seed}: {done}/{total} steps ({100 * done / total:.0f}%), {rate:.0f} steps/s, "
                  f"about {max(total - done, 0) / rate:.0f} s left", flush=True)

    return Progress()


def main(args: Args) -> None:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from wrappers.strategies import DEFAULT_STRATEGIES

    torch.set_num_threads(args.torch_threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = [name for name, _ in DEFAULT_STRATEGIES]
    results: dict[str, list[float]] = defaultdict(list)
    for seed in args.seeds:
        start = time.time()
        saved = out / f"ppo_seed{seed}.zip"
        if saved.exists():  # an interrupted run resumes: a seed whose model was saved is not retrained
            model = PPO.load(saved, device="cpu")
        else:
            print(f"seed {seed}: training PPO for {args.total_timesteps} steps on {args.n_envs} envs "
                  f"(TensorBoard: {out / 'tensorboard'})", flush=True)
            factory = make_env(args, "train")
            venv = DummyVecEnv([lambda f=factory: Monitor(f()) for _ in range(args.n_envs)])  # Monitor: episode stats
            venv.seed(seed)
            model = PPO(
                "MultiInputPolicy", venv, n_steps=args.n_steps, batch_size=args.batch_size, n_epochs=args.n_epochs,
                learning_rate=args.learning_rate, ent_coef=args.ent_coef, gamma=args.gamma, gae_lambda=1.0,
                seed=seed, verbose=0, tensorboard_log=str(out / "tensorboard"), device="cpu",
            )
            model.learn(total_timesteps=args.total_timesteps, tb_log_name=f"seed{seed}",
                        callback=progress_printer(seed, args.total_timesteps))
            model.save(saved)
            venv.close()
        trained = time.time() - start
        print(f"seed {seed}: evaluating on the {args.eval_split} split ({2 + len(names)} policies)", flush=True)

        def ppo_policy(obs: dict, info: dict, rng: np.random.Generator, model: PPO = model) -> int:
            return int(model.predict(obs, deterministic=True)[0])

        results["ppo"].append(evaluate(ppo_policy, args, seed))
        results["random"].append(evaluate(lambda o, i, rng: int(rng.integers(len(names))), args, seed))
        for action, name in enumerate(names):
            results[f"fixed:{name}"].append(evaluate(lambda o, i, rng, a=action: a, args, seed))
        print(f"seed {seed}: trained {args.total_timesteps} steps in {trained:.0f}s; "
              f"ppo {results['ppo'][-1]:.3f}, random {results['random'][-1]:.3f}", flush=True)

    table = {name: float(np.mean(scores)) for name, scores in results.items()}
    fixed = {name: score for name, score in table.items() if name.startswith("fixed:")}
    best_fixed = max(fixed, key=fixed.get)
    print(f"\n{args.eval_split} split, score = mean of per-tag pass rates, mean of {len(args.seeds)} seed(s)")
    print(f"{'policy':<20}{'score':>8}{'per seed':>28}")
    for name in ["ppo", "random", *sorted(fixed, key=fixed.get, reverse=True)]:
        per_seed = " ".join(f"{s:.3f}" for s in results[name])
        mark = "  <- best fixed" if name == best_fixed else ""
        print(f"{name:<20}{table[name]:>8.3f}{per_seed:>28}{mark}")
    print(f"\nppo - random = {table['ppo'] - table['random']:+.3f}; ppo - best fixed ({best_fixed}) = "
          f"{table['ppo'] - table[best_fixed]:+.3f}")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "per_seed": results, "mean": table}, indent=2))


if __name__ == "__main__":
    main(tyro.cli(Args))
