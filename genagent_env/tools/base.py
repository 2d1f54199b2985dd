"""The batch-first generator interface: what a text-to-image tool is to the environment.

A generator takes a list of :class:`GenerationRequest` and returns one image per request, in order.
A single call is a batch of one; that is what lets a vector environment send one batched call per
step. Each generator announces a JSON schema of the arguments the agent may set; the environment
puts it in the system prompt and validates every tool call against it before the generator runs.
"""

from __future__ import annotations

import inspect
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

#: The largest seed a tool call may carry (seeds are unsigned 32-bit, as torch and numpy accept).
MAX_SEED = 2**32 - 1

#: Prompts longer than this are refused by the default schema: real text encoders truncate far
#: earlier, and a megabyte prompt is a malformed action, not a request.
DEFAULT_MAX_PROMPT_CHARS = 2000


@dataclass(frozen=True)
class GenerationRequest:
    """One image to make.

    Attributes:
        prompt: The text the agent wrote for the tool.
        seed: The sampling seed; the same request always gives the same image.
        width: Image width in pixels, or ``None`` for the generator's default.
        height: Image height in pixels, or ``None`` for the generator's default.
        extra: Any further arguments the agent set (already validated against the tool's schema).
    """

    prompt: str
    seed: int
    width: int | None = None
    height: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def prompt_and_seed_schema(
    prompt_description: str = "What the image should show, in plain words.",
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS,
) -> dict[str, Any]:
    """The JSON schema every generator starts from: a required prompt and an optional seed."""
    return {
        "type": "object",
        "properties": {
            "prompt": {
                "type": "string",
                "description": prompt_description,
                "minLength": 1,
                "maxLength": max_prompt_chars,
            },
            "seed": {
                "type": "integer",
                "description": "Sampling seed; omit it to let the environment draw one.",
                "minimum": 0,
                "maximum": MAX_SEED,
            },
        },
        "required": ["prompt"],
    }


class Generator(ABC):
    """A text-to-image tool. Subclasses set :attr:`name` and :attr:`description` and implement
    :meth:`generate`; override :meth:`parameters` to let the agent set more than prompt and seed.
    """

    name: str = "generator"
    description: str = "Generates an image from a text prompt."

    def parameters(self) -> dict[str, Any]:
        """The JSON schema (an ``object``) of the arguments the agent may pass."""
        return prompt_and_seed_schema()

    def spec(self) -> dict[str, Any]:
        """The tool as announced to the agent, in the OpenAI/Hermes function format."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters(),
            },
        }

    def cache_id(self) -> str | None:
        """What identifies this generator's images, for the generation cache: two generators with
        the same ``cache_id`` must give the same image for the same request.

        The default names this instance only (a random id drawn when it is first asked), so
        nothing is shared with another instance or found on disk by another process: the base
        class cannot know which settings change the images. Override it with a stable string
        that names the model and every setting that matters (weights, steps, size) to share
        entries between instances and processes, or return ``None`` for a generator that is not
        deterministic (it is then never cached).
        """
        instance_id = self.__dict__.get("_cache_instance_id")
        if instance_id is None:
            instance_id = self.__dict__["_cache_instance_id"] = uuid.uuid4().hex
        return f"instance:{type(self).__qualname__}:{instance_id}"

    def generate_outcomes(self, requests: Sequence[GenerationRequest]) -> list[Any]:
        """Like :meth:`generate`, but a request that fails on its own may hold its exception in
        its slot instead of failing the batch. The environment calls this; the default calls
        :meth:`generate`. Override it when one bad image (NaN, a safety-checker blank) should
        not cost the others a retry."""
        return self.generate(requests)

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image]:
        """Return one RGB image per request, in order. May raise; the environment turns an
        exception into an error message for the agent."""

    def close(self) -> None:
        """Release whatever the generator holds (models, processes). Safe to call twice."""


class FunctionGenerator(Generator):
    """Wraps a plain function ``(prompt: str, seed: int) -> PIL.Image`` as a generator."""

    def __init__(
        self, function: Callable[[str, int], Image], name: str | None = None, description: str | None = None
    ) -> None:
        if not callable(function):
            raise TypeError(f"expected a callable (prompt, seed) -> PIL.Image, got {function!r}")
        try:
            inspect.signature(function).bind("prompt", 0)
        except TypeError:
            raise TypeError(f"a generator function must take (prompt, seed); {function!r} does not") from None
        except ValueError:  # builtins without a signature: trust them
            pass
        self.function = function
        function_name: str = getattr(function, "__name__", "generator")
        self.name = name or function_name
        if self.name == "<lambda>":
            raise ValueError("a lambda has no usable tool name: pass generators={'my_tool': fn} to name it")
        doc = inspect.getdoc(function)
        self.description = description or (doc.splitlines()[0] if doc else f"Generates an image with {self.name}.")

    def cache_id(self) -> str | None:
        function = self.function
        module = getattr(function, "__module__", None) or "?"
        qualname = getattr(function, "__qualname__", None) or ""
        captured = (
            getattr(function, "__closure__", None) is not None  # a closure: what it captured is not in its name
            or getattr(function, "__self__", None) is not None  # a bound method: nor is its object
            or hasattr(function, "__wrapped__")  # functools.wraps copies another function's name
        )
        if (
            not qualname
            or "<" in qualname
            or captured
            or not inspect.isfunction(getattr(function, "__func__", function))
        ):
            return super().cache_id()  # only the same as itself
        return f"function:{module}.{qualname}:{self.name}"

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image]:
        return [self.function(request.prompt, request.seed) for request in requests]


def as_rgb_image(value: Any) -> Image:
    """Check a generator's output and return it as an RGB PIL image.

    Accepts a PIL image, or an ``H × W × 3`` (or ``H × W``) array: integers in [0, 255], or floats
    in [0, 1] (what pipelines return) or in [0, 255].
    Raises ``ValueError`` for anything a user would not want scored: an empty image, non-finite
    pixels (the NaN a diverged pipeline returns), or something that is not an image at all.
    """
    import numpy as np
    from PIL import Image as PILImage

    if isinstance(value, PILImage.Image):
        if value.width == 0 or value.height == 0:
            raise ValueError("the generator returned an empty image")
        return value if value.mode == "RGB" else value.convert("RGB")
    if isinstance(value, np.ndarray):
        array = value
        if array.ndim == 3 and array.shape[-1] == 1:
            array = array[..., 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or array.size == 0:
            raise ValueError(f"the generator returned an array of shape {array.shape}, not an H x W x 3 image")
        if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"the generator returned a {array.dtype} array, not pixel values")
        if np.issubdtype(array.dtype, np.integer) and array.dtype != np.uint8:
            if array.min() < 0 or array.max() > 255:
                raise ValueError("the generator returned integer pixels outside [0, 255]")
            array = array.astype(np.uint8)
        elif array.dtype != np.uint8:
            if not np.isfinite(array).all():
                raise ValueError("the generator returned non-finite pixel values (NaN or infinity)")
            low, high = float(array.min()), float(array.max())
            if low >= -0.01 and high <= 1.01:  # the [0, 1] floats pipelines return
                array = np.clip(array, 0.0, 1.0) * 255.0
            elif low < 0.0 or high > 255.0:
                raise ValueError(
                    f"the generator returned float pixels in [{low:.3g}, {high:.3g}], neither [0, 1] nor [0, 255]"
                )
            array = np.asarray(array).round().astype(np.uint8)
        return PILImage.fromarray(array).convert("RGB")
    raise ValueError(f"the generator returned {type(value).__name__}, not an image")


class ToolTimeoutError(TimeoutError):
    """A tool call ran past its deadline (raised by :func:`call_with_timeout`, so that a tool's own
    ``TimeoutError`` can be told apart from the environment's deadline)."""


def call_with_timeout(function: Callable[[], Any], timeout_s: float | None) -> Any:
    """Run ``function()`` and return its result, or raise :class:`ToolTimeoutError` (a
    ``TimeoutError``) after ``timeout_s``.

    The call runs in a daemon thread, so a hung generator is abandoned rather than stopped (Python
    cannot kill a thread): it may keep its device busy until it returns. ``None`` waits forever.
    """
    if timeout_s is None:
        return function()
    import threading

    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="genagent-tool-call", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise ToolTimeoutError(f"the generator did not answer within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
