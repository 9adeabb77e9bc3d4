"""Display maths on raw pixels (never the source values themselves): percentile
stretch to 8 bits, band → R/G/B composition, label-map resizing, map coordinates."""

from __future__ import annotations

import numpy as np

from acseg_core.io.normalise import band_percentiles


def percentile_stretch(
    data: np.ndarray,
    low: float = 2.0,
    high: float = 98.0,
    valid: np.ndarray | None = None,
    limits: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Per-band linear stretch to uint8 for display (pixels untouched elsewhere)."""
    lo, hi = limits if limits is not None else band_percentiles(data, low, high, valid)
    out = np.empty(data.shape, dtype=np.uint8)
    for b in range(data.shape[0]):
        span = max(float(hi[b] - lo[b]), 1e-12)
        band = (data[b].astype(np.float32) - float(lo[b])) * (255.0 / span)
        np.clip(band, 0, 255, out=band)
        out[b] = np.nan_to_num(band, nan=0.0).astype(np.uint8)
    return out


def compose_rgb(
    data: np.ndarray, bands: tuple[int, int, int], limits: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """(count, H, W) raw pixels → (3, H, W) uint8 using 1-based ``bands`` for R, G, B.

    ``limits`` are the per-band (low, high) stretch values of *all* bands, so
    changing the mapping needs no new statistics.
    """
    index = [min(max(band, 1), data.shape[0]) - 1 for band in bands]
    low, high = limits
    return percentile_stretch(data[index], limits=(np.asarray(low)[index], np.asarray(high)[index]))


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


__all__ = [
    "band_percentiles",
    "compose_rgb",
    "percentile_stretch",
    "pixel_to_map",
    "resize_labels_nearest",
]
