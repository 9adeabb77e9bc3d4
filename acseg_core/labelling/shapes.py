"""Pixel footprints of the editing tools (plain numpy/scipy; no Qt, tested headless).

Every function returns a *window* ``(col, row, mask)``: the top-left source pixel of
a boolean mask, clipped to the image. Only the bounding box of what a tool touches
is ever allocated, so a dab on a 10000×10000 image costs the dab, not the image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

Footprint = tuple[int, int, np.ndarray]  # (col, row, bool mask)

FILL_START_SIDE = 512  # first window of a flood fill, grown ×2 while the region touches it
FILL_MAX_PIXELS = 64_000_000  # bigger windows are refused (≈ 8000², ~0.5 GB of scratch)

FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


class RegionTooLarge(Exception):
    """A flood fill whose region would need a window over ``FILL_MAX_PIXELS``."""


def clip(col: int, row: int, mask: np.ndarray, height: int, width: int) -> Footprint | None:
    """The part of a footprint inside a ``height``×``width`` image (None when nothing is)."""
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + mask.shape[0], height), min(col + mask.shape[1], width)
    if r0 >= r1 or c0 >= c1:
        return None
    return c0, r0, mask[r0 - row : r1 - row, c0 - col : c1 - col]


def segment_mask(
    x0: float, y0: float, x1: float, y1: float, radius: float, height: int, width: int
) -> Footprint | None:
    """Pixels whose centre lies within ``radius`` of the segment (x0,y0)–(x1,y1).

    A press is a zero-length segment (a disc); a mouse move paints the capsule
    between the last and the new position in one go, so fast strokes have no gaps.
    """
    r = max(float(radius), 0.5)
    col = int(np.floor(min(x0, x1) - r))
    row = int(np.floor(min(y0, y1) - r))
    w = int(np.ceil(max(x0, x1) + r)) - col + 1
    h = int(np.ceil(max(y0, y1) + r)) - row + 1
    ys = (np.arange(h, dtype=np.float32) + (row + 0.5))[:, None]
    xs = (np.arange(w, dtype=np.float32) + (col + 0.5))[None, :]
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    if length2 < 1e-9:
        dist2 = (xs - x0) ** 2 + (ys - y0) ** 2
    else:
        t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0)
        dist2 = (xs - (x0 + t * dx)) ** 2 + (ys - (y0 + t * dy)) ** 2
    return clip(col, row, dist2 <= r * r, height, width)


def polygon_mask(
    points: Sequence[tuple[float, float]], height: int, width: int
) -> Footprint | None:
    """Rasterised polygon (source-pixel vertices), drawn on its bounding box only."""
    if len(points) < 3:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    col, row = int(np.floor(min(xs))), int(np.floor(min(ys)))
    w, h = int(np.ceil(max(xs))) - col + 1, int(np.ceil(max(ys))) - row + 1
    canvas = Image.new("1", (w, h), 0)
    # PIL fills pixel (i, j) when its centre (i+0.5, j+0.5) is inside: shift by half a pixel.
    ImageDraw.Draw(canvas).polygon([(x - col - 0.5, y - row - 0.5) for x, y in points], fill=1)
    return clip(col, row, np.asarray(canvas, dtype=bool), height, width)


def flood_region(
    values: Callable[[tuple[int, int, int, int]], np.ndarray],
    seed: tuple[int, int],
    height: int,
    width: int,
    start_side: int = FILL_START_SIDE,
    max_pixels: int = FILL_MAX_PIXELS,
    tolerance: int = 0,
) -> Footprint:
    """The 4-connected region of equal value around ``seed`` (col, row).

    ``tolerance`` (pixels): specks of other values up to that size enclosed by the
    region are part of it too (a cluster region peppered with stray pixels fills
    whole); 0 = exactly the equal-valued region.

    ``values(window)`` returns the displayed label values of a window. The region is
    labelled in a window around the seed; while it touches a window edge that is not
    the image edge the window doubles, so the work follows the region's size and a
    small fill on a huge image never labels the whole image. Raises
    :class:`RegionTooLarge` past ``max_pixels``.
    """
    sx, sy = seed
    half = max(1, start_side // 2)
    while True:
        c0, r0 = max(0, sx - half), max(0, sy - half)
        c1, r1 = min(width, sx + half), min(height, sy + half)
        if (c1 - c0) * (r1 - r0) > max_pixels:
            raise RegionTooLarge(f"the region is larger than {max_pixels} pixels")
        window = values((c0, r0, c1 - c0, r1 - r0))
        same = window == window[sy - r0, sx - c0]
        labels, _count = ndimage.label(same, structure=FOUR_CONNECTED)
        region = labels == labels[sy - r0, sx - c0]
        open_edges = (
            (c0 > 0 and region[:, 0].any())
            or (r0 > 0 and region[0, :].any())
            or (c1 < width and region[:, -1].any())
            or (r1 < height and region[-1, :].any())
        )
        if not open_edges:
            if tolerance > 0:
                region = absorb_specks(region, tolerance)
            rows = np.flatnonzero(region.any(axis=1))
            cols = np.flatnonzero(region.any(axis=0))
            crop = region[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
            return c0 + int(cols[0]), r0 + int(rows[0]), crop
        half *= 2


def absorb_specks(region: np.ndarray, max_pixels: int) -> np.ndarray:
    """``region`` with its enclosed holes of at most ``max_pixels`` pixels filled in."""
    holes = ndimage.binary_fill_holes(region) & ~region
    if not holes.any():
        return region
    labels, count = ndimage.label(holes, structure=FOUR_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    small = sizes <= max_pixels
    small[0] = False
    return region | small[labels]
