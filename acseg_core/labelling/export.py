"""Export label masks: indexed PNG + CVAT ``labelmap.txt``, GeoTIFF, polygons, areas,
colour preview.

Per image (``<name>`` is the image's stem, made unique within one export):

* ``<name>.png`` — 8-bit indexed PNG whose embedded palette holds the class colours;
  pixel value 0 = background (unassigned or nodata), class at position i = i + 1.
* ``labelmap.txt`` (once per folder) — CVAT "Segmentation mask 1.1" layout: a header
  ``# label:color_rgb:parts:actions`` then ``background:0,0,0::`` and one line per
  class in value order, so line n (after the header) is palette index n.
* ``<name>.tif`` — only for georeferenced images: single-band uint8 Cloud-Optimised
  GeoTIFF with the source CRS and transform, the same values, a colour table,
  nodata = 0, the class names in ``<name>.tif.aux.xml`` and ``<name>.qml``
  (:mod:`acseg_core.gis.cog`).
* ``<name>.gpkg`` — only for georeferenced images: the classes as polygons
  (:mod:`acseg_core.gis.polygons`).
* ``areas.csv`` (once per folder) — pixels, m², ha and share of each class per image
  (:mod:`acseg_core.gis.areas`), counted while the masks are written.
* ``<name>_color.png`` — RGB preview in the class colours.

Pixels are processed by windows (cluster map window → class map → hand edits →
export values), so memory does not grow with the image: the PNGs are streamed from a
temporary tiled GeoTIFF beside the output by GDAL. Every output is written to a temp
file, checked (GDAL only logs some write errors) and renamed (never a half-written
file). This module writes one image
(:func:`plan_item`, :func:`write_item`); :mod:`acseg_core.labelling.export_job` runs
a whole export (predicting what is not cached, skipping what cannot be done).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acseg_core.errors import AcsegError, CancelledError, InputError
from acseg_core.gis.areas import value_counts
from acseg_core.gis.legend import Legend
from acseg_core.gis.options import parse_format_list
from acseg_core.gis.polygons import DEFAULT_MIN_AREA
from acseg_core.io.atomic import atomic_path, scratch_path
from acseg_core.io.files import check_written, write_failure
from acseg_core.io.raster import NODATA, Raster, RasterInfo
from acseg_core.io.writers import quiet_gdal
from acseg_core.jobs import CancelToken
from acseg_core.labelling.classes import ClassMap, composite
from acseg_core.labelling.edits import EditLayer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.shutil import copy as gdal_copy
    from rasterio.windows import Window
from acseg_core.gis.cog import cog_output, write_cog
from acseg_core.gis.polygons import write_polygons

FORMATS = ("png", "tif", "gpkg", "csv", "color")
GEOREFERENCED = ("tif", "gpkg")  # formats only georeferenced images get
LABELMAP_NAME = "labelmap.txt"
LABELMAP_HEADER = "# label:color_rgb:parts:actions"
BLOCK = 1024  # pixels per side of a processing window
_TILE = 256  # GeoTIFF block size


@dataclass(frozen=True)
class ExportItem:
    """One image to export.

    ``clusters``: the uint8 cluster map (255 = nodata), as an array or as a file
    written by prediction (read by windows); None = predict it during the export.
    ``source``: the image itself (its georeference feeds the GeoTIFF; it is never
    written over). ``edits``: hand edits.
    """

    name: str
    clusters: Path | np.ndarray | None
    source: Path | None = None
    edits: EditLayer | None = None


@dataclass
class ExportResult:
    """What an export did: ``written[name][format] = path``; ``done`` = images already
    exported by an earlier run (left as they are); ``skipped`` = (image name, reason);
    ``notes`` (no GeoTIFF for an image without georeference...)."""

    written: dict[str, dict[str, Path]] = field(default_factory=dict)
    labelmap: Path | None = None
    areas: Path | None = None
    notes: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def output_paths(out_dir: str | Path, name: str, formats: Iterable[str]) -> dict[str, Path]:
    """Where each per-image format of one image goes (``csv`` is one file per folder)."""
    out = Path(out_dir)
    names = {"png": f"{name}.png", "tif": f"{name}.tif", "gpkg": f"{name}.gpkg",
             "color": f"{name}_color.png"}  # fmt: skip
    return {fmt: out / names[fmt] for fmt in formats if fmt in names}


def labelmap_text(class_map: ClassMap) -> str:
    """CVAT "Segmentation mask 1.1" labelmap: background first, then classes in value order."""
    lines = [LABELMAP_HEADER]
    for name, colour in zip(class_map.export_names(), class_map.export_palette(), strict=True):
        lines.append(f"{name}:{','.join(str(v) for v in colour)}::")
    return "\n".join(lines) + "\n"


def labelmap_differs(out_dir: str | Path, class_map: ClassMap) -> bool:
    """``out_dir`` already holds a labelmap of other classes (another project's labels),
    which an export there would have to replace."""
    path = Path(out_dir) / LABELMAP_NAME
    try:
        return path.read_text(encoding="utf-8") != labelmap_text(class_map)
    except (OSError, UnicodeDecodeError):
        return path.exists()


def default_export_dir(
    project: Path | None, images: Sequence[Path], home: Path | None = None
) -> Path:
    """Where a project's labels go unless the user chose: ``<name>_labels`` beside a saved
    project; for an untitled one ``~/acseg-labels/<parent>-<images folder>``, named after
    its images, never one shared folder for every project (see :func:`fresh_folder`)."""
    if project is not None:
        return project.with_name(project.stem + "_labels")
    base = (home or Path.home()) / "acseg-labels"
    if not images:
        return base / "untitled"
    folder = Path(images[0]).parent
    name = "-".join(p for p in (folder.parent.name, folder.name) if p) or "images"
    return base / name


def fresh_folder(path: Path) -> Path:
    """``path`` when it is missing or empty, else ``path-2``, ``path-3``…: a folder that
    holds nobody's files yet."""
    candidate, n = path, 2
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        candidate, n = path.with_name(f"{path.name}-{n}"), n + 1
    return candidate


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"png,tif"`` or ``["png", "tif"]`` → validated tuple (order kept, no repeats)."""
    return parse_format_list(text, FORMATS, "export")


def export_values(
    clusters: np.ndarray, class_map: ClassMap, edits: np.ndarray | None = None
) -> np.ndarray:
    """Export values (0 background, class position + 1) of a cluster window and its edits."""
    labels = composite(class_map.labels_from_clusters(clusters), edits)
    return class_map.export_lut()[labels]


# -- planning ------------------------------------------------------------------------


@dataclass
class _Plan:
    name: str
    clusters: Path | np.ndarray
    edits: EditLayer | None
    width: int
    height: int
    crs: Any = None
    transform: Any = None
    targets: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    protected: list[Path] = field(default_factory=list)
    min_area: int = DEFAULT_MIN_AREA  # gpkg: the sieve
    counts: np.ndarray | None = None  # csv: valid pixels by export value, filled by write_item


def plan_item(
    item: ExportItem,
    clusters: Path | np.ndarray,
    out_dir: Path,
    formats: Sequence[str],
    name: str,
    min_area: int = DEFAULT_MIN_AREA,
) -> _Plan:
    """Check one image's inputs (sizes, georeference, edits) and name its outputs
    ``name.*``; raises AcsegError/InputError naming the problem."""
    if isinstance(clusters, np.ndarray):
        if clusters.ndim != 2 or clusters.dtype != np.uint8:
            raise AcsegError(f"{item.name}: cluster map must be a 2-D uint8 array")
        height, width = clusters.shape
        cluster_info = None
    else:
        cluster_info = _info(clusters)
        width, height = cluster_info.width, cluster_info.height
    plan = _Plan(name, clusters, item.edits, width, height, min_area=min_area)
    if "csv" in formats:
        plan.counts = np.zeros(256, np.int64)
    source_info = None
    if item.source is not None:
        plan.protected.append(item.source)
        if Path(item.source).exists():
            source_info = _info(item.source)
            if (source_info.width, source_info.height) != (width, height):
                raise InputError(
                    item.source,
                    f"cluster map is {width}×{height} but the image is "
                    f"{source_info.width}×{source_info.height}",
                )
    if cluster_info is not None:
        plan.protected.append(Path(clusters))  # type: ignore[arg-type]
    if item.edits is not None and item.edits.shape != (height, width):
        raise AcsegError(
            f"{item.name}: hand edits are {item.edits.width}×{item.edits.height} "
            f"but the image is {width}×{height}"
        )
    geo = next((i for i in (source_info, cluster_info) if i is not None and i.georeferenced), None)
    for fmt, path in output_paths(out_dir, name, formats).items():
        if fmt in GEOREFERENCED and geo is None:
            what = "GeoTIFF" if fmt == "tif" else "GeoPackage"
            plan.notes.append(f"{name}: not georeferenced, no {what} written")
            continue
        plan.targets[fmt] = path
    protected = {_resolved(p) for p in plan.protected}
    for target in plan.targets.values():
        if _resolved(target) in protected:
            raise InputError(target, "refusing to write over a source image or cluster map")
    if geo is not None:
        plan.crs, plan.transform = _georef(geo.path)
    return plan


def unique_name(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate.lower() in used:
        candidate, n = f"{name}-{n}", n + 1
    used.add(candidate.lower())
    return candidate


def _resolved(path: Path) -> Path:
    return Path(path).expanduser().resolve()


def _info(path: Path) -> RasterInfo:
    with Raster(path) as raster:
        return raster.info


def _georef(path: Path) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.crs, ds.transform


# -- writing -------------------------------------------------------------------------


def write_item(
    plan: _Plan, class_map: ClassMap, block: int = BLOCK, cancel: CancelToken | None = None
) -> Generator[tuple[int, int], None, None]:
    """Write one image's outputs window by window; yields (window, windows). Cancel
    raises CancelledError between windows and leaves no partial file."""
    width, height = plan.width, plan.height
    windows = [
        (col, row, min(block, width - col), min(block, height - row))
        for row in range(0, height, block)
        for col in range(0, width, block)
    ]
    legend = Legend.from_class_map(class_map)
    palette = class_map.export_palette()
    colour_lut = np.zeros((256, 3), dtype=np.uint8)
    colour_lut[: len(palette)] = palette
    cluster_lut = class_map.cluster_lut()
    export_lut = class_map.export_lut()
    colormap = {i: (*c, 255) for i, c in enumerate(palette)}

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet_gdal())  # write errors: checked and said in one line
        # Final paths are renamed into place only when the whole image succeeded.
        finals = {
            fmt: stack.enter_context(cog_output(p, legend) if fmt == "tif" else atomic_path(p))
            for fmt, p in plan.targets.items()
        }
        scratch = {
            fmt: stack.enter_context(
                scratch_path(
                    plan.targets[fmt].parent, f".{plan.targets[fmt].name}.", ".scratch.tif"
                )
            )
            for fmt in ("png", "color")
            if fmt in finals
        }
        stage = None  # the values as a tiled GeoTIFF: the COG's and the polygons' source
        if {"tif", "gpkg"} & set(finals):
            target = plan.targets["tif" if "tif" in finals else "gpkg"]
            stage = stack.enter_context(
                scratch_path(target.parent, f".{target.name}.", ".scratch.tif")
            )
        sinks: dict[str, Any] = {}
        base = dict(driver="GTiff", width=width, height=height, dtype="uint8", tiled=True)
        base.update(blockxsize=_TILE, blockysize=_TILE)  # scratch files: fast, uncompressed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            if stage is not None:
                sinks["tif"] = stack.enter_context(
                    rasterio.open(
                        stage,
                        "w",
                        count=1,
                        nodata=0,
                        crs=plan.crs,
                        transform=plan.transform,
                        **base,
                    )
                )
            if "png" in scratch:
                sinks["png"] = stack.enter_context(
                    rasterio.open(scratch["png"], "w", count=1, **base)
                )
            if "color" in scratch:
                sinks["color"] = stack.enter_context(
                    rasterio.open(scratch["color"], "w", count=3, photometric="RGB", **base)
                )
        for fmt in ("tif", "png"):
            if fmt in sinks:
                sinks[fmt].write_colormap(1, colormap)
        if "tif" in sinks:
            sinks["tif"].update_tags(
                1, **{f"CLASS_{i}": n for i, n in enumerate(class_map.export_names())}
            )

        source = stack.enter_context(_ClusterSource(plan.clusters))
        for step, (col, row, w, h) in enumerate(windows, start=1):
            if cancel:
                raise CancelledError(f"export cancelled while writing {plan.name}")
            clusters = source.read((col, row, w, h))
            edits = plan.edits.read((col, row, w, h)) if plan.edits else None
            labels = composite(cluster_lut[clusters], edits)
            values = export_lut[labels]
            if plan.counts is not None:
                plan.counts += value_counts(values, labels != NODATA)
            win = Window(col, row, w, h)
            for fmt in ("tif", "png"):
                if fmt in sinks:
                    _gdal_write(sinks[fmt].write, sinks[fmt].name, values, 1, window=win)
            if "color" in sinks:
                colours = np.moveaxis(colour_lut[values], -1, 0)
                _gdal_write(sinks["color"].write, sinks["color"].name, colours, window=win)
            yield step, len(windows)

        for sink in sinks.values():
            _gdal_write(sink.close, sink.name)
            check_written(sink.name)  # GDAL only logs errors of its final flush
        if "gpkg" in finals:
            write_polygons(stage, finals["gpkg"], legend, plan.name, min_area=plan.min_area,
                           cancel=cancel)  # fmt: skip
        for fmt, tmp in scratch.items():
            _to_png(tmp, finals[fmt])
            check_written(finals[fmt])
        if "tif" in finals:
            write_cog(stage, finals["tif"], legend)
            check_written(finals["tif"])


def count_item(
    item: ExportItem, class_map: ClassMap, block: int = BLOCK
) -> tuple[np.ndarray, Any, Any]:
    """(valid-pixel counts by export value, CRS, transform) of an item's map and edits,
    read by windows: the areas of an image an earlier run exported."""
    if item.clusters is None:
        raise AcsegError(f"{item.name}: no cluster map")
    plan = plan_item(item, item.clusters, Path("."), (), item.name)
    cluster_lut, export_lut = class_map.cluster_lut(), class_map.export_lut()
    counts = np.zeros(256, np.int64)
    with _ClusterSource(plan.clusters) as source:
        for row in range(0, plan.height, block):
            for col in range(0, plan.width, block):
                window = (col, row, min(block, plan.width - col), min(block, plan.height - row))
                edits = plan.edits.read(window) if plan.edits else None
                labels = composite(cluster_lut[source.read(window)], edits)
                counts += value_counts(export_lut[labels], labels != NODATA)
    return counts, plan.crs, plan.transform


def _gdal_write(call: Any, path: str, *args: Any, **kwargs: Any) -> None:
    """A GDAL write (or the close that flushes it); its error becomes the OS error the
    disk most likely gave (a full disk, a file-size limit), naming the file."""
    try:
        call(*args, **kwargs)
    except RasterioError as exc:
        raise write_failure(path) from exc


def _to_png(tif: Path, png: Path) -> None:
    """Stream a GeoTIFF into a PNG (GDAL CreateCopy: line by line, colour table kept)."""
    try:
        with warnings.catch_warnings(), quiet_gdal():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            gdal_copy(tif, png, driver="PNG", ZLEVEL=6)
    except (RasterioError, OSError) as exc:  # the scratch file was checked: a write error
        raise write_failure(png) from exc
    finally:
        for extra in (png.with_name(png.name + ".aux.xml"),):
            with contextlib.suppress(OSError):
                extra.unlink()


class _ClusterSource:
    """Windows of a cluster map held in memory or in a file."""

    def __init__(self, clusters: Path | np.ndarray) -> None:
        self._array = clusters if isinstance(clusters, np.ndarray) else None
        self._raster = None if self._array is not None else Raster(clusters)  # type: ignore[arg-type]

    def read(self, window: tuple[int, int, int, int]) -> np.ndarray:
        col, row, w, h = window
        if self._array is not None:
            return self._array[row : row + h, col : col + w]
        assert self._raster is not None
        data = self._raster.read(window, bands=[1])[0]
        if data.dtype != np.uint8:
            raise InputError(self._raster.path, f"cluster map must be uint8, not {data.dtype}")
        return data

    def __enter__(self) -> _ClusterSource:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._raster is not None:
            self._raster.close()


__all__ = [
    "FORMATS",
    "LABELMAP_HEADER",
    "LABELMAP_NAME",
    "ExportItem",
    "ExportResult",
    "count_item",
    "default_export_dir",
    "export_values",
    "fresh_folder",
    "labelmap_differs",
    "labelmap_text",
    "output_paths",
    "parse_formats",
    "plan_item",
    "unique_name",
    "write_item",
]
