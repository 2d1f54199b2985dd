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


def images_or_raise(outcomes: Sequence[Any]) -> list[Image]:
    """The images of per-request outcomes (:meth:`Generator.generate_outcomes`), raising the first
    exception among them: :meth:`Generator.generate` of a generator that reports outcomes."""
    images = []
    for outcome in outcomes:
        if isinstance(outcome, Exception):
            raise outcome
        images.append(outcome)
    return images


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
        """``function:<module>.<qualname>:<tool name>:<digest of the code>`` (see :func:`code_digest`):
        the same in every process for the same code and data, different when the function's body,
        constants, defaults, captured values or same-module helpers change. A function that cannot
        be digested stably (a bound method, a callable object, one that reaches a non-data object)
        gets an id of this instance only, so nothing stale is ever served."""
        function = self.function
        module = getattr(function, "__module__", None) or "?"
        qualname = getattr(function, "__qualname__", None) or ""
        digest = code_digest(function)
        if digest is None:
            return super().cache_id()  # only the same as itself
        return f"function:{module}.{qualname}:{self.name}:{digest}"

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


class _Unstable(Exception):
    """Raised inside :func:`code_digest` for something it cannot digest the same way in every process."""


#: The most characters :func:`code_digest` encodes (large captured data is not worth hashing per call).
_DIGEST_LIMIT = 1 << 20
_PLAIN = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis))


def code_digest(function: Any) -> str | None:
    """A SHA-256 of what a plain Python function computes with, the same in every process for the
    same source and data, or ``None`` when that cannot be told.

    It covers the bytecode and its constants (nested functions and comprehensions too), the names
    it uses, default arguments, the values its closure captured, and the global names it reads:
    plain data (numbers, strings, bytes, and tuples, lists, dicts and sets of them) by value,
    functions of the same module by their own digest (recursively), and modules, classes, builtins
    and functions of other modules by their qualified name (library code is not hashed). Anything
    else (a bound method, a callable object, a captured model or array) gives ``None``: there is no
    stable way to tell whether it changed. The digest is taken again on every call, so a global
    that is reassigned changes it too.
    """
    if not inspect.isfunction(function):
        return None
    encoder = _CodeEncoder(function.__module__)
    try:
        text = encoder.function(function, depth=0)
    except (_Unstable, RecursionError, ValueError, TypeError):
        return None
    import hashlib
    import sys

    payload = f"{sys.implementation.cache_tag}|{text}"
    return hashlib.sha256(payload.encode("utf-8", "backslashreplace")).hexdigest()


class _CodeEncoder:
    """Writes a function, and the values it depends on, as one canonical string (see :func:`code_digest`)."""

    def __init__(self, module: str | None) -> None:
        self.module = module
        self.seen: dict[int, int] = {}  # id(function) -> its number, for recursion and repeats
        self.size = 0

    def _count(self, text: str) -> str:
        self.size += len(text)
        if self.size > _DIGEST_LIMIT:
            raise _Unstable("too much data to digest")
        return text

    def function(self, function: Any, depth: int) -> str:
        if id(function) in self.seen:
            return f"fn#{self.seen[id(function)]}"
        self.seen[id(function)] = len(self.seen)
        code = function.__code__
        cells = [self._cell(cell, depth) for cell in function.__closure__ or ()]
        names: set[str] = set()
        code_text = self.code(code, names, depth)
        scope = function.__globals__
        used = [f"{name}={self.global_value(scope[name], depth)}" for name in sorted(names) if name in scope]
        return self._count(
            f"fn({code_text};defaults={self.value(function.__defaults__, depth)};"
            f"kwdefaults={self.value(function.__kwdefaults__, depth)};closure=[{','.join(cells)}];"
            f"globals=[{','.join(used)}])"
        )

    def _cell(self, cell: Any, depth: int) -> str:
        try:
            contents = cell.cell_contents
        except ValueError:  # an empty cell (a name not assigned yet)
            return "<empty>"
        return self.value(contents, depth)

    def code(self, code: Any, names: set[str], depth: int) -> str:
        """A code object: bytecode, constants (recursively), names; the global names it may read go to ``names``."""
        if depth > 50:
            raise _Unstable("nested too deeply")
        names.update(code.co_names)
        consts = [
            self.code(const, names, depth + 1) if inspect.iscode(const) else self.value(const, depth + 1)
            for const in code.co_consts
        ]
        fields = (  # co_flags without the __future__ bits: what they change shows in the bytecode
            code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags & 0xFFFF,
            code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars,
        )
        table = getattr(code, "co_exceptiontable", b"")
        return self._count(f"code({code.co_code.hex()};{table.hex()};{ascii(fields)};[{','.join(consts)}])")

    def value(self, value: Any, depth: int) -> str:
        """Plain data by value (containers in a canonical order), functions by digest; else unstable."""
        if depth > 50:
            raise _Unstable("nested too deeply")
        kind = type(value)
        if kind is int:
            return self._count(f"int:{value:x}")  # hex has no digit limit, unlike str(int)
        if kind in _PLAIN:
            return self._count(f"{kind.__name__}:{ascii(value)}")
        if kind in (tuple, list):
            return self._count(f"{kind.__name__}[{','.join(self.value(item, depth + 1) for item in value)}]")
        if kind in (set, frozenset):
            return self._count(f"{kind.__name__}[{','.join(sorted(self.value(item, depth + 1) for item in value))}]")
        if kind is dict:
            items = sorted(f"{self.value(k, depth + 1)}:{self.value(v, depth + 1)}" for k, v in value.items())
            return self._count(f"dict[{','.join(items)}]")
        if inspect.isfunction(value):
            return self.function(value, depth + 1)
        raise _Unstable(f"cannot digest a {kind.__name__}")

    def global_value(self, value: Any, depth: int) -> str:
        """A global the function reads: library code by name, same-module functions and data by value."""
        if inspect.ismodule(value):
            return f"module:{value.__name__}"
        if inspect.isclass(value):
            return f"class:{value.__module__}.{value.__qualname__}"
        if inspect.isbuiltin(value) and (value.__self__ is None or inspect.ismodule(value.__self__)):
            return f"builtin:{getattr(value, '__module__', None)}.{value.__qualname__}"
        if inspect.isfunction(value) and value.__module__ != self.module:
            return f"function:{value.__module__}.{value.__qualname__}"
        return self.value(value, depth + 1)


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
    # join() raises OverflowError past TIMEOUT_MAX (about 292 years): wait that long at most.
    worker.join(min(timeout_s, threading.TIMEOUT_MAX))
    if worker.is_alive():
        raise ToolTimeoutError(f"the generator did not answer within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
