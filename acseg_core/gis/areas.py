"""Class areas: pixel counts per class of each image, in m² and ha where the CRS allows,
as a CSV per run and as the rows of the app's Statistics panel.

* **Counting** is one ``bincount`` per window (:func:`value_counts`), so a map of any
  size is counted in flat memory (a map with hand edits: :mod:`acseg_core.labelling.tally`).
* **Units**: m² (and ha) when the image's CRS is projected (metres, or feet converted);
  pixels otherwise — geographic or no CRS — and the CSV then has no area columns.
  Areas are planar in the CRS: an equal-area or UTM CRS gives ground areas, Web
  Mercator overstates them away from the equator.
* **Shares** are of the image's *valid* pixels (nodata excluded), so per image the
  class areas sum to the image's valid area.
* **CSV** (:class:`AreasTable`): one row per image and class, then one row per class
  for the whole run (image ``(all images)``). Rows stream into a scratch file and
  the table is renamed into place at the end: a run that fails or is cancelled
  leaves no CSV.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from acseg_core.errors import InputError, os_reason
from acseg_core.gis.legend import Legend
from acseg_core.io.atomic import atomic_path, scratch_path
from acseg_core.io.raster import Raster

AREAS_NAME = "areas.csv"
TOTAL_IMAGE = "(all images)"
_CHUNK = 1 << 22  # pixels per bincount call: bounded int64 temporaries
HEADER_METRIC = ("image", "class_id", "class_name", "pixels", "area_m2", "area_ha", "share_pct")
HEADER_PIXELS = ("image", "class_id", "class_name", "pixels", "share_pct")


def value_counts(values: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Counts of each uint8 value (int64[256]) where ``valid``; chunked, so temporaries
    stay small whatever the window."""
    flat = np.ascontiguousarray(values).reshape(-1)
    mask = None if valid is None else np.ascontiguousarray(valid).reshape(-1)
    counts = np.zeros(256, np.int64)
    for start in range(0, flat.size, _CHUNK):
        part = flat[start : start + _CHUNK]
        if mask is not None:
            part = part[mask[start : start + _CHUNK]]
        counts += np.bincount(part, minlength=256)[:256]
    return counts


@dataclass(frozen=True)
class ImageAreas:
    """Valid-pixel counts of one image's class raster by value, and a pixel's area."""

    image: str
    counts: np.ndarray = field(compare=False)  # int64[256]; nodata not counted
    pixel_m2: float | None = None  # None: the CRS has no metric unit (or there is none)

    @property
    def valid(self) -> int:
        return int(self.counts.sum())


def count_raster(
    path: Path, image: str, legend: Legend, pixel_m2: float | None, block: int = 1024
) -> ImageAreas:
    """Count a class raster file by windows (``legend.nodata`` is not valid, unless
    it is a named value — an export's background — whose pixels cannot be told from
    nodata there and are counted)."""
    counts = np.zeros(256, np.int64)
    with Raster(path) as raster:
        for window in raster.windows(block):
            values = raster.read(window, bands=[1])[0]
            counts += value_counts(values)
    if legend.nodata not in {e.value for e in legend.entries}:
        counts[legend.nodata] = 0
    return ImageAreas(image, counts, pixel_m2)


@dataclass(frozen=True)
class AreaRow:
    """One line of the table: ``area_m2`` None where the image has no metric unit."""

    image: str
    class_id: int
    class_name: str
    pixels: int
    area_m2: float | None
    share_pct: float


def image_rows(areas: ImageAreas, legend: Legend) -> list[AreaRow]:
    """One row per legend entry (zeros included, so every image lists every class)."""
    valid = areas.valid
    return [
        AreaRow(
            areas.image,
            e.value,
            e.name,
            int(areas.counts[e.value]),
            None if areas.pixel_m2 is None else float(areas.counts[e.value]) * areas.pixel_m2,
            100.0 * float(areas.counts[e.value]) / valid if valid else 0.0,
        )
        for e in legend.entries
    ]


class Totals:
    """Running per-class totals over images (pixels, m² while every image has them)."""

    def __init__(self) -> None:
        self.pixels = np.zeros(256, np.int64)
        self.m2: np.ndarray | None = np.zeros(256, np.float64)
        self.images = 0
        self.metric_images = 0

    def add(self, areas: ImageAreas) -> None:
        self.pixels += areas.counts
        self.images += 1
        if areas.pixel_m2 is None:
            self.m2 = None
        else:
            self.metric_images += 1
            if self.m2 is not None:
                self.m2 += areas.counts * areas.pixel_m2

    def rows(self, legend: Legend, image: str = TOTAL_IMAGE) -> list[AreaRow]:
        valid = int(self.pixels.sum())
        return [
            AreaRow(
                image,
                e.value,
                e.name,
                int(self.pixels[e.value]),
                None if self.m2 is None or not self.images else float(self.m2[e.value]),
                100.0 * float(self.pixels[e.value]) / valid if valid else 0.0,
            )
            for e in legend.entries
        ]


def table_rows(images: Iterable[ImageAreas], legend: Legend) -> list[AreaRow]:
    """Rows of every image, then the totals (what the CSV holds; the app's table)."""
    totals = Totals()
    rows: list[AreaRow] = []
    for areas in images:
        rows.extend(image_rows(areas, legend))
        totals.add(areas)
    return rows + totals.rows(legend)


def format_row(row: AreaRow, metric: bool) -> list[str]:
    """CSV cells: m² with 2 decimals, ha with 6, share in percent with 4."""
    cells = [row.image, str(row.class_id), row.class_name, str(row.pixels)]
    if metric:
        if row.area_m2 is None:
            cells += ["", ""]
        else:
            cells += [f"{row.area_m2:.2f}", f"{row.area_m2 / 10000.0:.6f}"]
    return [*cells, f"{row.share_pct:.4f}"]


class AreasTable(contextlib.AbstractContextManager):
    """The run's CSV, streamed: ``add`` each image, ``finish`` writes it atomically.

    Rows go to a scratch file beside ``target`` as images finish (memory does not
    grow with the run); ``finish`` writes the header (area columns only if some image
    had a metric CRS), those rows and the totals, then renames. Leaving the ``with``
    block without ``finish`` (an error, a cancel) leaves no table.
    """

    def __init__(self, target: Path, legend: Legend) -> None:
        self.target, self.legend = Path(target), legend
        self.totals = Totals()
        self._stack = contextlib.ExitStack()
        try:
            self._scratch = self._stack.enter_context(
                scratch_path(self.target.parent, f".{self.target.name}.", ".rows.csv")
            )
            self._rows = self._stack.enter_context(self._scratch.open("w", newline=""))
        except OSError as exc:
            self._stack.close()
            raise InputError(self.target, f"cannot write ({os_reason(exc)})") from exc
        self._writer = csv.writer(self._rows)

    def add(self, areas: ImageAreas) -> None:
        for row in image_rows(areas, self.legend):
            self._writer.writerow(format_row(row, metric=True))
        self.totals.add(areas)

    def finish(self) -> Path:
        """Write the table under its name (atomically); InputError when it cannot."""
        metric = self.totals.metric_images > 0
        try:
            self._rows.close()
            with atomic_path(self.target) as tmp, tmp.open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(HEADER_METRIC if metric else HEADER_PIXELS)
                with self._scratch.open(newline="") as rows:
                    for cells in csv.reader(rows):
                        writer.writerow(cells if metric else [*cells[:4], cells[6]])
                for row in self.totals.rows(self.legend):
                    writer.writerow(format_row(row, metric))
        except OSError as exc:
            raise InputError(self.target, f"cannot write ({os_reason(exc)})") from exc
        finally:
            self._stack.close()
        return self.target

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def areas_csv_text(images: Sequence[ImageAreas], legend: Legend) -> str:
    """The CSV of a few images as text (tests, the app's copy button)."""
    metric = any(a.pixel_m2 is not None for a in images)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER_METRIC if metric else HEADER_PIXELS)
    for row in table_rows(images, legend):
        writer.writerow(format_row(row, metric))
    return buffer.getvalue()


def read_areas_csv(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a CSV written here, as dicts keyed by the header (tests, tools)."""
    with Path(path).open(newline="") as fh:
        yield from csv.DictReader(fh)


__all__ = [
    "AREAS_NAME",
    "TOTAL_IMAGE",
    "AreaRow",
    "AreasTable",
    "ImageAreas",
    "Totals",
    "areas_csv_text",
    "count_raster",
    "format_row",
    "image_rows",
    "read_areas_csv",
    "table_rows",
    "value_counts",
]
