"""Class polygons of a class raster, written to a GeoPackage layer.

One GeoPackage per image (``<name>.gpkg``), one layer (:data:`LAYER`) of polygons with
``class_id``, ``class_name``, ``area`` (in the CRS's units², pixel-exact) and ``image``,
in the raster's CRS. Per image rather than per run: predictions run in several
processes and resume image by image, and each image keeps its own CRS; the
``image`` column keeps the provenance when layers are merged in a GIS.

How, in memory bounded by a stripe plus the polygons still open across it (a 12000²
map: under 450 MB with the libraries):

1. **Sieve** (``rasterio.features.sieve``, 4-connected, repeated until stable, see
   :data:`SIEVE_PASSES`): regions smaller than ``min_area`` pixels take the value of
   their largest neighbour, so a 10000² map gives thousands of polygons, not
   millions of specks.
   Nodata is never sieved into a class (nor a class into nodata), so a speck walled
   in by nodata stays. Done in full-width stripes of rows that overlap by
   ``min(min_area, 512)`` rows, so a region is judged whole whenever it fits in that
   overlap — always, for the default.
2. **Polygonise** (``rasterio.features.shapes``, 4-connected) each stripe in pixel
   coordinates (exact integers). Polygons inside a stripe are final; those touching a
   stripe's edge are merged with their continuation in the next stripe, so no
   polygon is cut at a stripe line: shared unit edges cancel and the rest is chained
   into rings (:func:`acseg_core.gis.rings.merged`, linear in the vertices — GEOS's
   overlay and coverage unions were the slowest step).
3. **Write** in batches with pyogrio (vectorised WKB arrays; the GeoPandas I/O engine,
   GDAL inside its wheel): geometries are mapped to the CRS by the raster's affine
   transform on the way out. The file is written under a temp name and renamed.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from acseg_core.errors import CancelledError, InputError
from acseg_core.gis.legend import Legend
from acseg_core.gis.rings import Rings, densified, merged, signed_area
from acseg_core.io.writers import bound_gdal_cache
from acseg_core.jobs import CancelToken

LAYER = "polygons"
# Regions under 64 px (8×8) are merged into their largest neighbour: at the 5-30 cm of
# aerial tiles that is 0.2-6 m², below any object worth a polygon; a 10000² map then
# has at most 1.6 M regions in theory and ~2 × 10⁵ in practice (docs/outputs.md).
DEFAULT_MIN_AREA = 64
MAX_SIEVE_OVERLAP = 512  # rows
# One GDAL sieve pass merges each small region into its largest neighbour as they were
# before the pass, so specks whose neighbours are all specks survive it (most of them,
# in noisy areas): the pass repeats until nothing changes — 2 passes on a filtered
# model output, ~5 on a noisy map, 12 on pure noise; at most this many.
SIEVE_PASSES = 32
_STRIPE_PIXELS = 1 << 23  # pixels per stripe (≈ 700 rows of a 12000-wide map)
_BATCH = 20000  # features per write, at most
_BATCH_VERTICES = 1 << 20  # ... and vertices (big polygons: memory, not count, decides)
MARKER = {"Software": "acseg"}  # dataset metadata: tells acseg's files from a user's
FIELDS = ("class_id", "class_name", "area", "image")


def write_polygons(
    raster: Path,
    out: Path,
    legend: Legend,
    image: str,
    *,
    min_area: int = DEFAULT_MIN_AREA,
    cancel: CancelToken | None = None,
) -> int:
    """Polygons of the single-band uint8 class raster ``raster`` into the GeoPackage
    ``out`` (the caller makes it atomic); returns the number of polygons.

    ``legend.nodata`` pixels are no polygon; ``min_area`` ≤ 1 turns the sieve off.
    """
    import rasterio
    from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(raster) as ds:
            bound_gdal_cache(2 * (stripe_rows(ds.width) + 2 * MAX_SIEVE_OVERLAP) * ds.width)
            sink = _Sink(out, _crs_text(ds.crs), legend, image)
            _regions(ds, legend.nodata, min_area, sink, cancel)
            return sink.close()
    except RasterioError as exc:
        raise InputError(raster, f"cannot read the class map ({exc})") from exc
    except (DataSourceError, DataLayerError, FieldError, GeometryError) as exc:
        raise InputError(out, f"cannot write the GeoPackage ({exc})") from exc


def is_acseg_gpkg(path: Path) -> bool:
    """Whether a GeoPackage was written here (it carries :data:`MARKER`)."""
    try:
        import pyogrio

        info = pyogrio.read_info(path, layer=LAYER)
    except Exception:
        return False
    return (info.get("dataset_metadata") or {}).get("Software") == MARKER["Software"]


def stripe_rows(width: int) -> int:
    """Rows per stripe: about :data:`_STRIPE_PIXELS` pixels, at least 256 rows."""
    return max(256, _STRIPE_PIXELS // max(1, width))


# -- raster → polygons ------------------------------------------------------------------


class _Stripe:
    """The polygons of one stripe: flat pixel coordinates with ring/polygon offsets (no
    Python object per vertex), their values, and which touch the stripe's top/bottom."""

    def __init__(self, values: np.ndarray, top: int, nodata: int) -> None:
        from itertools import chain

        from affine import Affine
        from rasterio.features import shapes

        self.top, self.bottom = top, top + values.shape[0]
        ids: list[int] = []
        rings_per: list[int] = []
        parts: list[np.ndarray] = []
        valid = values != nodata
        if valid.any():
            for geometry, value in shapes(
                values, mask=valid, connectivity=4, transform=Affine(1, 0, 0, 0, 1, top)
            ):
                rings = geometry["coordinates"]
                ids.append(int(value))
                rings_per.append(len(rings))
                for ring in rings:
                    parts.append(np.fromiter(chain.from_iterable(ring), np.float64, 2 * len(ring)))
        self.values = np.asarray(ids, dtype=np.int64)
        lengths = np.fromiter((len(p) // 2 for p in parts), np.int64, len(parts))
        self.coords = np.concatenate(parts).reshape(-1, 2) if parts else np.zeros((0, 2))
        self.ring_offsets = np.concatenate([[0], np.cumsum(lengths)])
        self.geom_offsets = np.concatenate([[0], np.cumsum(rings_per, dtype=np.int64)])
        starts = self.ring_offsets[self.geom_offsets[:-1]]  # each polygon's first vertex
        y = self.coords[:, 1]
        self.min_y = np.minimum.reduceat(y, starts) if len(starts) else np.zeros(0)
        self.max_y = np.maximum.reduceat(y, starts) if len(starts) else np.zeros(0)

    def __len__(self) -> int:
        return len(self.values)

    def polygons(self, transform: Any) -> np.ndarray:
        """Every polygon mapped by ``transform`` (vectorised)."""
        import shapely

        if not len(self):
            return np.zeros(0, dtype=object)
        a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
        x, y = self.coords[:, 0], self.coords[:, 1]
        mapped = np.column_stack([a * x + b * y + c, d * x + e * y + f])
        return shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, mapped, (self.ring_offsets, self.geom_offsets)
        )

    def pixel_rings(self, index: int, lines: tuple[float, ...]) -> Rings:
        """One polygon in exact pixel coordinates: its exterior counter-clockwise (in
        pixel axes) with a vertex at every pixel corner of its edges on the stripe
        ``lines`` — pieces then meet vertex to vertex there — and its holes (which
        never touch a stripe line)."""
        first, last = self.geom_offsets[index], self.geom_offsets[index + 1]
        rings = [
            self.coords[self.ring_offsets[r] : self.ring_offsets[r + 1]] for r in range(first, last)
        ]
        exterior = rings[0] if signed_area(rings[0]) > 0 else rings[0][::-1]
        # copies: a view would keep the whole stripe's coordinates alive with the piece
        return densified(exterior, lines).copy(), [hole.copy() for hole in rings[1:]]

    def intervals(self, indices: np.ndarray, line: float) -> list[tuple[float, float, int]]:
        """(x0, x1, polygon index) of each boundary segment of those polygons on ``line``."""
        if not len(indices):
            return []
        x, y = self.coords[:, 0], self.coords[:, 1]
        on = (y[:-1] == line) & (y[1:] == line)
        on[self.ring_offsets[1:-1] - 1] = False  # pairs that would join two rings
        owner = np.repeat(np.arange(len(self)), np.diff(self.ring_offsets[self.geom_offsets]))
        wanted = np.zeros(len(self), dtype=bool)
        wanted[indices] = True
        k = np.flatnonzero(on & wanted[owner[:-1]])
        lo, hi = np.minimum(x[k], x[k + 1]), np.maximum(x[k], x[k + 1])
        return list(zip(lo.tolist(), hi.tolist(), owner[k].tolist(), strict=True))


class _Components:
    """Pieces of polygons cut by stripe lines, joined (union-find) where they share a
    segment of the line; a component is emitted, as one union, once no piece of it
    touches the current stripe's bottom."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}
        self.pieces: dict[int, list[Rings]] = {}  # root → its pieces, pixel coordinates
        self.value: dict[int, int] = {}
        self.next_key = 0
        self.line: list[tuple[float, float, int, int]] = []  # (x0, x1, key, value) at bottom

    def add(self, value: int, rings: Rings) -> int:
        key = self.next_key
        self.next_key += 1
        self.parent[key], self.pieces[key], self.value[key] = key, [rings], value
        return key

    def root(self, key: int) -> int:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def join(self, a: int, b: int) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return
        if len(self.pieces[ra]) < len(self.pieces[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.pieces[ra].extend(self.pieces.pop(rb))

    def link(self, top_line: list[tuple[float, float, int, int]]) -> None:
        """Join pieces at the top of this stripe to the open pieces above them."""
        above: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
        for x0, x1, key, value in self.line:
            above[value].append((x0, x1, key))
        for spans in above.values():
            spans.sort()
        starts = {v: [s[0] for s in spans] for v, spans in above.items()}
        for x0, x1, key, value in top_line:
            spans = above.get(value)
            if not spans:
                continue
            i = max(0, bisect.bisect_right(starts[value], x0) - 1)
            while i < len(spans) and spans[i][0] < x1:
                if spans[i][1] > x0:  # a shared segment of positive length
                    self.join(spans[i][2], key)
                i += 1

    def close(self, still_open: set[int]) -> Iterator[tuple[int, Any]]:
        """(value, pixel polygon) of every component with no key in ``still_open``."""
        open_roots = {self.root(k) for k in still_open}
        for root in [r for r in list(self.pieces) if r not in open_roots]:
            for polygon in merged(self.pieces.pop(root)):
                if not polygon.is_empty:
                    yield self.value[root], polygon
        alive = {k for k in self.parent if self.root(k) in self.pieces}
        self.parent = {k: self.parent[k] for k in alive}
        self.value = {k: self.value[k] for k in alive}



def _regions(ds: Any, nodata: int, min_area: int, sink: _Sink, cancel: CancelToken | None) -> None:
    """Every region of ``ds`` (sieved), each exactly once, into ``sink``."""
    import shapely

    height = ds.height
    rows = stripe_rows(ds.width)
    overlap = min(min_area, MAX_SIEVE_OVERLAP) if min_area > 1 else 0
    components = _Components()
    to_crs = _affine_function(ds.transform)
    for top in range(0, height, rows):
        if cancel:
            raise CancelledError("polygon export cancelled")
        stripe = _Stripe(_sieved(ds, top, min(top + rows, height), overlap, min_area, nodata),
                         top, nodata)  # fmt: skip
        at_top = (stripe.min_y == top) & (top > 0)
        at_bottom = (stripe.max_y == stripe.bottom) & (stripe.bottom < height)
        inside = ~(at_top | at_bottom)
        if inside.any():
            sink.add(stripe.values[inside], stripe.polygons(ds.transform)[inside])
        lines = (float(top), float(stripe.bottom))
        keys = {int(i): components.add(int(stripe.values[i]), stripe.pixel_rings(int(i), lines))
                for i in np.flatnonzero(~inside)}  # fmt: skip
        top_line = [(x0, x1, keys[i], int(stripe.values[i]))
                    for x0, x1, i in stripe.intervals(np.flatnonzero(at_top), top)]  # fmt: skip
        components.link(top_line)
        bottoms = np.flatnonzero(at_bottom)
        components.line = [(x0, x1, keys[i], int(stripe.values[i]))
                           for x0, x1, i in stripe.intervals(bottoms, stripe.bottom)]  # fmt: skip
        closed = list(components.close({keys[int(i)] for i in bottoms}))
        if closed:
            values = np.array([v for v, _ in closed], dtype=np.int64)
            polygons = np.array([p for _, p in closed], dtype=object)
            sink.add(values, shapely.transform(polygons, to_crs))


def _affine_function(transform: Any) -> Any:
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([a * x + b * y + c, d * x + e * y + f])

    return apply


def _sieved(ds: Any, top: int, bottom: int, overlap: int, min_area: int, nodata: int) -> np.ndarray:
    """Rows ``top:bottom`` after the sieve, judged on ``overlap`` extra rows each side."""
    from rasterio.features import sieve
    from rasterio.windows import Window

    start, stop = max(0, top - overlap), min(ds.height, bottom + overlap)
    values = ds.read(1, window=Window(0, start, ds.width, stop - start))
    if min_area > 1:
        valid = values != nodata
        for _ in range(SIEVE_PASSES if valid.any() else 0):
            sieved = sieve(values, min_area, mask=valid, connectivity=4)
            if np.array_equal(sieved, values):
                break
            values = sieved
    return values[top - start : bottom - start]


# -- polygons → GeoPackage -----------------------------------------------------------------


class _Sink:
    """Buffers polygons (already in the CRS) and appends them to the layer in batches."""

    def __init__(self, out: Path, crs: str | None, legend: Legend, image: str) -> None:
        self.out, self.crs, self.image = Path(out), crs, image
        self.names = {entry.value: entry.name for entry in legend.entries}
        self.values: list[np.ndarray] = []
        self.polygons: list[np.ndarray] = []
        self.pending = self.vertices = 0
        self.count = 0
        self.started = False

    def add(self, values: np.ndarray, polygons: np.ndarray) -> None:
        import shapely

        self.values.append(values)
        self.polygons.append(polygons)
        self.pending += len(values)
        self.vertices += int(shapely.get_num_coordinates(polygons).sum())
        if self.pending >= _BATCH or self.vertices >= _BATCH_VERTICES:
            self.flush()

    def flush(self) -> None:
        import shapely
        from pyogrio.raw import write

        if self.started and not self.pending:
            return
        values = np.concatenate(self.values) if self.values else np.zeros(0, np.int64)
        polygons = np.concatenate(self.polygons) if self.polygons else np.zeros(0, object)
        names = np.array([self.names.get(int(v), f"value {v}") for v in values], dtype=object)
        fields = [
            values.astype(np.int32),
            names,
            shapely.area(polygons).astype(np.float64),
            np.full(len(values), self.image, dtype=object),
        ]
        extra: dict[str, Any] = {} if self.started else {"dataset_metadata": MARKER}
        write(str(self.out), shapely.to_wkb(polygons), fields, list(FIELDS), layer=LAYER,
              driver="GPKG", geometry_type="Polygon", crs=self.crs, append=self.started,
              **extra)  # fmt: skip
        self.count += len(values)
        self.started = True
        self.values, self.polygons, self.pending, self.vertices = [], [], 0, 0

    def close(self) -> int:
        self.flush()
        return self.count


def _crs_text(crs: Any) -> str | None:
    """``EPSG:n`` where the CRS is exactly one (GeoPackage then records the code), else WKT."""
    if crs is None:
        return None
    code = crs.to_epsg()
    return f"EPSG:{code}" if code is not None else crs.to_wkt()


def polygon_count_bound(pixels: int, min_area: int) -> int:
    """At most this many polygons survive a sieve of ``min_area`` on ``pixels`` pixels."""
    return math.ceil(pixels / max(1, min_area))


__all__ = [
    "DEFAULT_MIN_AREA",
    "FIELDS",
    "LAYER",
    "is_acseg_gpkg",
    "polygon_count_bound",
    "stripe_rows",
    "write_polygons",
]
