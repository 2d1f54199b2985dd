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

Checks (:func:`evaluate`, as GenEval / GenEval++ define them; an item's *instances* are the detected
objects of its class, and of its colour where it names one):

- ``count``: exactly ``count`` instances;
- ``region``: at least one instance and every instance's centroid in that half of the image;
- ``position`` (GenEval ``[relation, index]``): for every pair of instances, the relation holds by a
  margin of :data:`POSITION_MARGIN` of the image width (left/right) or height (above/below);
- ``size``: a ``larger`` item's smallest instance covers at least :data:`SIZE_RATIO` times the
  largest instance of the items it is compared with (those with the opposite label, else all other
  items); ``smaller`` the other way round;
- ``exclude``: fewer than ``count`` instances.

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
from genagent_env.shapes.reader import task_from_prompt
from genagent_env.shapes.renderer import shape_mask
from genagent_env.shapes.vocab import ASPECT, BACKGROUND, MAX_COUNT, PALETTE, SHAPES, plural

if TYPE_CHECKING:
    from PIL.Image import Image

#: Largest RGB distance at which a pixel still counts as a palette colour.
COLOR_TOLERANCE = 45.0
#: GenEval's position margin, as a fraction of the image size.
POSITION_MARGIN = 0.1
#: How many times the area a "larger" object must cover.
SIZE_RATIO = 1.5
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

def _noun(item: Mapping[str, Any], count: int) -> str:
    colour = f"{item['color']} " if item.get("color") else ""
    return f"{colour}{plural(str(item['class']), count)}"


def _instances(item: Mapping[str, Any], detections: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    colour = item.get("color")
    return [d for d in detections if d["class"] == item["class"] and (not colour or d["color"] == colour)]


def _count_check(i: int, item: Mapping[str, Any], detections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    found = _instances(item, detections)
    want = int(item["count"])
    ok = len(found) == want
    if ok:
        message = f"there {'is' if want == 1 else 'are'} exactly {want} {_noun(item, want)}, as asked"
    else:
        message = f"expected exactly {want} {_noun(item, want)}, found {len(found)}"
        if item.get("color"):
            others = [d for d in detections if d["class"] == item["class"] and d["color"] != item["color"]]
            if others:
                colours = sorted({d["color"] for d in others})
                message += f" (and {len(others)} {plural(str(item['class']), len(others))} in {' and '.join(colours)})"
    return {"check": "count", "item": i, "ok": ok, "message": message}


_HALF = {"left": "left half", "right": "right half", "above": "top half", "below": "bottom half"}
_RELATION_WORDS = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}


def _in_region(detection: Mapping[str, Any], region: str, width: int, height: int) -> bool:
    x, y = detection["centroid"]
    return {"left": x < width / 2, "right": x > width / 2, "above": y < height / 2, "below": y > height / 2}[region]


def _every(item: Mapping[str, Any]) -> str:
    """ "the red circle" for a single object, "every red circle" for several."""
    return f"{'the' if int(item['count']) == 1 else 'every'} {_noun(item, 1)}"


def _region_check(i: int, item: Mapping[str, Any], detections: Sequence[Mapping[str, Any]],
                  width: int, height: int) -> dict[str, Any]:
    found = _instances(item, detections)
    region = str(item["region"])
    outside = [d for d in found if not _in_region(d, region, width, height)]
    ok = bool(found) and not outside
    where = f"the {_HALF[region]} of the image"
    if not found:
        message = f"expected {_every(item)} in {where}, but there is no {_noun(item, 1)}"
    elif ok:
        message = f"{_every(item)} is in {where}"
    elif len(found) == 1:
        message = f"expected {_every(item)} in {where}, but it is not"
    else:
        verb = "is" if len(outside) == 1 else "are"
        message = f"expected {_every(item)} in {where}; {len(outside)} of {len(found)} {verb} not"
    return {"check": "region", "item": i, "ok": ok, "message": message}


def _holds(a: Mapping[str, Any], b: Mapping[str, Any], relation: str, width: int, height: int) -> bool:
    (ax, ay), (bx, by) = a["centroid"], b["centroid"]
    if relation == "left of":
        return ax < bx - POSITION_MARGIN * width
    if relation == "right of":
        return ax > bx + POSITION_MARGIN * width
    if relation == "above":
        return ay < by - POSITION_MARGIN * height
    return ay > by + POSITION_MARGIN * height


def _position_check(i: int, item: Mapping[str, Any], include: Sequence[Mapping[str, Any]],
                    detections: Sequence[Mapping[str, Any]], width: int, height: int) -> dict[str, Any]:
    relation, j = item["position"]
    other = include[j]
    found, reference = _instances(item, detections), _instances(other, detections)
    pairs = [(a, b) for a in found for b in reference]
    bad = [p for p in pairs if not _holds(p[0], p[1], relation, width, height)]
    ok = bool(pairs) and not bad
    phrase = f"{_every(item)} {{}} {_RELATION_WORDS[relation]} {_every(other)}"
    if not pairs:
        missing = _noun(item, 1) if not found else _noun(other, 1)
        message = f"expected {phrase.format('to be')}, but there is no {missing}"
    elif ok:
        message = phrase.format("is")
    else:
        axis = "width" if relation in ("left of", "right of") else "height"
        margin = f"by at least {POSITION_MARGIN:.0%} of the image {axis}"
        if len(pairs) == 1:
            message = f"expected {phrase.format('to be')} ({margin}), but it is not"
        else:
            message = f"expected {phrase.format('to be')} ({margin}); {len(bad)} of {len(pairs)} pairs are not"
    return {"check": "position", "item": i, "ok": ok, "message": message}


def _size_check(i: int, item: Mapping[str, Any], include: Sequence[Mapping[str, Any]],
                detections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    label = str(item["size"])
    opposite = "smaller" if label == "larger" else "larger"
    compared = [j for j, other in enumerate(include) if j != i and other.get("size") == opposite]
    compared = compared or [j for j in range(len(include)) if j != i]
    found = _instances(item, detections)
    others = [d for j in compared for d in _instances(include[j], detections) if d not in found]
    subject = f"the {_noun(item, int(item['count']))}"
    names = " and ".join(f"the {_noun(include[j], int(include[j]['count']))}" for j in compared) or "the other objects"
    if not found or not others:
        missing = _noun(item, 2) if not found else " or ".join(_noun(include[j], 2) for j in compared)
        missing = missing or "other objects"
        message = f"expected {subject} to be clearly {label} than {names}, but there are no {missing}"
        return {"check": "size", "item": i, "ok": False, "message": message}
    if label == "larger":
        ok = min(d["area"] for d in found) >= SIZE_RATIO * max(d["area"] for d in others)
    else:
        ok = SIZE_RATIO * max(d["area"] for d in found) <= min(d["area"] for d in others)
    verb = "is" if int(item["count"]) == 1 else "are"
    if ok:
        message = f"{subject} {verb} clearly {label} than {names}"
    else:
        message = (f"expected {subject} to be clearly {label} than {names} (at least {SIZE_RATIO:g} times the area), "
                   f"but {'it is' if verb == 'is' else 'they are'} not")
    return {"check": "size", "item": i, "ok": ok, "message": message}


def _exclude_check(i: int, item: Mapping[str, Any], detections: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    found = _instances(item, detections)
    limit = int(item["count"])
    ok = len(found) < limit
    if limit == 1:
        message = f"there are no {_noun(item, 2)}" if ok else f"expected no {_noun(item, 2)}, found {len(found)}"
    else:
        message = (f"there are fewer than {limit} {_noun(item, limit)}" if ok
                   else f"expected fewer than {limit} {_noun(item, limit)}, found {len(found)}")
    return {"check": "exclude", "item": i, "ok": ok, "message": message}


def evaluate(
    task: Mapping[str, Any], detections: Sequence[Mapping[str, Any]], width: int, height: int
) -> list[dict[str, Any]]:
    """Every check of the task's checklist against a list of detections (see the module docstring)."""
    include = list(task.get("include", []))
    checks = []
    for i, item in enumerate(include):
        checks.append(_count_check(i, item, detections))
        if item.get("region"):
            checks.append(_region_check(i, item, detections, width, height))
        if item.get("position"):
            checks.append(_position_check(i, item, include, detections, width, height))
        if item.get("size"):
            checks.append(_size_check(i, item, include, detections))
    for i, item in enumerate(task.get("exclude", []) or []):
        checks.append(_exclude_check(i, item, detections))
    return checks


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
                    f"the shapes verifier cannot check class {item['class']!r}; ShapesWorld shapes are: {', '.join(SHAPES)}"
                )
            if item.get("color") is not None and item["color"] not in PALETTE:
                raise ValueError(
                    f"the shapes verifier cannot check colour {item['color']!r}; colours are: {', '.join(PALETTE)}"
                )
