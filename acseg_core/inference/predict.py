"""Tiled, bounded-memory prediction of cluster maps.

:func:`predict` reads an image tile by tile (``Raster.read`` windows), normalises
each tile with the model's stored statistics, runs the network unmasked
(``ordering=None``) in batches of equal-shaped tiles, stitches the tiles' centres
(:mod:`acseg_core.inference.tiling`: the result equals a one-shot prediction) and either
returns the map or writes it to disk one band of rows at a time. Memory is bounded
by the tile size, the batch and one band of output rows — not by the image.

Outputs (``out`` given):

* ``.tif``/``.tiff``: single-band uint8 GeoTIFF (tiled, deflate) with the source's
  CRS, transform and size; cluster ids ``0..K-1``, :data:`NODATA` (255) where the
  source pixel is nodata, set as the file's nodata value.
* ``.png``: 8-bit greyscale PNG with the same values, streamed row by row
  (:class:`_PngStream`; Pillow cannot write PNGs incrementally).
* with ``with_confidence``: the probability of the chosen cluster as a float32
  TIFF beside it, ``<out stem>_confidence.tif`` (same georeference; NaN = nodata).
  A separate file rather than a second band, because cluster ids and
  probabilities need different pixel types and the cluster file stays a plain
  single-band label raster that GIS tools and the exporter read directly.

Both files are written atomically: nothing appears under the final name until
the whole image is done, and a cancelled or failed run leaves nothing behind.

Normalisation: the model's ``config.normalisation`` (measured on the training
images). A model without it (e.g. a random-init model in a benchmark) falls back to
per-image statistics from one downsampled preview read — *per image*, never per
tile, since per-tile statistics would shift cluster ids between tiles and show seams.
"""

from __future__ import annotations

import contextlib
import math
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from acseg_core.io.atomic import atomic_path
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.config import READOUTS, ModelConfig, Normalisation
from acseg_core.device import use_amp
from acseg_core.errors import AcsegError, CancelledError, InputError
from acseg_core.io.normalise import HIGH_PERCENTILE, LOW_PERCENTILE, apply_normalisation
from acseg_core.jobs import CancelToken, Progress
from acseg_core.io.raster import Raster, RasterInfo, band_percentiles, open_raster
from acseg_core.inference.tiling import Tile, TileGrid, margin_for, plan_tiles

NODATA = 255  # output value for source nodata pixels (cluster ids stop at 254)
DEFAULT_TILE = 512
DEFAULT_BATCH = 4
GEOTIFF_SUFFIXES = (".tif", ".tiff")
PNG_SUFFIXES = (".png",)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_PREVIEW_SIDE = 1024  # fallback normalisation statistics come from this preview
_GDAL_CACHE_FLOOR = 64 * 2**20  # bytes; GDAL's default (5 % of RAM) would grow with the image


@dataclass
class Prediction:
    """Result of :func:`predict`: arrays when no ``out`` was given, else the paths."""

    clusters: np.ndarray | None  # uint8 H×W, NODATA where the source has no data
    confidence: np.ndarray | None  # float32 H×W, probability of the chosen cluster
    out_path: Path | None
    confidence_path: Path | None = None


def confidence_path_for(out: str | Path) -> Path:
    """Where the confidence raster goes beside a cluster map."""
    out = Path(out)
    return out.with_name(f"{out.stem}_confidence.tif")


def tile_margin(config: ModelConfig, scale: float = 1.0) -> int:
    """Overlap margin (per side, source pixels) for tiles of this model.

    At an input ``scale`` < 1 the network sees resampled pixels, so its receptive
    field covers ``1/scale`` times as many source pixels.
    """
    from acseg_core.model.nn import receptive_field

    stride = grid_stride(config, scale)
    return margin_for(math.ceil(receptive_field(config) / scale), stride)


def grid_stride(config: ModelConfig, scale: float = 1.0) -> int:
    """The stem grid's step in source pixels (tiles snap to it so tiling stays exact)."""
    return max(1, round(config.stride / scale))


def input_scale(loaded: LoadedModel) -> float:
    """The resampling factor the model was trained at (``train --scale``), default 1."""
    scale = float(loaded.meta.get("input_scale", 1.0) or 1.0)
    return scale if scale > 0 else 1.0


def smooth_margin(smooth: int, stride: int) -> int:
    """Extra margin for a ``smooth`` px majority window: its half, rounded up to the stride."""
    half = smooth // 2 if smooth > 1 else 0
    return -(-half // stride) * stride


def image_normalisation(raster: Raster) -> Normalisation:
    """Per-image robust statistics from one preview read (fallback when the model has none)."""
    preview, _ = raster.read_preview(_PREVIEW_SIDE)
    low, high = band_percentiles(
        preview, LOW_PERCENTILE, HIGH_PERCENTILE, raster.valid_mask(preview)
    )
    return Normalisation(
        low=tuple(float(v) for v in low),
        high=tuple(float(v) for v in high),
        nodata=raster.info.nodata,
    )


def predict(
    loaded: LoadedModel,
    image: str | Path,
    *,
    out: str | Path | None = None,
    tile: int = DEFAULT_TILE,
    batch: int = DEFAULT_BATCH,
    cancel: CancelToken | None = None,
    with_confidence: bool = False,
    precision: str = "auto",
    smooth: int | None = None,
    readout: str | None = None,
) -> Generator[Progress, None, Prediction]:
    """Predict a cluster map for ``image``; yields progress per batch, returns the result.

    ``out`` = None returns the arrays in memory (for the app and evaluation); a
    ``.tif``/``.png`` path writes there instead, by windows. ``tile`` (pixels,
    snapped to the stride) and ``batch`` (tiles per forward pass) trade speed for
    memory. ``precision`` (:func:`autocast_dtype`): ``auto`` = fp16 AMP on CUDA,
    bf16 on CPUs that have it natively, else fp32; ``fp32`` for bit-stable output.
    ``smooth`` (odd px, 0 = off, None = the model's ``config.smooth``): majority
    filter over a ``smooth``×``smooth`` window (:func:`acseg_core.model.refine.vote_shares`);
    the confidence is then the window's vote share. ``readout`` (None = the model's
    ``config.readout``): ``"head"`` forces the network's own head (plain AC) on a
    model with a k-means read-out (:mod:`acseg_core.model.readouts.kmeans`). Tiles overlap by
    ``smooth // 2`` more, so tiled output still equals one-shot output.
    Raises :class:`InputError` for unusable images (wrong band count...),
    :class:`CancelledError` when ``cancel`` is set (checked before every batch).
    """
    image = Path(image)
    autocast_dtype(loaded.device, precision)  # refuse an unknown precision before any work
    if out is not None:
        out = Path(out)
        if out.suffix.lower() not in GEOTIFF_SUFFIXES + PNG_SUFFIXES:
            raise AcsegError(f"{out}: output must end in .tif, .tiff or .png")
        if out.resolve() == image.resolve():
            raise InputError(image, "refusing to write the prediction over its source image")
    if batch < 1:
        raise AcsegError("batch must be >= 1")
    from acseg_core.model.refine import check_window

    config = loaded.config
    smooth = check_window(config.smooth if smooth is None else smooth)
    if readout is not None and readout not in READOUTS:
        raise AcsegError(f"unknown read-out {readout!r} (choose from {', '.join(READOUTS)})")
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        raster = stack.enter_context(open_raster(image))
        info = raster.info
        if info.count != config.in_channels:
            raise InputError(
                image,
                f"has {info.count} band(s) but the model was trained on {config.in_channels}",
            )
        norm = config.normalisation or image_normalisation(raster)
        scale = input_scale(loaded)
        stride = grid_stride(config, scale)
        grid = plan_tiles(
            info.width,
            info.height,
            tile=tile,
            margin=tile_margin(config, scale) + smooth_margin(smooth, stride),
            stride=stride,
        )
        _bound_gdal_cache(grid, info)
        sink = stack.enter_context(_open_sink(out, info, with_confidence))
        bands = _BandAssembler(grid, with_confidence, sink.write)
        forward = _Forward(loaded, with_confidence, precision, smooth, readout != "head")
        check_nodata = info.nodata is not None or np.issubdtype(np.dtype(info.dtype), np.floating)

        def load(tiles: list[Tile]) -> tuple[list[Tile], np.ndarray, list[np.ndarray | None]]:
            arrays, masks = [], []
            for t in tiles:
                data = raster.read(t.read)
                valid = raster.valid_mask(data) if check_nodata else None
                arrays.append(apply_normalisation(data, norm, valid))
                masks.append(None if valid is None or valid.all() else valid)
            return tiles, np.stack(arrays), masks

        # CPU: one forward pass per core, each single-threaded (see _cpu_workers)
        workers = _cpu_workers(loaded.device)
        per_pass = max(1, batch // workers)
        stack.enter_context(_intra_op_threads(1 if workers > 1 else None))
        # closed before the raster (LIFO), so no helper thread outlives it
        loaded_batches = stack.enter_context(
            contextlib.closing(_prefetched(_batches(grid, per_pass), load, cancel))
        )
        pool = stack.enter_context(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="acseg-forward")
        )
        in_flight: deque[tuple[list[Tile], list[np.ndarray | None], Future[Any]]] = deque()
        done = 0
        for tiles, x, masks in loaded_batches:
            in_flight.append((tiles, masks, pool.submit(forward, x, tiles)))
            if len(in_flight) < workers:
                continue
            tiles, masks, future = in_flight.popleft()
            done += _stitch_batch(bands, tiles, masks, *future.result())
            yield _progress(image, info, grid, done, started)
        while in_flight and not cancel:
            tiles, masks, future = in_flight.popleft()
            done += _stitch_batch(bands, tiles, masks, *future.result())
            yield _progress(image, info, grid, done, started)
        if cancel:  # a cancel during the last batch still discards the output
            raise CancelledError(f"{image}: prediction cancelled")
        bands.check_complete()
    return sink.result(out, with_confidence)


def _stitch_batch(
    bands: _BandAssembler,
    tiles: list[Tile],
    masks: list[np.ndarray | None],
    clusters: list[np.ndarray],
    confidence: list[np.ndarray] | None,
) -> int:
    """Mark nodata in each tile's kept centre and hand it to the assembler."""
    for i, t in enumerate(tiles):
        conf = confidence[i] if confidence is not None else None
        if masks[i] is not None:
            invalid = ~masks[i][t.crop]
            clusters[i][invalid] = NODATA
            if conf is not None:
                conf[invalid] = np.nan
        bands.add(t, clusters[i], conf)
    return len(tiles)


def _progress(image: Path, info: RasterInfo, grid: TileGrid, done: int, started: float) -> Progress:
    elapsed = max(time.perf_counter() - started, 1e-9)
    return Progress(
        done=done,
        total=len(grid),
        message=f"{image.name}: tile {done}/{len(grid)}",
        eta_s=elapsed / done * (len(grid) - done),
        metrics={"mpix_per_s": info.pixels * done / len(grid) / elapsed / 1e6},
    )


def predict_array(loaded: LoadedModel, image: str | Path, **kwargs: Any) -> Prediction:
    """Run :func:`predict` to the end, ignoring progress; returns the Prediction."""
    gen = predict(loaded, image, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


# -- batches and the forward pass -------------------------------------------------


def _batches(grid: TileGrid, size: int) -> Iterator[list[Tile]]:
    """Consecutive row-major tiles of one shape, at most ``size`` per batch."""
    current: list[Tile] = []
    for t in grid:
        if current and (len(current) == size or current[0].shape != t.shape):
            yield current
            current = []
        current.append(t)
    if current:
        yield current


def _prefetched(
    batches: Iterable[list[Tile]],
    load: Callable[[list[Tile]], Any],
    cancel: CancelToken | None,
) -> Iterator[Any]:
    """``load`` each batch on a helper thread one batch ahead of the consumer.

    Stops early (without raising) once ``cancel`` is set; the caller raises.

    Raster decoding and normalisation (GDAL and numpy release the GIL) then
    overlap the forward pass. Only the helper thread touches the raster.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="acseg-read") as pool:
        pending = None
        for tiles in batches:
            if cancel:
                break
            future = pool.submit(load, tiles)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None and not cancel:
            yield pending.result()


def _cpu_workers(device: torch.device) -> int:
    """Concurrent forward passes: one per intra-op thread on the CPU, else one.

    Several single-threaded passes beat one multi-threaded pass on a few cores:
    no barrier after every operator, so small ops do not wait for a descheduled
    thread. On this shared 2-core machine: 2.4–2.8 vs 0.45–0.67 Mpix/s (forward
    only, bf16, 512² tiles). GPUs parallelise inside the pass: one worker.
    """
    return max(1, torch.get_num_threads()) if device.type == "cpu" else 1


@contextlib.contextmanager
def _intra_op_threads(count: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (process-wide); restore afterwards."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Forward:
    """Runs the network on a batch and reduces the probabilities to cluster ids."""

    def __init__(
        self,
        loaded: LoadedModel,
        with_confidence: bool,
        precision: str,
        smooth: int = 0,
        readout: bool = True,
    ) -> None:
        self.model = loaded.model
        self.smooth = smooth
        self.readout = readout
        self.scale = input_scale(loaded)
        self.device = loaded.device
        self.dtype = autocast_dtype(loaded.device, precision)
        self.with_confidence = with_confidence
        self.channels_last = loaded.device.type == "cpu"
        self.model.eval()
        if self.channels_last:  # oneDNN convolutions run NHWC natively (~1.4× here)
            self.model.to(memory_format=torch.channels_last)

    def __call__(
        self, x: np.ndarray, tiles: list[Tile]
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        batch = torch.from_numpy(x).to(self.device, non_blocking=True)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=self.dtype)
            if self.dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            probs = self._probabilities(batch)
            if self.smooth > 1:
                from acseg_core.model.refine import vote_shares

                probs = vote_shares(probs, self.smooth)
            clusters, confidence = [], []
            for i, t in enumerate(tiles):  # reduce only the kept centre of each tile
                rows, cols = t.crop
                best, index = probs[i, :, rows, cols].max(dim=0)
                clusters.append(index.to(torch.uint8).cpu().numpy())
                if self.with_confidence:
                    confidence.append(best.float().cpu().numpy())
        return clusters, (confidence if self.with_confidence else None)

    def _probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """Cluster probabilities at the tile's size, resampling as in training.

        Training reads crops at ``scale`` (GDAL average resampling); here the tile
        is averaged the same way (``area``), run, and the probabilities are
        upsampled back to source pixels.
        """
        if self.scale == 1.0:
            return self.model(batch, ordering=None, readout=self.readout)
        size = batch.shape[-2:]
        small = (max(1, round(size[0] * self.scale)), max(1, round(size[1] * self.scale)))
        mode = "area" if self.scale < 1 else "bilinear"
        resampled = torch.nn.functional.interpolate(batch, size=small, mode=mode)
        probs = self.model(resampled, ordering=None, readout=self.readout)
        return torch.nn.functional.interpolate(
            probs, size=size, mode="bilinear", align_corners=False
        )


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The reduced precision to run inference in, or None for float32.

    ``auto``: float16 AMP on CUDA; bfloat16 on CPUs with native bf16 (AVX512-BF16 /
    AMX: 1.6–3× faster than float32 here); float32 elsewhere (emulated bf16 would be
    slower). Reduced precision can flip the cluster of pixels where two clusters are
    nearly tied (2 % of pixels for an untrained model whose clusters were balanced
    artificially); tiling stays seamless either way. ``fp32`` forces float32.
    """
    if precision not in PRECISIONS:
        raise AcsegError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16" or (precision == "auto" and use_amp(device)):
        return torch.float16
    if device.type == "cpu" and _cpu_has_native_bf16():
        return torch.bfloat16
    return None


def _cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# -- stitching into bands of rows, and where the bands go --------------------------


class _BandAssembler:
    """Collects tile centres into full-width bands of rows; emits each band once complete.

    Bands are emitted top to bottom, so writers see rows in order (the PNG stream
    needs that) and at most ``batch`` bands are held at once.
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

    def add(self, tile: Tile, clusters: np.ndarray, confidence: np.ndarray | None) -> None:
        if tile.grid_row not in self.pending:
            _, height = self.grid.band(tile.grid_row)
            shape = (height, self.grid.width)
            conf = np.empty(shape, np.float32) if self.with_confidence else None
            self.pending[tile.grid_row] = (np.empty(shape, np.uint8), conf, [0])
        band, conf_band, filled = self.pending[tile.grid_row]
        x0, _, w, _ = tile.keep
        band[:, x0 : x0 + w] = clusters
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


class _Sink:
    """Where finished bands go. The base class keeps them in memory."""

    def __init__(self, info: RasterInfo, with_confidence: bool) -> None:
        shape = (info.height, info.width)
        self.clusters = np.empty(shape, np.uint8)
        self.confidence = np.empty(shape, np.float32) if with_confidence else None

    def write(self, row: int, clusters: np.ndarray, confidence: np.ndarray | None) -> None:
        self.clusters[row : row + clusters.shape[0]] = clusters
        if self.confidence is not None and confidence is not None:
            self.confidence[row : row + confidence.shape[0]] = confidence

    def result(self, out: Path | None, with_confidence: bool) -> Prediction:
        return Prediction(clusters=self.clusters, confidence=self.confidence, out_path=None)


class _FileSink(_Sink):
    """Writes bands straight to open files (a GeoTIFF or PNG stream + confidence TIFF)."""

    def __init__(
        self,
        write_clusters: Callable[[int, np.ndarray], None],
        write_confidence: Callable[[int, np.ndarray], None] | None,
    ) -> None:
        self.write_clusters = write_clusters
        self.write_confidence = write_confidence

    def write(self, row: int, clusters: np.ndarray, confidence: np.ndarray | None) -> None:
        self.write_clusters(row, clusters)
        if self.write_confidence is not None and confidence is not None:
            self.write_confidence(row, confidence)

    def result(self, out: Path | None, with_confidence: bool) -> Prediction:
        return Prediction(
            clusters=None,
            confidence=None,
            out_path=out,
            confidence_path=confidence_path_for(out) if out and with_confidence else None,
        )


@contextlib.contextmanager
def _open_sink(out: Path | None, info: RasterInfo, with_confidence: bool) -> Iterator[_Sink]:
    if out is None:
        yield _Sink(info, with_confidence)
        return
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(atomic_path(out))
        if out.suffix.lower() in GEOTIFF_SUFFIXES:
            write_clusters = stack.enter_context(_geotiff_writer(tmp, info, "uint8", NODATA))
        else:
            fh = stack.enter_context(open(tmp, "wb"))
            write_clusters = stack.enter_context(_PngStream(fh, info.width, info.height))
        write_confidence = None
        if with_confidence:
            ctmp = stack.enter_context(atomic_path(confidence_path_for(out)))
            write_confidence = stack.enter_context(
                _geotiff_writer(ctmp, info, "float32", float("nan"))
            )
        yield _FileSink(write_clusters, write_confidence)


@contextlib.contextmanager
def _geotiff_writer(
    path: Path, info: RasterInfo, dtype: str, nodata: float
) -> Iterator[Callable[[int, np.ndarray], None]]:
    """A single-band tiled GeoTIFF lined up with the source; yields ``write(row, band)``."""
    import rasterio
    from rasterio.windows import Window

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
        from affine import Affine
        from rasterio.crs import CRS

        profile.update(crs=CRS.from_wkt(info.crs), transform=Affine(*info.transform))
    with rasterio.open(path, "w", **profile) as dst:

        def write(row: int, band: np.ndarray) -> None:
            dst.write(band, 1, window=Window(0, row, band.shape[1], band.shape[0]))

        yield write


class _PngStream(contextlib.AbstractContextManager):
    """8-bit greyscale PNG written row by row (zlib streaming), so memory stays flat.

    Rows must arrive top to bottom; ``__exit__`` checks that all did.
    """

    def __init__(self, fh: BinaryIO, width: int, height: int) -> None:
        self.fh, self.width, self.height = fh, width, height
        self.rows_written = 0
        self.zlib = zlib.compressobj(6)
        fh.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))

    def __enter__(self) -> Callable[[int, np.ndarray], None]:
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


def _bound_gdal_cache(grid: TileGrid, info: RasterInfo) -> None:
    """Cap GDAL's block cache so reading (and writing) does not grow with the image.

    GDAL's default cache (5 % of RAM) keeps every decoded block of a large image
    until full; 64 MB suffices unless one band of tile rows of a very wide image
    needs more (stripped files decode full-width rows, re-read by each tile).
    """
    import rasterio.env

    itemsize = np.dtype(info.dtype).itemsize
    band_bytes = (grid.tile + grid.margin) * info.width * info.count * itemsize
    wanted = max(_GDAL_CACHE_FLOOR, 2 * band_bytes)
    if rasterio.env.get_gdal_config("GDAL_CACHEMAX") != wanted:
        rasterio.env.set_gdal_config("GDAL_CACHEMAX", wanted)


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_TILE",
    "NODATA",
    "PRECISIONS",
    "Prediction",
    "autocast_dtype",
    "confidence_path_for",
    "image_normalisation",
    "predict",
    "predict_array",
    "tile_margin",
]
