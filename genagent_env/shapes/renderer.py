"""The ShapesWorld renderer: a scene plan -> pixels, plus a record of what was actually drawn.

A plan is a list of :class:`PlannedObject` (class, colour, relative size, where its centroid may
go). The renderer sizes each object by *pixel area* (so a "larger" star really covers more pixels
than a "smaller" square, whatever their fill), places them without overlap, keeping a gap of
:data:`GAP` pixels so objects never touch, and draws them axis-aligned with no anti-aliasing in
exact palette colours on the grey background.

Placement never gives up early: a few random corners inside the object's allowed box are tried
first (cheap while the canvas is empty); when they all collide, a summed-area table of the occupied
pixels gives every corner where the object fits, and one is drawn among those. When an object fits
nowhere, all objects are shrunk and placed again, and as a last resort objects are left out; the
scene record says what was drawn, so it always matches the pixels.

Coordinates are continuous: pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)``, so a centroid
is the mean of ``index + 0.5`` and the vertical midline is exactly ``width / 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from genagent_env.shapes.vocab import ASPECT, BACKGROUND, PALETTE

#: Minimum free pixels between two objects (and between an object and the border).
GAP = 2
#: The smallest side an object is drawn with: below this, silhouettes stop being recognisable.
MIN_SIDE = 10
#: Fraction of the canvas the objects' bounding boxes may cover before the renderer shrinks them.
MAX_COVERAGE = 0.30
#: Area of an ordinary object as a fraction of the canvas when there is room.
BASE_AREA = 0.035


def _polygon(u: np.ndarray, v: np.ndarray, points: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd point-in-polygon test for arrays of points (u, v)."""
    inside = np.zeros(np.broadcast(u, v).shape, dtype=bool)
    n = len(points)
    for k in range(n):
        (u1, v1), (u2, v2) = points[k], points[(k + 1) % n]
        crosses = (v1 > v) != (v2 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = u1 + (v - v1) * (u2 - u1) / (v2 - v1)
        inside ^= crosses & (u < at)
    return inside


def _star_points() -> list[tuple[float, float]]:
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.2)
    us = 0.5 + radii * np.cos(angles)
    vs = 0.5 + radii * np.sin(angles)
    # Stretch so the star fills its box: its points span [0.02, 0.98] x [0.0, 0.9] before this.
    us = (us - us.min()) / (us.max() - us.min())
    vs = (vs - vs.min()) / (vs.max() - vs.min())
    return list(zip(us.tolist(), vs.tolist()))


_STAR = _star_points()
_HEXAGON = [(0.0, 0.5), (0.25, 0.0), (0.75, 0.0), (1.0, 0.5), (0.75, 1.0), (0.25, 1.0)]
_HEART_POINT = [(0.035, 0.42), (0.965, 0.42), (0.5, 1.0)]


def _unit_shape(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The shape as a boolean function of box coordinates u, v in [0, 1] (v points down)."""
    du, dv = u - 0.5, v - 0.5
    if shape in ("circle", "oval"):
        return du**2 + dv**2 <= 0.25
    if shape in ("square", "rectangle"):
        return np.ones(np.broadcast(u, v).shape, dtype=bool)
    if shape == "triangle":
        return v >= 2 * np.abs(du)
    if shape == "diamond":
        return np.abs(du) + np.abs(dv) <= 0.5
    if shape == "star":
        return _polygon(u, v, _STAR)
    if shape == "hexagon":
        return _polygon(u, v, _HEXAGON)
    if shape == "cross":
        return (np.abs(du) <= 1 / 6) | (np.abs(dv) <= 1 / 6)
    if shape == "heart":
        lobes = ((u - 0.27) ** 2 + (v - 0.29) ** 2 <= 0.27**2) | ((u - 0.73) ** 2 + (v - 0.29) ** 2 <= 0.27**2)
        return lobes | _polygon(u, v, _HEART_POINT)
    if shape == "ring":
        r2 = du**2 + dv**2
        return (r2 <= 0.25) & (r2 >= 0.28**2)
    if shape == "crescent":
        return (du**2 + dv**2 <= 0.25) & ((u - 0.78) ** 2 + (v - 0.4) ** 2 > 0.43**2)
    raise ValueError(f"unknown shape {shape!r}")


@lru_cache(maxsize=4096)
def shape_mask(shape: str, width: int, height: int) -> np.ndarray:
    """The shape drawn in a ``height x width`` box, sampled at pixel centres, reduced to its largest
    8-connected piece and cropped to its own bounding box (so what is drawn is one clean blob).
    Read-only: it is cached."""
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    mask = _unit_shape(shape, u[None, :], v[:, None])
    if not mask.any():  # a box too small to sample the shape: one pixel stands for it
        mask[height // 2, width // 2] = True
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        mask = labels == (1 + int(np.argmax(sizes)))
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    mask = np.ascontiguousarray(mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    mask.flags.writeable = False
    return mask


@cache
def fill_fraction(shape: str) -> float:
    """The fraction of its bounding box a shape covers (measured on a large rendering)."""
    side = 96
    mask = shape_mask(shape, round(side * ASPECT[shape]), side)
    return float(mask.mean())


_COLOURS = np.array([BACKGROUND, *PALETTE.values()], dtype=np.uint8)
_COLOUR_INDEX = {name: index for index, name in enumerate(PALETTE, start=1)}


@dataclass
class PlannedObject:
    """One object the renderer should draw.

    Attributes:
        cls: Shape class.
        color: Palette colour name.
        scale: Relative pixel area (1 = ordinary; the failure model sets larger/smaller objects).
        box: Where the centroid may go, as fractions of the canvas ``(x0, x1, y0, y1)``.
    """

    cls: str
    color: str
    scale: float = 1.0
    box: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)


def _fits(occupied: np.ndarray, h: int, w: int) -> np.ndarray:
    """Boolean map of top-left corners (y, x) where an h x w box overlaps nothing occupied."""
    table = np.zeros((occupied.shape[0] + 1, occupied.shape[1] + 1), dtype=np.int32)
    np.cumsum(np.cumsum(occupied, axis=0, dtype=np.int32), axis=1, out=table[1:, 1:])
    window = table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]
    return window == 0


def _side_lengths(obj: PlannedObject, area: float) -> tuple[int, int]:
    aspect = ASPECT[obj.cls]
    height = max(MIN_SIDE, int(round(math.sqrt(area / (fill_fraction(obj.cls) * aspect)))))
    return int(round(aspect * height)), height


@lru_cache(maxsize=8192)
def _mask_area(shape: str, width: int, height: int) -> int:
    return int(shape_mask(shape, width, height).sum())


@lru_cache(maxsize=8192)
def _mask_centroid(shape: str, width: int, height: int) -> tuple[float, float]:
    """(x, y) centroid of a cached mask, relative to its top-left corner."""
    ys, xs = np.nonzero(shape_mask(shape, width, height))
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def _corner_range(box: tuple[float, float, float, float], width: int, height: int, mw: int, mh: int,
                  cx: float, cy: float) -> tuple[int, int, int, int]:
    """Top-left corners (x range, y range, inclusive) that keep the object inside the canvas, off
    the border gap, with its centroid inside ``box``."""
    x0, x1, y0, y1 = box
    lo_x = max(math.ceil(x0 * width - cx), GAP)
    hi_x = min(math.floor(x1 * width - cx), width - GAP - mw)
    lo_y = max(math.ceil(y0 * height - cy), GAP)
    hi_y = min(math.floor(y1 * height - cy), height - GAP - mh)
    return lo_x, hi_x, lo_y, hi_y


def _place(plan: list[PlannedObject], areas: list[float], width: int, height: int,
           rng: np.random.Generator) -> list[tuple[int, int, int, int, int]] | None:
    """Try to place every object; ``None`` if one does not fit (the caller shrinks and retries).

    A few random corners are tried first (cheap while the canvas is empty); when they all collide,
    the summed-area table finds every corner that fits."""
    rects: list[tuple[int, int, int, int]] = []  # placed boxes grown by GAP: (left, top, right, bottom)
    placed: list[tuple[int, int, int, int, int]] = []  # (plan index, top, left, box width, box height)
    # Constrained and large objects first: they have the fewest places to go.
    order = sorted(range(len(plan)), key=lambda i: (_box_area(plan[i].box), -areas[i]))
    for i in order:
        obj = plan[i]
        w, h = _side_lengths(obj, areas[i])
        mask = shape_mask(obj.cls, w, h)
        mh, mw = mask.shape
        cx, cy = _mask_centroid(obj.cls, w, h)
        lo_x, hi_x, lo_y, hi_y = _corner_range(obj.box, width, height, mw, mh, cx, cy)
        if lo_x > hi_x or lo_y > hi_y:
            return None
        spot = None
        for u, v in rng.random((12, 2)).tolist():
            left, top = lo_x + int(u * (hi_x - lo_x + 1)), lo_y + int(v * (hi_y - lo_y + 1))
            if all(left + mw <= r[0] or left >= r[2] or top + mh <= r[1] or top >= r[3] for r in rects):
                spot = (top, left)
                break
        if spot is None:
            occupied = np.zeros((height, width), dtype=bool)
            for left, top, right, bottom in rects:
                occupied[max(top, 0) : bottom, max(left, 0) : right] = True
            fits = _fits(occupied, mh, mw)[lo_y : hi_y + 1, lo_x : hi_x + 1]
            candidates = np.flatnonzero(fits)
            if candidates.size == 0:
                return None
            pick = int(candidates[rng.integers(candidates.size)])
            spot = (lo_y + pick // fits.shape[1], lo_x + pick % fits.shape[1])
        top, left = spot
        rects.append((left - GAP, top - GAP, left + mw + GAP, top + mh + GAP))
        placed.append((i, top, left, w, h))
    return placed


def _box_area(box: tuple[float, float, float, float]) -> float:
    return (box[1] - box[0]) * (box[3] - box[2])


def render(plan: list[PlannedObject], width: int, height: int,
           rng: np.random.Generator) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Draw a plan. Returns the ``height x width x 3`` uint8 image and the scene record: one dict
    per drawn object with ``class``, ``color``, ``centroid`` (x, y), ``area`` (pixels) and ``bbox``
    (x0, y0, x1, y1), in the order of the plan (objects that could not be placed are left out)."""
    # Draw palette indices (0 = background) and colour them once at the end: cheaper than RGB writes.
    canvas = np.zeros((height, width), dtype=np.uint8)
    if not plan:
        return _COLOURS[canvas], []
    jitter = rng.uniform(0.93, 1.07, size=len(plan))
    bbox_total = sum(o.scale / fill_fraction(o.cls) for o in plan)
    unit = min(BASE_AREA * width * height, MAX_COVERAGE * width * height / bbox_total)
    areas = [unit * o.scale * j for o, j in zip(plan, jitter)]
    placed = None
    kept = list(range(len(plan)))
    for attempt in range(40):
        placed = _place([plan[i] for i in kept], [areas[i] for i in kept], width, height, rng)
        if placed is not None:
            break
        areas = [a * 0.85 for a in areas]
        if attempt >= 7 and len(kept) > 1:  # hopeless: leave out the last object and try again
            kept = kept[:-1]
    record: list[dict[str, Any]] = []
    for index, top, left, w, h in sorted(placed or []):
        obj = plan[kept[index]]
        mask = shape_mask(obj.cls, w, h)
        mh, mw = mask.shape
        canvas[top : top + mh, left : left + mw][mask] = _COLOUR_INDEX[obj.color]
        cx, cy = _mask_centroid(obj.cls, w, h)
        record.append({
            "class": obj.cls,
            "color": obj.color,
            "centroid": (left + cx, top + cy),
            "area": _mask_area(obj.cls, w, h),
            "bbox": (left, top, left + mw, top + mh),
        })
    return _COLOURS[canvas], record

