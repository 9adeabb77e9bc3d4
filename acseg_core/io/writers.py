"""Writers that take an image a band of rows at a time, so memory stays flat.

:func:`geotiff_writer` is a tiled, deflate-compressed GeoTIFF lined up with a source
(CRS and transform carried over); :class:`PngStream` is an 8-bit greyscale PNG written
row by row with zlib (Pillow cannot write PNGs incrementally). Both go to the path they
are given: callers wrap them in :func:`acseg_core.io.atomic.atomic_path`. A GeoTIFF that
GDAL could not write whole (a full disk, a file-size limit: GDAL only logs errors of
its final flush) raises ``OSError`` with the reason when the writer closes.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import rasterio
import rasterio.env
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from acseg_core.io.files import check_written, write_failure
from acseg_core.io.raster import RasterInfo

RowWriter = Callable[[int, np.ndarray], None]  # write(first row, band of rows)

GDAL_CACHE_FLOOR = 64 * 2**20  # bytes; GDAL's default (5 % of RAM) would grow with the image
# Every map acseg writes carries this tag (TIFF tag / PNG text), so a later run can tell
# its own outputs from a user's image of the same name (acseg_core.inference.naming).
MARKER_KEY, MARKER_VALUE = "Software", "acseg"


def bound_gdal_cache(wanted_bytes: int) -> None:
    """Cap GDAL's block cache so reading and writing do not grow with the image.

    GDAL keeps every decoded or dirty block until its cache (5 % of RAM by default) is
    full; ``max(64 MB, wanted_bytes)`` is set instead (callers ask for what one band of
    their windows needs).
    """
    wanted = max(GDAL_CACHE_FLOOR, int(wanted_bytes))
    if rasterio.env.get_gdal_config("GDAL_CACHEMAX") != wanted:
        rasterio.env.set_gdal_config("GDAL_CACHEMAX", wanted)


@contextlib.contextmanager
def geotiff_writer(path: Path, info: RasterInfo, dtype: str, nodata: float) -> Iterator[RowWriter]:
    """A single-band tiled GeoTIFF lined up with ``info`` and marked as acseg's; yields
    ``write(row, band)``."""
    profile: dict[str, Any] = dict(
        driver="GTiff",
        width=info.width,
        height=info.height,
        count=1,
        dtype=dtype,
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        BIGTIFF="IF_SAFER",
    )
    if dtype == "float32":
        profile["predictor"] = 3
    if info.georeferenced:
        profile.update(crs=CRS.from_wkt(info.crs), transform=Affine(*info.transform))
    from rasterio.errors import RasterioError

    try:
        with quiet_gdal(), rasterio.open(path, "w", **profile) as dst:
            dst.update_tags(**{MARKER_KEY: MARKER_VALUE})

            def write(row: int, band: np.ndarray) -> None:
                dst.write(band, 1, window=Window(0, row, band.shape[1], band.shape[0]))

            yield write
    except RasterioError as exc:  # a failed write: say what the disk said, not GDAL
        raise write_failure(path) from exc
    # GDAL reports errors of its final flush to its log only: check the file itself
    check_written(path)


@contextlib.contextmanager
def quiet_gdal() -> Iterator[None]:
    """Around a GDAL write: its errors go to rasterio's log instead of straight to stderr
    (acseg checks the file and reports one line of its own), and libtiff's global error
    handler, which prints ``_tiffWriteProc: No space left on device.`` past GDAL, is
    silenced (once; GDAL reports those failures through its own handler too)."""
    import rasterio

    _silence_libtiff()
    with rasterio.Env():
        yield


_LIBTIFF_SILENCED: list[bool] = []


def _silence_libtiff() -> None:
    if _LIBTIFF_SILENCED:
        return
    _LIBTIFF_SILENCED.append(True)
    import ctypes
    import os

    try:  # the libtiff GDAL loaded (Linux: from the process's memory map)
        with open("/proc/self/maps", encoding="utf-8") as maps:
            libraries = {line.split()[-1] for line in maps if "libtiff" in line}
        for library in sorted(libraries):
            if os.path.basename(library).startswith("libtiff") and os.path.isfile(library):
                handle = ctypes.CDLL(library)
                handle.TIFFSetErrorHandler.restype = ctypes.c_void_p
                handle.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
                handle.TIFFSetErrorHandler(None)
    except (OSError, AttributeError, ValueError):
        pass  # another platform: the extra line stays, the outcome is the same


class PngStream(contextlib.AbstractContextManager):
    """8-bit greyscale PNG written row by row (zlib streaming), so memory stays flat;
    marked as acseg's (a ``tEXt`` chunk). Rows must arrive top to bottom; ``__exit__``
    checks that all did.
    """

    def __init__(self, fh: BinaryIO, width: int, height: int) -> None:
        self.fh, self.width, self.height = fh, width, height
        self.rows_written = 0
        self.zlib = zlib.compressobj(6)
        fh.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        self._chunk(b"tEXt", f"{MARKER_KEY}\0{MARKER_VALUE}".encode("latin-1"))

    def __enter__(self) -> RowWriter:
        return self.write

    def write(self, row: int, band: np.ndarray) -> None:
        if row != self.rows_written or band.shape[1] != self.width:
            raise RuntimeError("PNG rows must be written in order and full width")
        scanlines = np.zeros((band.shape[0], self.width + 1), np.uint8)  # filter byte 0
        scanlines[:, 1:] = band
        self._idat(self.zlib.compress(scanlines.tobytes()))
        self.rows_written += band.shape[0]

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            if self.rows_written != self.height:
                raise RuntimeError(f"PNG incomplete: {self.rows_written}/{self.height} rows")
            self._idat(self.zlib.flush())
            self._chunk(b"IEND", b"")

    def _idat(self, data: bytes) -> None:
        if data:
            self._chunk(b"IDAT", data)

    def _chunk(self, kind: bytes, data: bytes) -> None:
        self.fh.write(struct.pack(">I", len(data)) + kind + data)
        self.fh.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


__all__ = [
    "GDAL_CACHE_FLOOR",
    "MARKER_KEY",
    "MARKER_VALUE",
    "PngStream",
    "RowWriter",
    "bound_gdal_cache",
    "geotiff_writer",
    "quiet_gdal",
]
