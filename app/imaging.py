"""numpy ↔ Qt image conversion and display maths (never touches the source pixels).

Everything except the two ``*_to_qimage`` functions is plain numpy, so it is
tested without a display.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """(3, H, W) or (H, W, 3) uint8 → QImage (a deep copy, safe to keep)."""
    if rgb.ndim == 3 and rgb.shape[0] in (1, 3) and rgb.shape[-1] not in (1, 3):
        rgb = np.moveaxis(rgb, 0, -1)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    if rgb.shape[-1] == 1:
        rgb = np.repeat(rgb, 3, axis=-1)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    """(H, W, 4) uint8 RGBA → QImage with alpha (a deep copy)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w, _ = rgba.shape
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


def compose_rgb(
    data: np.ndarray,
    bands: tuple[int, int, int],
    limits: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """(count, H, W) raw pixels → (3, H, W) uint8 using 1-based ``bands`` for R, G, B.

    ``limits`` are the per-band (low, high) stretch values of *all* bands, so
    changing the mapping needs no new statistics. Display only.
    """
    low, high = limits
    out = np.empty((3, *data.shape[1:]), dtype=np.uint8)
    for channel, band in enumerate(bands):
        index = min(max(band, 1), data.shape[0]) - 1
        span = max(float(high[index] - low[index]), 1e-12)
        values = (data[index].astype(np.float32) - float(low[index])) * (255.0 / span)
        np.clip(values, 0, 255, out=values)
        out[channel] = np.nan_to_num(values, nan=0.0).astype(np.uint8)
    return out


def colourise(labels: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """(H, W) uint8 label map → (H, W, 4) RGBA through a 256×4 lookup table.

    Hidden clusters and "no class" have alpha 0 in the table, so they vanish.
    """
    return lut[labels]


def resize_labels_nearest(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map (never blends two labels)."""
    if labels.shape == shape:
        return labels
    rows = (np.arange(shape[0]) * labels.shape[0] // shape[0]).astype(np.intp)
    cols = (np.arange(shape[1]) * labels.shape[1] // shape[1]).astype(np.intp)
    return labels[rows][:, cols]


def pixel_to_map(transform: tuple[float, ...], x: float, y: float) -> tuple[float, float]:
    """Affine (a, b, c, d, e, f) applied to pixel coordinates: map x, y."""
    a, b, c, d, e, f = transform[:6]
    return a * x + b * y + c, d * x + e * y + f


def distinct_colours(count: int) -> list[tuple[int, int, int]]:
    """Well-separated colours for cluster ids (golden-angle hues, varied value)."""
    import colorsys

    colours = []
    for i in range(count):
        hue = (i * 0.618033988749895) % 1.0
        value = 0.95 if i % 2 == 0 else 0.75
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, value)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours
