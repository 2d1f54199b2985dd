"""The JSON contract between a remote generator tool and the service behind it.

Two endpoints under a base URL (``http://host:port/APP``; a Ray Serve handle carries the same
payloads as Python objects):

``GET  BASE/info`` answers the service's identity::

    {"protocol": "genagent-generate/1", "name": "flux-dev", "description": "...",
     "parameters": {...JSON schema of the tool's arguments...},
     "cache_id": "diffusers:...",            # what names the model and settings; null: never cache
     "settings": {"max_batch_size": 8, ...}}  # how it is served (informative)

``POST BASE/generate`` takes a batch, one entry per request in every list::

    {"prompts": ["a red cube", ...], "seeds": [7, ...],
     "sizes": [[width, height], ...],         # each side an integer or null (the model's default)
     "extra": [{"num_inference_steps": 20}, ...]}

and answers one result per request, in order, with the identity of the model that made them::

    {"cache_id": "diffusers:...", "results": [{"png": "<base64 PNG>"}, {"error": "why it failed"}, ...]}

A request the model fails is an ``error`` entry (HTTP 200); a batch that breaks the contract is
HTTP 400 with ``{"error": ...}``. Over a Serve handle the PNGs are ``bytes`` instead of base64.

Everything received is checked here and never evaluated: a payload that breaks the contract
raises :class:`WireError` (a ``ValueError``), a bad result entry becomes that request's error.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genagent_env.checks import short_repr
from genagent_env.tools.base import MAX_SEED, GenerationRequest

if TYPE_CHECKING:
    from PIL.Image import Image

#: The contract's name and version, in every info answer.
PROTOCOL = "genagent-generate/1"
INFO_PATH = "/info"
GENERATE_PATH = "/generate"
#: The most requests one ``generate`` call may carry.
MAX_REQUESTS = 4096
#: The largest side, and the most pixels, of an image received (a decompression bomb is refused).
MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = 64 * 2**20
#: Error messages sent back are cut to this many characters (the agent reads 300 of them).
MAX_ERROR_CHARS = 2000
_MAX_TEXT = 1 << 20  # the longest name, description or prompt accepted


class WireError(ValueError):
    """A payload that does not follow the contract."""


class RemoteGenerationError(RuntimeError):
    """A request the service ran and failed (its message is the service's)."""


@dataclass(frozen=True)
class ServiceInfo:
    """What a service says about itself (its ``info`` answer).

    Attributes:
        name: The tool's name.
        description: What the agent reads about the tool.
        parameters: The JSON schema (an ``object``) of the arguments the agent may pass.
        cache_id: What identifies the model and the settings that change its images, or ``None``
            for a service whose images must never be cached.
        settings: How it is served (batch sizes, replicas, versions); informative only.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    cache_id: str | None
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
            "cache_id": self.cache_id,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_payload(cls, payload: Any) -> ServiceInfo:
        """Check an ``info`` answer; raise :class:`WireError` saying what is wrong with it."""
        if not isinstance(payload, Mapping):
            raise WireError(f"the info answer is a {type(payload).__name__}, not a JSON object")
        if payload.get("protocol") != PROTOCOL:
            raise WireError(f"the info answer speaks protocol {short_repr(payload.get('protocol'))}, not {PROTOCOL!r}")
        name, description = payload.get("name"), payload.get("description")
        parameters, cache_id = payload.get("parameters"), payload.get("cache_id")
        settings = payload.get("settings", {})
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise WireError(f"the info answer's name must be a string of 1-64 characters, got {short_repr(name)}")
        if not isinstance(description, str) or len(description) > _MAX_TEXT:
            raise WireError("the info answer's description must be a string")
        if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
            raise WireError("the info answer's parameters must be a JSON schema of an object")
        if cache_id is not None and (not isinstance(cache_id, str) or not 0 < len(cache_id) <= _MAX_TEXT):
            raise WireError(f"the info answer's cache_id must be a string or null, got {short_repr(cache_id)}")
        if not isinstance(settings, Mapping):
            raise WireError("the info answer's settings must be a JSON object")
        return cls(name, description, dict(parameters), cache_id, dict(settings))


# ---------------------------------------------------------------------------------- requests


def requests_payload(requests: Sequence[GenerationRequest]) -> dict[str, Any]:
    """The ``generate`` body for ``requests``."""
    return {
        "prompts": [request.prompt for request in requests],
        "seeds": [int(request.seed) for request in requests],
        "sizes": [[request.width, request.height] for request in requests],
        "extra": [dict(request.extra) for request in requests],
    }


def parse_requests(payload: Any) -> list[GenerationRequest]:
    """The requests of a ``generate`` body; :class:`WireError` names the first thing wrong."""
    if not isinstance(payload, Mapping):
        raise WireError(f"the body must be a JSON object, got {type(payload).__name__}")
    keys = ("prompts", "seeds", "sizes", "extra")
    unknown = sorted(set(payload) - set(keys))
    if unknown:
        raise WireError(f"unknown key(s) {', '.join(map(short_repr, unknown))}; a body has {', '.join(keys)}")
    prompts = payload.get("prompts")
    if not isinstance(prompts, list) or not 0 < len(prompts) <= MAX_REQUESTS:
        raise WireError(f"prompts must be a list of 1 to {MAX_REQUESTS} strings")
    count = len(prompts)
    seeds = payload.get("seeds")
    sizes = payload.get("sizes", [[None, None]] * count)
    extra = payload.get("extra", [{}] * count)
    for name, value in (("seeds", seeds), ("sizes", sizes), ("extra", extra)):
        if not isinstance(value, list) or len(value) != count:
            raise WireError(f"{name} must be a list with one entry per prompt ({count})")
    assert isinstance(seeds, list) and isinstance(sizes, list) and isinstance(extra, list)
    requests = []
    for index, (prompt, seed, size, arguments) in enumerate(zip(prompts, seeds, sizes, extra)):
        if not isinstance(prompt, str) or len(prompt) > _MAX_TEXT:
            raise WireError(f"prompts[{index}] must be a string")
        if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
            raise WireError(f"seeds[{index}] must be an integer in [0, {MAX_SEED}], got {short_repr(seed)}")
        if not isinstance(size, list) or len(size) != 2 or not all(_is_side(side) for side in size):
            raise WireError(f"sizes[{index}] must be [width, height], each an integer in [1, {MAX_IMAGE_SIDE}] or null")
        if not isinstance(arguments, Mapping) or not all(isinstance(key, str) for key in arguments):
            raise WireError(f"extra[{index}] must be a JSON object")
        requests.append(GenerationRequest(prompt, int(seed), size[0], size[1], dict(arguments)))
    return requests


# ---------------------------------------------------------------------------------- results


def results_payload(outcomes: Sequence[Any], cache_id: str | None, *, binary: bool = False) -> dict[str, Any]:
    """The ``generate`` answer: per outcome, ``{"png": ...}`` (base64 text, or ``bytes`` when
    ``binary``) for an image, ``{"error": message}`` for an exception."""
    results: list[dict[str, Any]] = []
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            results.append({"error": error_text(outcome)})
            continue
        data = png_bytes(outcome)
        results.append({"png": data if binary else base64.b64encode(data).decode("ascii")})
    return {"cache_id": cache_id, "results": results}


def parse_results(payload: Any, count: int) -> tuple[str | None, list[Image | Exception]]:
    """The model identity and one outcome per request of a ``generate`` answer for ``count``
    requests. An answer that is not usable as a whole raises :class:`WireError`; an entry that is
    not a usable image is that request's :class:`WireError`."""
    if not isinstance(payload, Mapping):
        raise WireError(f"the answer is a {type(payload).__name__}, not a JSON object")
    if "cache_id" not in payload:
        raise WireError("the answer has no cache_id (the identity of the model that made the images)")
    cache_id = payload["cache_id"]
    if cache_id is not None and not isinstance(cache_id, str):
        raise WireError(f"the answer's cache_id must be a string or null, got {short_repr(cache_id)}")
    results = payload.get("results")
    if not isinstance(results, list) or len(results) != count:
        got = len(results) if isinstance(results, list) else short_repr(results)
        raise WireError(f"the answer holds {got} results for {count} requests")
    outcomes: list[Image | Exception] = []
    for entry in results:
        outcomes.append(_outcome(entry))
    return cache_id, outcomes


def _outcome(entry: Any) -> Image | Exception:
    if isinstance(entry, Mapping) and isinstance(entry.get("error"), str):
        return RemoteGenerationError(entry["error"][:MAX_ERROR_CHARS] or "the service gave no reason")
    if not isinstance(entry, Mapping) or "png" not in entry:
        return WireError(f"the service sent {short_repr(entry)} instead of an image or an error")
    data = entry["png"]
    try:
        if isinstance(data, str):
            data = base64.b64decode(data.encode("ascii"), validate=True)
        if not isinstance(data, (bytes, bytearray)):
            raise WireError(f"png must be base64 text or bytes, got {type(data).__name__}")
        return image_from_png(bytes(data))
    except (UnicodeEncodeError, binascii.Error):
        return WireError("the service sent an image that is not valid base64")
    except WireError as error:
        return error


# ---------------------------------------------------------------------------------- images


def png_bytes(image: Any) -> bytes:
    """An image (PIL, or anything :func:`~genagent_env.tools.base.as_rgb_image` takes) as PNG bytes."""
    from genagent_env.tools.base import as_rgb_image

    buffer = io.BytesIO()
    as_rgb_image(image).save(buffer, format="PNG", compress_level=1)  # speed over size: it crosses a pipe
    return buffer.getvalue()


def image_from_png(data: bytes) -> Image:
    """Decode PNG bytes into an RGB image; :class:`WireError` for anything that is not a PNG of a
    sane size (the size is read from the header, before any pixel is decoded)."""
    from PIL import Image as PILImage

    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise WireError("the service sent an image that is not a PNG")
    try:
        with PILImage.open(io.BytesIO(data), formats=["PNG"]) as opened:
            width, height = opened.size
            if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE) or width * height > MAX_IMAGE_PIXELS:
                raise WireError(f"the service sent an image too large to decode ({width}x{height})")
            opened.load()
            return opened.convert("RGB")
    except WireError:
        raise
    except PILImage.DecompressionBombError:  # PIL's own bound, checked when the header is read
        raise WireError("the service sent an image too large to decode") from None
    except Exception as error:  # noqa: BLE001 - PIL raises many types on a broken or hostile file
        raise WireError(f"the service sent a broken PNG ({type(error).__name__})") from None


# ---------------------------------------------------------------------------------- helpers


def error_text(error: BaseException) -> str:
    """``"Type: message"`` on one line, cut to :data:`MAX_ERROR_CHARS`."""
    return " ".join(f"{type(error).__name__}: {error}".split())[:MAX_ERROR_CHARS]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_side(value: Any) -> bool:
    return value is None or (_is_int(value) and 1 <= value <= MAX_IMAGE_SIDE)
