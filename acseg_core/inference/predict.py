"""Tiled, bounded-memory prediction of one image: ``predict(loaded, image)``.

The image is read tile by tile (``Raster.read`` windows), normalised with the model's
stored statistics, run through :class:`~acseg_core.inference.forward.Forward` in
batches of equal-shaped tiles, and the tiles' centres are stitched
(:mod:`acseg_core.inference.tiling`: the result equals a one-shot prediction) into
memory or into files written by windows (:mod:`acseg_core.inference.sinks`). Memory is
bounded by the tile size, the batch and one band of output rows, not by the image.

Normalisation: the model's ``config.normalisation`` (measured on the training images).
A model without it (a random-init model in a benchmark) falls back to per-image
statistics from one downsampled preview read: per image, never per tile, since
per-tile statistics would shift ids between tiles and show seams.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from acseg_core.errors import AcsegError, CancelledError, InputError, os_reason
from acseg_core.inference.forward import (
    Forward,
    autocast_dtype,
    cpu_workers,
    input_scale,
    intra_op_threads,
)
from acseg_core.inference.readout import MODEL_DEFAULT, ReadOut
from acseg_core.inference.sinks import OUTPUT_SUFFIXES, BandAssembler, Prediction, open_sink
from acseg_core.inference.stages import StageTimes, exit_measured, measured
from acseg_core.inference.tiling import Tile, TileGrid, margin_for, plan_tiles
from acseg_core.io.normalise import (
    HIGH_PERCENTILE,
    LOW_PERCENTILE,
    Normalisation,
    apply_normalisation,
    band_percentiles,
)
from acseg_core.io.raster import Raster, RasterInfo, open_raster
from acseg_core.io.writers import bound_gdal_cache
from acseg_core.jobs import CancelToken, Progress, run_to_end
from acseg_core.model.config import ModelConfig

DEFAULT_TILE = 512
DEFAULT_BATCH = 4
_PREVIEW_SIDE = 1024  # fallback normalisation statistics come from this preview


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


def smooth_margin(smooth: int, stride: int) -> int:
    """Extra margin for a ``smooth`` px majority window: its half, rounded up to the stride."""
    half = smooth // 2 if smooth > 1 else 0
    return -(-half // stride) * stride


def plan_for(loaded: Any, width: int, height: int, tile: int, readout: ReadOut) -> TileGrid:
    """The tile grid ``predict`` uses; raises AcsegError when ``tile`` is too small."""
    scale = input_scale(loaded)
    stride = grid_stride(loaded.config, scale)
    margin = tile_margin(loaded.config, scale) + smooth_margin(readout.smooth or 0, stride)
    return plan_tiles(width, height, tile=tile, margin=margin, stride=stride)


def check_settings(loaded: Any, tile: int, batch: int, readout: ReadOut) -> ReadOut:
    """Refuse unusable settings once, before any image is read; the resolved read-out."""
    if batch < 1:
        raise AcsegError("batch must be at least 1")
    resolved = readout.resolve(loaded)
    side = max(1, tile)  # a tile of 0 or less is "too small", like any other
    plan_for(loaded, side, side, tile, resolved)  # raises if the tile is too small
    return resolved


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
    loaded: Any,
    image: str | Path,
    *,
    out: str | Path | None = None,
    readout: ReadOut = MODEL_DEFAULT,
    tile: int = DEFAULT_TILE,
    batch: int = DEFAULT_BATCH,
    cancel: CancelToken | None = None,
    with_confidence: bool = False,
    precision: str = "auto",
    stages: StageTimes | None = None,
) -> Generator[Progress, None, Prediction]:
    """Predict an id map for ``image``; yields progress per batch, returns the result.

    ``out`` = None returns the arrays in memory (the app, evaluation); a ``.tif`` /
    ``.png`` path writes there instead, by windows. ``readout`` chooses the read-out
    and the majority window (:class:`~acseg_core.inference.readout.ReadOut`; the
    model's own by default); tiles overlap by half the window more, so tiled output
    still equals one-shot output. ``tile`` (pixels, snapped to the stride) and
    ``batch`` (tiles per forward pass) trade speed for memory. ``precision``: ``auto``
    = fp16 on CUDA, bf16 on CPUs that have it natively, else fp32; ``fp32`` for
    bit-stable output. Raises :class:`InputError` for unusable images (wrong band
    count...), :class:`CancelledError` when ``cancel`` is set (checked every batch).
    ``stages`` collects seconds per stage (:mod:`~acseg_core.inference.stages`).
    """
    image = Path(image)
    autocast_dtype(loaded.device, precision)  # refuse an unknown precision before any work
    if out is not None:
        out = Path(out)
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise AcsegError(f"{out}: output must end in .tif, .tiff or .png")
        if out.resolve() == image.resolve():
            raise InputError(image, "refusing to write the prediction over its source image")
    resolved = check_settings(loaded, tile, batch, readout)
    try:
        return (yield from _predict(loaded, image, out, resolved, tile, batch, cancel,
                                    with_confidence, precision, stages))  # fmt: skip
    except OSError as exc:  # reading errors are InputErrors already: this is the output
        target = out if out is not None else image
        raise InputError(target, f"cannot write the prediction ({os_reason(exc)})") from exc


def _predict(
    loaded: Any,
    image: Path,
    out: Path | None,
    resolved: ReadOut,
    tile: int,
    batch: int,
    cancel: CancelToken | None,
    with_confidence: bool,
    precision: str,
    stages: StageTimes | None,
) -> Generator[Progress, None, Prediction]:
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        raster = stack.enter_context(open_raster(image))
        info = raster.info
        if info.count != loaded.config.in_channels:
            raise InputError(
                image,
                f"has {info.count} band(s) but the model was trained on "
                f"{loaded.config.in_channels}",
            )
        norm = loaded.config.normalisation or image_normalisation(raster)
        grid = plan_for(loaded, info.width, info.height, tile, resolved)
        itemsize = np.dtype(info.dtype).itemsize
        bound_gdal_cache(2 * (grid.tile + grid.margin) * info.width * info.count * itemsize)
        sink = stack.enter_context(
            exit_measured(open_sink(out, info, with_confidence), stages, "write")
        )
        bands = BandAssembler(grid, with_confidence, _timed(sink.write, stages, "write"))
        forward = Forward(loaded, resolved, with_confidence, precision, stages)
        load = _timed(_tile_loader(raster, norm), stages, "read")
        # CPU: one forward pass per core, each single-threaded (see cpu_workers)
        workers = cpu_workers(loaded.device)
        per_pass = max(1, batch // workers)
        stack.enter_context(intra_op_threads(1 if workers > 1 else None))
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
            done += _stitch(bands, *in_flight.popleft())
            yield _progress(image, info, grid, done, started)
        while in_flight and not cancel:
            done += _stitch(bands, *in_flight.popleft())
            yield _progress(image, info, grid, done, started)
        if done < len(grid):  # cancelled before every tile was stitched: no output
            raise CancelledError(f"{image}: prediction cancelled")
        bands.check_complete()
    return sink.result()


def predict_array(loaded: Any, image: str | Path, **kwargs: Any) -> Prediction:
    """Run :func:`predict` to the end, ignoring progress; returns the Prediction."""
    return run_to_end(predict(loaded, image, **kwargs))


TileBatch = tuple[list[Tile], np.ndarray, list[np.ndarray | None]]


def _timed(
    function: Callable[..., Any], stages: StageTimes | None, stage: str
) -> Callable[..., Any]:
    """``function``, its calls counted as ``stage`` when someone is timing."""
    if stages is None:
        return function

    def timed(*args: Any) -> Any:
        with measured(stages, stage):
            return function(*args)

    return timed


def _tile_loader(raster: Raster, norm: Normalisation) -> Callable[[list[Tile]], TileBatch]:
    """Reads and normalises a batch of tiles (with their validity, where not all valid)."""
    info = raster.info
    check_nodata = info.nodata is not None or np.issubdtype(np.dtype(info.dtype), np.floating)

    def load(tiles: list[Tile]) -> TileBatch:
        arrays, masks = [], []
        for t in tiles:
            data = raster.read(t.read)
            valid = raster.valid_mask(data) if check_nodata else None
            arrays.append(apply_normalisation(data, norm, valid))
            masks.append(None if valid is None or valid.all() else valid)
        return tiles, np.stack(arrays), masks

    return load


def _stitch(
    bands: BandAssembler, tiles: list[Tile], masks: list[np.ndarray | None], future: Future[Any]
) -> int:
    ids, confidence = future.result()
    for i, t in enumerate(tiles):
        bands.add(t, ids[i], confidence[i] if confidence is not None else None, masks[i])
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
    load: Callable[[list[Tile]], TileBatch],
    cancel: CancelToken | None,
) -> Iterator[TileBatch]:
    """``load`` each batch on a helper thread one batch ahead of the consumer.

    Raster decoding and normalisation (GDAL and numpy release the GIL) then overlap
    the forward pass. Only the helper thread touches the raster. Stops early
    (without raising) once ``cancel`` is set; the caller raises.
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


__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_TILE",
    "Prediction",
    "check_settings",
    "grid_stride",
    "image_normalisation",
    "plan_for",
    "predict",
    "predict_array",
    "smooth_margin",
    "tile_margin",
]
