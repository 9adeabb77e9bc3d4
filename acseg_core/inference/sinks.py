"""Where predicted tiles go: stitched into full-width bands of rows, then to memory or
to files written by windows (atomically: nothing appears under the final name until
the whole image is done).

* ``.tif``/``.tiff``: single-band uint8 GeoTIFF with the source's CRS, transform and
  size; ids ``0..254``, :data:`~acseg_core.io.raster.NODATA` (255) where the source has
  no data, set as the file's nodata value.
* ``.png``: 8-bit greyscale PNG with the same values, streamed row by row.
* with confidence: the probability of the chosen id as a float32 TIFF beside it,
  ``<out stem>_confidence.tif`` (NaN = nodata). A separate file, because ids and
  probabilities need different pixel types and the map stays a plain label raster.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acseg_core.io.atomic import atomic_path
from acseg_core.io.raster import NODATA, RasterInfo
from acseg_core.io.tiling import Tile, TileGrid
from acseg_core.io.writers import PngStream, RowWriter, geotiff_writer

GEOTIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png",)
OUTPUT_SUFFIXES = GEOTIFF_SUFFIXES + PNG_SUFFIXES


@dataclass
class Prediction:
    """Result of ``predict``: arrays when no ``out`` was given, else the paths."""

    clusters: np.ndarray | None  # uint8 H×W ids, NODATA where the source has no data
    confidence: np.ndarray | None  # float32 H×W, probability (or vote share) of the id
    out_path: Path | None
    confidence_path: Path | None = None


def confidence_path_for(out: str | Path) -> Path:
    """Where the confidence raster goes beside a map."""
    out = Path(out)
    return out.with_name(f"{out.stem}_confidence.tif")


class BandAssembler:
    """Collects tile centres into full-width bands of rows; emits each band once complete.

    Bands are emitted top to bottom, so writers see rows in order (the PNG stream
    needs that) and only the bands of tiles in flight are held at once.
    """

    def __init__(
        self,
        grid: TileGrid,
        with_confidence: bool,
        emit: Callable[[int, np.ndarray, np.ndarray | None], None],
    ) -> None:
        self.grid = grid
        self.with_confidence = with_confidence
        self.emit = emit
        self.pending: dict[int, tuple[np.ndarray, np.ndarray | None, list[int]]] = {}
        self.next_row = 0

    def add(
        self,
        tile: Tile,
        ids: np.ndarray,
        confidence: np.ndarray | None,
        valid: np.ndarray | None = None,
    ) -> None:
        """One tile's kept centre; ``valid`` (the tile's whole read) marks nodata."""
        if valid is not None:
            invalid = ~valid[tile.crop]
            ids[invalid] = NODATA
            if confidence is not None:
                confidence[invalid] = np.nan
        if tile.grid_row not in self.pending:
            _, height = self.grid.band(tile.grid_row)
            shape = (height, self.grid.width)
            conf = np.empty(shape, np.float32) if self.with_confidence else None
            self.pending[tile.grid_row] = (np.empty(shape, np.uint8), conf, [0])
        band, conf_band, filled = self.pending[tile.grid_row]
        x0, _, w, _ = tile.keep
        band[:, x0 : x0 + w] = ids
        if conf_band is not None and confidence is not None:
            conf_band[:, x0 : x0 + w] = confidence
        filled[0] += 1
        while self.next_row in self.pending and self.pending[self.next_row][2][0] == self.grid.cols:
            band, conf_band, _ = self.pending.pop(self.next_row)
            self.emit(self.grid.band(self.next_row)[0], band, conf_band)
            self.next_row += 1

    def check_complete(self) -> None:
        if self.next_row != self.grid.rows:  # a bug, not a user error
            raise RuntimeError(f"stitching incomplete: {self.next_row}/{self.grid.rows} bands")


class MemorySink:
    """Keeps the finished bands in arrays (the app, evaluation)."""

    def __init__(self, info: RasterInfo, with_confidence: bool) -> None:
        shape = (info.height, info.width)
        self.clusters = np.empty(shape, np.uint8)
        self.confidence = np.empty(shape, np.float32) if with_confidence else None

    def write(self, row: int, ids: np.ndarray, confidence: np.ndarray | None) -> None:
        self.clusters[row : row + ids.shape[0]] = ids
        if self.confidence is not None and confidence is not None:
            self.confidence[row : row + confidence.shape[0]] = confidence

    def result(self) -> Prediction:
        return Prediction(clusters=self.clusters, confidence=self.confidence, out_path=None)


class FileSink:
    """Writes bands straight to open files (a GeoTIFF or PNG stream + confidence TIFF)."""

    def __init__(self, out: Path, ids: RowWriter, confidence: RowWriter | None) -> None:
        self.out, self.write_ids, self.write_confidence = out, ids, confidence

    def write(self, row: int, ids: np.ndarray, confidence: np.ndarray | None) -> None:
        self.write_ids(row, ids)
        if self.write_confidence is not None and confidence is not None:
            self.write_confidence(row, confidence)

    def result(self) -> Prediction:
        confidence = confidence_path_for(self.out) if self.write_confidence else None
        return Prediction(None, None, self.out, confidence)


@contextlib.contextmanager
def open_sink(
    out: Path | None, info: RasterInfo, with_confidence: bool
) -> Iterator[MemorySink | FileSink]:
    """A sink for one image: memory when ``out`` is None, else atomic files."""
    if out is None:
        yield MemorySink(info, with_confidence)
        return
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out))
        if out.suffix.lower() in GEOTIFF_SUFFIXES:
            write_ids = stack.enter_context(geotiff_writer(tmp, info, "uint8", NODATA))
        else:
            fh = stack.enter_context(open(tmp, "wb"))
            write_ids = stack.enter_context(PngStream(fh, info.width, info.height))
        write_confidence = None
        if with_confidence:
            ctmp = stack.enter_context(atomic_path(confidence_path_for(out)))
            write_confidence = stack.enter_context(
                geotiff_writer(ctmp, info, "float32", float("nan"))
            )
        yield FileSink(out, write_ids, write_confidence)


__all__ = [
    "GEOTIFF_SUFFIXES",
    "OUTPUT_SUFFIXES",
    "PNG_SUFFIXES",
    "BandAssembler",
    "FileSink",
    "MemorySink",
    "Prediction",
    "confidence_path_for",
    "open_sink",
]
