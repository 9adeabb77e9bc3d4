"""Short CRS descriptions and ground units, from the WKT that :class:`RasterInfo` carries.

The status bar names the CRS on every mouse move and the areas table needs a pixel's
ground area once per image; both go through these cached look-ups (PROJ's EPSG
search is milliseconds, not microseconds).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any


@functools.lru_cache(maxsize=64)
def crs_name(wkt: str | None) -> str:
    """``EPSG:32618`` when the CRS has an EPSG code, else its name ("" without a CRS)."""
    crs = _parse(wkt)
    if crs is None:
        return ""
    code = crs.to_epsg()
    if code is not None:
        return f"EPSG:{code}"
    return _wkt_name(crs.to_wkt()) or "custom CRS"


@functools.lru_cache(maxsize=64)
def metres_per_unit(wkt: str | None) -> float | None:
    """Metres in one linear unit of a projected CRS; None when not projected (or none)."""
    crs = _parse(wkt)
    if crs is None or not crs.is_projected:
        return None
    try:
        _, factor = crs.linear_units_factor
    except Exception:  # a projected CRS without a usable unit
        return None
    return float(factor) if factor and factor > 0 else None


def pixel_area_m2(wkt: str | None, transform: Sequence[float] | None) -> float | None:
    """Ground area of one pixel in m² (the CRS's plane), None where units are not metric-able."""
    factor = metres_per_unit(wkt)
    if factor is None or transform is None:
        return None
    a, b, _, d, e, _ = (float(v) for v in tuple(transform)[:6])
    area = abs(a * e - b * d) * factor * factor
    return area if area > 0 else None


def map_to_lonlat(wkt: str | None, x: float, y: float) -> tuple[float, float] | None:
    """(longitude, latitude) in WGS 84 of map coordinates in the CRS ``wkt``, or None
    where the CRS cannot be transformed (a local engineering CRS, none at all)."""
    crs = _parse(wkt)
    if crs is None:
        return None
    from rasterio.warp import transform as warp_transform

    try:
        xs, ys = warp_transform(crs, "EPSG:4326", [x], [y])
    except Exception:  # not transformable: no latitude/longitude to show
        return None
    lon, lat = float(xs[0]), float(ys[0])
    if not (math.isfinite(lon) and math.isfinite(lat)) or abs(lat) > 90:
        return None
    return lon, lat


def format_lonlat(lon: float, lat: float) -> str:
    """``25.50608° N  78.95865° W`` (5 decimals: about a metre)."""
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"{abs(lat):.5f}° {ns}  {abs(lon):.5f}° {ew}"


def _parse(wkt: str | None) -> Any:
    if not wkt:
        return None
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return CRS.from_user_input(wkt)
        except CRSError:
            return None


def _wkt_name(wkt: str) -> str:
    """The quoted name after the WKT's first keyword: ``PROJCS["name", ...``."""
    start = wkt.find('"')
    end = wkt.find('"', start + 1)
    return wkt[start + 1 : end] if 0 <= start < end else ""


__all__ = ["crs_name", "format_lonlat", "map_to_lonlat", "metres_per_unit", "pixel_area_m2"]
