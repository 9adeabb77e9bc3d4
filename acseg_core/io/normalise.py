"""Per-band input normalisation, identical in training and prediction.

The statistics (robust 2–98 % percentiles) live in ``ModelConfig.normalisation``
so a model file carries them; both training crops and prediction tiles go
through :func:`apply_normalisation`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from acseg_core.io.raster import Raster

LOW_PERCENTILE, HIGH_PERCENTILE = 2.0, 98.0
CLIP = 3.0  # normalised values are clipped to [-CLIP, CLIP]: outliers cannot dominate
PREVIEW_SIDE = 1024  # per-image fallback statistics come from a preview this size


@dataclass(frozen=True)
class Normalisation:
    """Per-band linear stretch: ``(x - low) / (high - low)``, then centred.

    ``low``/``high`` are robust (2–98 %) percentiles measured on the training
    images; prediction reuses them so both see identically scaled inputs.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    nodata: float | None = None

    @property
    def bands(self) -> int:
        return len(self.low)


def band_percentiles(
    data: np.ndarray, low: float = 2.0, high: float = 98.0, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (low, high) percentiles over valid pixels; robust to outliers."""
    lows, highs = [], []
    for b in range(data.shape[0]):
        values = data[b][valid] if valid is not None else data[b].ravel()
        values = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
        if values.size == 0:
            lows.append(0.0)
            highs.append(1.0)
            continue
        lo, hi = np.percentile(values, [low, high])
        if hi <= lo:
            hi = lo + 1.0
        lows.append(float(lo))
        highs.append(float(hi))
    return np.asarray(lows), np.asarray(highs)


def normalisation_from_samples(
    samples: Iterable[np.ndarray], nodata: float | None = None
) -> Normalisation:
    """Percentile statistics from ``(bands, n)`` arrays of *valid* pixel values."""
    stacked = np.concatenate([np.asarray(s, dtype=np.float64) for s in samples], axis=1)
    if stacked.shape[1] == 0:
        raise ValueError("no valid pixels to compute normalisation from")
    low = np.percentile(stacked, LOW_PERCENTILE, axis=1)
    high = np.percentile(stacked, HIGH_PERCENTILE, axis=1)
    high = np.where(high > low, high, low + 1.0)
    return Normalisation(
        low=tuple(float(v) for v in low), high=tuple(float(v) for v in high), nodata=nodata
    )


def apply_normalisation(
    data: np.ndarray, norm: Normalisation, valid: np.ndarray | None = None
) -> np.ndarray:
    """(bands, H, W) raw pixels → float32, each band mapped 2 %→-1 and 98 %→+1.

    Invalid pixels (``valid`` False, NaN) become 0, the centre of the range.
    """
    if data.shape[0] != norm.bands:
        raise ValueError(f"image has {data.shape[0]} bands, the model expects {norm.bands}")
    low = np.asarray(norm.low, dtype=np.float32)[:, None, None]
    high = np.asarray(norm.high, dtype=np.float32)[:, None, None]
    out = (data.astype(np.float32) - low) * (2.0 / (high - low)) - 1.0
    np.clip(out, -CLIP, CLIP, out=out)
    out = np.nan_to_num(out, nan=0.0, posinf=CLIP, neginf=-CLIP)
    if valid is not None:
        out[:, ~valid] = 0.0
    return out


def image_normalisation(raster: Raster) -> Normalisation:
    """Per-image robust statistics from one downsampled preview read: the fallback for a
    model that stores none (a random-init model in a benchmark). Per image, never per
    tile: per-tile statistics would shift ids between tiles and show seams."""
    preview, _ = raster.read_preview(PREVIEW_SIDE)
    low, high = band_percentiles(
        preview, LOW_PERCENTILE, HIGH_PERCENTILE, raster.valid_mask(preview)
    )
    return Normalisation(
        low=tuple(float(v) for v in low),
        high=tuple(float(v) for v in high),
        nodata=raster.info.nodata,
    )
