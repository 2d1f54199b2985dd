"""Pretrain the eyes of ``genagent-tiny`` on ShapesWorld renders, from image-only targets.

    python examples/pretrain_perception.py                       # about 20 minutes on 2 CPU cores
    python examples/pretrain_perception.py --minutes 2 --train-images 4000   # a quick look

Renders scenes with the ShapesWorld generator from the *train* prompts of ``shapes-geneval`` and
the literal rewrites of ``shapes-wise`` (weak, medium and strong presets, so scenes include the
generators' mistakes), keeps each image's scene record (what was really drawn), and trains
:class:`agents.tiny.perception.ShapesPerception` to predict per-class density maps and a size map.
The task text is never shown. Evaluation renders scenes from the *test* prompts with other seeds
and reports, per attribute: exact scenes (every class count right), class × colour found, counts,
positions (the half an object group is in) and sizes (which of two groups is larger).
Writes ``<out>/perception.safetensors`` (and ``state.pt`` to resume; rerunning resumes), and
TensorBoard logs under ``<out>/tensorboard``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro


@dataclass
class Args:
    seed: int = 0
    """seed of the renders' seeds, the weights and the batch order"""
    train_images: int = 40_000
    """rendered training scenes (a fixed set: learning is checked on it before anything else)"""
    eval_images: int = 2_000
    """held-out scenes rendered from the test prompts"""
    minutes: float = 20.0
    """training budget in minutes (the learning rate follows a cosine over it)"""
    batch_size: int = 64
    """images per step"""
    lr: float = 3e-3
    """peak AdamW learning rate"""
    width: int = 48
    """CNN width"""
    threads: int = 2
    """torch CPU threads"""
    out: Path = Path("runs/perception")
    """checkpoint, metrics and TensorBoard folder"""


def render_set(prompts: list[str], n: int, seed: int) -> tuple[np.ndarray, list[dict]]:
    """``n`` scenes from ``prompts`` (cycled), alternating the three presets; uint8 images and records."""
    from genagent_env.shapes.generator import ShapesGenerator
    from genagent_env.tools.base import GenerationRequest

    generators = [ShapesGenerator(preset) for preset in ("weak", "medium", "strong")]
    rng = np.random.default_rng(seed)
    images, records = np.zeros((n, 128, 128, 3), np.uint8), []
    for start in range(0, n, 500):
        chunk = range(start, min(start + 500, n))
        requests = [GenerationRequest(prompts[int(rng.integers(len(prompts)))], int(rng.integers(2**32)))
                    for _ in chunk]
        for i, request in zip(chunk, requests):
            image, record = generators[i % 3].generate_with_records([request])[0]
            images[i] = np.asarray(image)
            records.append(record)
    return images, records


def prompts_of(split: str) -> list[str]:
    from genagent_env.shapes.suite import make_shapes_geneval
    from genagent_env.shapes.wise_suite import make_shapes_wise

    geneval = [t["prompt"] for t in make_shapes_geneval(split)]
    return geneval + [t["wise"]["Explanation"] for t in make_shapes_wise(split)]


def evaluate(model: torch.nn.Module, images: np.ndarray, records: list[dict]) -> dict[str, float]:
    """Per-attribute accuracy of the slots read from the model's maps against the scene records."""
    from agents.tiny.perception import read_slots, to_tensor

    model.eval()
    slots = []
    with torch.no_grad():
        for start in range(0, len(images), 256):
            density, size = model(to_tensor(list(images[start : start + 256])))
            slots += read_slots(density, size)
    model.train()
    exact = found = found_total = counts_ok = counts_total = pos_ok = pos_total = size_ok = size_total = 0
    for record, seen in zip(records, slots):
        truth: dict[tuple[str, str], list[dict]] = {}
        for obj in record["objects"]:
            truth.setdefault((obj["class"], obj["color"]), []).append(obj)
        got = {(s.shape, s.colour): s for s in seen}
        exact += {k: len(v) for k, v in truth.items()} == {k: s.count for k, s in got.items()}
        for key, objs in truth.items():
            found_total += 1
            found += key in got
            counts_total += 1
            counts_ok += key in got and got[key].count == len(objs)
            for names, coord in ((("left", "right"), 0), (("above", "below"), 1)):
                values = [o["centroid"][coord] for o in objs]
                half = names[0] if max(values) < 64 else names[1] if min(values) >= 64 else None
                if half is not None and key in got:
                    share = got[key].halves[0] if coord == 0 else got[key].halves[2]
                    pos_total += 1
                    pos_ok += (names[0] if share >= 0.5 else names[1]) == half
        keys = [k for k in truth if k in got]
        for a in range(len(keys)):
            for b in range(a + 1, len(keys)):
                area_a = np.mean([o["area"] for o in truth[keys[a]]])
                area_b = np.mean([o["area"] for o in truth[keys[b]]])
                if max(area_a, area_b) > 1.5 * min(area_a, area_b):
                    size_total += 1
                    size_ok += (area_a > area_b) == (got[keys[a]].size > got[keys[b]].size)
    return {"exact_scene": exact / len(records), "class_colour_found": found / max(found_total, 1),
            "count": counts_ok / max(counts_total, 1), "position": pos_ok / max(pos_total, 1),
            "size": size_ok / max(size_total, 1)}


def main(args: Args) -> None:
    from safetensors.torch import save_file
    from torch.utils.tensorboard import SummaryWriter

    from agents.tiny.perception import ShapesPerception, perception_loss, scene_targets, to_tensor

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"rendering {args.train_images} training and {args.eval_images} held-out scenes ...", flush=True)
    train_images, train_records = render_set(prompts_of("train"), args.train_images, args.seed)
    eval_images, eval_records = render_set(prompts_of("test"), args.eval_images, 10_000 + args.seed)
    targets = [scene_targets(r) for r in train_records]
    density = torch.from_numpy(np.stack([t[0] for t in targets]))
    size = torch.from_numpy(np.stack([t[1] for t in targets]))
    print(f"rendered in {time.time() - started:.0f} s", flush=True)

    model = ShapesPerception(args.width)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    state_path = args.out / "state.pt"
    step, spent = 0, 0.0
    if state_path.exists():  # resume: weights, optimizer, step, time spent, RNG
        state = torch.load(state_path, weights_only=True)  # tensors, dicts and numbers only
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, spent = state["step"], state["spent"]
        torch.set_rng_state(state["rng"])
        print(f"resumed at step {step} ({spent / 60:.1f} of {args.minutes} minutes)", flush=True)
    writer = SummaryWriter(str(args.out / "tensorboard"))
    budget = args.minutes * 60
    clock = time.time() - spent
    last_print = 0.0
    while time.time() - clock < budget:
        order = torch.randperm(len(train_images))
        for start in range(0, len(order) - args.batch_size + 1, args.batch_size):
            elapsed = time.time() - clock
            if elapsed >= budget:
                break
            # A plain float, so the saved state holds no numpy scalar and loads with weights_only=True.
            lr = float(args.lr * 0.5 * (1 + np.cos(np.pi * min(elapsed / budget, 1.0))))
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = order[start : start + args.batch_size]
            pixels = to_tensor(list(train_images[index.numpy()]))
            losses = perception_loss(model.maps(pixels), density[index], size[index])
            optimizer.zero_grad()
            losses["total"].backward()
            optimizer.step()
            step += 1
            if step % 20 == 0:
                for name, value in losses.items():
                    writer.add_scalar(f"losses/{name}", float(value.detach()), step)
                writer.add_scalar("charts/learning_rate", lr, step)
            if elapsed - last_print > 60:
                last_print = elapsed
                metrics = evaluate(model, eval_images[:500], eval_records[:500])
                for name, value in metrics.items():
                    writer.add_scalar(f"eval/{name}", value, step)
                print(f"{elapsed / 60:5.1f} min  step {step}  loss {float(losses['total']):.3f}  "
                      + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                            "spent": elapsed, "rng": torch.get_rng_state()}, state_path)
    metrics = evaluate(model, eval_images, eval_records)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out / "perception.safetensors"),
              metadata={"width": str(args.width)})
    (args.out / "metrics.json").write_text(json.dumps({"step": step, "minutes": (time.time() - clock) / 60,
                                                       "held_out": metrics, "args": str(args)}, indent=2))
    print("held-out renders: " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items()), flush=True)


if __name__ == "__main__":
    main(tyro.cli(Args))
