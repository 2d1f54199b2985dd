"""Step many episodes together, so that generation and scoring run in batches.

:func:`step_episodes` is one step of every episode, in four phases:

1. each episode parses its action and builds its tool request (nothing changes yet);
2. the requests are grouped per tool (and cache) and run through
   :func:`~genagent_env.tools.dispatch.generate_requests`: cached or identical requests are served
   once, the rest go to the generator in batches, and a failing request only fails itself;
3. the new images are grouped per scorer and scored in batches;
4. each episode writes its turn; episodes that end are closed, their pairwise comparisons grouped
   per comparator and judged in batches, and their rewards paid.

Every episode gets exactly what stepping it alone would give it: the same seeds are drawn from its
own random generator in the same order, and a generator that honours per-request seeds makes the
same image in a batch as alone. ``GenAgentEnv.step`` is ``step_episodes`` with one episode.

If a scorer or a comparator raises, every episode is put back as it was before the step (drawn
seeds too), so the caller may retry the step; images already made are in the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genagent_env.episode import Episode, Turn
from genagent_env.rewards import Decision
from genagent_env.tools.dispatch import check_batch_size, generate_requests

#: ``(observation, reward, terminated, truncated, info)``, as Gymnasium's ``step`` returns.
StepResult = tuple[dict[str, Any], float, bool, bool, dict[str, Any]]


def step_episodes(
    episodes: Sequence[Episode],
    actions: Sequence[Any],
    *,
    batch_size: int | None = None,
    score_batch_size: int | None = None,
) -> list[StepResult]:
    """Step ``episodes[i]`` with ``actions[i]`` for every i; return each one's
    ``(observation, reward, terminated, truncated, info)``.

    Args:
        episodes: Distinct episodes, none of them done.
        actions: One action (the agent's message) per episode.
        batch_size: The most requests in one ``generate`` call (``None``: all of a tool's requests).
        score_batch_size: The most images in one ``score`` or ``compare`` call (``None``: all).
    """
    if len(episodes) != len(actions):
        raise ValueError(f"got {len(actions)} actions for {len(episodes)} episodes")
    if len({id(episode) for episode in episodes}) != len(episodes):
        raise ValueError("an episode appears twice; step each one once")
    check_batch_size("batch_size", batch_size)
    check_batch_size("score_batch_size", score_batch_size)

    turns: list[Turn] = []
    try:
        for episode, action in zip(episodes, actions):
            turns.append(episode.begin_turn(action))
        _generate(episodes, turns, batch_size)
        _score(episodes, turns, score_batch_size)
    except BaseException:
        for episode, turn in zip(episodes, turns):
            episode.cancel_turn(turn)
        raise

    bookmarks = [episode.bookmark() for episode in episodes]
    try:
        ends = [episode.apply_turn(turn) for episode, turn in zip(episodes, turns)]
        rewards = _settle(episodes, turns, ends, score_batch_size)
    except BaseException:  # a comparator failed: put every episode back as it was
        for episode, turn, bookmark in zip(episodes, turns, bookmarks):
            episode.rewind(bookmark)
            episode.cancel_turn(turn)
        raise
    return [
        (episode.observation(), reward, terminated, truncated, episode.info())
        for episode, reward, (terminated, truncated) in zip(episodes, rewards, ends)
    ]


def _chunks(items: list[Any], size: int | None) -> list[list[Any]]:
    size = size or max(len(items), 1)
    return [items[start : start + size] for start in range(0, len(items), size)]


def _generate(episodes: Sequence[Episode], turns: list[Turn], batch_size: int | None) -> None:
    groups: dict[tuple[int, int, float | None], list[int]] = {}
    for index, (episode, turn) in enumerate(zip(episodes, turns)):
        if turn.request is None or turn.call is None:
            continue
        config = episode.config
        tool = config.tools[turn.call.name]
        groups.setdefault((id(tool), id(config.generation_cache), config.tool_timeout_s), []).append(index)
    for indices in groups.values():
        config = episodes[indices[0]].config
        call = turns[indices[0]].call
        assert call is not None
        requests = [turns[i].request for i in indices]
        outcomes = generate_requests(
            config.tools[call.name],
            [request for request in requests if request is not None],
            cache=config.generation_cache,
            batch_size=batch_size,
            timeout_s=config.tool_timeout_s,
        )
        for index, outcome in zip(indices, outcomes):
            if isinstance(outcome, Exception):
                turns[index].tool_error = outcome
            else:
                turns[index].image = outcome


def _score(episodes: Sequence[Episode], turns: list[Turn], score_batch_size: int | None) -> None:
    groups: dict[int, list[int]] = {}
    for index, (episode, turn) in enumerate(zip(episodes, turns)):
        if turn.image is not None:
            groups.setdefault(id(episode.config.scorer), []).append(index)
    for indices in groups.values():
        scorer = episodes[indices[0]].config.scorer
        for chunk in _chunks(indices, score_batch_size):
            images = [turns[i].image for i in chunk]
            tasks = [episodes[i].task for i in chunk]
            scores = scorer.score([image for image in images if image is not None], tasks)
            if len(scores) != len(chunk):
                raise ValueError(f"scorer {scorer.name!r} returned {len(scores)} scores for {len(chunk)} images")
            for index, score in zip(chunk, scores):
                turns[index].score = score


def _settle(
    episodes: Sequence[Episode], turns: list[Turn], ends: list[tuple[bool, bool]], score_batch_size: int | None
) -> list[float]:
    """Close the episodes that ended, judge their comparisons in batches, pay their rewards."""
    rewards = [0.0] * len(episodes)
    retries: dict[int, list[Decision]] = {}
    groups: dict[int, list[tuple[int, int]]] = {}  # comparator -> (episode index, retry index)
    for index, (episode, turn, (terminated, truncated)) in enumerate(zip(episodes, turns, ends)):
        if not (terminated or truncated):
            continue
        retries[index] = episode.close(turn.submitted if terminated else None)
        if episode.config.comparator is not None and retries[index]:
            groups.setdefault(id(episode.config.comparator), []).extend((index, k) for k in range(len(retries[index])))
    preferences: dict[int, list[int]] = {index: [0] * len(found) for index, found in retries.items()}
    for pairs in groups.values():
        comparator = episodes[pairs[0][0]].config.comparator
        assert comparator is not None
        for chunk in _chunks(pairs, score_batch_size):
            tasks, first, second = [], [], []
            for index, k in chunk:
                state = episodes[index].state
                decision = retries[index][k]
                tasks.append(state.task)
                first.append(state.images[decision.image - 1])
                second.append(state.images[decision.image])
            verdicts = comparator.compare(tasks, first, second)
            if len(verdicts) != len(chunk):
                raise ValueError(f"the comparator returned {len(verdicts)} verdicts for {len(chunk)} pairs")
            for (index, k), verdict in zip(chunk, verdicts):
                preferences[index][k] = verdict
    for index, found in retries.items():
        episode = episodes[index]
        rewards[index] = episode.settle(found, preferences[index] if episode.config.comparator is not None else None)
    return rewards


__all__ = ["StepResult", "step_episodes"]
