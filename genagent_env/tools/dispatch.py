"""Run many requests on one generator: the cache first, then batched calls, one failure at a time.

:func:`generate_requests` is what the environment and the vector environment call. It

1. serves every request the :class:`~genagent_env.tools.cache.GenerationCache` holds, and lets
   identical requests in the same call share one generation;
2. sends the rest to ``tool.generate`` in batches of at most ``batch_size``;
3. isolates failures: when a batched call raises or returns something unusable, each request of
   that batch is retried on its own, so only the request that really fails gets an error and the
   others get their images. A timeout is not retried (the tool is stuck, not one request).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from genagent_env.tools.base import GenerationRequest, Generator, as_rgb_image, call_with_timeout

if TYPE_CHECKING:
    from PIL.Image import Image

    from genagent_env.tools.cache import GenerationCache

#: Per request: the image, or the exception that explains why there is none.
Outcome = Union["Image", Exception]


def generate_requests(
    tool: Generator,
    requests: Sequence[GenerationRequest],
    *,
    cache: GenerationCache | None = None,
    batch_size: int | None = None,
    timeout_s: float | None = None,
) -> list[Outcome]:
    """One outcome per request, in order: an RGB image, or the exception that stopped it.

    Never raises for a generator failure (that is the agent's news, not the caller's crash).
    ``batch_size`` caps the requests per ``generate`` call (``None``: all at once; the generator
    may split further, e.g. ``DiffusersGenerator.max_batch_size``). ``timeout_s`` bounds each
    call.
    """
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    outcomes: list[Outcome | None] = [None] * len(requests)
    keys = [cache.key(tool, request) if cache is not None else None for request in requests]
    first_with_key: dict[str, int] = {}
    shared: list[tuple[int, int]] = []  # (index, index of the identical request that is generated)
    to_generate: list[int] = []
    for index, key in enumerate(keys):
        if key is None:
            to_generate.append(index)
            continue
        assert cache is not None
        if key in first_with_key:
            shared.append((index, first_with_key[key]))
            cache.stats.hits += 1
            continue
        image = cache.get(key)
        if image is not None:
            outcomes[index] = image
            cache.stats.hits += 1
            continue
        first_with_key[key] = index
        to_generate.append(index)
        cache.stats.misses += 1

    size = batch_size or max(len(to_generate), 1)
    for start in range(0, len(to_generate), size):
        chunk = to_generate[start : start + size]
        made = _generate_isolated(tool, [requests[i] for i in chunk], timeout_s, cache)
        for index, outcome in zip(chunk, made):
            outcomes[index] = outcome
            if cache is not None and keys[index] is not None and not isinstance(outcome, Exception):
                cache.put(keys[index], outcome)  # type: ignore[arg-type]
    for index, source in shared:
        outcomes[index] = outcomes[source]
    return outcomes  # type: ignore[return-value]


def _generate_isolated(
    tool: Generator, batch: list[GenerationRequest], timeout_s: float | None, cache: GenerationCache | None
) -> list[Outcome]:
    """One call for the batch; if it fails as a whole, one call per request."""
    try:
        return _checked_call(tool, batch, timeout_s, cache)
    except TimeoutError as error:
        return [error] * len(batch)
    except Exception as error:
        if len(batch) == 1:
            return [error]
    outcomes: list[Outcome] = []
    for request in batch:
        try:
            outcomes.extend(_checked_call(tool, [request], timeout_s, cache))
        except Exception as error:  # this request's own failure
            outcomes.append(error)
    return outcomes


def _checked_call(
    tool: Generator, batch: list[GenerationRequest], timeout_s: float | None, cache: GenerationCache | None
) -> list[Outcome]:
    """Call the tool once; raise if the batch as a whole is unusable, keep per-image errors apart."""
    if cache is not None:
        cache.stats.generator_calls += 1
    outputs = call_with_timeout(lambda: tool.generate(list(batch)), timeout_s)
    if not isinstance(outputs, (list, tuple)) or len(outputs) != len(batch):
        count = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise ValueError(f"the generator returned {count} images for {len(batch)} requests")
    outcomes: list[Outcome] = []
    for output in outputs:
        try:
            outcomes.append(as_rgb_image(output))
        except ValueError as error:
            outcomes.append(error)
    return outcomes
