"""Raster reading by windows: GeoTIFF (1–N bands, 8/16-bit, float), PNG, JPEG.

rasterio first (windowed reads, overviews, CRS and transform carried through);
Pillow only where GDAL cannot read a file. Every failure is an
:class:`~acseg_core.errors.InputError` naming the file and the reason, so the
front-ends can print one line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from acseg_core.errors import InputError, missing_reason, os_reason
from acseg_core.io.files import png_problem, require_regular_file

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.windows import Window

NODATA = 255  # no-data value of every uint8 map acseg writes (ids stop at 254)
IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".img", ".bmp"})
HUGE_PIXELS = 2**28  # ≈ 16384²: a full read, even an averaged preview, takes too long
SUPPORTED_DTYPES = frozenset(
    {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"}
)


@dataclass(frozen=True)
class RasterInfo:
    """What a front-end needs to know about an image before reading pixels."""

    path: Path
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    crs: str | None  # WKT, None when not georeferenced
    transform: tuple[float, ...] | None  # affine (a, b, c, d, e, f)
    driver: str

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def describe(self) -> str:
        geo = "georeferenced" if self.georeferenced else "no georeference"
        return f"{self.width}×{self.height}, {self.count} band(s), {self.dtype}, {geo}"


class Raster:
    """An open image. Use as a context manager; read windows, never the whole file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(self.path, missing_reason(self.path))
        if self.path.is_dir():
            raise InputError(self.path, "is a folder, not an image")
        require_regular_file(self.path, "image")  # reading a FIFO would wait forever
        self._ds: Any = None
        self._pil: _PillowImage | None = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self.path)
        except (RasterioError, OSError) as exc:
            self._pil = _PillowImage.try_open(self.path)
            if self._pil is None:
                raise InputError(self.path, f"not a readable image ({_short(exc)})") from exc
        self.info = self._make_info()
        truncated = png_problem(self.path) if self.info.driver == "PNG" else None
        if truncated is not None:  # GDAL would hand back the rows it could decode
            self.close()
            raise InputError(self.path, f"not a readable image ({truncated})")
        if self.info.dtype not in SUPPORTED_DTYPES:
            self.close()
            raise InputError(
                self.path, f"unsupported pixel type {self.info.dtype} (expected integer or float)"
            )

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        if self._ds is not None:
            self._ds.close()
            self._ds = None
        self._pil = None

    def __enter__(self) -> Raster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- metadata --------------------------------------------------------
    def _make_info(self) -> RasterInfo:
        if self._pil is not None:
            return self._pil.info
        ds = self._ds
        crs = ds.crs.to_wkt() if ds.crs else None
        transform = tuple(ds.transform)[:6] if crs else None
        nodata = ds.nodata
        if nodata is not None and math.isnan(nodata):
            nodata = float("nan")
        return RasterInfo(
            path=self.path,
            width=ds.width,
            height=ds.height,
            count=ds.count,
            dtype=str(ds.dtypes[0]),
            nodata=nodata,
            crs=crs,
            transform=transform,
            driver=ds.driver,
        )

    @property
    def profile(self) -> dict[str, Any]:
        """rasterio profile (CRS, transform, size) for writing outputs that line up."""
        if self._ds is not None:
            return dict(self._ds.profile)
        return {"width": self.info.width, "height": self.info.height, "count": self.info.count}

    # -- pixels ------------------------------------------------------------
    def read(
        self,
        window: tuple[int, int, int, int] | None = None,
        bands: Iterable[int] | None = None,
        out_shape: tuple[int, int] | None = None,
        *,
        nearest: bool = False,
    ) -> np.ndarray:
        """Pixels of ``window`` = (col, row, width, height) as a (bands, h, w) array.

        The window may extend past the image; outside pixels are filled with
        nodata (or 0). ``bands`` are 1-based like GDAL's. ``out_shape`` resamples
        (average; ``nearest``: one source pixel per output pixel, a decimated read
        that decodes each block it touches once and averages nothing) — the way to
        get a small preview without reading everything.
        """
        col, row, width, height = window or (0, 0, self.info.width, self.info.height)
        band_list = list(bands) if bands is not None else list(range(1, self.info.count + 1))
        try:
            if self._pil is not None:
                data = self._pil.read(col, row, width, height, band_list)
                if out_shape is not None:
                    data = _resize_nearest(data, out_shape)
                return data
            fill = self.info.nodata if self.info.nodata is not None else 0
            inside = (
                col >= 0
                and row >= 0
                and col + width <= self.info.width
                and row + height <= self.info.height
            )
            kwargs: dict[str, Any] = {"window": Window(col, row, width, height)}
            if not inside:
                kwargs.update(boundless=True, fill_value=fill)
            if out_shape is not None:
                resampling = Resampling.nearest if nearest else Resampling.average
                kwargs.update(out_shape=(len(band_list), *out_shape), resampling=resampling)
            return self._ds.read(band_list, **kwargs)
        except (RasterioError, OSError, ValueError) as exc:
            raise InputError(self.path, f"pixel data cannot be decoded ({_short(exc)})") from exc

    def valid_mask(self, data: np.ndarray) -> np.ndarray:
        """True where a pixel holds data in every band (not nodata, not NaN)."""
        valid = np.ones(data.shape[-2:], dtype=bool)
        if np.issubdtype(data.dtype, np.floating):
            valid &= np.isfinite(data).all(axis=0)
        nodata = self.info.nodata
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            valid &= ~(data == np.asarray(nodata, dtype=data.dtype)).all(axis=0)
        return valid

    def read_preview(self, max_side: int = 2048) -> tuple[np.ndarray, float]:
        """A downsampled read (uses overviews when the file has them; a huge raster
        without them, :attr:`preview_is_slow`, is decimated, never averaged in full).

        Returns (array, scale) with scale = preview pixels per source pixel.
        """
        longest = max(self.info.width, self.info.height)
        if longest <= max_side:
            return self.read(), 1.0
        scale = max_side / longest
        shape = self.preview_shape(max_side)
        return self.read(out_shape=shape, nearest=self.preview_is_slow), scale

    def preview_shape(self, max_side: int = 2048) -> tuple[int, int]:
        """(rows, cols) of :meth:`read_preview`'s array."""
        longest = max(self.info.width, self.info.height)
        if longest <= max_side:
            return self.info.height, self.info.width
        scale = max_side / longest
        return max(1, round(self.info.height * scale)), max(1, round(self.info.width * scale))

    @property
    def preview_is_slow(self) -> bool:
        """A raster over :data:`HUGE_PIXELS` without overviews: its preview is a
        decimated read that still touches every block (seconds: read it off the
        thread that draws)."""
        if self.info.pixels <= HUGE_PIXELS or self._ds is None:
            return False
        try:
            return not self._ds.overviews(1)
        except (RasterioError, OSError):
            return True

    def windows(self, size: int) -> Iterator[tuple[int, int, int, int]]:
        """Non-overlapping windows covering the image, row by row."""
        for row in range(0, self.info.height, size):
            for col in range(0, self.info.width, size):
                yield (
                    col,
                    row,
                    min(size, self.info.width - col),
                    min(size, self.info.height - row),
                )


def open_raster(path: str | Path) -> Raster:
    """Open an image for windowed reading (see :class:`Raster`)."""
    return Raster(path)


def probe(path: str | Path) -> RasterInfo:
    """Open, check that pixels decode, close. For folder scans: cheap, not exhaustive.

    Decodes a small window at the start, centre and end of the image, so a file
    whose header is fine but whose pixel data is broken is caught before use.
    """
    with Raster(path) as raster:
        w, h = raster.info.width, raster.info.height
        size = min(16, w), min(16, h)
        for col, row in ((0, 0), (w // 2, h // 2), (w - size[0], h - size[1])):
            raster.read((min(col, w - size[0]), min(row, h - size[1]), *size))
        return raster.info


def list_images(paths: Iterable[str | Path]) -> list[Path]:
    """Image files named directly or found in folders (not recursive), sorted.

    Label files beside images (``*_label.*``) are left out of folder scans.
    """
    found: list[Path] = []
    for item in paths:
        p = Path(item)
        if p.is_dir():
            try:
                children = list(p.iterdir())
            except OSError as exc:
                raise InputError(p, f"cannot list the folder ({os_reason(exc)})") from exc
            found.extend(
                sorted(
                    child
                    for child in children
                    if child.is_file()  # False for symlink loops, FIFOs, devices
                    and child.suffix.lower() in IMAGE_SUFFIXES
                    and not child.stem.endswith("_label")
                )
            )
        elif p.exists():
            found.append(p)
        else:
            raise InputError(p, missing_reason(p, "file or folder"))
    return found


def usable_images(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """:func:`list_images` that :func:`probe` can read, and one line per file left out
    (the app skips those with a notice, as ``predict`` does); a path that does not
    exist at all raises InputError."""
    images, problems = [], []
    for image in list_images(paths):
        try:
            probe(image)
        except InputError as exc:
            problems.append(str(exc))
            continue
        images.append(image)
    return images, problems


class _PillowImage:
    """Fallback for files GDAL cannot open: decoded once, then sliced."""

    def __init__(self, path: Path, image: Any) -> None:
        self.path = path
        self._image = image
        self._array: np.ndarray | None = None
        bands = len(image.getbands())
        dtype = "uint16" if image.mode.startswith("I;16") else "uint8"
        if image.mode in ("I", "F"):
            dtype = "int32" if image.mode == "I" else "float32"
        self.info = RasterInfo(
            path=path,
            width=image.width,
            height=image.height,
            count=bands,
            dtype=dtype,
            nodata=None,
            crs=None,
            transform=None,
            driver="Pillow",
        )

    @classmethod
    def try_open(cls, path: Path) -> _PillowImage | None:
        try:
            image = Image.open(path)
        except (UnidentifiedImageError, OSError):
            return None
        if image.mode == "P":
            image = image.convert("RGB")
        return cls(path, image)

    def read(self, col: int, row: int, width: int, height: int, bands: list[int]) -> np.ndarray:
        if self._array is None:
            arr = np.asarray(self._image)
            self._array = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
        arr = self._array
        out = np.zeros((len(bands), height, width), dtype=arr.dtype)
        r0, c0 = max(row, 0), max(col, 0)
        r1, c1 = min(row + height, self.info.height), min(col + width, self.info.width)
        if r1 > r0 and c1 > c0:
            sel = arr[[b - 1 for b in bands], r0:r1, c0:c1]
            out[:, r0 - row : r1 - row, c0 - col : c1 - col] = sel
        return out


def _resize_nearest(data: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(shape[0]) * data.shape[1] / shape[0]).astype(int)
    cols = (np.arange(shape[1]) * data.shape[2] / shape[1]).astype(int)
    return data[:, rows][:, :, cols]


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    with contextlib.suppress(Exception):
        text = text.replace("Read failed. See previous exception for details.", "read failed")
    return text[:200]
