"""The ShapesWorld verifier: checks a task's checklist from pixels alone.

Perception (:func:`detect`):

1. every pixel is mapped to the nearest palette colour within :data:`COLOR_TOLERANCE` (anything
   else, the grey background included, is background), through a lookup table over 5-bit-per-channel
   colours, so slightly compressed or resized images still read right;
2. 8-connected components of non-background pixels are objects (the renderer keeps a gap between
   objects); components smaller than :func:`min_area` pixels are specks and ignored; an object's
   colour is its most frequent palette colour;
3. the class is the nearest shape template: the component's mask sampled on a 16 x 16 grid over
   its bounding box, compared with each shape drawn in a box of the same size and sampled the
   same way, plus a penalty on the bounding box's aspect ratio (only rectangle and oval are twice
   as wide as tall);
4. centroid (x, y) and area in pixels.

Checks (:func:`evaluate`): the GenEval / GenEval++ checklist of
:func:`genagent_env.scorers.checklist.evaluate_checklist` (its module docstring defines each check),
over the detected objects, with :data:`POSITION_MARGIN` and :data:`SIZE_RATIO`.

``Score.score`` is the fraction of checks that pass and ``passed`` says all of them do. The verifier
never sees the renderer's scene record; the tests compare the two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from genagent_env.scorers.base import Score, Scorer
from genagent_env.scorers.checklist import POSITION_MARGIN, SIZE_RATIO, evaluate_checklist
from genagent_env.shapes.reader import task_from_prompt
from genagent_env.shapes.renderer import shape_mask
from genagent_env.shapes.vocab import ASPECT, BACKGROUND, MAX_COUNT, PALETTE, SHAPES

if TYPE_CHECKING:
    from PIL.Image import Image

#: Largest RGB distance at which a pixel still counts as a palette colour.
COLOR_TOLERANCE = 45.0
#: Side of the grid a component's mask is sampled on for classification.
GRID = 16
#: Largest side a template is drawn at.
TEMPLATE_SIDE = 96
_ASPECT_PENALTY = 40.0  # in grid cells per unit of |log aspect| mismatch
_COLOR_NAMES = tuple(PALETTE)
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def min_area(width: int, height: int) -> int:
    """Components smaller than this many pixels are specks (compression noise), not objects."""
    return max(4, int(0.0004 * width * height))


@lru_cache(maxsize=1)
def _color_lut() -> np.ndarray:
    """Palette index (0 = background, k = k-th colour) for every 5-bit-per-channel colour."""
    levels = np.arange(32) * 8 + 4.0
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    colours = np.stack([r, g, b], axis=-1).reshape(-1, 3)
    palette = np.array([BACKGROUND, *PALETTE.values()], dtype=float)
    distance = np.linalg.norm(colours[:, None, :] - palette[None, :, :], axis=-1)
    nearest = distance.argmin(1)
    nearest[distance.min(1) > COLOR_TOLERANCE] = 0
    return nearest.astype(np.uint8)


@lru_cache(maxsize=4096)
def _grid_index(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rows = ((np.arange(GRID) + 0.5) * height / GRID).astype(np.intp)
    cols = ((np.arange(GRID) + 0.5) * width / GRID).astype(np.intp)
    return rows[:, None], cols[None, :]


def _grid(mask: np.ndarray) -> np.ndarray:
    """The mask sampled at GRID x GRID points spread evenly over it, flattened."""
    rows, cols = _grid_index(*mask.shape)
    return mask[rows, cols].reshape(-1)


@lru_cache(maxsize=2048)
def _templates(width: int, height: int) -> np.ndarray:
    """Every shape drawn in a box of this size, sampled on the grid: one row per shape."""
    return np.array([_grid(shape_mask(shape, width, height)) for shape in SHAPES], dtype=np.int16)


_LOG_ASPECTS = np.log(np.array([ASPECT[s] for s in SHAPES]))


def classify(mask: np.ndarray) -> str:
    """The shape class of a component's mask (cropped to its bounding box): the shape whose drawing
    at the same box size is nearest on the grid, with a penalty for the wrong aspect ratio."""
    if mask.size <= _CACHED_MASK_PIXELS:  # clean images repeat the same few masks: cache by their bits
        return _classify_bits(mask.shape[0], mask.shape[1], np.packbits(mask).tobytes())
    return _classify(mask)


_CACHED_MASK_PIXELS = 128 * 128


@lru_cache(maxsize=16384)
def _classify_bits(height: int, width: int, bits: bytes) -> str:
    unpacked = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=height * width)
    return _classify(unpacked.reshape(height, width).astype(bool))


def _classify(mask: np.ndarray) -> str:
    h, w = mask.shape
    # Big components are compared with templates drawn at most TEMPLATE_SIDE wide (same grid, less work).
    shrink = max(1.0, max(h, w) / TEMPLATE_SIDE)
    templates = _templates(max(1, round(w / shrink)), max(1, round(h / shrink)))
    distance = np.abs(templates - _grid(mask)).sum(1) + _ASPECT_PENALTY * np.abs(np.log(w / h) - _LOG_ASPECTS)
    return SHAPES[int(distance.argmin())]


def _as_rgb_array(image: Any) -> np.ndarray:
    """Any PIL image (any mode) or array as an ``H x W x 3`` uint8 array.

    Arrays may be ``H x W`` (grey), ``H x W x C`` or ``C x H x W`` with 1, 3 or 4 channels (alpha is
    dropped, as PIL's RGBA -> RGB does); integer arrays must hold values in [0, 255], float arrays
    values in [0, 1] (scaled by 255) or, when any value exceeds 1, in [0, 255]. Raises ``ValueError``
    or ``TypeError`` for anything else rather than guessing.
    """
    from PIL import Image as PILImage

    if isinstance(image, PILImage.Image):
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    if image is None or isinstance(image, (str, bytes)):
        raise TypeError(f"expected a PIL image or an array, got {type(image).__name__}")
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)  # channels first (a torch-style tensor)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an H x W or H x W x 1/3/4 array, got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if array.size and not np.isfinite(array).all():
            raise ValueError("the image array holds NaN or infinite values")
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if low < 0.0 or high > 255.0:
            raise ValueError(f"float image values must lie in [0, 1] or [0, 255], got [{low:g}, {high:g}]")
        array = np.rint(array * 255.0 if high <= 1.0 else array).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.size and (int(array.min()) < 0 or int(array.max()) > 255):
            raise ValueError(f"integer image values must lie in [0, 255], got [{array.min()}, {array.max()}]")
        array = array.astype(np.uint8)
    else:
        raise TypeError(f"cannot read an image array of dtype {array.dtype}")
    array = array[:, :, :3] if array.shape[2] != 1 else np.repeat(array, 3, axis=2)
    return np.ascontiguousarray(array)


def detect(image: Any) -> list[dict[str, Any]]:
    """Objects in an image (PIL image of any mode and size, or an array): one dict per object with
    ``class``, ``color``, ``centroid`` (x, y) and ``area``, in reading order. Raises ``ValueError`` or
    ``TypeError`` for something that is not an image (see :func:`_as_rgb_array`)."""
    pixels = _as_rgb_array(image)
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        return []
    quantised = pixels >> 3
    keys = (quantised[..., 0].astype(np.int32) << 10) | (quantised[..., 1].astype(np.int32) << 5) | quantised[..., 2]
    index = _color_lut()[keys]
    labels, n = ndimage.label(index > 0, structure=_EIGHT_CONNECTED)
    if n == 0:
        return []
    # Statistics of all components at once, over the foreground pixels only.
    flat = labels.ravel()
    foreground = np.flatnonzero(flat)
    owner = flat[foreground]
    area = np.bincount(owner, minlength=n + 1)
    sum_x = np.bincount(owner, weights=foreground % width, minlength=n + 1)
    sum_y = np.bincount(owner, weights=foreground // width, minlength=n + 1)
    n_colours = len(_COLOR_NAMES) + 1
    colour_counts = np.bincount(owner * n_colours + index.ravel()[foreground], minlength=(n + 1) * n_colours)
    colour_counts = colour_counts.reshape(n + 1, n_colours)[:, 1:]
    smallest = min_area(width, height)
    detections = []
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or area[k] < smallest:
            continue
        detections.append({
            "class": classify(labels[box] == k),
            "color": _COLOR_NAMES[int(colour_counts[k].argmax())],
            "centroid": (float(sum_x[k] / area[k] + 0.5), float(sum_y[k] / area[k] + 0.5)),
            "area": int(area[k]),
        })
    return detections


# -- checks -------------------------------------------------------------------------------------

def evaluate(
    task: Mapping[str, Any], detections: Sequence[Mapping[str, Any]], width: int, height: int
) -> list[dict[str, Any]]:
    """Every check of the task's checklist against a list of detections (see
    :mod:`genagent_env.scorers.checklist`, with :data:`POSITION_MARGIN` and :data:`SIZE_RATIO`)."""
    return evaluate_checklist(task, detections, width, height, position_margin=POSITION_MARGIN,
                              size_ratio=SIZE_RATIO)


class ShapesVerifier(Scorer):
    """Pixel-level checklist scorer for ShapesWorld images (see the module docstring).

    Never raises on an image: anything PIL can hold (any mode, any size, photos, noise) and any
    uint8 or float image array is converted to RGB and read; an image with no recognisable objects
    simply fails its counts. Something that cannot be read as an image (``None``, a string, a
    float array outside [0, 255], a 5-D array...) gets a failing score with ``details["error"]``.
    """

    name = "shapes"

    def score(self, images: Sequence[Image], tasks: Sequence[Mapping[str, Any]]) -> list[Score]:
        if len(images) != len(tasks):
            raise ValueError(f"got {len(images)} images for {len(tasks)} tasks")
        scores = []
        for image, task in zip(images, tasks):
            try:
                pixels = _as_rgb_array(image)
            except Exception as error:  # anything that is not an image: a failing score that says why
                message = f"cannot read the image: {error}"
                scores.append(Score(passed=False, score=0.0,
                                    details={"checks": [], "failed": [message], "detected": [], "error": message}))
                continue
            detections = detect(pixels)
            checks = evaluate(task, detections, pixels.shape[1], pixels.shape[0])
            passed = sum(1 for c in checks if c["ok"])
            scores.append(Score(
                passed=passed == len(checks),
                score=passed / len(checks) if checks else 1.0,
                details={
                    "checks": checks,
                    "failed": [c["message"] for c in checks if not c["ok"]],
                    "detected": [{k: d[k] for k in ("class", "color", "centroid", "area")} for d in detections],
                },
            ))
        return scores

    def parse_prompt(self, prompt: str) -> dict[str, Any]:
        return task_from_prompt(prompt)

    def validate_task(self, task: Mapping[str, Any]) -> None:
        """ShapesWorld checks only its own shapes and palette colours, include counts it can draw
        (1..MAX_COUNT) and exclude counts up to MAX_COUNT + 1, and needs something to check."""
        if not task.get("include"):
            raise ValueError("the shapes verifier needs a task with at least one include item")
        excludes = list(task.get("exclude") or [])
        for kind, items, limit in (("include", task["include"], MAX_COUNT), ("exclude", excludes, MAX_COUNT + 1)):
            for i, item in enumerate(items):
                count = item.get("count")
                if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 1 <= count <= limit:
                    raise ValueError(
                        f"the shapes verifier cannot check {kind} item {i} ({item.get('class')!r}, count {count!r}): "
                        f"ShapesWorld {kind} counts are whole numbers from 1 to {limit}"
                    )
        for item in [*task["include"], *excludes]:
            if item["class"] not in SHAPES:
                raise ValueError(
                    f"the shapes verifier cannot check class {item['class']!r}; "
                    f"ShapesWorld shapes are: {', '.join(SHAPES)}"
                )
            if item.get("color") is not None and item["color"] not in PALETTE:
                raise ValueError(
                    f"the shapes verifier cannot check colour {item['color']!r}; colours are: {', '.join(PALETTE)}"
                )
