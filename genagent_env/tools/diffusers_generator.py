"""Any diffusers text-to-image pipeline as a GenAgent tool: :class:`DiffusersGenerator`.

Real FLUX on a GPU, as in the paper. Download the weights once, on a machine with network access
(FLUX.1-dev is gated: accept its license on https://huggingface.co/black-forest-labs/FLUX.1-dev
and log in with ``hf auth login`` first)::

    hf download black-forest-labs/FLUX.1-dev        # or: huggingface-cli download ...

then, offline (weights are only read from the local cache unless ``local_files_only=False``)::

    import gymnasium as gym
    from genagent_env.tools import GENERATORS

    flux = GENERATORS.make("flux-dev", device="cuda", expose=("num_inference_steps",))
    env = gym.make("genagent_env:GenAgent-v0", generators={"flux-dev": flux}, tool_timeout_s=300)

``generators="flux-dev"`` works too (the env then owns the tool and closes it). The presets
(``flux-dev``, ``flux-schnell``, ``sd35``, ``sdxl``, ``sd15``, ``sana``, ``pixart``) carry the
usual steps, guidance, size and dtype (bfloat16 or float16 on CUDA, float32 on a CPU); the
generic ``GENERATORS.make("diffusers", model="org/name-or-folder", ...)`` takes any other
pipeline, and ``DiffusersGenerator(pipeline)`` wraps one already built (a fine-tune, a
quantised model, a pipeline with LoRAs loaded). Weights that are not in the local cache raise
:class:`ModelWeightsMissingError`, which says what to download.

Seeds: each request gets its own ``torch.Generator`` seeded with the request's seed, passed as a
list, so a batch of requests gives the same images as the same requests one by one. Requests
whose call arguments match share one pipeline call of at most ``max_batch_size`` images.
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genagent_env.extras import needs
from genagent_env.tools.base import (
    DEFAULT_MAX_PROMPT_CHARS,
    GenerationRequest,
    Generator,
    as_rgb_image,
    call_with_timeout,
    images_or_raise,
    prompt_and_seed_schema,
)

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image

#: The call arguments the agent may be allowed to set (``expose``), with their short aliases.
EXPOSABLE = ("num_inference_steps", "guidance_scale", "width", "height", "negative_prompt")
_ALIASES = {"steps": "num_inference_steps", "guidance": "guidance_scale"}
#: Arguments the generator sets itself and ``pipeline_kwargs`` may not override.
_RESERVED = {"prompt", "generator", "output_type", "return_dict", "num_images_per_prompt"}
#: Hub models whose weights are behind a license the user must accept before downloading.
GATED_MODELS = frozenset({"black-forest-labs/FLUX.1-dev", "stabilityai/stable-diffusion-3.5-large"})
_DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}


class ModelWeightsMissingError(FileNotFoundError):
    """The model's weights are not on this machine (and downloads are off)."""


class DiffusersGenerationError(RuntimeError):
    """The pipeline failed or returned an unusable image (NaN or all black)."""


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"bfloat16"``, ``"bf16"``, ``"float16"``, ``"fp16"``, ``"float32"`` or a ``torch.dtype``."""
    with needs("diffusers", "a diffusers generator"):
        import torch

    if isinstance(dtype, str):
        name = _DTYPE_ALIASES.get(dtype.lower(), dtype.lower().removeprefix("torch."))
        dtype = getattr(torch, name, None)  # type: ignore[assignment]
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype or its name (e.g. 'bfloat16'), got {dtype!r}")
    return dtype


def hub_cache_dir() -> Path:
    """Where the Hub cache is *now* (read from the environment on each call, unlike huggingface_hub's
    constants, which are fixed when it is imported)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def missing_weights_message(model_id: str, cache_dir: Path, reason: str = "") -> str:
    """What to do when ``model_id``'s weights are not in ``cache_dir``: the download command, the
    license step for gated models, and the cache variables."""
    gated = (
        f"{model_id} is gated: accept its license at https://huggingface.co/{model_id} and log in "
        "(`hf auth login`, or set HF_TOKEN) before downloading."
        if model_id in GATED_MODELS
        else "If the model is gated (its Hub page asks you to accept a license), accept it and log in "
        "(`hf auth login`, or set HF_TOKEN) first."
    )
    return (
        f"The weights of {model_id!r} are not in the local Hugging Face cache ({cache_dir}){reason}, and "
        "downloads are off (local_files_only=True). Download them once, on a machine with network access:\n"
        f"    huggingface-cli download {model_id}\n"
        f"(with huggingface_hub >= 1.0 the command is `hf download {model_id}`).\n"
        f"{gated}\n"
        "The cache lives in $HF_HOME/hub (default ~/.cache/huggingface/hub): set HF_HOME (or HF_HUB_CACHE) "
        "to the cache that holds the weights, pass the path of a saved pipeline folder as the model, or "
        "pass local_files_only=False to download on first use."
    )


def load_pipeline(
    model: str | os.PathLike[str],
    *,
    dtype: torch.dtype | None = None,
    local_files_only: bool = True,
    trust_remote_code: bool = False,
    variant: str | None = None,
    **load_kwargs: Any,
) -> Any:
    """``DiffusionPipeline.from_pretrained`` from a local folder or a Hub id, offline by default.

    Safetensors files are used when the repository has them (diffusers' default); pickled weights
    only where there are none. A Hub model missing from the cache raises
    :class:`ModelWeightsMissingError` with the download command instead of the hub's stack trace.
    """
    with needs("diffusers", "a diffusers generator"):
        from diffusers import DiffusionPipeline

    kwargs: dict[str, Any] = {"local_files_only": local_files_only, "trust_remote_code": trust_remote_code}
    if dtype is not None:
        # diffusers renamed ``torch_dtype`` to ``dtype`` (and deprecated the old name) in late 2025.
        from diffusers.utils import deprecation_utils

        renamed = hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE")
        kwargs["dtype" if renamed else "torch_dtype"] = dtype
    if variant is not None:
        kwargs["variant"] = variant
    kwargs.update(load_kwargs)
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise FileNotFoundError(f"{folder} has no model_index.json: it is not a saved diffusers pipeline")
        return DiffusionPipeline.from_pretrained(str(folder), **kwargs)
    model_id = str(model)
    if str(model).startswith((".", "/", "~")) or model_id.count("/") != 1:
        raise FileNotFoundError(f"{model_id!r} is neither a folder nor a Hub model id ('org/name')")
    if not local_files_only:
        return DiffusionPipeline.from_pretrained(model_id, **kwargs)

    from huggingface_hub import try_to_load_from_cache

    cache_dir = Path(kwargs.setdefault("cache_dir", str(hub_cache_dir())))
    index = try_to_load_from_cache(model_id, "model_index.json", cache_dir=str(cache_dir))
    if not isinstance(index, str):
        raise ModelWeightsMissingError(missing_weights_message(model_id, cache_dir))
    try:
        return DiffusionPipeline.from_pretrained(model_id, **kwargs)
    except OSError as error:  # an interrupted download: some components are missing
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        reason = f" completely (some files are missing: {first_line})"
        raise ModelWeightsMissingError(missing_weights_message(model_id, cache_dir, reason)) from None


#: Short tool names of well-known models (the registry's preset names); others are derived.
KNOWN_NAMES = {
    "black-forest-labs/FLUX.1-dev": "flux-dev",
    "black-forest-labs/FLUX.1-schnell": "flux-schnell",
    "stabilityai/stable-diffusion-3.5-large": "sd35",
    "stabilityai/stable-diffusion-xl-base-1.0": "sdxl",
    "stable-diffusion-v1-5/stable-diffusion-v1-5": "sd15",
    "Efficient-Large-Model/Sana_1600M_1024px_diffusers": "sana",
    "PixArt-alpha/PixArt-Sigma-XL-2-1024-MS": "pixart",
}


def tool_name_for(model: str) -> str:
    """A tool name from a model id or folder: ``"black-forest-labs/FLUX.1-dev"`` → ``"flux-dev"``
    (a known model), ``"org/My_Model"`` → ``"my_model"``."""
    if model in KNOWN_NAMES:
        return KNOWN_NAMES[model]
    base = Path(str(model).rstrip("/\\")).name or str(model)
    name = re.sub(r"[^a-z0-9_.-]+", "-", base.lower()).strip("-.")
    return name[:64] or "diffusers"


class DiffusersGenerator(Generator):
    """A diffusers text-to-image pipeline as a batch-first tool.

    Args:
        model: A pipeline object, a Hub model id (``"black-forest-labs/FLUX.1-dev"``) or a folder
            written by ``save_pretrained``.
        name: The tool's name (default: from the model id, e.g. ``flux.1-dev``).
        description: What the agent reads about the tool (default: model, size and steps).
        device: Where to run (default: ``cuda`` when available, else ``cpu``; a pipeline object
            given without a device stays where it is).
        dtype: Weights' dtype (``"bfloat16"``, ``"float16"``, ``torch.float32``, ...). Default:
            ``cuda_dtype`` on CUDA, float32 elsewhere (half precision on a CPU is slow or unsupported).
        cuda_dtype: The dtype used on CUDA when ``dtype`` is not given (presets set it).
        cpu_offload: Keep the models in CPU memory and move each to the GPU only while it runs
            (``enable_model_cpu_offload``; needs accelerate and a GPU): slower, much less GPU memory.
        num_inference_steps, guidance_scale, height, width, negative_prompt: Defaults for every call
            (``None``: the pipeline's own). ``negative_prompt`` needs a pipeline whose ``__call__``
            takes one.
        pipeline_kwargs: Extra keyword arguments for every pipeline call (e.g. ``max_sequence_length``).
        max_batch_size: The most images in one pipeline call.
        expose: The call arguments the agent may set in its tool call, from
            ``num_inference_steps`` (alias ``steps``), ``guidance_scale`` (``guidance``), ``width``,
            ``height``, ``negative_prompt``. They appear in :meth:`parameters` with their limits.
        limits: ``{argument: (minimum, maximum)}`` for exposed numbers (defaults: steps 1–100,
            guidance 0–20, sizes from a quarter to twice the native size).
        generator_device: Where the seeded noise is drawn (default ``"cpu"``, as diffusers
            recommends: the same seed then starts from the same noise on any device).
        timeout_s: Give up on a pipeline call after this long (with the env's
            ``call_with_timeout``; the env's ``tool_timeout_s`` does the same for the whole call).
        local_files_only: Only read weights already on disk (default); ``False`` allows downloads.
        trust_remote_code: Run a custom pipeline's code from its repository (off unless asked).
        variant: Weight file variant to load (e.g. ``"fp16"``).
        load_kwargs: Further ``from_pretrained`` arguments.
        cache_key: What names these weights for the generation cache's on-disk store (say
            ``"flux-dev+my-lora-v3"``). A model loaded from a Hub id or a folder is named by it; a
            pipeline object without ``cache_key`` is cached in memory only, since nothing tells
            its weights apart from another pipeline of the same class.
    """

    def __init__(
        self,
        model: Any,
        *,
        name: str | None = None,
        description: str | None = None,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        cuda_dtype: str | torch.dtype | None = None,
        cpu_offload: bool = False,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        height: int | None = None,
        width: int | None = None,
        negative_prompt: str | None = None,
        pipeline_kwargs: Mapping[str, Any] | None = None,
        max_batch_size: int = 4,
        expose: Iterable[str] = (),
        limits: Mapping[str, tuple[float, float]] | None = None,
        generator_device: str | torch.device = "cpu",
        timeout_s: float | None = None,
        local_files_only: bool = True,
        trust_remote_code: bool = False,
        variant: str | None = None,
        load_kwargs: Mapping[str, Any] | None = None,
        cache_key: str | None = None,
    ) -> None:
        with needs("diffusers", "a diffusers generator"):
            import torch

        if isinstance(max_batch_size, bool) or not isinstance(max_batch_size, int) or max_batch_size < 1:
            raise ValueError(f"max_batch_size must be a positive integer, got {max_batch_size!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive or None, got {timeout_s!r}")
        if device is not None:
            on_cuda = torch.device(device).type == "cuda"
        elif isinstance(model, (str, os.PathLike)):
            on_cuda = torch.cuda.is_available()
        else:
            on_cuda = torch.device(getattr(model, "device", "cpu")).type == "cuda"
        if dtype is not None:
            torch_dtype: torch.dtype | None = resolve_dtype(dtype)
        elif cuda_dtype is not None and (on_cuda or cpu_offload):
            torch_dtype = resolve_dtype(cuda_dtype)
        else:
            torch_dtype = None if not isinstance(model, (str, os.PathLike)) else torch.float32

        self._weights_id = cache_key
        if isinstance(model, (str, os.PathLike)):
            self.model_id = str(model)
            self._weights_id = cache_key or json.dumps(
                [self.model_id, variant, {key: repr(value) for key, value in (load_kwargs or {}).items()}],
                sort_keys=True,
            )
            pipeline = load_pipeline(
                model,
                dtype=torch_dtype,
                local_files_only=local_files_only,
                trust_remote_code=trust_remote_code,
                variant=variant,
                **dict(load_kwargs or {}),
            )
            if device is None and not cpu_offload:
                device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            if not callable(model):
                raise TypeError(f"model must be a diffusers pipeline, a Hub id or a folder, got {model!r}")
            pipeline = model
            self.model_id = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
            if torch_dtype is not None and hasattr(pipeline, "to"):
                pipeline = pipeline.to(dtype=torch_dtype)
        if cpu_offload:
            if device is not None and torch.device(device).type == "cpu":
                raise ValueError("cpu_offload moves models to a GPU while they run; it needs a GPU device")
            pipeline.enable_model_cpu_offload(device=device or "cuda")
        elif device is not None and hasattr(pipeline, "to"):
            pipeline = pipeline.to(device)
        if hasattr(pipeline, "set_progress_bar_config"):
            pipeline.set_progress_bar_config(disable=True)

        self.pipeline: Any = pipeline
        self._call_parameters = _call_parameters(pipeline)
        self.device = torch.device(getattr(pipeline, "device", "cpu")) if device is None else torch.device(device)
        self.generator_device = torch.device(generator_device)
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.size_multiple = _size_multiple(pipeline)
        self.native_size = _native_size(pipeline)

        defaults = {
            "num_inference_steps": num_inference_steps,
            "guidance_scale": guidance_scale,
            "height": height,
            "width": width,
            "negative_prompt": negative_prompt,
        }
        for key, value in defaults.items():
            if value is not None and not self._accepts(key):
                raise ValueError(f"{type(pipeline).__name__}.__call__ takes no {key!r}")
        self.defaults = {key: value for key, value in defaults.items() if value is not None}
        self.pipeline_kwargs = dict(pipeline_kwargs or {})
        clash = _RESERVED & set(self.pipeline_kwargs)
        if clash:
            raise ValueError(f"pipeline_kwargs may not set {sorted(clash)}: the generator sets them per request")

        self.expose = tuple(dict.fromkeys(_ALIASES.get(key, key) for key in expose))
        for key in self.expose:
            if key not in EXPOSABLE:
                raise ValueError(f"cannot expose {key!r}; choose from {', '.join(EXPOSABLE)} (or 'steps', 'guidance')")
            if not self._accepts(key):
                raise ValueError(f"cannot expose {key!r}: {type(pipeline).__name__}.__call__ does not take it")
        self.limits = self._default_limits()
        for key, bounds in (limits or {}).items():
            key = _ALIASES.get(key, key)
            if key not in self.limits or len(bounds) != 2 or not bounds[0] <= bounds[1]:
                raise ValueError(f"limits[{key!r}] must be (minimum, maximum) for one of {sorted(self.limits)}")
            self.limits[key] = (bounds[0], bounds[1])

        self.name = name or tool_name_for(self.model_id or _kebab(type(pipeline).__name__.removesuffix("Pipeline")))
        self.description = description or self._describe()
        self._lock = threading.Lock()
        self._instance_id = uuid.uuid4().hex

    # ----------------------------------------------------------------- schema

    def _accepts(self, key: str) -> bool:
        return key in self._call_parameters or "**" in self._call_parameters

    def default(self, key: str) -> Any:
        """The value a call uses for ``key`` when neither the request nor the user sets it."""
        if key in self.defaults:
            return self.defaults[key]
        if key in ("height", "width") and self.native_size:
            return self.native_size
        parameter = self._call_parameters.get(key)
        return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default

    def _default_limits(self) -> dict[str, tuple[float, float]]:
        native = self.native_size or 1024
        multiple = self.size_multiple
        low = max(multiple, (native // 4) // multiple * multiple)
        return {
            "num_inference_steps": (1, 100),
            "guidance_scale": (0.0, 20.0),
            "width": (low, native * 2),
            "height": (low, native * 2),
        }

    def parameters(self) -> dict[str, Any]:
        schema = prompt_and_seed_schema()
        properties = schema["properties"]
        for key in self.expose:
            default = self.default(key)
            if key == "negative_prompt":
                properties[key] = {
                    "type": "string",
                    "description": "What the image should not show.",
                    "maxLength": DEFAULT_MAX_PROMPT_CHARS,
                }
                continue
            low, high = self.limits[key]
            if key == "num_inference_steps":
                text = f"Denoising steps (default {default}): more is slower and usually more detailed."
                entry: dict[str, Any] = {"type": "integer", "minimum": int(low), "maximum": int(high)}
            elif key == "guidance_scale":
                text = f"Guidance scale (default {default}): higher follows the prompt more literally."
                entry = {"type": "number", "minimum": low, "maximum": high}
            else:
                text = f"Image {key} in pixels (default {default}), rounded to a multiple of {self.size_multiple}."
                entry = {"type": "integer", "minimum": int(low), "maximum": int(high)}
            properties[key] = {**entry, "description": text}
        return schema

    def _describe(self) -> str:
        model = self.model_id or type(self.pipeline).__name__
        height, width, steps = self.default("height"), self.default("width"), self.default("num_inference_steps")
        size = f" {width}x{height} images," if height and width else ""
        return f"Text-to-image with {model} (diffusers {type(self.pipeline).__name__}):{size} {steps} denoising steps."

    def cache_id(self) -> str:
        """The weights (Hub id or folder with the load arguments, or ``cache_key``; a pipeline
        object without ``cache_key`` is only the same as itself), the call defaults, the
        scheduler's config, the dtype, the device and the active LoRA adapters."""
        import json

        weights = self._weights_id if self._weights_id is not None else f"object:{self._instance_id}"
        pipeline = self.pipeline
        scheduler = getattr(pipeline, "scheduler", None)
        adapters: Any = None
        if hasattr(pipeline, "get_active_adapters"):
            try:
                adapters = pipeline.get_active_adapters()
            except Exception:  # a pipeline without PEFT support raises here
                adapters = None
        settings = json.dumps(
            {
                "defaults": self.defaults,
                "pipeline_kwargs": {key: repr(value) for key, value in self.pipeline_kwargs.items()},
                "generator_device": str(self.generator_device),
                "device": self.device.type,
                "dtype": str(getattr(pipeline, "dtype", None)),
                "class": type(pipeline).__name__,
                # Without diffusers' bookkeeping keys (``_use_default_values`` lists names in set
                # order, which differs between processes): the same settings give the same id anywhere.
                "scheduler": [type(scheduler).__name__, {key: value for key, value in dict(
                    getattr(scheduler, "config", {}) or {}).items() if not str(key).startswith("_")}],
                "adapters": adapters,
            },
            sort_keys=True,
            default=repr,
        )
        return f"diffusers:{weights}:{settings}"

    # ------------------------------------------------------------- generation

    def _call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        extra = dict(request.extra)
        unknown = set(extra) - set(self.expose)
        if unknown:
            raise ValueError(f"{self.name} does not take {sorted(unknown)} (exposed: {list(self.expose) or 'none'})")
        kwargs = {**self.defaults, **extra}
        for key, value in (("width", request.width), ("height", request.height)):
            if value is not None:
                kwargs[key] = value
            if kwargs.get(key) is not None:
                multiple = self.size_multiple
                kwargs[key] = max(multiple, int(round(kwargs[key] / multiple)) * multiple)
        return kwargs

    def generate(self, requests: Sequence[GenerationRequest]) -> list[Image]:
        return images_or_raise(self.generate_outcomes(requests))

    def generate_outcomes(self, requests: Sequence[GenerationRequest]) -> list[Image | Exception]:
        """One image per request, or, for an image that came out NaN or blank, its
        :class:`DiffusersGenerationError` (the rest of the batch is kept); a failing pipeline call
        raises."""
        if self.pipeline is None:
            raise RuntimeError(f"{self.name} is closed")
        groups: dict[tuple[Any, ...], list[int]] = {}
        call_kwargs = [self._call_kwargs(request) for request in requests]
        for index, kwargs in enumerate(call_kwargs):
            groups.setdefault(tuple(sorted(kwargs.items())), []).append(index)
        if not self._lock.acquire(blocking=False):
            raise DiffusersGenerationError(
                f"{self.name} is still busy with an earlier call (one that timed out runs on until it finishes)"
            )

        def work() -> list[Image | Exception]:
            # The lock is released by whichever thread runs the pipeline, when it is really done.
            try:
                images: list[Any] = [None] * len(requests)
                for indices in groups.values():
                    for start in range(0, len(indices), self.max_batch_size):
                        chunk = indices[start : start + self.max_batch_size]
                        made = self._run([requests[i] for i in chunk], call_kwargs[chunk[0]])
                        for index, image in zip(chunk, made):
                            images[index] = image
                return images
            finally:
                self._lock.release()

        return call_with_timeout(work, self.timeout_s)

    def _run(self, batch: list[GenerationRequest], kwargs: Mapping[str, Any]) -> list[Image | Exception]:
        """One pipeline call for requests that share their call arguments; an unusable image is
        its error, in its slot."""
        import numpy as np
        import torch

        call = {**self.pipeline_kwargs, **kwargs}
        if "negative_prompt" in call:
            call["negative_prompt"] = [call["negative_prompt"]] * len(batch)
        generators = [torch.Generator(self.generator_device).manual_seed(request.seed) for request in batch]
        try:
            with torch.inference_mode():
                output = self.pipeline(
                    prompt=[request.prompt for request in batch], generator=generators, output_type="np", **call
                )
        except torch.cuda.OutOfMemoryError as error:
            raise DiffusersGenerationError(
                f"{self.name} ran out of GPU memory ({str(error).splitlines()[0][:120]}); lower max_batch_size "
                "or the image size, or use cpu_offload=True"
            ) from error
        except Exception as error:
            raise DiffusersGenerationError(f"{self.name} failed: {type(error).__name__}: {error}") from error
        pixels = output.images if hasattr(output, "images") else output[0]
        if isinstance(pixels, torch.Tensor):
            pixels = pixels.float().cpu().numpy()
        arrays = [np.asarray(image) for image in pixels]
        if len(arrays) != len(batch):
            raise DiffusersGenerationError(f"{self.name} returned {len(arrays)} images for {len(batch)} prompts")
        flagged = getattr(output, "nsfw_content_detected", None) or [False] * len(batch)
        images: list[Image | Exception] = []
        for array, nsfw in zip(arrays, flagged):
            if array.dtype != np.uint8 and not np.isfinite(array).all():
                images.append(DiffusersGenerationError(
                    f"{self.name} produced NaN pixels (numerical overflow, typically float16 in the VAE or text "
                    "encoder: run in bfloat16 or float32); no image was made"
                ))
                continue
            # Float output is in [0, 1] (output_type="np"); a pipeline that ignores it may give uint8 PIL.
            black = (array == 0).all() if array.dtype == np.uint8 else (array < 0.5 / 255).all()
            if black:
                why = (
                    "its safety checker flagged the image"
                    if nsfw
                    else "a safety checker's blank or float16 overflow: run in bfloat16 or float32"
                )
                images.append(
                    DiffusersGenerationError(f"{self.name} returned an all-black image ({why}); no image was made")
                )
                continue
            images.append(as_rgb_image(array))
        return images

    def close(self) -> None:
        """Drop the pipeline and free its memory (the CUDA cache too). Safe to call twice."""
        if getattr(self, "pipeline", None) is None:
            return
        self.pipeline = None
        gc.collect()
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():  # also after cpu_offload
            torch.cuda.empty_cache()


def _call_parameters(pipeline: Any) -> dict[str, inspect.Parameter]:
    """The keyword arguments the pipeline's ``__call__`` takes (``"**"`` marks a ``**kwargs``)."""
    try:
        signature = inspect.signature(pipeline.__call__)
    except (TypeError, ValueError):
        return {"**": inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)}
    parameters = {}
    for name, parameter in signature.parameters.items():
        parameters["**" if parameter.kind is inspect.Parameter.VAR_KEYWORD else name] = parameter
    return parameters


def _size_multiple(pipeline: Any) -> int:
    """What image sides must divide by: the VAE factor, times 2 for models that patch or pack latents."""
    factor = int(getattr(pipeline, "vae_scale_factor", 8) or 8)
    transformer = getattr(pipeline, "transformer", None)
    if transformer is not None:
        patch = int(getattr(getattr(transformer, "config", None), "patch_size", 1) or 1)
        return factor * max(2, patch)
    return factor


def _native_size(pipeline: Any) -> int | None:
    """The pipeline's default image side in pixels, where it can be read."""
    factor = int(getattr(pipeline, "vae_scale_factor", 8) or 8)
    if getattr(pipeline, "default_sample_size", None):
        return int(pipeline.default_sample_size) * factor
    for component in ("unet", "transformer"):
        sample_size = getattr(getattr(getattr(pipeline, component, None), "config", None), "sample_size", None)
        if isinstance(sample_size, int):
            return sample_size * factor
    return None


def _kebab(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


def diffusers_generator(model: Any, **options: Any) -> DiffusersGenerator:
    """The generic registry factory: ``GENERATORS.make("diffusers", model="org/name", ...)``."""
    return DiffusersGenerator(model, **options)
