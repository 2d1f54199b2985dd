"""Step many ``GenAgentEnv`` together, so that generation and scoring run in batches.

:func:`step_together` is one step of every env, in four phases:

1. each env parses its action and builds its tool request (nothing changes yet);
2. the requests are grouped per tool (and cache) and run through
   :func:`~genagent_env.tools.dispatch.generate_requests`: cached or identical requests are served
   once, the rest go to the generator in batches, and a failing request only fails itself;
3. the new images are grouped per scorer and scored in batches;
4. each env writes its turn into the episode; episodes that end are closed, their pairwise
   comparisons grouped per comparator and judged in batches, and their rewards paid.

Every env sees exactly what its own ``step`` would give it: the same seeds are drawn from its own
``np_random`` in the same order, and a generator that honours per-request seeds makes the same
image in a batch as alone. ``GenAgentEnv.step`` itself is ``step_together([env], [action])``.

If a scorer or a comparator raises, every episode is put back as it was before the step (drawn
seeds too), so the caller may retry the step; images already made are in the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from genagent_env.tools.dispatch import check_batch_size, generate_requests

if TYPE_CHECKING:
    from genagent_env.env import GenAgentEnv, _Turn

StepResult = tuple[dict[str, Any], float, bool, bool, dict[str, Any]]


def step_together(
    envs: Sequence[GenAgentEnv],
    actions: Sequence[Any],
    *,
    batch_size: int | None = None,
    score_batch_size: int | None = None,
) -> list[StepResult]:
    """Step ``envs[i]`` with ``actions[i]`` for every i; return each env's
    ``(observation, reward, terminated, truncated, info)``.

    Args:
        envs: Distinct environments, each reset and not done.
        actions: One action per env.
        batch_size: The most requests in one ``generate`` call (``None``: all of a tool's requests).
        score_batch_size: The most images in one ``score`` or ``compare`` call (``None``: all).
    """
    if len(envs) != len(actions):
        raise ValueError(f"got {len(actions)} actions for {len(envs)} environments")
    if len({id(env) for env in envs}) != len(envs):
        raise ValueError("an environment appears twice; step each one once")
    check_batch_size("batch_size", batch_size)
    check_batch_size("score_batch_size", score_batch_size)

    turns: list[_Turn] = []
    try:
        for env, action in zip(envs, actions):
            turns.append(env._begin_turn(action))
        _generate(envs, turns, batch_size)
        _score(envs, turns, score_batch_size)
    except BaseException:
        for env, turn in zip(envs, turns):
            env._undo_turn(turn)
        raise

    marks = [env._mark() for env in envs]
    try:
        ends = [env._apply_turn(turn) for env, turn in zip(envs, turns)]
        rewards = _settle(envs, turns, ends, score_batch_size)
    except BaseException:  # a comparator failed: put every episode back as it was
        for env, turn, mark in zip(envs, turns, marks):
            env._rewind(mark)
            env._undo_turn(turn)
        raise
    return [
        (env._observation(), reward, terminated, truncated, env._info())
        for env, reward, (terminated, truncated) in zip(envs, rewards, ends)
    ]


def _chunks(items: list[Any], size: int | None) -> list[list[Any]]:
    size = size or max(len(items), 1)
    return [items[start : start + size] for start in range(0, len(items), size)]


def _generate(envs: Sequence[GenAgentEnv], turns: list[_Turn], batch_size: int | None) -> None:
    if all(turn.request is None for turn in turns):
        return
    groups: dict[tuple[int, int, float | None], list[int]] = {}
    for index, (env, turn) in enumerate(zip(envs, turns)):
        if turn.request is None:
            continue
        assert turn.call is not None
        tool = env.tools[turn.call.name]
        key = (id(tool), id(env.generation_cache), env.tool_timeout_s)
        groups.setdefault(key, []).append(index)
    for indices in groups.values():
        env = envs[indices[0]]
        tool = env.tools[turns[indices[0]].call.name]  # type: ignore[union-attr]
        outcomes = generate_requests(
            tool,
            [turns[i].request for i in indices],  # type: ignore[misc]
            cache=env.generation_cache,
            batch_size=batch_size,
            timeout_s=env.tool_timeout_s,
        )
        for index, outcome in zip(indices, outcomes):
            if isinstance(outcome, Exception):
                turns[index].tool_error = outcome
            else:
                turns[index].image = outcome


def _score(envs: Sequence[GenAgentEnv], turns: list[_Turn], score_batch_size: int | None) -> None:
    if all(turn.image is None for turn in turns):
        return
    groups: dict[int, list[int]] = {}
    for index, (env, turn) in enumerate(zip(envs, turns)):
        if turn.image is not None:
            groups.setdefault(id(env.scorer), []).append(index)
    for indices in groups.values():
        scorer = envs[indices[0]].scorer
        for chunk in _chunks(indices, score_batch_size):
            images = [turns[i].image for i in chunk]
            tasks = [envs[i]._episode.task for i in chunk]  # type: ignore[union-attr]
            scores = scorer.score(images, tasks)  # type: ignore[arg-type]
            if len(scores) != len(chunk):
                raise ValueError(f"scorer {scorer.name!r} returned {len(scores)} scores for {len(chunk)} images")
            for index, score in zip(chunk, scores):
                turns[index].score = score


def _settle(
    envs: Sequence[GenAgentEnv], turns: list[_Turn], ends: list[tuple[bool, bool]], score_batch_size: int | None
) -> list[float]:
    """Close the episodes that ended, judge their comparisons in batches, pay their rewards."""
    rewards = [0.0] * len(envs)
    if not any(terminated or truncated for terminated, truncated in ends):
        return rewards
    retries: dict[int, list[Any]] = {}
    groups: dict[int, list[tuple[int, int]]] = {}  # comparator -> (env index, retry index)
    for index, (env, turn, (terminated, truncated)) in enumerate(zip(envs, turns, ends)):
        if not (terminated or truncated):
            continue
        retries[index] = env._close_episode(turn.submitted if terminated else None)
        if env.comparator is not None and retries[index]:
            groups.setdefault(id(env.comparator), []).extend((index, k) for k in range(len(retries[index])))
    preferences: dict[int, list[int]] = {index: [0] * len(found) for index, found in retries.items()}
    for pairs in groups.values():
        comparator = envs[pairs[0][0]].comparator
        assert comparator is not None
        for chunk in _chunks(pairs, score_batch_size):
            tasks, first, second = [], [], []
            for index, k in chunk:
                episode = envs[index]._episode
                assert episode is not None
                decision = retries[index][k]
                tasks.append(episode.task)
                first.append(episode.images[decision.image - 1])
                second.append(episode.images[decision.image])
            verdicts = comparator.compare(tasks, first, second)
            if len(verdicts) != len(chunk):
                raise ValueError(f"the comparator returned {len(verdicts)} verdicts for {len(chunk)} pairs")
            for (index, k), verdict in zip(chunk, verdicts):
                preferences[index][k] = verdict
    for index in retries:
        env = envs[index]
        rewards[index] = env._settle(retries[index], preferences[index] if env.comparator is not None else None)
    return rewards
