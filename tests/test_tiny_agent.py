"""genagent-tiny: perception targets and slots, the processor, the loss mask, SFT steps, loading."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.tiny.perception import ShapesPerception, class_index, read_slots, scene_targets

ROOT = Path(__file__).resolve().parents[1]


def test_scene_targets_hold_one_unit_of_mass_per_object_where_it_is():
    record = {"width": 128, "height": 128, "objects": [
        {"class": "circle", "color": "red", "centroid": (20.0, 30.0), "area": 550},
        {"class": "circle", "color": "red", "centroid": (40.0, 100.0), "area": 550},
        {"class": "star", "color": "blue", "centroid": (110.0, 20.0), "area": 900},
    ]}
    density, size = scene_targets(record)
    red, blue = class_index("circle", "red"), class_index("star", "blue")
    assert density[red].sum() == pytest.approx(2.0) and density[blue].sum() == pytest.approx(1.0)
    assert density.sum() == pytest.approx(3.0)
    slots = read_slots(torch.from_numpy(density)[None], torch.from_numpy(size)[None])[0]
    assert [(s.shape, s.colour, s.count) for s in slots] == [("circle", "red", 2), ("star", "blue", 1)]
    assert slots[0].position(0.99) == "left" and slots[1].halves[1] == pytest.approx(1.0)  # all on the right
    assert slots[1].size > slots[0].size  # the star is bigger


def _perception_file(tmp_path: Path) -> Path:
    from safetensors.torch import save_file

    path = tmp_path / "perception.safetensors"
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in ShapesPerception(16).state_dict().items()}, str(path))
    return path


def _teacher_chat(rounds: int = 2):
    import gymnasium as gym

    from agents import run_episode
    from agents.llm import chat_images, chat_messages
    from agents.tiny.teacher import DescribeFirstTeacher

    env = gym.make("genagent_env:GenAgent-v0", max_rounds=rounds, privileged=True)
    trajectory = run_episode(env, DescribeFirstTeacher(), seed=5, options={"task_index": 40})
    return chat_messages(trajectory.messages, True), chat_images(trajectory.messages), trajectory


def test_the_loss_mask_covers_exactly_the_agents_tokens():
    from agents.tiny.processor import END, TinyProcessor, render_chat, train_tokenizer
    from examples.train_sft import encode

    messages, images, trajectory = _teacher_chat()
    processor = TinyProcessor(train_tokenizer([render_chat(messages)] * 3, vocab_size=400))
    ids, mask, extras = encode(processor, messages, images)
    assert len(ids) == len(mask) and extras["pixel_values"].shape[0] == len(images) == len(trajectory.images)
    tokenizer = processor.tokenizer
    trained = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    wanted = "".join(turn["action"] + END + "\n" for turn in trajectory.turns)
    assert trained == wanted  # every agent token, and nothing of system, user, tool or image tokens
    assert processor.slot_token_id not in [t for t, m in zip(ids, mask) if m]


def test_a_datasets_images_are_kept_as_bytes_and_come_back_bit_for_bit():
    from agents.tiny.perception import to_tensor
    from agents.tiny.processor import TinyProcessor, render_chat, train_tokenizer
    from examples.train_sft import Bytes255, collate, encode

    messages, images, _ = _teacher_chat()

    processor = TinyProcessor(train_tokenizer([render_chat(messages)] * 3, vocab_size=400))
    sample = encode(processor, messages, images)
    packed = sample[2]["pixel_values"]
    assert isinstance(packed, Bytes255) and packed.data.dtype == torch.uint8
    batch = collate([sample, sample], processor.tokenizer.pad_token_id)
    assert torch.equal(batch["pixel_values"], torch.cat([to_tensor(images)] * 2))  # the model sees the same floats
    normalised = torch.randn(2, 3, 8, 8)  # e.g. a VLM processor's mean/std-normalised pixels: kept as they are
    assert Bytes255.pack(normalised) is normalised
    assert Bytes255.pack(torch.full((1, 3), 0.5)).dtype == torch.float32  # 0.5 is not k/255


def test_the_template_quotes_tool_names_as_a_tool_call_does_and_older_folders_keep_their_template(tmp_path: Path):
    from agents.tiny.processor import PROCESSOR_FILE, TinyProcessor, render_chat, train_tokenizer
    from examples.train_sft import renamed_tool

    messages = renamed_tool(_teacher_chat()[0], "shapes-medium", "my_tool-2")
    processor = TinyProcessor(train_tokenizer([render_chat(messages)] * 3, vocab_size=400))
    text = processor.apply_chat_template(messages)
    assert 'tools: "my_tool-2", rounds: 2' in text
    tokenizer = processor.tokenizer
    system = tokenizer.tokenize('tools: "my_tool-2", rounds: 2')
    call = tokenizer.tokenize('{"name": "my_tool-2", "arguments": {}}')
    name = tokenizer.tokenize(' "my_tool-2",')
    # The name and the tokens around it are the same in both, so copying it copies where it ends.
    assert any(system[i : i + len(name)] == name for i in range(len(system)))
    assert any(call[i : i + len(name)] == name for i in range(len(call)))

    processor.save_pretrained(tmp_path / "new")
    assert TinyProcessor.from_pretrained(tmp_path / "new").apply_chat_template(messages) == text
    (tmp_path / "new" / PROCESSOR_FILE).unlink()  # a folder saved before names were quoted
    old = TinyProcessor.from_pretrained(tmp_path / "new")
    assert "tools: my_tool-2; rounds: 2" in old.apply_chat_template(messages)


def test_captions_are_the_teachers_descriptions_of_each_image_with_the_loss_on_the_description_only():
    import gymnasium as gym

    from agents import run_episode
    from agents.llm import chat_images, chat_messages
    from agents.tiny.processor import TinyProcessor, render_chat, train_tokenizer
    from agents.tiny.teacher import DescribeFirstTeacher
    from examples.train_sft import captions, encode_caption

    env = gym.make("genagent_env:GenAgent-v0", max_rounds=2, privileged=True, generators="shapes-weak")
    trajectory = next(t for t in (run_episode(env, DescribeFirstTeacher(judge_style="checks"), seed=5,
                                              options={"task_index": i}) for i in range(40)) if len(t.images) == 2)
    messages, images = chat_messages(trajectory.messages, True), chat_images(trajectory.messages)
    pairs = captions([(messages, images)])
    judgments = [r["judge"] for r in trajectory.rounds]
    assert len(pairs) == len(images) == len(judgments) == 2
    for k, ((turns, caption, image), judge) in enumerate(zip(pairs, judgments), start=1):
        assert image is images[k - 1] and [t["role"] for t in turns] == ["tool"]
        assert caption.startswith(f"<judge>image_{k} shows ") and caption.endswith(".")
        assert judge.startswith(caption.removeprefix("<judge>"))  # the description, without the checks
    processor = TinyProcessor(train_tokenizer([render_chat(messages)] * 3, vocab_size=400))
    ids, mask, extras = encode_caption(processor, *pairs[1])
    assert processor.tokenizer.decode([t for t, m in zip(ids, mask) if m]) == pairs[1][1]
    assert extras["pixel_values"].shape[0] == 1


def test_rewrite_samples_are_each_chats_first_message_once_with_the_loss_on_that_message_only():
    from agents.tiny.processor import END, TinyProcessor, render_chat, train_tokenizer
    from examples.train_sft import encode, first_messages

    messages, images, trajectory = _teacher_chat()
    other, other_images, _ = _teacher_chat(rounds=1)
    heads = first_messages([(messages, images), (messages, images), (other, other_images)])
    # The same chat twice is kept once; the 1-round episode's system prompt says so: a chat of its own.
    assert len(heads) == 2 and heads[0] == messages[:3] and heads[1] == other[:3]
    head = heads[0]
    assert [m["role"] for m in head] == ["system", "user", "assistant"]
    processor = TinyProcessor(train_tokenizer([render_chat(messages)] * 3, vocab_size=400))
    ids, mask, extras = encode(processor, head, [])
    assert processor.tokenizer.decode([t for t, m in zip(ids, mask) if m]) == trajectory.turns[0]["action"] + END + "\n"
    assert "pixel_values" not in extras  # no image is drawn before the first tool call


def test_the_first_message_weight_marks_exactly_the_first_agent_message_and_weight_one_is_the_models_loss(
        tmp_path: Path):
    import agents.tiny  # noqa: F401  (registers the model type)
    from agents.tiny.processor import END, render_chat
    from examples.train_sft import Args, build_tiny, collate, encode, first_message_tokens, main, weighted_loss

    messages, images, trajectory = _teacher_chat()
    args = Args(perception=_perception_file(tmp_path), perception_width=16, hidden_size=64, layers=2, heads=2,
                vocab_size=400)
    model, processor = build_tiny(args, [render_chat(messages)] * 3)
    head = messages[:3]  # a shorter sample in the same batch: right padding must not shift its marks
    samples = [encode(processor, messages, images), encode(processor, head, [])]
    batch = collate(samples, processor.tokenizer.pad_token_id)
    first = first_message_tokens(batch["labels"])
    for row in range(2):
        marked = batch["input_ids"][row][first[row]].tolist()
        assert processor.tokenizer.decode(marked) == trajectory.turns[0]["action"] + END + "\n"
    assert len(trajectory.turns) > 1 and first.sum() < (batch["labels"] != -100).sum()

    logits = model(**batch).logits
    same = weighted_loss(logits, batch["labels"], first, 1.0)
    assert same.item() == pytest.approx(model(**batch).loss.item(), rel=1e-5)
    heavier = weighted_loss(logits, batch["labels"], first, 4.0)
    without_first = weighted_loss(logits, batch["labels"], first, 0.0)
    assert heavier.item() > same.item() > without_first.item() > 0  # only the first message's share grows

    with pytest.raises(ValueError, match="first-message-weight"):  # before any teacher episode is played
        main(Args(first_message_weight=-1.0, out=tmp_path / "never"))


def test_sft_steps_lower_the_loss_and_the_checkpoint_loads_as_an_agent(tmp_path: Path):
    import gymnasium as gym

    import agents.tiny  # noqa: F401  (registers the model type)
    from agents import run_episode
    from agents.llm import LLMAgent
    from examples.train_sft import Args, build_tiny, collate, encode

    messages, images, _ = _teacher_chat()
    args = Args(perception=_perception_file(tmp_path), perception_width=16, hidden_size=64, layers=2, heads=2,
                vocab_size=400)
    from agents.tiny.processor import render_chat

    model, processor = build_tiny(args, [render_chat(messages)] * 3)
    batch = collate([encode(processor, messages, images)] * 2, processor.tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(not p.requires_grad for p in model.perception.parameters())  # the eyes stay frozen

    model.save_pretrained(tmp_path / "ckpt")
    processor.save_pretrained(tmp_path / "ckpt")
    agent = LLMAgent.from_pretrained(tmp_path / "ckpt", max_new_tokens=64)
    trajectory = run_episode(gym.make("genagent_env:GenAgent-v0", max_rounds=1), agent, seed=0)
    assert trajectory.terminated or trajectory.truncated


def test_validation_plays_only_held_out_train_tasks_which_the_sft_data_never_holds():
    from examples.train_sft import Args, held_out_tasks, teacher_trajectories
    from genagent_env.tasks.suites import resolve_suite

    held = held_out_tasks(200, 0.05, 0)
    assert len(held) == 10 and held == held_out_tasks(200, 0.05, 0) and held != held_out_tasks(200, 0.05, 1)
    assert held_out_tasks(200, 0.0, 0) == set()
    for share in (1.0, -0.1):
        with pytest.raises(ValueError, match="--val-tasks"):
            held_out_tasks(200, share, 0)
    args = Args(episodes=40, val_episodes=20, val_tasks=0.01, max_rounds=(1,), unreliable_tool=0.0)
    for validation in (False, True):
        for suite, _, task in teacher_trajectories(args, validation):
            tasks = resolve_suite(suite, "train")
            assert (tasks.index(task) in held_out_tasks(len(tasks), 0.01, 0)) == validation
    # without held-out tasks the teacher data is what it always was (the shipped recipe reproduces)
    plain = [t.messages for _, t, _ in teacher_trajectories(Args(episodes=10, max_rounds=(1,)))]
    assert plain == [t.messages for _, t, _ in teacher_trajectories(Args(episodes=10, max_rounds=(1,), val_tasks=0))]


def test_validation_scores_each_judgments_comparison_and_falls_as_the_model_learns_it(tmp_path: Path):
    from agents.tiny.processor import render_chat
    from examples.train_sft import Args, build_tiny, collate, validate, validation_sample

    messages, images, _ = _teacher_chat()
    args = Args(perception=_perception_file(tmp_path), perception_width=16, hidden_size=64, layers=2, heads=2,
                vocab_size=400)
    model, processor = build_tiny(args, [render_chat(messages)] * 3)
    sample = validation_sample(processor, messages, images)
    ids, mask, extras, spans = sample
    judgments = [m for m in messages if m["role"] == "assistant" and "<judge>" in str(m["content"])]
    assert len(spans) == len(judgments) >= 1
    for begin, end in spans:  # what follows the description, to the end of the judgment (a token may run past it)
        text = processor.tokenizer.decode(ids[begin:end])
        assert re.fullmatch(r"( Checks: [^<]*\.)? It (matches the request|does not match[^<]*)\.</judge><?", text), text
        assert all(mask[begin:end])  # agent tokens
    pad_id = processor.tokenizer.pad_token_id
    batch = collate([(ids, mask, extras)], pad_id)
    before = validate(model, [sample], pad_id)
    assert before["loss"] == pytest.approx(model(**batch).loss.item(), rel=1e-4)  # the model's own loss
    assert before["comparison_exact"] == 0.0  # an untrained model gets no whole comparison right
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(60):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = validate(model, [sample], pad_id)
    assert model.training  # validate leaves the mode as it found it
    assert after["comparison_loss"] < 0.5 * before["comparison_loss"] and after["loss"] < 0.5 * before["loss"]
    assert after["comparison_exact"] == 1.0  # the one sample learned by heart, its comparisons with it


def test_train_sft_runs_a_few_steps_under_accelerate_with_two_cpu_processes(tmp_path: Path):
    perception = _perception_file(tmp_path)
    out = tmp_path / "sft"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--cpu",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(ROOT / "examples" / "train_sft.py"), "--perception", str(perception), "--perception-width", "16",
               "--episodes", "24", "--max-rounds", "1", "--hidden-size", "64", "--layers", "2", "--heads", "2",
               "--vocab-size", "400", "--batch-size", "4", "--epochs", "1", "--threads", "1", "--out", str(out),
               # the caption and rewrite stages (both processes stop at the same step), a scoped copy head,
               # centroids, quotes, counterfactual judgments (drawn from the seed: the same in both processes)
               "--caption-minutes", "0.05", "--rewrite-minutes", "0.05", "--copy-scope", "request",
               "--slot-centroids", "--quote-tool-names", "--counterfactual-judgments", "0.5", "--note-rounds",
               # validation on held-out train tasks, on the main process while the other waits
               "--val-tasks", "0.01", "--val-episodes", "4", "--val-every", "2"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "held-out captions exact" in result.stdout and "held-out rewrites exact" in result.stdout
    assert re.search(r"^[1-9]\d* counterfactual judgments$", result.stdout, re.M)  # (the main process prints)
    assert re.search(r"^validation: 4 trajectories", result.stdout, re.M) and "comparisons exact" in result.stdout
    saved = json.loads((out / "sft_args.json").read_text())
    assert saved["steps"] >= 2 and (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert set(saved["validation"]) == {"loss", "comparison_loss", "comparison_exact"}
    state = json.loads((out / "training_state" / "step.json").read_text())
    assert state["step"] == saved["steps"]
    assert np.isfinite(state["spent"])


def test_the_perception_can_be_taken_from_a_tiny_checkpoint_folder(tmp_path: Path):
    from safetensors.torch import load_file

    from agents.tiny import CHECKPOINTS
    from examples.train_sft import perception_weights

    folder = CHECKPOINTS / "tiny-sft"
    weights = perception_weights(Path("tiny-sft"), 32)  # a shipped agent, by name
    shipped = load_file(str(folder / "model.safetensors"))
    assert weights and all(torch.equal(v, shipped[f"perception.{k}"]) for k, v in weights.items())
    ShapesPerception(32).load_state_dict(weights)  # exactly the CNN's keys, batch-norm statistics included
    with pytest.raises(ValueError, match="width 32"):
        perception_weights(folder, 16)
    (tmp_path / "config.json").write_text('{"model_type": "qwen2"}')
    with pytest.raises(ValueError, match="not a genagent-tiny checkpoint folder"):
        perception_weights(tmp_path, 32)
    with pytest.raises(FileNotFoundError, match="pretrain_perception.py"):
        perception_weights(tmp_path / "missing.safetensors", 32)


def test_an_interrupted_sft_run_resumes_where_it_stopped(tmp_path: Path, capsys):
    from examples.train_sft import Args, main

    common = {"perception": _perception_file(tmp_path), "perception_width": 16, "episodes": 12, "max_rounds": (1,),
              "hidden_size": 64, "layers": 2, "heads": 2, "vocab_size": 400, "batch_size": 4, "threads": 1,
              "out": tmp_path / "sft"}
    # 12 trajectories, batches of 4: 3 steps, after 2 caption steps, the first messages weighted
    main(Args(epochs=1, caption_steps=2, first_message_weight=3.0, **common))
    assert "2 steps in" in capsys.readouterr().out  # the caption stage stopped at its step budget
    first = json.loads((tmp_path / "sft" / "training_state" / "step.json").read_text())
    tokenizer = (tmp_path / "sft" / "tokenizer.json").read_text()
    main(Args(epochs=2, caption_steps=2, first_message_weight=3.0, **common))  # asked for more: on from step 3
    output = capsys.readouterr().out
    assert f"resumed at step {first['step']}" in output and "captions:" not in output  # no second caption stage
    saved = json.loads((tmp_path / "sft" / "sft_args.json").read_text())
    assert first["step"] == 3 and saved["steps"] == 6
    assert (tmp_path / "sft" / "tokenizer.json").read_text() == tokenizer  # the weights' tokenizer, not a new one


def test_sft_steps_autocast_to_bf16_and_keep_float32_weights(tmp_path: Path, capsys):
    from accelerate.state import AcceleratorState
    from safetensors.torch import load_file

    from examples.train_sft import Args, main

    # accelerate keeps one state per process, and an earlier test's run set it to float32
    AcceleratorState._reset_state(reset_partial_state=True)
    try:
        main(Args(perception=_perception_file(tmp_path), perception_width=16, episodes=8, max_rounds=(2,),
                  hidden_size=64, layers=2, heads=2, vocab_size=400, batch_size=4, threads=1, epochs=1,
                  mixed_precision="bf16", caption_steps=2, val_tasks=0.01, val_episodes=2, out=tmp_path / "sft"))
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)  # later runs in this process: float32 again
    assert "1 process(es) on cpu, mixed precision: bf16" in capsys.readouterr().out  # what accelerate runs
    saved = json.loads((tmp_path / "sft" / "sft_args.json").read_text())
    assert saved["mixed_precision"] == "bf16" and saved["steps"] == 2
    assert np.isfinite(saved["validation"]["loss"])
    weights = load_file(str(tmp_path / "sft" / "model.safetensors"))
    assert {v.dtype for v in weights.values() if v.is_floating_point()} == {torch.float32}


@pytest.mark.parametrize("lora_rank", [0, 4])
def test_train_sft_fine_tunes_a_hugging_face_vlm_through_the_same_code_path(tmp_path: Path, lora_rank: int):
    """--base-model (here the tiny random Qwen2-VL, as Qwen2.5-VL would be) with or without LoRA."""
    from examples.train_sft import Args, main
    from genagent_env.testing.tiny_vlm import tiny_qwen2_vl

    tiny_qwen2_vl(path=tmp_path / "base")
    out = tmp_path / "sft"
    main(Args(base_model=str(tmp_path / "base"), lora_rank=lora_rank, episodes=4, max_rounds=(1,), max_len=8192,
              batch_size=2, epochs=1, threads=1, out=out))
    saved = json.loads((out / "sft_args.json").read_text())
    assert saved["steps"] == 2 and (out / "model.safetensors").exists()  # 4 trajectories, batches of 2
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(out, local_files_only=True)  # LoRA merged in
    assert not any("lora" in name for name, _ in model.named_parameters())


@pytest.mark.parametrize("name", ["tiny-sft", "tiny-grpo"])
def test_the_shipped_tiny_agents_load_by_name_and_play_by_the_protocol(name: str):
    import gymnasium as gym

    import agents
    import agents.tiny
    from agents import make_agent, run_episode

    assert agents.TINY_AGENTS == agents.tiny.SHIPPED  # the torch-free list names what ships
    recipe = {"tiny-sft": "sft_args.json", "tiny-grpo": "grpo_args.json"}[name]
    assert json.loads((agents.tiny.CHECKPOINTS / name / recipe).read_text())["seed"] == 0  # how to rebuild it
    agent = make_agent(name)
    assert agent.name == name
    env = gym.make("genagent_env:GenAgent-v0", max_rounds=2)
    trajectory = run_episode(env, agent, seed=0, options={"task_index": 0})
    assert trajectory.violations == 0 and trajectory.terminated
    assert trajectory.rounds and trajectory.rounds[0]["prompt"].startswith("Exactly")  # it rewrote the request
    assert trajectory.rounds[0]["judge"].startswith("image_1 shows")  # and judged describing first


def test_the_checks_judge_style_gives_one_verdict_per_check_in_the_descriptions_words():
    from agents.tiny.teacher import check_phrase

    task = {"include": [{"class": "circle", "count": 2, "color": "red", "region": "left"},
                        {"class": "star", "count": 1, "size": "larger", "position": ["right of", 0]}],
            "exclude": [{"class": "square", "count": 1, "color": "blue"}]}
    detections = [{"class": "circle", "color": "red"}, {"class": "circle", "color": "red"},
                  {"class": "circle", "color": "red"}, {"class": "star", "color": "green"}]
    checks = [{"check": "count", "item": 0, "ok": False}, {"check": "region", "item": 0, "ok": True},
              {"check": "count", "item": 1, "ok": True}, {"check": "position", "item": 1, "ok": False},
              {"check": "size", "item": 1, "ok": True}, {"check": "exclude", "item": 0, "ok": True}]
    assert [check_phrase(c, task, detections) for c in checks] == [
        "2 red circles: 3 no", "red circles left: yes", "1 star: 1 yes", "star right of red circles: no",
        "star big: yes", "no blue squares: yes"]
    # An exact count excludes one more than it asks for: the check says so, not "no circles".
    exact = {"include": [{"class": "circle", "count": 3}], "exclude": [{"class": "circle", "count": 4}]}
    assert check_phrase({"check": "exclude", "item": 0, "ok": True}, exact, detections) == "fewer than 4 circles: yes"


def test_the_seen_judge_style_writes_what_the_image_shows_and_agrees_with_the_verifier():
    from agents.tiny.teacher import check_phrase, seen_value
    from genagent_env.scorers.checklist import evaluate_checklist

    task = {"include": [{"class": "circle", "count": 1, "color": "red", "region": "left", "size": "larger"},
                        {"class": "star", "count": 1, "region": "above", "position": ["right of", 0]}]}

    def obj(shape: str, colour: str, x: float, y: float, area: float) -> dict:
        return {"class": shape, "color": colour, "centroid": [x, y], "area": area}

    scenes = {  # (circle's half, circle's size, star's half, star's relation to the circle)
        ("left", "big", "top", "right"): [obj("circle", "red", 20, 30, 900), obj("star", "blue", 100, 20, 200)],
        ("right", "small", "bottom", "left"): [obj("circle", "red", 110, 30, 100),
                                                obj("star", "blue", 30, 100, 400)],
        ("left", "same", "top", "near"): [obj("circle", "red", 60, 30, 300), obj("star", "blue", 63, 20, 300)],
        ("none", "none", "both", "none"): [obj("star", "blue", 30, 20, 300), obj("star", "blue", 30, 100, 300),
                                           obj("circle", "green", 90, 90, 300)],
    }
    for (circle_half, circle_size, star_half, relation), scene in scenes.items():
        checks = evaluate_checklist(task, scene, 128, 128)
        seen = {(c["check"], c["item"]): seen_value(c, task, scene) for c in checks if c["check"] != "count"}
        assert seen == {("region", 0): circle_half, ("size", 0): circle_size, ("region", 1): star_half,
                        ("position", 1): relation}, scene
        asked = {("region", 0): "left", ("size", 0): "big", ("region", 1): "top", ("position", 1): "right"}
        for check in checks:  # the word is the asked one exactly when the verifier's check holds
            if check["check"] != "count":
                key = (check["check"], check["item"])
                assert (seen[key] == asked[key]) == check["ok"], (key, scene)
    wrong_side = scenes[("right", "small", "bottom", "left")]
    phrases = [check_phrase(c, task, wrong_side, seen=True) for c in evaluate_checklist(task, wrong_side, 128, 128)]
    assert phrases == ["1 red circle: 1 yes", "red circle left: right no", "red circle big: small no",
                       "1 star: 1 yes", "star top: bottom no", "star right of red circle: left no"]


def test_the_lookup_judge_style_copies_each_groups_evidence_from_a_name_first_description():
    from agents.tiny.teacher import adjacent_phrase, describe_scene, lookup_phrase, scene_groups

    task = {"include": [{"class": "circle", "count": 2, "color": "red", "region": "left"},
                        {"class": "star", "count": 1, "size": "smaller", "position": ["right of", 0]},
                        {"class": "square", "count": 1, "color": "blue"}],
            "exclude": [{"class": "heart", "count": 1, "color": "green"}]}
    detections = [{"class": "circle", "color": "red", "area": 100.0, "centroid": (10, 10)},
                  {"class": "circle", "color": "red", "area": 100.0, "centroid": (20, 100)},
                  {"class": "circle", "color": "red", "area": 100.0, "centroid": (30, 50)},
                  {"class": "star", "color": "green", "area": 400.0, "centroid": (100, 100)},
                  {"class": "star", "color": "pink", "area": 100.0, "centroid": (30, 30)}]
    assert describe_scene(detections) == (
        "3 small red circles (left), 1 big green star (right, bottom), 1 small pink star (left, top)")
    assert describe_scene(detections, key_first=True) == (
        "red circle ×3 small (left), green star ×1 big (right, bottom), pink star ×1 small (left, top)")
    checks = [{"check": "count", "item": 0, "ok": False}, {"check": "region", "item": 0, "ok": True},
              {"check": "count", "item": 1, "ok": False}, {"check": "position", "item": 1, "ok": True},
              {"check": "size", "item": 1, "ok": False}, {"check": "count", "item": 2, "ok": False},
              {"check": "exclude", "item": 0, "ok": True}]
    groups = scene_groups(detections)
    # Each check repeats what the description says after the group's name, so the verdict compares
    # two things side by side; a name the description lacks is seen ×0; no colour sums the colours.
    assert [lookup_phrase(c, task, groups) for c in checks] == [
        "red circle ×3 small (left), want ×2: no", "red circle ×3 small (left), want left: yes",
        "star ×2, want ×1: no", "star right of red circles: yes", "star ×2, want small: no",
        "blue square ×0, want ×1: no", "green heart ×0, want ×0: yes"]
    assert describe_scene([], key_first=True) == "nothing"
    # adjacent: the wanted value first, then the name and what follows it (a count: only the count).
    assert [adjacent_phrase(c, task, groups) for c in checks] == [
        "×2 red circle ×3: no", "left red circle ×3 small (left): yes", "×1 star ×2: no",
        "star right of red circles: yes", "small star ×2: no", "×1 blue square ×0: no", "×0 green heart ×0: yes"]
    exact = {"include": [{"class": "circle", "count": 3, "color": "red"}],
             "exclude": [{"class": "circle", "count": 4, "color": "red"}]}
    allowed = {"check": "exclude", "item": 0, "ok": True}
    assert adjacent_phrase(allowed, exact, groups) == "<4 red circle ×3: yes"
    assert lookup_phrase(allowed, exact, groups) == "red circle ×3 small (left), want <4: yes"


def test_the_teacher_writes_either_judge_style_and_refuses_others():
    import gymnasium as gym

    from agents import run_episode
    from agents.tiny.teacher import DescribeFirstTeacher

    env = gym.make("genagent_env:GenAgent-v0", max_rounds=2, privileged=True)
    for style, marker in (("checks", "Checks: "), ("lookup", "Checks: "), ("adjacent", "Checks: "),
                          ("seen", "Checks: "), ("problems", "It does not match: ")):
        judged = []
        for seed in range(6):
            teacher = DescribeFirstTeacher(judge_style=style, note_rounds=style == "lookup")
            trajectory = run_episode(env, teacher, seed=seed, options={"task_index": 40})
            judged += [t["action"] for t in trajectory.turns if t["action"].startswith("<judge>")]
        assert judged and all(" shows " in text for text in judged)
        failed = [text for text in judged if "does not match" in text]
        assert failed and all(marker in text for text in (failed if style == "problems" else judged))
        assert all(("×" in text) == (style in ("lookup", "adjacent")) for text in judged)  # name-first descriptions
        if style == "lookup":  # note_rounds: the rounds used stand right before the choice of retrying or submitting
            assert all(re.search(r"It does not match \(round [12] of 2\)\.</judge>", text) for text in failed)
            assert any("(round 2 of 2).</judge><answer>image_" in text for text in failed)
        else:
            assert not any("(round" in text for text in judged)
    with pytest.raises(ValueError, match="judge_style"):
        DescribeFirstTeacher(judge_style="vibes")  # type: ignore[arg-type]


def test_a_perturbed_scene_differs_in_one_way_and_its_judgment_follows_the_changed_scene():
    import random

    from agents.tiny.teacher import PERTURBATIONS, judgment, perturb_scene, scene_groups
    from genagent_env.shapes.verifier import evaluate

    task = {"include": [{"class": "circle", "color": "red", "count": 2},
                        {"class": "star", "color": "blue", "count": 1}], "exclude": []}
    scene = [{"class": "circle", "color": "red", "centroid": (20.0, 30.0), "area": 400.0},
             {"class": "circle", "color": "red", "centroid": (40.0, 100.0), "area": 400.0},
             {"class": "star", "color": "blue", "centroid": (100.0, 20.0), "area": 400.0}]
    before = scene_groups(scene)
    rng = random.Random(0)
    seen_verdicts, changed = set(), 0
    for _ in range(300):
        after = perturb_scene(scene, task, rng)
        assert scene == [{"class": "circle", "color": "red", "centroid": (20.0, 30.0), "area": 400.0},
                         {"class": "circle", "color": "red", "centroid": (40.0, 100.0), "area": 400.0},
                         {"class": "star", "color": "blue", "centroid": (100.0, 20.0), "area": 400.0}]  # untouched
        groups = scene_groups(after)
        if groups == before:
            continue  # "fix" on a scene that already has what it asks for
        changed += 1
        # at most one group's shape, colour or count differs (added, gone, or changed), the other stays
        assert len({g[:3] for g in groups} ^ {g[:3] for g in before}) <= 2
        checks = evaluate(task, after, 128, 128)
        text = judgment(task, after, checks, 1, style="checks")
        passed = all(c["ok"] for c in checks)
        assert text.endswith("It matches the request.</judge>" if passed else "It does not match.</judge>")
        found = {g[2] for g in groups if g[:2] == ("circle", "red")} or {0}
        assert f"2 red circles: {found.pop()} {'yes' if checks[0]['ok'] else 'no'}" in text
        seen_verdicts.add(passed)
    assert changed > 200 and seen_verdicts == {True, False}
    # a failing scene is set right by "fix" now and then: the request's count, added in the group's likeness
    missing = scene[:1]
    fixed = [perturb_scene(missing, task, random.Random(seed)) for seed in range(60)]
    assert any(all(c["ok"] for c in evaluate(task, s, 128, 128)[:1]) for s in fixed)
    assert "fix" in PERTURBATIONS


@pytest.mark.parametrize("style", ["checks", "problems", "lookup"])
def test_counterfactual_judgments_train_only_the_checks_and_verdict_after_a_changed_description(style):
    import random

    import gymnasium as gym

    from agents import run_episode
    from agents.llm import chat_images, chat_messages
    from agents.tiny.processor import TinyProcessor, render_chat, train_tokenizer
    from agents.tiny.teacher import DescribeFirstTeacher
    from examples.train_sft import Args, counterfactual_samples

    # Two failed images: a judgment that retries (round 1 of 2) and one that submits (round 2 of 2).
    env = gym.make("genagent_env:GenAgent-v0", max_rounds=2, privileged=True)
    trajectory = run_episode(env, DescribeFirstTeacher(judge_style=style, note_rounds=True), seed=1,
                             options={"task_index": 40})
    assert [s["passed"] for s in trajectory.scores] == [False, False]
    messages, images = chat_messages(trajectory.messages, True), chat_images(trajectory.messages)
    task = env.reset(seed=1, options={"task_index": 40})[1]["task"]
    processor = TinyProcessor(train_tokenizer([render_chat(messages)] * 3, vocab_size=400))
    args = Args(judge_style=style, note_rounds=True, counterfactual_judgments=1.0)
    samples = counterfactual_samples(processor, [(messages, images)] * 40, [task] * 40, args, random.Random(0))
    assert 40 <= len(samples) <= 80  # two judgments per chat, a few changes that do not show in words skipped
    originals = {str(m["content"]) for m in messages}
    trained_texts, images_seen = set(), set()
    checks = r" Checks: .*?\." if style != "problems" else ""  # lookup's exclude checks write "want <9"
    for ids, mask, extras in samples:
        trained = processor.tokenizer.decode([t for t, m in zip(ids, mask) if m])
        whole = processor.tokenizer.decode(ids)
        # the span is the checks and the verdict, right after a description, ending at </judge>, with
        # the rounds used copied from the tool turn before it
        k = re.findall(r"<judge>image_(\d)", whole)[-1]
        assert re.fullmatch(rf"{checks} It (matches the request|does not match[^<]*\(round {k} of 2\))\.</judge>",
                            trained), trained
        head = whole[: whole.rindex(trained)]
        assert re.search(r"<judge>image_\d shows [^<]*\.$", head)
        assert extras["pixel_values"].shape[0] == int(k)
        trained_texts.add(trained)
        images_seen.add(k)
    assert images_seen == {"1", "2"} and len(trained_texts) >= 3
    assert any(all(t not in o for o in originals) for t in trained_texts)
    with pytest.raises(ValueError, match="scorer shapes"):
        counterfactual_samples(processor, [(messages, images)], [task],
                               Args(scorer="clip", counterfactual_judgments=1.0), random.Random(0))


def test_the_teachers_verdict_is_the_scorers_even_when_no_check_says_why():
    import gymnasium as gym

    from agents import run_episode
    from agents.tiny.teacher import DescribeFirstTeacher
    from genagent_env.scorers.base import Score, Scorer

    class NoChecks(Scorer):  # a judge that gives a verdict and no checklist (a VLM judge, a threshold)
        name = "no-checks"

        def score(self, images, tasks):
            return [Score(passed=False, score=0.0, details={"detected": []}) for _ in images]

    env = gym.make("genagent_env:GenAgent-v0", max_rounds=2, privileged=True)
    trajectory = run_episode(env, DescribeFirstTeacher(NoChecks(), judge_style="checks"), seed=0,
                             options={"task_index": 40})
    judged = [t["action"] for t in trajectory.turns if t["action"].startswith("<judge>")]
    assert len(judged) == 2 and all("It does not match." in text for text in judged)
    assert judged[0].endswith("</tool_call>") and judged[1].endswith("<answer>image_2</answer>")


def test_renamed_tool_rewrites_every_mention_so_the_episode_reads_as_played_under_the_new_name():
    import gymnasium as gym

    from agents import run_episode
    from agents.tiny.processor import render_chat
    from agents.tiny.teacher import DescribeFirstTeacher
    from examples.train_sft import chat_of, renamed_tool

    env = gym.make("genagent_env:GenAgent-v0", max_rounds=2, privileged=True)
    trajectory = run_episode(env, DescribeFirstTeacher(), seed=1, options={"task_index": 7})
    before = render_chat(chat_of(trajectory)[0])
    trajectory.messages = renamed_tool(trajectory.messages, "shapes-medium", "paint_qx-turbo")
    messages, images = chat_of(trajectory)
    after = render_chat(messages)
    assert "shapes-medium" in before and "shapes-medium" not in after
    assert after.startswith('<|im_start|>system\ntools: "paint_qx-turbo", rounds: 2')
    assert '{"name": "paint_qx-turbo"' in after and after.count("paint_qx-turbo") == before.count("shapes-medium")
    assert len(images) == len(trajectory.images)  # the images stay where they were


def test_the_unreliable_tool_garbles_a_share_of_prompts_the_same_way_every_time():
    import random

    from examples.train_sft import UnreliableTool, garble
    from genagent_env.tools.base import GenerationRequest, Generator

    prompt = ("Exactly 2 (two) red circles. All of them are in the left half of the image. "
              "Make sure there are exactly 2 (two) red circles, not fewer. Nothing else in the image.")
    changed = [garble(prompt, random.Random(seed)) for seed in range(40)]
    assert sum(text != prompt for text in changed) == 40
    for text in changed:  # a swapped word is swapped everywhere, and the count stays spelled in both forms
        assert text.count("Exactly") == 1 and text.count("exactly") == 1
        words = [w for w in ("red", "circles", "left", "2 (two)") if w not in text]
        assert 1 <= len(words) <= 2 and all(w not in text for w in words)

    class Echo(Generator):
        name = "echo"

        def generate(self, requests):
            return [request.prompt for request in requests]

    requests = [GenerationRequest(prompt, seed) for seed in range(200)]
    assert UnreliableTool(Echo(), 0.0).generate(requests) == [prompt] * 200
    tool = UnreliableTool(Echo(), 0.4)
    first = tool.generate(requests)
    assert first == tool.generate(requests)  # seeded by the request: the same image for the same call
    assert 0.3 < sum(text != prompt for text in first) / 200 < 0.5


def _copy_model(copy_head: bool = True, copy_scope: str = "all"):
    from agents.tiny.model import GenAgentTinyConfig, GenAgentTinyForConditionalGeneration

    config = GenAgentTinyConfig(vocab_size=64, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                copy_head=copy_head, copy_dim=32, slot_token_id=3, pad_token_id=0, eos_token_id=2,
                                bos_token_id=0, copy_scope=copy_scope, turn_token_id=1)
    return GenAgentTinyForConditionalGeneration(config)


def test_the_copy_head_gives_the_same_distribution_token_by_token_as_in_one_pass(tmp_path: Path):
    torch.manual_seed(0)
    model = _copy_model().eval()
    with torch.no_grad():
        model.copy.write.bias.fill_(-2.0)  # lean on copying, so the pointer's share is large
    ids = torch.randint(4, 64, (2, 12))
    mask = torch.ones_like(ids)
    ids[1, :3], mask[1, :3] = 0, 0  # left padding, as LLMAgent batches prompts
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False, pad_token_id=0,
                         eos_token_id=2, return_dict_in_generate=True, output_scores=True)
    whole = torch.cat([mask, torch.ones(2, out.sequences.shape[1] - 12, dtype=torch.long)], 1)
    with torch.no_grad():
        logits = model(input_ids=out.sequences, attention_mask=whole).logits
    assert torch.allclose(logits[:, 11:-1], torch.stack(out.scores, 1), atol=1e-4)  # the cached memory is exact
    assert torch.allclose(logits.exp().sum(-1), torch.ones(2, whole.shape[1]), atol=1e-4)  # one distribution
    assert torch.isneginf(logits[..., 3]).all()  # never an image placeholder (slot_token_id=3), even by copying

    model.save_pretrained(tmp_path / "copy")
    loaded = type(model).from_pretrained(tmp_path / "copy").eval()
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=out.sequences, attention_mask=whole).logits, logits, atol=1e-5)


def test_the_copy_head_lets_a_tiny_model_repeat_tokens_it_never_saw_in_training():
    # "<s> x1 .. x6 | x1 .. x6", trained on tokens 10..39: without the copy head the model repeats only
    # tokens it was trained on; with it, also 40..63, whose embeddings training never touched.
    def batch(low: int, high: int, n: int = 32) -> torch.Tensor:
        body = torch.randint(low, high, (n, 6))
        return torch.cat([torch.full((n, 1), 4), body, torch.full((n, 1), 5), body], 1)

    def copied(model: torch.nn.Module, low: int, high: int) -> float:
        ids = batch(low, high, 64)
        with torch.no_grad():
            predicted = model(input_ids=ids).logits[:, 7:-1].argmax(-1)
        return (predicted == ids[:, 8:]).float().mean().item()

    accuracy = {}
    for copy_head in (True, False):
        torch.manual_seed(0)
        model = _copy_model(copy_head)
        optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
        for _ in range(200):
            ids = batch(10, 40)
            labels = ids.clone()
            labels[:, :8] = -100  # learn the second half only
            loss = model(input_ids=ids, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        accuracy[copy_head] = (copied(model, 10, 40), copied(model, 40, 64))
    assert accuracy[True][0] > 0.95 and accuracy[False][0] > 0.95, accuracy  # both copy what they know
    assert accuracy[True][1] > 0.1 and accuracy[False][1] < 0.02, accuracy  # only the pointer copies the unknown


@pytest.mark.parametrize("scope", ["system", "request"])
def test_a_scoped_copy_head_copies_only_from_the_leading_turns_and_the_same_way_token_by_token(scope: str):
    # Turn 1 (each turn opens with token 1) holds the tool names, turn 2 the request; a model that
    # leans wholly on copying can then only emit their tokens, however often others appeared since.
    torch.manual_seed(0)
    model = _copy_model(copy_scope=scope).eval()
    with torch.no_grad():
        model.copy.write.bias.fill_(-30.0)  # (nearly) all mass on the pointer
    ids = torch.tensor([[1, 10, 11, 1, 20, 21, 1, 30, 31, 30], [0, 0, 1, 13, 1, 24, 25, 1, 32, 33]])
    mask = (torch.arange(10) >= torch.tensor([[0], [2]])).long()
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0,
                         eos_token_id=2, return_dict_in_generate=True, output_scores=True)
    whole = torch.cat([mask, torch.ones(2, out.sequences.shape[1] - 10, dtype=torch.long)], 1)
    with torch.no_grad():
        probs = model(input_ids=out.sequences, attention_mask=whole).logits.exp()
    assert torch.allclose(probs[:, 9:-1].log(), torch.stack(out.scores, 1), atol=1e-4)
    leading = {"system": [[10, 11], [13]], "request": [[10, 11, 20, 21], [13, 24, 25]]}[scope]
    for row, tokens in enumerate(leading):
        assert (probs[row, 8:, tokens].sum(-1) > 0.99).all()  # every later position copies from them only
    assert all(set(out.sequences[row, 10:].tolist()) <= set(tokens) for row, tokens in enumerate(leading))


def test_learned_slot_embeddings_start_at_the_slot_words_and_train_apart_from_the_vocabulary(tmp_path: Path):
    from agents.tiny.model import GenAgentTinyConfig, GenAgentTinyForConditionalGeneration

    def model(slot_embeddings: str) -> GenAgentTinyForConditionalGeneration:
        torch.manual_seed(0)
        config = GenAgentTinyConfig(vocab_size=64, hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                    perception_width=8, slot_token_id=3, pad_token_id=0, eos_token_id=2,
                                    slot_centroids=True, slot_embeddings=slot_embeddings)
        built = GenAgentTinyForConditionalGeneration(config)
        words = torch.zeros(config.slot_feature_count, 64)
        words[torch.arange(config.slot_feature_count), 10 + torch.arange(config.slot_feature_count) % 50] = 1.0
        built.set_slot_words(words)
        return built

    tied, learned = model("words"), model("learned")
    features = torch.rand(2, 6, tied.config.slot_feature_count)
    with torch.no_grad():  # the same weights: both start out giving the same slot embeddings
        start = tied.embed_slots(features)
        assert torch.allclose(start, learned.embed_slots(features), atol=1e-5)
        tied.get_input_embeddings().weight.add_(1.0)  # training the words ...
        learned.get_input_embeddings().weight.add_(1.0)
        assert not torch.allclose(tied.embed_slots(features), start, atol=1e-3)  # ... moves the tied slots
        assert torch.allclose(learned.embed_slots(features), start, atol=1e-5)  # but not the learned ones
    learned.embed_slots(features).sum().backward()
    assert learned.slot_embedding.grad is not None and learned.slot_embedding.grad.abs().sum() > 0

    learned.save_pretrained(tmp_path / "learned")
    loaded = type(learned).from_pretrained(tmp_path / "learned")
    assert loaded.config.slot_embeddings == "learned" and torch.equal(loaded.slot_embedding, learned.slot_embedding)
    with pytest.raises(ValueError, match="slot_embeddings must be one of"):
        GenAgentTinyConfig(slot_embeddings="random")
