"""LLMAgent on the tiny random Qwen2-VL (and a tiny text-only Qwen2): plumbing, batching, images,
log-probabilities, seeding, loading, long chats and the benchmark runner's ``llm:PATH``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402

from agents.base import Agent, first_tool_name, tool_call  # noqa: E402
from agents.llm import IMAGE_PLACEHOLDER, LLMAgent, chat_messages, completion_logprobs  # noqa: E402
from agents.rollout import run_episode, run_episodes  # noqa: E402
from genagent_env.testing.tiny_vlm import tiny_qwen2_lm, tiny_qwen2_vl  # noqa: E402
from genagent_env.vector import GenAgentVectorEnv  # noqa: E402


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    """The tiny Qwen2-VL, saved and reloaded: ``(folder, model, processor)``."""
    folder = tmp_path_factory.mktemp("tiny-qwen2-vl")
    model, processor = tiny_qwen2_vl(path=folder)
    return folder, model, processor


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-qwen2-lm")
    model, tokenizer = tiny_qwen2_lm(path=folder)
    return folder, model, tokenizer


def _with_images(n_images: int, max_rounds: int = 2):
    """An env after ``n_images`` valid tool calls, and its latest observation and info."""
    env = gym.make("genagent_env:GenAgent-v0", max_rounds=max_rounds)
    observation, info = env.reset(seed=3)
    for k in range(n_images):
        judge = "<judge>It does not match.</judge>" if k else ""
        observation, _, _, _, info = env.step(judge + tool_call(first_tool_name(info), f"a red circle {k}", seed=k))
        assert not info["format_errors"], info["format_errors"]
    return env, observation, info


#: Episodes with images outgrow the tiny model's 2 048 positions (its tokenizer is nearly character
#: level); its rotary positions extend past them, so tests that need whole chats allow more.
ROOMY = 4096


def _tokens_per_image(processor, image) -> int:
    grid = processor.image_processor(images=[image], return_tensors="pt")["image_grid_thw"]
    return int(grid.prod()) // processor.image_processor.merge_size**2


def test_a_whole_episode_through_gym_make(vlm):
    _, model, processor = vlm
    agent = LLMAgent(model, processor, max_new_tokens=32)
    env = gym.make("genagent_env:GenAgent-v0", max_rounds=1)
    trajectory = run_episode(env, agent, seed=0)
    env.close()
    assert trajectory.terminated or trajectory.truncated
    assert trajectory.turns and all(isinstance(turn["action"], str) for turn in trajectory.turns)


def test_act_batch_once_per_step_and_same_texts_as_act(vlm):
    _, model, processor = vlm

    class Counting(LLMAgent):
        calls = 0
        sizes: list[int] = []

        def act_batch(self, observations, infos):
            Counting.calls += 1
            Counting.sizes.append(len(infos))
            return super().act_batch(observations, infos)

    agent = Counting(model, processor, max_new_tokens=24)
    envs = GenAgentVectorEnv(3, max_rounds=1)
    trajectories = run_episodes(envs, agent, seed=10)
    envs.close()
    steps = max(len(t.turns) for t in trajectories)
    assert Counting.calls == steps and Counting.sizes[0] == 3

    single = LLMAgent(model, processor, max_new_tokens=24)
    for i, batched in enumerate(trajectories):
        env = gym.make("genagent_env:GenAgent-v0", max_rounds=1)
        alone = run_episode(env, single, seed=10 + i)
        env.close()
        assert [t["action"] for t in alone.turns] == [t["action"] for t in batched.turns]


def test_batched_generation_matches_one_by_one(vlm):
    # Different chat lengths (left padding) and an image in one of them.
    _, model, processor = vlm
    chats = []
    for seed in (0, 1):
        env = gym.make("genagent_env:GenAgent-v0", max_rounds=1)
        chats.append(env.reset(seed=seed))
        env.close()
    env, observation, info = _with_images(1)
    env.close()
    chats.append((observation, info))
    agent = LLMAgent(model, processor, max_new_tokens=16, max_context_tokens=ROOMY)
    texts = agent.act_batch([o for o, _ in chats], [i for _, i in chats])
    batched = agent.last_generations
    for (o, i), text, generation in zip(chats, texts, batched):
        assert agent.act(o, i) == text
        alone = agent.last_generations[0]
        assert alone.prompt_ids == generation.prompt_ids and alone.completion_ids == generation.completion_ids
        assert torch.allclose(torch.tensor(alone.logprobs), torch.tensor(generation.logprobs), atol=1e-4)


def test_batch_size_splits_generate_calls(vlm):
    _, model, processor = vlm
    agent = LLMAgent(model, processor, max_new_tokens=8, batch_size=2)
    calls = []
    original = model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    model.generate = counting
    try:
        env = gym.make("genagent_env:GenAgent-v0", max_rounds=1)
        observation, info = env.reset(seed=0)
        texts = agent.act_batch([observation] * 3, [info] * 3)
    finally:
        del model.generate
    assert calls == [2, 1] and len(texts) == 3 and len(agent.last_generations) == 3
    assert texts[0] == texts[1] == texts[2]


def test_images_reach_the_processor(vlm):
    _, model, processor = vlm
    env, observation, info = _with_images(2)
    agent = LLMAgent(model, processor, max_new_tokens=8, max_context_tokens=ROOMY)
    agent.act(observation, info)
    generation = agent.last_generations[0]
    assert generation.dropped_messages == 0
    per_image = _tokens_per_image(processor, info["images"][0])
    assert per_image > 0
    assert generation.image_tokens == 2 * per_image
    assert generation.prompt_ids.count(processor.image_token_id) == 2 * per_image
    env.close()


def test_tool_turns_render_with_their_images(vlm):
    _, _, processor = vlm
    env, _, info = _with_images(1)
    text = processor.apply_chat_template(chat_messages(info["messages"], True), tokenize=False,
                                         add_generation_prompt=True)
    assert "<|im_start|>tool\n<|vision_start|><|image_pad|><|vision_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    env.close()


def test_ids_logprobs_and_teacher_forcing(vlm):
    _, model, processor = vlm
    env, observation, info = _with_images(1)
    agent = LLMAgent(model, processor, max_new_tokens=40)
    agent.act(observation, info)
    generation = agent.last_generations[0]
    assert len(generation.completion_ids) == len(generation.logprobs) >= 1
    assert all(value <= 0 for value in generation.logprobs)
    ended = generation.completion_ids[-1] in agent.eos_token_ids
    assert ended or len(generation.completion_ids) == agent.max_new_tokens
    assert generation.text == processor.tokenizer.decode(generation.completion_ids, skip_special_tokens=True)
    forced = completion_logprobs(model, processor, [info["messages"]], [generation.completion_ids])
    assert forced[0].shape == (len(generation.completion_ids),)
    assert torch.allclose(forced[0], torch.tensor(generation.logprobs), atol=1e-4)
    # Teacher forcing gives gradients (for trainers).
    assert forced[0].requires_grad
    env.close()


def test_sampled_logprobs_follow_the_warped_distribution(vlm):
    _, model, processor = vlm
    env, observation, info = _with_images(1)
    agent = LLMAgent(model, processor, max_new_tokens=24, do_sample=True, temperature=0.7, top_k=50, top_p=0.9,
                     seed=1)
    texts = agent.act_batch([observation] * 2, [info] * 2)
    assert len(texts) == 2
    generations = agent.last_generations
    with torch.no_grad():
        forced = agent.completion_logprobs([info["messages"]] * 2, [g.completion_ids for g in generations])
    for generation, values in zip(generations, forced):
        assert torch.allclose(values, torch.tensor(generation.logprobs), atol=1e-4)
    env.close()


def test_seeded_sampling_is_reproducible(vlm):
    _, model, processor = vlm
    env = gym.make("genagent_env:GenAgent-v0", max_rounds=1)
    observation, info = env.reset(seed=0)
    agent = LLMAgent(model, processor, max_new_tokens=16, do_sample=True)
    runs = []
    for seed in (5, 5, 6):
        agent.reset(seed)
        runs.append([agent.act(observation, info) for _ in range(2)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    # The caller's global RNG is untouched.
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    agent.act(observation, info)
    assert torch.equal(torch.rand(3), expected)
    env.close()


def test_from_pretrained_round_trip(vlm):
    folder, model, processor = vlm
    env = gym.make("genagent_env:GenAgent-v0", max_rounds=1)
    observation, info = env.reset(seed=1)
    loaded = LLMAgent.from_pretrained(folder, max_new_tokens=16)
    assert type(loaded.model).__name__ == "Qwen2VLForConditionalGeneration"
    assert loaded.act(observation, info) == LLMAgent(model, processor, max_new_tokens=16).act(observation, info)
    env.close()


def test_from_pretrained_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no such checkpoint folder"):
        LLMAgent.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="config.json"):
        LLMAgent.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ModuleNotFoundError, match="optional extra"):
        LLMAgent.from_pretrained(tmp_path)


def test_long_chats_keep_the_head_and_latest_turns(vlm):
    _, model, processor = vlm
    env, observation, info = _with_images(2, max_rounds=3)
    full = LLMAgent(model, processor, max_new_tokens=8, max_context_tokens=ROOMY)
    full.act(observation, info)
    assert full.last_generations[0].dropped_messages == 0
    length = len(full.last_generations[0].prompt_ids)

    # Room for all but the oldest exchange: the first image's exchange is dropped, the latest kept.
    agent = LLMAgent(model, processor, max_new_tokens=8, max_context_tokens=length + 8 - 5)
    text = agent.act(observation, info)
    generation = agent.last_generations[0]
    assert isinstance(text, str) and generation.dropped_messages == 2
    assert len(generation.prompt_ids) <= length - 5
    per_image = _tokens_per_image(processor, info["images"][0])
    assert generation.image_tokens == per_image  # the latest image is still shown
    prompt = processor.tokenizer.decode(generation.prompt_ids)
    assert prompt.startswith("<|im_start|>system\n") and info["messages"][1]["content"] in prompt
    assert info["messages"][-1]["content"][-1]["text"] in prompt and prompt.endswith("<|im_start|>assistant\n")

    # Not even the system prompt fits: the text is cut from the left, and the agent still answers.
    tiny = LLMAgent(model, processor, max_new_tokens=8, max_context_tokens=300)
    text = tiny.act(observation, info)
    generation = tiny.last_generations[0]
    assert isinstance(text, str) and len(generation.prompt_ids) <= 292 and generation.image_tokens == 0
    assert generation.prompt_cut and processor.tokenizer.decode(generation.prompt_ids).endswith("assistant\n")
    _, _, terminated, truncated, after = env.step(text)  # the env takes whatever comes
    assert isinstance(after["messages"], list)
    env.close()


def test_a_whole_episode_past_the_context(vlm):
    # The system prompt alone is most of the tiny model's 2 048 positions: the turns overflow.
    _, model, processor = vlm
    agent = LLMAgent(model, processor, max_new_tokens=64, max_context_tokens=1700)
    env = gym.make("genagent_env:GenAgent-v0", max_rounds=2)
    trajectory = run_episode(env, agent, seed=2)
    env.close()
    assert trajectory.truncated or trajectory.terminated
    assert all(len(g.prompt_ids) <= 1700 - 64 for g in agent.last_generations)


def test_text_only_model(lm):
    folder, model, tokenizer = lm
    env, observation, info = _with_images(1)
    agent = LLMAgent(model, tokenizer, max_new_tokens=16)
    text = agent.act(observation, info)
    generation = agent.last_generations[0]
    assert isinstance(text, str) and generation.image_tokens == 0
    assert IMAGE_PLACEHOLDER in tokenizer.decode(generation.prompt_ids)
    forced = completion_logprobs(model, tokenizer, [info["messages"]], [generation.completion_ids])
    assert torch.allclose(forced[0], torch.tensor(generation.logprobs), atol=1e-4)

    loaded = LLMAgent.from_pretrained(folder, max_new_tokens=16)
    assert type(loaded.model).__name__ == "Qwen2ForCausalLM"
    assert loaded.act(observation, info) == text
    env.close()


def test_chat_messages_for_text_only_models():
    from PIL import Image

    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": "a cat"},
                {"role": "assistant", "content": "<tool_call>{}</tool_call>"},
                {"role": "tool", "name": "gen", "content": [{"type": "image", "image": Image.new("RGB", (4, 4))},
                                                           {"type": "text", "text": "image_1 made"}]}]
    text_only = chat_messages(messages, multimodal=False)
    assert text_only[3] == {"role": "tool", "name": "gen", "content": f"{IMAGE_PLACEHOLDER}\nimage_1 made"}
    multimodal = chat_messages(messages, multimodal=True)
    assert multimodal[0]["content"] == [{"type": "text", "text": "rules"}]
    assert multimodal[3]["content"][0]["image"] is messages[3]["content"][0]["image"]
    assert messages[0]["content"] == "rules"  # the env's messages are not changed


def test_bad_arguments(vlm):
    _, model, processor = vlm
    for kwargs in ({"max_new_tokens": 0}, {"temperature": 0}, {"top_p": 0}, {"top_k": -1}, {"batch_size": 0},
                   {"max_context_tokens": 16, "max_new_tokens": 16}):
        with pytest.raises(ValueError):
            LLMAgent(model, processor, **kwargs)


def test_spawned_agents_share_the_model(vlm):
    _, model, processor = vlm
    agent = LLMAgent(model, processor, do_sample=True, seed=0)
    twin = agent.spawn()
    assert isinstance(twin, Agent) and twin.model is agent.model and twin._generator is not agent._generator


def test_the_runner_plays_llm_checkpoints(vlm, tmp_path):
    from benchmarks.run import Args, Resources, run

    folder, _, _ = vlm
    spec = "llm:" + str(folder)
    args = Args(agents=(spec,), generators=("shapes-medium",), tasks_per_tag=1, seeds=1, max_rounds=(1,),
                out=tmp_path / "run", quiet=True)
    out = run(args)
    records = [json.loads(line) for line in (Path(out) / "results.jsonl").read_text().splitlines()]
    assert records and all(record["agent"] == spec for record in records)
    resources = Resources(args)
    try:
        players = resources.players(spec, 3)
        assert isinstance(players[0], LLMAgent) and players[0] is players[1] is players[2]
    finally:
        resources.close()
    with pytest.raises(ValueError, match="no such folder"):
        run(Args(agents=("llm:" + str(tmp_path / "nothing"),), generators=("shapes-medium",), tasks_per_tag=1,
                 seeds=1, max_rounds=(1,), out=tmp_path / "run2", quiet=True))
