"""GenAgentVectorEnv: batched generation and scoring that give what stepping each env alone gives."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from PIL import Image

import genagent_env  # noqa: F401  (registers the envs)
from genagent_env.env import GenAgentEnv
from genagent_env.scorers.base import PairwiseComparator, Score
from genagent_env.tools.base import FunctionGenerator, GenerationRequest, Generator
from genagent_env.vector import GenAgentVectorEnv
from tests.helpers import COLOUR_TASKS, ColourScorer, paint

SHAPES_TOOL = "shapes-medium"  # the tool name of GenAgent-v0's default generator
ANSWER = "<judge>looks right</judge><answer>done</answer>"


def call(prompt: str = "a red thing", seed: int | None = 2, judge: str | None = None, name: str = "paint") -> str:
    args = {"prompt": prompt} if seed is None else {"prompt": prompt, "seed": seed}
    head = f"<judge>{judge}</judge>" if judge else ""
    return head + "<tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>"


def env_info(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Sub-environment i's info out of Gymnasium's vector info (``info[key][i]`` where ``info["_key"][i]``)."""
    out = {}
    for key, value in infos.items():
        if key.startswith("_") or not infos[f"_{key}"][i]:
            continue
        out[key] = env_info(value, i) if isinstance(value, dict) else value[i]
    return out


def without_cache(info: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in info.items() if key != "generation_cache"}


class CountingGenerator(Generator):
    """Wraps a generator and records every ``generate`` call (its requests)."""

    def __init__(self, inner: Generator) -> None:
        self.inner, self.name, self.description = inner, inner.name, inner.description
        self.calls: list[list[GenerationRequest]] = []

    def parameters(self) -> dict[str, Any]:
        return self.inner.parameters()

    def cache_id(self) -> str | None:
        return self.inner.cache_id()

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image.Image]:
        self.calls.append(list(requests))
        return self.inner.generate(requests)


class CountingScorer(ColourScorer):
    """The colour scorer, recording the size of every ``score`` call; raises while ``fail`` is set."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.fail = False

    def score(self, images: Sequence[Image.Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        if self.fail:
            raise RuntimeError("the scoring server is down")
        self.calls.append(len(images))
        return super().score(images, tasks)


class CountingComparator(PairwiseComparator):
    """Prefers the second image when it scores better on the colour; records call sizes; raises while ``fail``."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.fail = False

    def compare(self, tasks, first, second) -> list[int]:
        if self.fail:
            raise RuntimeError("the judge server is down")
        self.calls.append(len(tasks))
        scorer = ColourScorer()
        return [int(np.sign(scorer.score([b], [t])[0].score - scorer.score([a], [t])[0].score))
                for t, a, b in zip(tasks, first, second)]


def counting_paint() -> CountingGenerator:
    return CountingGenerator(FunctionGenerator(paint, name="paint"))


def colour_vector(num_envs: int, **kwargs: Any) -> GenAgentVectorEnv:
    defaults: dict[str, Any] = {"suite": COLOUR_TASKS, "generators": {"paint": paint}, "scorer": ColourScorer(),
                                "image_size": 32}
    return GenAgentVectorEnv(num_envs, **{**defaults, **kwargs})


# --------------------------------------------------------------------------- creation and spaces


def test_make_vec_gives_the_vector_env_with_gymnasium_batched_spaces():
    envs = gym.make_vec("GenAgent-v0", num_envs=3, vectorization_mode="vector_entry_point", image_size=64)
    assert isinstance(envs, GenAgentVectorEnv) and envs.num_envs == 3
    sync = gym.make_vec("GenAgent-v0", num_envs=3, vectorization_mode="sync", image_size=64)
    assert envs.observation_space == sync.observation_space
    assert envs.observation_space == batch_space(envs.single_observation_space, 3)
    assert envs.action_space == batch_space(envs.single_action_space, 3)
    obs, info = envs.reset(seed=0)
    assert isinstance(obs["text"], tuple) and len(obs["text"]) == 3 and all(isinstance(t, str) for t in obs["text"])
    assert obs["image"].shape == (3, 64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs in envs.observation_space
    assert list(info["round"]) == [0, 0, 0] and info["_messages"].all()
    obs, *_ = envs.step(envs.action_space.sample())
    assert obs in envs.observation_space
    sync.close()
    envs.close()


def test_registered_variants_reach_every_sub_env():
    envs = gym.make_vec("GenAgent-Weak-v0", num_envs=2, vectorization_mode="vector_entry_point", max_rounds=3)
    assert [list(tools) for tools in envs.get_attr("tools")] == [["shapes-weak"], ["shapes-weak"]]
    assert envs.get_attr("max_rounds") == (3, 3)
    envs.close()


# ------------------------------------------------------------------ equivalence with one by one

SHAPES_POOL = [
    call("two red circles on the left", seed=7, name=SHAPES_TOOL),
    call("a blue square. a green triangle.", seed=None, name=SHAPES_TOOL),  # the seed comes from np_random
    call("three yellow stars", seed=None, judge="the count is wrong", name=SHAPES_TOOL),
    call("one purple hexagon", seed=123, judge="not it", name=SHAPES_TOOL),
    ANSWER,
    "<judge>the first one</judge><answer>image_1</answer>",
    "<answer>done</answer>",  # no judge after an image, or an answer before any image
    "I think I will draw something nice.",  # neither tool call nor answer
    call("x", seed=1, name="no-such-tool"),
]


def test_shapes_world_vector_step_equals_envs_stepped_one_by_one_and_sync_vector_env():
    n, seed, steps = 6, 11, 16
    vector = gym.make_vec("GenAgent-v0", num_envs=n, vectorization_mode="vector_entry_point")
    sync = gym.make_vec("GenAgent-v0", num_envs=n, vectorization_mode="sync")
    singles = [GenAgentEnv() for _ in range(n)]

    v_obs, v_info = vector.reset(seed=seed)
    s_obs, _ = sync.reset(seed=seed)
    resets = [env.reset(seed=seed + i) for i, env in enumerate(singles)]
    assert v_obs["text"] == s_obs["text"] == tuple(obs["text"] for obs, _ in resets)
    for i, (_, info) in enumerate(resets):
        assert without_cache(env_info(v_info, i)) == without_cache(info)

    rng = np.random.default_rng(3)
    ended = [False] * n
    seen = {"terminated": 0, "truncated": 0, "autoreset": 0, "no rounds left": 0, "missing judge": 0,
            "drawn seed": 0, "different turns": 0}
    for _ in range(steps):
        actions = [SHAPES_POOL[k] for k in rng.integers(len(SHAPES_POOL), size=n)]
        v_obs, v_rewards, v_terms, v_truncs, v_info = vector.step(actions)
        s_obs, s_rewards, s_terms, s_truncs, _ = sync.step(actions)
        for i, env in enumerate(singles):
            if ended[i]:  # NEXT_STEP autoreset: this step is the reset, the action is ignored
                obs, info = env.reset()
                reward, terminated, truncated = 0.0, False, False
                seen["autoreset"] += 1
            else:
                images_before = len(env.episode.state.images)
                obs, reward, terminated, truncated, info = env.step(actions[i])
                seen["drawn seed"] += actions[i] in SHAPES_POOL[1:3] and len(info["images"]) > images_before
                seen["no rounds left"] += "No tool calls are left" in obs["text"]
                seen["missing judge"] += "start the turn with <judge>" in obs["text"]
            ended[i] = terminated or truncated
            seen["terminated"] += terminated
            seen["truncated"] += truncated
            assert v_obs["text"][i] == obs["text"]
            np.testing.assert_array_equal(v_obs["image"][i], obs["image"])
            assert (v_rewards[i], v_terms[i], v_truncs[i]) == (reward, terminated, truncated)
            assert without_cache(env_info(v_info, i)) == without_cache(info), i
        assert v_obs["text"] == s_obs["text"]
        np.testing.assert_array_equal(v_obs["image"], s_obs["image"])
        np.testing.assert_array_equal(v_rewards, s_rewards)
        np.testing.assert_array_equal(v_terms, s_terms)
        np.testing.assert_array_equal(v_truncs, s_truncs)
        seen["different turns"] += len({env.episode.state.turn for env in singles}) > 1
    # the script really exercised what the equivalence is about
    assert all(count > 0 for count in seen.values()), seen
    vector.close()
    sync.close()


# ------------------------------------------------------------------------------- autoreset


def test_next_step_autoreset_pays_zero_and_returns_the_reset_observation():
    envs = colour_vector(2)
    envs.reset(seed=0, options={"task_index": 0})
    envs.step([call(seed=2), call(seed=2)])
    obs, rewards, terms, truncs, info = envs.step([ANSWER, "hello"])
    assert list(terms) == [True, False] and rewards[0] == pytest.approx(1.0)
    obs, rewards, terms, truncs, info = envs.step([call(seed=4), ANSWER])
    assert rewards[0] == 0.0 and not terms[0] and not truncs[0]
    assert obs["text"][0] in {task["prompt"] for task in COLOUR_TASKS} and not obs["image"][0].any()
    assert info["turn"][0] == 0 and info["round"][0] == 0  # the tool call was ignored
    assert terms[1] and info["turn"][1] == 3
    obs, rewards, terms, _, info = envs.step([call(seed=4), "hello"])
    assert info["round"][0] == 1 and info["turn"][0] == 1  # the new episode runs
    assert info["turn"][1] == 0 and rewards[1] == 0.0


def test_same_step_autoreset_puts_the_final_observation_in_info():
    envs = colour_vector(2, autoreset_mode=AutoresetMode.SAME_STEP)
    envs.reset(seed=0, options={"task_index": 0})
    envs.step([call(seed=2), call(seed=2)])
    obs, rewards, terms, _, info = envs.step([ANSWER, "hello"])
    assert list(terms) == [True, False] and rewards[0] == pytest.approx(1.0)
    assert list(info["_final_obs"]) == [True, False] and list(info["_final_info"]) == [True, False]
    assert "submitted" in info["final_obs"][0]["text"] and info["final_obs"][0]["image"].any()
    assert env_info(info["final_info"], 0)["reward_components"] == {"outcome": 0.7, "reflection": 0.3, "format": 0.0}
    assert obs["text"][0] in {task["prompt"] for task in COLOUR_TASKS} and not obs["image"][0].any()
    assert info["turn"][0] == 0 and info["turn"][1] == 2
    _, _, _, _, info = envs.step([call(seed=2), "hello"])  # the reset episode takes this action
    assert info["turn"][0] == 1 and info["round"][0] == 1


def test_disabled_autoreset_refuses_to_step_an_ended_env_until_it_is_reset():
    envs = colour_vector(2, autoreset_mode=AutoresetMode.DISABLED)
    envs.reset(seed=0, options={"task_index": 0})
    envs.step([call(seed=2), call(seed=2)])
    _, rewards, terms, _, _ = envs.step([ANSWER, "hello"])
    assert list(terms) == [True, False] and rewards[0] == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="reset_mask"):
        envs.step(["hello", "hello"])
    with pytest.raises(RuntimeError, match="reset_mask"):
        envs.step(["hello", "hello"])  # still refused, and nothing moved
    obs, info = envs.reset(options={"reset_mask": np.array([True, False])})
    assert list(info["_turn"]) == [True, False] and info["turn"][0] == 0
    _, _, _, _, info = envs.step([call(seed=2), "hello"])
    assert info["turn"][0] == 1 and info["turn"][1] == 3  # env 1 kept its episode through the masked reset


@pytest.mark.parametrize(("name", "mode"), [
    ("next_step", AutoresetMode.NEXT_STEP), ("same_step", AutoresetMode.SAME_STEP),
    ("disabled", AutoresetMode.DISABLED), ("SameStep", AutoresetMode.SAME_STEP),
    (AutoresetMode.DISABLED, AutoresetMode.DISABLED),
])
def test_autoreset_mode_takes_the_documented_names_and_gymnasium_values(name, mode):
    envs = colour_vector(1, autoreset_mode=name)
    assert envs.autoreset_mode == mode and envs.metadata["autoreset_mode"] == mode


# ------------------------------------------------------------------------- diffusers batches


@pytest.fixture(scope="module")
def tiny_sd() -> Any:
    from genagent_env.testing.tiny_diffusers import tiny_sd_pipeline
    from genagent_env.tools.diffusers_generator import DiffusersGenerator

    return DiffusersGenerator(tiny_sd_pipeline(), name="sd", num_inference_steps=2, height=32, width=32,
                              max_batch_size=16)


def test_diffusers_vector_step_matches_one_by_one_within_1e_3(tiny_sd, colour_env):
    actions = [call("a red cat", 11, name="sd"), call("a blue dog on grass", 12, name="sd"),
               call("a green circle", 13, name="sd"), call("a cat", None, name="sd")]
    options = [{"task_index": i % 3} for i in range(4)]
    weights = {"continuous_outcome": True}
    counting = CountingGenerator(tiny_sd)
    envs = colour_vector(4, generators={"sd": counting}, reward_weights=weights)
    envs.reset(seed=0, options=options)
    _, _, _, _, v_info = envs.step(actions)
    assert [len(requests) for requests in counting.calls] == [4]  # one batched call
    _, v_rewards, v_terms, _, v_end = envs.step([ANSWER] * 4)
    assert v_terms.all()

    for i in range(4):
        env = colour_env(generators={"sd": tiny_sd}, image_size=32, reward_weights=weights)
        env.reset(seed=i, options=options[i])
        _, _, _, _, info = env.step(actions[i])
        _, reward, terminated, _, end = env.step(ANSWER)
        assert terminated
        assert env_info(v_info, i)["rounds"] == info["rounds"]  # same prompts and seeds (drawn ones too)
        one = np.asarray(info["images"][0], dtype=np.float64) / 255
        many = np.asarray(env_info(v_info, i)["images"][0], dtype=np.float64) / 255
        assert one.shape == many.shape == (32, 32, 3)
        assert np.abs(one - many).max() <= 1 / 255 + 1e-3 and np.abs(one - many).mean() <= 1e-3
        assert v_rewards[i] == pytest.approx(reward, abs=1e-3) and v_end["passed"][i] == end["passed"]
    first, second = (np.asarray(env_info(v_info, i)["images"][0], dtype=float) for i in (0, 1))
    assert np.abs(first - second).mean() > 1  # prompts and seeds matter: not one image four times

    counting.calls.clear()
    halves = colour_vector(4, generators={"sd": counting}, batch_size=2, generation_cache=False)
    halves.reset(seed=0, options=options)
    halves.step(actions)
    assert [len(requests) for requests in counting.calls] == [2, 2]


# ------------------------------------------------------------------ the cache: GRPO and branches


def test_grpo_group_on_one_task_generates_the_shared_first_call_once():
    tool = counting_paint()
    envs = colour_vector(8, generators={"paint": tool})
    envs.reset(seed=0, options={"task_index": 1})
    obs, _, _, _, info = envs.step([call("a green thing", seed=5)] * 8)
    assert len(tool.calls) == 1 and sum(len(requests) for requests in tool.calls) == 1
    stats = [env_info(info, i)["generation_cache"] for i in range(8)]
    assert all(s["misses"] == 1 and s["hits"] == 7 and s["generator_calls"] == 1 for s in stats), stats
    images = [np.asarray(env_info(info, i)["images"][0]) for i in range(8)]
    assert all(np.array_equal(images[0], image) for image in images)
    assert (obs["image"] == obs["image"][0]).all() and list(info["round"]) == [1] * 8


def test_set_state_branches_of_one_env_share_one_generation(colour_env):
    tool = counting_paint()
    env = colour_env(generators={"paint": tool}, generation_cache=True)
    env.reset(seed=0, options={"task_index": 0})
    snapshot = env.get_state()
    outcomes = []
    for _ in range(4):
        env.set_state(snapshot)
        obs, _, _, _, info = env.step(call(seed=None))  # the seed is drawn: the same in every branch
        outcomes.append((info["rounds"][0]["seed"], obs["image"]))
    assert len(tool.calls) == 1
    assert info["generation_cache"]["misses"] == 1 and info["generation_cache"]["hits"] == 3
    assert len({seed for seed, _ in outcomes}) == 1
    assert all(np.array_equal(outcomes[0][1], image) for _, image in outcomes)


def test_vector_set_state_branches_one_snapshot_n_ways():
    tool = counting_paint()
    envs = colour_vector(4, generators={"paint": tool})
    envs.reset(seed=0, options=[{"task_index": i % 3} for i in range(4)])
    envs.step(["hello", call(seed=1), "hello", "hello"])
    snapshot = envs.get_state()[1]
    envs.set_state([snapshot] * 4)
    tool.calls.clear()
    obs, _, _, _, info = envs.step([call("a blue thing", seed=None, judge="grey")] * 4)
    assert len(tool.calls) == 1 and len(tool.calls[0]) == 1
    assert list(info["turn"]) == [2] * 4 and list(info["round"]) == [2] * 4
    assert len({env_info(info, i)["rounds"][1]["seed"] for i in range(4)}) == 1
    assert (obs["image"] == obs["image"][0]).all()
    assert all(env_info(info, i)["task_id"] == COLOUR_TASKS[1]["id"] for i in range(4))


# ----------------------------------------------------------------------- failure isolation


class Fragile(Generator):
    """Paints like ``paint``; fails for prompts containing "boom" (raising, or a NaN image) or for one seed."""

    name = "paint"

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.calls: list[int] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        self.calls.append(len(requests))
        if self.mode == "raise" and any("boom" in r.prompt for r in requests):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        if self.mode == "seed" and any(r.seed == 13 for r in requests):
            raise ValueError("this seed always breaks the sampler")
        out: list[Any] = []
        for r in requests:
            bad = self.mode == "nan" and "boom" in r.prompt
            out.append(np.full((32, 32, 3), np.nan, dtype=np.float32) if bad else paint(r.prompt, r.seed))
        return out


@pytest.mark.parametrize(("mode", "bad_action"), [
    ("raise", call("a boom red thing", seed=2)),
    ("nan", call("a boom red thing", seed=2)),
    ("seed", call("a red thing", seed=13)),
])
def test_one_failing_request_fails_only_its_own_env(mode, bad_action):
    tool = Fragile(mode)
    envs = colour_vector(4, generators={"paint": tool})
    envs.reset(seed=0, options={"task_index": 0})
    actions = [call("a red thing", seed=2), call("a blue thing", seed=4), bad_action, call("a green thing", seed=6)]
    obs, rewards, terms, truncs, info = envs.step(actions)
    assert "failed and made no image" in obs["text"][2]
    assert info["round"][2] == 0 and info["violations"][2] == 0 and env_info(info, 2)["images"] == []
    assert not obs["image"][2].any() and not terms.any() and not truncs.any()
    for i in (0, 1, 3):
        assert info["round"][i] == 1 and len(env_info(info, i)["images"]) == 1 and info["violations"][i] == 0
        assert obs["image"][i].any() and "image_1" in obs["text"][i]
    assert np.array_equal(obs["image"][0], np.asarray(paint("a red thing", 2).resize((32, 32))))
    _, _, _, _, info = envs.step([ANSWER, ANSWER, call("a red thing", seed=2), ANSWER])
    assert info["round"][2] == 1  # the episode goes on after the failure


# ------------------------------------------------------------------------------ hostile use


def test_step_before_reset_raises():
    with pytest.raises(RuntimeError, match="reset"):
        colour_vector(2).step(["hello", "hello"])


def test_wrong_number_of_actions_raises():
    envs = colour_vector(3)
    envs.reset(seed=0)
    for actions in (["hello"] * 2, ["hello"] * 4, "hello"):
        with pytest.raises(ValueError):
            envs.step(actions)
    _, _, _, _, info = envs.step(["hello"] * 3)
    assert list(info["turn"]) == [1, 1, 1]  # the refused steps changed nothing


def test_a_non_string_action_is_a_violation_of_that_env_only():
    envs = colour_vector(3)
    envs.reset(seed=0, options={"task_index": 0})
    obs, _, terms, _, info = envs.step((call(seed=2), None, {"name": "paint"}))
    assert info["round"][0] == 1 and info["violations"][0] == 0
    assert list(info["violations"][1:]) == [1, 1] and not terms.any()
    assert "must be a string" in obs["text"][1] and "must be a string" in obs["text"][2]


@pytest.mark.parametrize("kwargs", [
    {"batch_size": 0}, {"batch_size": -1}, {"batch_size": True}, {"batch_size": 2.0},
    {"score_batch_size": 0}, {"score_batch_size": True},
    {"autoreset_mode": "sometimes"}, {"num_envs": 0},
])
def test_bad_arguments_raise_value_error(kwargs):
    kwargs = dict(kwargs)
    num_envs = kwargs.pop("num_envs", 2)
    with pytest.raises(ValueError):
        colour_vector(num_envs, **kwargs)


# -------------------------------------------------------- scoring: batches, and failing scorers


def test_score_batch_size_splits_scoring_and_comparisons():
    scorer, comparator = CountingScorer(), CountingComparator()
    envs = colour_vector(5, scorer=scorer, comparator=comparator, score_batch_size=2)
    envs.reset(seed=0, options={"task_index": 0})
    envs.step([call(seed=1)] * 5)
    assert scorer.calls == [2, 2, 1]
    envs.step([call(seed=2, judge="grey")] * 3 + ["hello", "hello"])
    assert scorer.calls[3:] == [2, 1]
    _, rewards, terms, _, _ = envs.step([ANSWER] * 5)
    assert terms.all() and comparator.calls == [2, 1]  # three episodes with a retry decision
    assert rewards[0] == pytest.approx(1.0)  # the retry from grey to red was right


STEP_1 = [call(seed=2), "hello", call(seed=None), call(seed=1)]
STEP_2 = [ANSWER, call(seed=None), call(seed=None, judge="wrong"), call(seed=None, judge="grey")]


def _state(envs: GenAgentVectorEnv) -> list[tuple[Any, ...]]:
    return [
        (env.episode.state.turn, env.episode.state.round, len(env.episode.state.messages),
         len(env.episode.state.images), env.episode.state.done, json.dumps(env.np_random.bit_generator.state))
        for env in envs.envs
    ]


def _assert_same_step(a: tuple[Any, ...], b: tuple[Any, ...], n: int) -> None:
    assert a[0]["text"] == b[0]["text"]
    np.testing.assert_array_equal(a[0]["image"], b[0]["image"])
    for k in (1, 2, 3):
        np.testing.assert_array_equal(a[k], b[k])
    for i in range(n):
        assert without_cache(env_info(a[4], i)) == without_cache(env_info(b[4], i))


def test_a_step_whose_scorer_raises_changes_nothing_and_can_be_retried():
    scorer = CountingScorer()
    envs, reference = colour_vector(4, scorer=scorer), colour_vector(4)
    for vector in (envs, reference):
        vector.reset(seed=3, options=[{"task_index": i % 3} for i in range(4)])
        vector.step(STEP_1)
    before = _state(envs)
    scorer.fail = True
    with pytest.raises(RuntimeError, match="down"):
        envs.step(STEP_2)
    assert _state(envs) == before  # turns, messages, images and the seeds' np_random all as they were
    scorer.fail = False
    _assert_same_step(envs.step(STEP_2), reference.step(STEP_2), 4)


def test_a_step_whose_comparator_raises_changes_nothing_and_can_be_retried():
    comparator = CountingComparator()
    envs, reference = colour_vector(4, comparator=comparator), colour_vector(4, comparator=CountingComparator())
    retry = [call(seed=4, judge="grey"), call(seed=None), call(seed=None, judge="wrong"), call(seed=None, judge="grey")]
    for vector in (envs, reference):
        vector.reset(seed=3, options=[{"task_index": i % 3} for i in range(4)])
        vector.step(STEP_1)
        vector.step(retry)
    before = _state(envs)
    comparator.fail = True
    with pytest.raises(RuntimeError, match="down"):
        envs.step([ANSWER] * 4)  # three episodes end with a retry decision to judge
    assert _state(envs) == before
    comparator.fail = False
    _assert_same_step(envs.step([ANSWER] * 4), reference.step([ANSWER] * 4), 4)


def test_a_comparator_is_not_needed_by_an_episode_without_retries(colour_env):
    comparator = CountingComparator()
    env = colour_env(comparator=comparator)
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(seed=2))
    _, reward, terminated, _, info = env.step(ANSWER)  # one image, submitted: nothing to compare
    assert terminated and reward == pytest.approx(1.0) and comparator.calls == []
    envs = colour_vector(2, comparator=comparator)
    envs.reset(seed=0, options={"task_index": 0})
    envs.step([call(seed=2), "hello"])
    _, rewards, terms, _, _ = envs.step([ANSWER, "hello"])
    assert list(terms) == [True, False] and rewards[0] == pytest.approx(1.0)


# --------------------------------------------------------------------- resets that lose nothing


def test_a_bad_option_for_one_sub_env_resets_none_of_them():
    envs = colour_vector(2)
    envs.reset(seed=0, options={"task_index": 0})
    envs.step([call(seed=2), call(seed=2)])
    with pytest.raises(ValueError, match="task_index"):
        envs.reset(options=[{"task_index": 0}, {"task_index": 10**9}])
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=[1, -5])
    assert [env.episode.state.round for env in envs.envs] == [1, 1]  # both episodes are intact
    _, _, terms, _, _ = envs.step([ANSWER, ANSWER])
    assert terms.all()


def test_set_state_checks_every_snapshot_before_restoring_any():
    envs = colour_vector(2)
    envs.reset(seed=0, options={"task_index": 0})
    snapshot = envs.get_state()
    envs.step([call(seed=2), call(seed=2)])
    with pytest.raises(ValueError, match=r"states\[1\]"):
        envs.set_state([snapshot[0], {"episode": "forged"}])
    assert [env.episode.state.round for env in envs.envs] == [1, 1]
    envs.set_state(snapshot)
    assert [env.episode.state.round for env in envs.envs] == [0, 0]


def test_make_vec_max_episode_steps_is_the_turn_limit():
    envs = gym.make_vec("GenAgent-v0", num_envs=2, vectorization_mode="vector_entry_point", max_episode_steps=1)
    envs.reset(seed=0)
    _, _, terms, truncs, _ = envs.step(["hello", "hello"])
    assert truncs.all() and not terms.any()
    with pytest.raises(ValueError, match="disagree"):
        GenAgentVectorEnv(2, max_episode_steps=1, max_turns=3)


def test_one_nan_image_in_a_diffusers_batch_costs_no_retry_of_the_others():
    from genagent_env.tools.diffusers_generator import DiffusersGenerationError, DiffusersGenerator
    from genagent_env.tools.dispatch import generate_requests

    class NaNForSeed13:
        """A pipeline stand-in: images of 0.5, NaN for the request seeded 13."""

        vae_scale_factor = 8

        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, prompt, generator, output_type="np", **kwargs):
            import types

            self.calls += 1
            seeds = [g.initial_seed() for g in generator]
            images = np.stack([np.full((16, 16, 3), np.nan if s == 13 else 0.5, dtype=np.float32) for s in seeds])
            return types.SimpleNamespace(images=images)

    pipeline = NaNForSeed13()
    tool = DiffusersGenerator(pipeline, name="fake", max_batch_size=8)
    out = generate_requests(tool, [GenerationRequest("a", 12), GenerationRequest("b", 13), GenerationRequest("c", 14)])
    assert isinstance(out[1], DiffusersGenerationError) and "NaN" in str(out[1])
    assert isinstance(out[0], Image.Image) and isinstance(out[2], Image.Image)
    assert pipeline.calls == 1  # the good images were kept, not made again one by one
    with pytest.raises(DiffusersGenerationError, match="NaN"):
        tool.generate([GenerationRequest("b", 13)])  # generate() itself still raises
