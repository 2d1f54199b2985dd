"""Run many requests on one generator: the cache first, then batched calls, one failure at a time.

:func:`generate_requests` is what the environment and the vector environment call. It

1. serves every request the :class:`~genagent_env.tools.cache.GenerationCache` holds, and lets
   identical requests in the same call share one generation;
2. sends the rest to ``tool.generate`` in batches of at most ``batch_size``;
3. isolates failures: a request the generator fails on its own (an exception in its slot of
   :meth:`~genagent_env.tools.base.Generator.generate_outcomes`, or an output that is not an
   image) gets that error; when a batched call raises or returns the wrong number of images, each
   request of the batch is retried on its own, so only the request that really fails gets an
   error and the others get their images.

Deadlines: ``timeout_s`` is per request, so a batch of n gets ``n × timeout_s``; a request
retried alone gets ``timeout_s``. When a retried request times out too, the tool is taken to be
stuck and the rest of that batch gets the timeout without being tried.

Every image handed out is a copy (the cache keeps its own), so an image changed in place by one
episode or by the caller changes nothing elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from genagent_env.tools.base import GenerationRequest, Generator, ToolTimeoutError, as_rgb_image, call_with_timeout

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
    may split further, e.g. ``DiffusersGenerator.max_batch_size``). ``timeout_s`` is the deadline
    per request.
    """
    check_batch_size("batch_size", batch_size)
    outcomes: list[Outcome | None] = [None] * len(requests)
    keys = [_key(cache, tool, request) for request in requests]
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
            outcomes[index] = image  # get() returns a copy
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
            key = keys[index]
            if cache is not None and key is not None and not isinstance(outcome, Exception):
                cache.put(key, outcome)
    for index, source in shared:
        first = outcomes[source]
        assert first is not None  # generated above
        outcomes[index] = first if isinstance(first, Exception) else first.copy()
    return outcomes  # type: ignore[return-value]


def check_batch_size(name: str, value: int | None) -> None:
    """Raise ``ValueError`` unless ``value`` is a positive int or ``None`` (no cap)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


def _key(cache: GenerationCache | None, tool: Generator, request: GenerationRequest) -> str | None:
    if cache is None:
        return None
    try:
        return cache.key(tool, request)
    except Exception:  # a broken cache_id() makes the request uncachable, not the step fail
        return None


def _generate_isolated(
    tool: Generator, batch: list[GenerationRequest], timeout_s: float | None, cache: GenerationCache | None
) -> list[Outcome]:
    """One call for the batch; if it fails as a whole, one call per request."""
    deadline = None if timeout_s is None else timeout_s * len(batch)
    try:
        return _checked_call(tool, batch, deadline, cache)
    except Exception as error:
        if len(batch) == 1:
            return [error]
    outcomes: list[Outcome] = []
    for position, request in enumerate(batch):
        try:
            outcomes.extend(_checked_call(tool, [request], timeout_s, cache))
        except ToolTimeoutError as error:  # stuck on this one too: do not wait for each of the rest
            return outcomes + [error] * (len(batch) - position)
        except Exception as error:  # this request's own failure
            outcomes.append(error)
    return outcomes


def _checked_call(
    tool: Generator, batch: list[GenerationRequest], timeout_s: float | None, cache: GenerationCache | None
) -> list[Outcome]:
    """Call the tool once; raise if the batch as a whole is unusable, keep per-image errors apart."""
    if cache is not None:
        cache.stats.generator_calls += 1
    outputs = call_with_timeout(lambda: tool.generate_outcomes(list(batch)), timeout_s)
    if not isinstance(outputs, (list, tuple)) or len(outputs) != len(batch):
        count = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise ValueError(f"the generator returned {count} images for {len(batch)} requests")
    outcomes: list[Outcome] = []
    for output in outputs:
        if isinstance(output, Exception):  # the generator failed this request alone
            outcomes.append(output)
            continue
        try:
            outcomes.append(as_rgb_image(output))
        except ValueError as error:
            outcomes.append(error)
    return outcomes
