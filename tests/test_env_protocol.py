"""The episode contract (action protocol, observations and info, rewards, episode end) on a tiny
colour world, independent of ShapesWorld."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.helpers import COLOUR_TASKS


def call(prompt: str = "a red thing", seed: int | None = 2, judge: str | None = None, name: str = "paint") -> str:
    args = {"prompt": prompt} if seed is None else {"prompt": prompt, "seed": seed}
    head = f"<judge>{judge}</judge>" if judge else ""
    return head + "<tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>"


def test_one_round_success_pays_outcome_and_reflection(colour_env):
    env = colour_env()
    obs, info = env.reset(seed=0, options={"task_index": 0})  # red
    assert obs["text"] == "something red" and not obs["image"].any()
    obs, reward, terminated, truncated, info = env.step(call())
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert info["round"] == 1 and len(info["images"]) == 1 and obs["image"].shape == (128, 128, 3)
    assert "image_1" in obs["text"]
    obs, reward, terminated, truncated, info = env.step("<judge>looks red</judge><answer>done</answer>")
    assert terminated and not truncated
    assert info["reward_components"] == {"outcome": 0.7, "reflection": 0.3, "format": 0.0}
    assert reward == pytest.approx(1.0)
    assert info["final_image"] == 1 and info["passed"] is True
    assert info["rounds"][0]["judge"] == "looks red"


def test_retry_after_a_failure_is_a_correct_decision(colour_env):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(seed=1))  # odd seed: a grey miss
    env.step(call(seed=4, judge="grey, not red"))
    *_, info = env.step("<judge>red now</judge><answer>image_2</answer>")
    assert [d["correct"] for d in info["decisions"]] == [True, True]
    assert info["reward_components"]["reflection"] == pytest.approx(0.3)


def test_retry_after_a_success_and_submitting_a_failure_are_wrong(colour_env):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(seed=2))  # passes
    env.step(call(seed=3, judge="not sure"))  # needless retry, gives a miss
    _, reward, _, _, info = env.step("<judge>ok</judge><answer>image_2</answer>")  # submits the miss
    assert [d["correct"] for d in info["decisions"]] == [False, False]
    assert info["reward_components"] == {"outcome": 0.0, "reflection": 0.0, "format": 0.0}
    assert reward == 0.0


def test_a_tie_is_not_a_preference(colour_env):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(seed=1))
    env.step(call(seed=3, judge="grey"))  # the same grey miss again: no strict improvement
    *_, info = env.step("<judge>grey</judge><answer>done</answer>")
    assert info["decisions"][0] == {"image": 1, "kind": "retry", "submitted": None, "correct": False}


def test_missing_judge_is_a_violation_but_the_turn_runs(colour_env):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(seed=2))
    obs, reward, terminated, _, info = env.step("<answer>done</answer>")
    assert terminated and info["violations"] == 1
    assert info["reward_components"]["format"] == pytest.approx(-0.2)
    assert reward == pytest.approx(0.8)


@pytest.mark.parametrize(
    "action, fragment",
    [
        ("hello", "neither"),
        (call() + call(), "one tool call"),
        (call() + "<answer>done</answer>", "not both"),
        ("<tool_call>{not json</tool_call>", "not valid JSON"),
        ("<tool_call>[1, 2]</tool_call>", "JSON object"),
        (call(name="nope"), "Unknown tool"),
        ('<tool_call>{"name": "paint", "arguments": {}}</tool_call>', "'prompt' is required"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": ""}}</tool_call>', "must not be empty"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": 5}}</tool_call>', "type string"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "steps": 3}}</tool_call>', "unknown argument"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": "7"}}</tool_call>', "type integer"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": 7.5}}</tool_call>', "type integer"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": 7.0}}</tool_call>', "type integer"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": true}}</tool_call>', "type integer"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": NaN}}</tool_call>', "not valid JSON"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": -1}}</tool_call>', "at least 0"),
        ('<tool_call>{"name": "paint", "arguments": {"prompt": "red", "seed": 4294967296}}</tool_call>', "at most"),
        ("<answer>done</answer>", "no image"),
        ("<think>x</think><judge>y</judge>" + call(), "order"),
        ("<think>never closed", "never closed"),
        ("[" * 100000, "neither"),
        ("<tool_call>" + "[" * 100000 + "</tool_call>", "not valid JSON"),
    ],
)
def test_violations_have_no_effect_and_say_what_is_wrong(colour_env, action, fragment):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    obs, reward, terminated, truncated, info = env.step(action)
    assert not terminated and reward == 0.0
    assert info["violations"] == 1 and info["round"] == 0 and info["images"] == []
    assert obs["text"].startswith("Format violation") and fragment in obs["text"], obs["text"]
    assert env.observation_space.contains(obs)
    # The episode goes on: a valid call now works.
    _, _, _, _, info = env.step(call())
    assert info["round"] == 1


@pytest.mark.parametrize("answer, ok", [("done", True), ("1", True), ("image_1", True), (" IMAGE_1 ", True),
                                        ("image_0", False), ("2", False), ("image_-1", False), ("best", False),
                                        ("9" * 5000, False)])
def test_answers(colour_env, answer, ok):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    env.step(call())
    _, _, terminated, _, info = env.step(f"<judge>j</judge><answer>{answer}</answer>")
    assert terminated is ok
    assert info["violations"] == (0 if ok else 1)


def test_tags_are_case_insensitive_and_tags_inside_think_are_text(colour_env):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    action = ("  <THINK> I could write <answer>done</answer> or <tool_call>{}</tool_call> </Think>\n"
              '< Tool_Call >{"name": "paint", "arguments": {"prompt": "red"}}</ TOOL_CALL >')
    _, _, _, _, info = env.step(action)
    assert info["violations"] == 0 and info["round"] == 1


def test_stray_text_is_reported_and_strict_format_makes_it_a_violation(colour_env):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    _, _, _, _, info = env.step("Sure! " + call())
    assert info["stray_text"] == "Sure!" and info["violations"] == 0
    strict = colour_env(strict_format=True)
    strict.reset(seed=0, options={"task_index": 0})
    _, _, _, _, info = strict.step("Sure! " + call())
    assert info["violations"] == 1 and info["round"] == 0


def test_no_rounds_left_and_truncation(colour_env):
    env = colour_env(max_rounds=1)
    assert env.max_turns == 4
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(seed=2))
    obs, *_ = env.step(call(judge="fine"))
    assert "No tool calls are left" in obs["text"]
    env.step("<judge>fine</judge>nothing")
    obs, reward, terminated, truncated, info = env.step("<judge>fine</judge>still nothing")
    assert truncated and not terminated
    # Truncated: the latest image is final (it passes), the undecided image is a wrong decision.
    assert info["final_image"] == 1
    assert info["reward_components"] == {"outcome": 0.7, "reflection": 0.0, "format": -0.2}
    assert reward == pytest.approx(0.5)
    with pytest.raises(RuntimeError):
        env.step(call())


def test_truncation_without_images_has_no_outcome(colour_env):
    env = colour_env(max_turns=2)
    env.reset(seed=0, options={"task_index": 0})
    env.step("x")
    _, reward, _, truncated, info = env.step("y")
    assert truncated and info["final_image"] is None
    assert info["reward_components"] == {"outcome": 0.0, "reflection": 0.0, "format": -0.2}


def test_non_string_actions_are_violations(colour_env):
    env = colour_env()
    env.reset(seed=0, options={"task_index": 0})
    for action in (None, 7, b"<answer>done</answer>", {"name": "paint"}):
        obs, _, terminated, truncated, info = env.step(action)
        assert "must be a string" in obs["text"]
        if truncated:
            break


def _failing(prompt: str, seed: int) -> Image.Image:
    raise RuntimeError("CUDA out of memory")


def _nan(prompt: str, seed: int) -> np.ndarray:
    return np.full((8, 8, 3), np.nan, dtype=np.float32)


def _not_an_image(prompt: str, seed: int) -> str:
    return "an image, honestly"


@pytest.mark.parametrize("bad, fragment", [(_failing, "CUDA out of memory"), (_nan, "non-finite"),
                                           (_not_an_image, "not an image")])
def test_a_failing_generator_is_an_error_message_and_the_agent_can_call_again(colour_env, bad, fragment):
    from tests.helpers import paint

    env = colour_env(generators={"bad": bad, "paint": paint})
    env.reset(seed=0, options={"task_index": 0})
    obs, _, terminated, _, info = env.step(call(name="bad"))
    assert fragment in obs["text"] and "failed" in obs["text"]
    assert not terminated and info["round"] == 0 and info["violations"] == 0
    _, _, _, _, info = env.step(call(name="paint"))
    assert info["round"] == 1 and len(info["images"]) == 1


def test_generated_arrays_and_odd_sizes_are_accepted(colour_env):
    env = colour_env(
        generators={"paint": lambda p, s: np.ones((50, 70, 3), dtype=np.float32) * 0.5}, image_size=(16, 24)
    )
    env.reset(seed=0, options={"task_index": 0})
    obs, *_, info = env.step(call())
    assert obs["image"].shape == (16, 24, 3) and info["images"][0].size == (70, 50)


def test_missing_seed_is_drawn_from_np_random(colour_env):
    env = colour_env()
    seeds = []
    for _ in range(2):
        env.reset(seed=5, options={"task_index": 0})
        *_, info = env.step(call(seed=None))
        seeds.append(info["rounds"][0]["seed"])
    assert seeds[0] == seeds[1] and 0 <= seeds[0] < 2**32


def test_reset_options(colour_env):
    env = colour_env()
    _, info = env.reset(options={"task_index": 2})
    assert info["task_id"] == "c/2" and info["tag"] == "color"
    task = {"tag": "color", "include": [{"class": "thing", "count": 1, "color": "green"}], "prompt": "green!"}
    obs, info = env.reset(options={"task": task})
    assert obs["text"] == "green!"
    obs, info = env.reset(options={"prompt": "make it blue"})
    assert obs["text"] == "make it blue"
    for bad in ({"task_index": 3}, {"task_index": -1}, {"task_index": True}, {"seed": 1},
                {"task_index": 0, "prompt": "red"}, {"prompt": ""}, {"prompt": "no colour here"},
                {"task": {"prompt": "x", "include": [{"class": "a", "count": 0}]}},
                {"task": {"prompt": "x", "include": [{"class": "a", "count": 1, "color": "mauve"}]}}):
        with pytest.raises(ValueError):
            env.reset(options=bad)


def test_info_contract(colour_env):
    env = colour_env()
    _, info = env.reset(seed=0, options={"task_index": 0})
    for key in ("messages", "tools", "task_id", "tag", "round", "turn", "violations", "images"):
        assert key in info
    assert "task" not in info
    system, user = info["messages"]
    assert system["role"] == "system" and '"name": "paint"' in system["content"] and "<judge>" in system["content"]
    assert user == {"role": "user", "content": "something red"}
    assert info["tools"][0]["function"]["name"] == "paint"
    assert info["tools"][0]["function"]["parameters"]["required"] == ["prompt"]
    _, _, _, _, info = env.step(call())
    tool = info["messages"][-1]
    assert tool["role"] == "tool" and tool["content"][0]["type"] == "image"
    assert isinstance(tool["content"][0]["image"], Image.Image)
    # everything but the images is plain data: it survives a JSON round trip unchanged
    plain = [*info["messages"][:3], {**tool, "content": [part for part in tool["content"] if part["type"] != "image"]}]
    assert json.loads(json.dumps(plain)) == plain and len(plain[-1]["content"]) == 1
    privileged = colour_env(privileged=True)
    _, info = privileged.reset(options={"task_index": 1})
    assert info["task"]["include"][0]["color"] == "green"


def test_text_observation_is_cleaned_and_cut(colour_env):
    env = colour_env(max_text_length=64)
    obs, _ = env.reset(options={"task": {"tag": "color", "prompt": "r\u00e9d \u2603 " + "red " * 100,
                                         "include": [{"class": "thing", "count": 1, "color": "red"}]}})
    assert env.observation_space.contains(obs)
    assert obs["text"].startswith("r?d ? red") and obs["text"].endswith("...[truncated]")
    _, info = env.reset(options={"task_index": 0})
    assert info["messages"][1]["content"] == "something red"


def _play_pass_with_violation(env) -> dict:
    """Image 1 passes (red), submitted without a judge: 1 violation, 1 correct decision of 1."""
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(seed=2))
    *_, info = env.step("<answer>done</answer>")
    return info


def _play_grey_submitted_after_a_good_retry(env) -> dict:
    """A violation, then a grey miss, a correct retry to a red image, and the grey one submitted:
    1 violation, 1 correct decision of 2, a failing final image with a graded score below 1."""
    env.reset(seed=0, options={"task_index": 0})
    env.step("hello")
    env.step(call(seed=1))
    env.step(call(seed=2, judge="grey, not red"))
    *_, info = env.step("<judge>the first one</judge><answer>image_1</answer>")
    return info


@pytest.mark.parametrize("weights", [
    {},
    {"outcome": 1.0, "reflection": 0.0, "format_penalty": 0.5, "continuous_outcome": True},
    {"outcome": 0.25, "reflection": 0.6, "format_penalty": 0.05},
    {"outcome": 2.0, "reflection": 1.5, "format_penalty": 0.0, "continuous_outcome": False},
    {"outcome": 0.0, "reflection": 0.45, "format_penalty": 3.0, "continuous_outcome": True},
])
def test_reward_weights_are_configurable(colour_env, weights):
    from tests.helpers import ColourScorer, paint

    w = {"outcome": 0.7, "reflection": 0.3, "format_penalty": 0.2, "continuous_outcome": False, **weights}
    env = colour_env(reward_weights=weights)
    grey_score = ColourScorer().score([paint("something red", 1)], [COLOUR_TASKS[0]])[0].score
    assert 0.5 < grey_score < 0.9  # graded, so continuous_outcome has something to change
    for play, (passed, score, accuracy) in ((_play_pass_with_violation, (True, 1.0, 1.0)),
                                           (_play_grey_submitted_after_a_good_retry, (False, grey_score, 0.5))):
        info = play(env)
        assert info["violations"] == 1 and info["passed"] is passed
        assert [d["correct"] for d in info["decisions"]] == ([True] if passed else [True, False])
        expected = {
            "outcome": w["outcome"] * (score if w["continuous_outcome"] else float(passed)),
            "reflection": w["reflection"] * accuracy,
            "format": -w["format_penalty"],
        }
        assert info["reward_components"] == pytest.approx(expected), (play.__name__, weights)
    env.reset(seed=0, options={"task_index": 0})
    env.step(call(seed=2))
    *_, info = env.step("<judge>red</judge><answer>done</answer>")  # no violation: no penalty
    assert info["reward_components"] == pytest.approx(
        {"outcome": w["outcome"], "reflection": w["reflection"], "format": 0.0})
    with pytest.raises(ValueError):
        colour_env(reward_weights={"outcomes": 1.0})


def test_the_reward_is_the_sum_of_its_components_under_any_weights(colour_env):
    env = colour_env(reward_weights={"outcome": 0.25, "reflection": 0.6, "format_penalty": 0.05,
                                     "continuous_outcome": True})
    env.reset(seed=0, options={"task_index": 0})
    env.step("hello")
    env.step(call(seed=1))
    env.step(call(seed=2, judge="grey, not red"))
    _, reward, terminated, _, info = env.step("<judge>the first one</judge><answer>image_1</answer>")
    assert terminated and reward == pytest.approx(sum(info["reward_components"].values()))
    assert reward != pytest.approx(0.7 * 0 + 0.3 * 0.5 - 0.2)  # not the default weights' reward


def test_set_state_branches_reproduce_the_same_future(colour_env):
    env = colour_env()
    env.reset(seed=3, options={"task_index": 0})
    env.step(call(seed=1))
    state = env.get_state()
    futures = []
    for _ in range(3):
        env.set_state(state)
        steps = [env.step(call(seed=None, judge="grey")), env.step("<judge>?</judge><answer>done</answer>")]
        futures.append([(s[0]["text"], s[0]["image"].tobytes(), s[1], s[2], s[3]) for s in steps])
    assert futures[0] == futures[1] == futures[2]
    env.set_state(state)
    _, _, _, _, info = env.step("<judge>x</judge><answer>done</answer>")
    assert info["final_image"] == 1  # the snapshot was not changed by the branches
    with pytest.raises(ValueError):
        env.set_state({"episode": 1})


def test_render_modes(colour_env):
    picture_env = colour_env(render_mode="rgb_array")
    picture_env.reset(seed=0, options={"task_index": 0})
    empty = picture_env.render()
    picture_env.step(call(seed=1))
    picture_env.step(call(seed=2, judge="grey <b>not</b> red"))
    frame = picture_env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[1] > empty.shape[1]
    text_env = colour_env(render_mode="ansi")
    text_env.reset(seed=0, options={"task_index": 0})
    text_env.step(call(seed=2))
    transcript = text_env.render()
    assert "[user] something red" in transcript and "[tool] <image>" in transcript


def test_several_tools_in_one_episode(colour_env):
    from tests.helpers import paint

    env = colour_env(generators={"paint": paint, "paint_b": lambda p, s: paint(p, s + 1)})
    env.reset(seed=0, options={"task_index": 0})
    _, _, _, _, info = env.step(call(seed=2, name="paint_b"))
    assert info["rounds"][0]["tool"] == "paint_b"
    assert [t["function"]["name"] for t in info["tools"]] == ["paint", "paint_b"]
    with pytest.raises(ValueError):
        colour_env(generators={"bad name!": paint})


def test_suite_from_a_geneval_file(tmp_path, colour_env):
    rows = [
        {"tag": "position", "include": [{"class": "thing", "count": 1, "color": "red"},
                                        {"class": "cup", "count": 1, "position": ["left of", 0]}],
         "prompt": "a red thing"},
        {"tag": "counting", "include": [{"class": "thing", "count": 2, "color": "blue"}],
         "exclude": [{"class": "thing", "count": 3}], "prompt": "two blue things"},
    ]
    path = tmp_path / "evaluation_metadata.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    env = colour_env(suite=str(path))
    assert len(env.tasks) == 2 and env.tasks[0]["include"][1]["position"] == ["left of", 0]
    assert env.tasks[1]["id"] == "evaluation_metadata/00001"
    unscorable = tmp_path / "unscorable.jsonl"
    unscorable.write_text('{"prompt": "a dog", "include": [{"class": "dog", "count": 1}]}\n')
    with pytest.raises(ValueError, match="colour scorer"):
        colour_env(suite=str(unscorable))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "include": [{"class": "a", "position": ["inside", 0]}]}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        colour_env(suite=str(bad))
    obs, info = env.reset(options={"task_index": 1})  # the env plays the file's tasks
    assert obs["text"] == "two blue things" and info["task_id"] == "evaluation_metadata/00001"
