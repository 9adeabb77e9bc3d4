"""Display maths on raw pixels (never the source values themselves): percentile
stretch to 8 bits, band → R/G/B composition, label-map resizing, map coordinates, the
CRS's short name and latitude/longitude (rasterio's transform: no pyproj needed)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

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



@functools.lru_cache(maxsize=16)
def _crs(wkt: str) -> Any:
    return CRS.from_wkt(wkt)


def crs_name(wkt: str | None) -> str:
    """A short name for a CRS given as WKT: ``EPSG:32618`` where it has a code, else its
    name (empty without a CRS)."""
    if not wkt:
        return ""
    try:
        crs = _crs(wkt)
    except Exception:  # rasterio's CRSError and GDAL's: not worth failing a status bar
        return "unknown CRS"
    code = crs.to_epsg()
    if code:
        return f"EPSG:{code}"
    name = str(crs.to_dict().get("proj") or "")
    return name or "custom CRS"


def map_to_lonlat(wkt: str | None, x: float, y: float) -> tuple[float, float] | None:
    """(longitude, latitude) in WGS 84 of map coordinates in the CRS ``wkt``, or None
    where the CRS cannot be transformed (a local engineering CRS, none at all)."""
    if not wkt:
        return None
    try:
        xs, ys = warp_transform(_crs(wkt), "EPSG:4326", [x], [y])
    except Exception:  # not transformable: no latitude/longitude to show
        return None
    lon, lat = float(xs[0]), float(ys[0])
    if not (np.isfinite(lon) and np.isfinite(lat)) or abs(lat) > 90:
        return None
    return lon, lat


def format_lonlat(lon: float, lat: float) -> str:
    """``25.50608° N  78.95865° W`` (5 decimals: about a metre)."""
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"{abs(lat):.5f}° {ns}  {abs(lon):.5f}° {ew}"


__all__ = [
    "band_percentiles",
    "compose_rgb",
    "crs_name",
    "format_lonlat",
    "map_to_lonlat",
    "percentile_stretch",
    "pixel_to_map",
    "resize_labels_nearest",
]
