"""Tiled, bounded-memory prediction of one image: ``predict(loaded, image)``.

The image is read tile by tile (``Raster.read`` windows), normalised with the model's
stored statistics, run through :class:`~acseg_core.inference.forward.Forward` in
batches of equal-shaped tiles, and the tiles' centres are stitched
(:mod:`acseg_core.io.tiling`: the result equals a one-shot prediction) into
memory or into files written by windows (:mod:`acseg_core.inference.sinks`). Memory is
bounded by the tile size, the batch and one band of output rows, not by the image.

Normalisation: the model's ``config.normalisation`` (measured on the training images;
a model without it falls back to per-image statistics,
:func:`acseg_core.io.normalise.image_normalisation`).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acseg_core.device import intra_op_threads
from acseg_core.errors import AcsegError, CancelledError, InputError, os_reason
from acseg_core.features.for_model import feature_root, model_features
from acseg_core.features.grid import grid_features
from acseg_core.features.store import FeatureStore
from acseg_core.gis.options import OutputOptions
from acseg_core.inference.forward import PRECISIONS, Forward, autocast_dtype, cpu_workers
from acseg_core.inference.sinks import OUTPUT_SUFFIXES, BandAssembler, Prediction, open_sink
from acseg_core.inference.stages import StageTimes, exit_measured, measured
from acseg_core.io.normalise import Normalisation, apply_normalisation, image_normalisation
from acseg_core.io.raster import Raster, RasterInfo, open_raster
from acseg_core.io.tiling import DEFAULT_TILE, Tile, TileGrid
from acseg_core.io.writers import bound_gdal_cache
from acseg_core.jobs import CancelToken, Progress, run_to_end
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.geometry import grid_stride, plan_for
from acseg_core.model.readouts.choice import MODEL_DEFAULT, ReadOut


@dataclass(frozen=True)
class PredictOptions:
    """How images are predicted, whatever the front-end: the read-out, the tile size
    (px, snapped to the stride) and batch (tiles per forward pass) that trade speed for
    memory, a confidence raster beside each map, the precision, the device, and (for
    collections) which GIS files each map becomes."""

    readout: ReadOut = MODEL_DEFAULT
    tile: int = field(default=DEFAULT_TILE, metadata={"help": "tile size in pixels"})
    batch: int = field(
        default=4, metadata={"help": "tiles in memory at once; on the CPU shared by one "
                             "forward pass per core"}
    )  # fmt: skip
    with_confidence: bool = False
    precision: str = field(
        default="auto", metadata={"help": "auto: fp16 on CUDA, bf16 on CPUs with native bf16, "
                                  "else fp32", "choices": PRECISIONS}
    )  # fmt: skip
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | mps"})
    outputs: OutputOptions | None = None  # the GIS formats of a collection; None: the map


DEFAULT_OPTIONS = PredictOptions()


def check_options(loaded: LoadedModel, options: PredictOptions) -> ReadOut:
    """Refuse unusable options once, before any image is read; the resolved read-out."""
    if options.batch < 1:
        raise AcsegError("batch must be at least 1")
    autocast_dtype(loaded.device, options.precision)  # refuses an unknown precision
    resolved = options.readout.resolve(loaded)
    side = max(1, options.tile)  # a tile of 0 or less is "too small", like any other
    plan_for(loaded, side, side, options.tile, resolved)  # raises if the tile is too small
    return resolved


def options_with(options: PredictOptions, overrides: dict[str, Any]) -> PredictOptions:
    """``options`` with keyword overrides (``predict(..., readout=PLAIN_HEAD)``)."""
    unknown = set(overrides) - {f.name for f in fields(PredictOptions)}
    if unknown:
        raise TypeError(f"unknown prediction option(s): {', '.join(sorted(unknown))}")
    return replace(options, **overrides) if overrides else options


def predict(
    loaded: LoadedModel,
    image: str | Path,
    *,
    out: str | Path | None = None,
    options: PredictOptions = DEFAULT_OPTIONS,
    cancel: CancelToken | None = None,
    stages: StageTimes | None = None,
    feature_cache: Path | None = None,
    **overrides: Any,
) -> Generator[Progress, None, Prediction]:
    """Predict an id map for ``image``; yields progress per batch, returns the result.

    ``out`` = None returns the arrays in memory (the app, evaluation); a ``.tif`` /
    ``.png`` path writes there instead, by windows. ``options``
    (:class:`PredictOptions`, any field also as a keyword) choose the read-out and its
    majority window (tiles overlap by half the window more, so tiled output still
    equals one-shot output), tile, batch, precision and a confidence raster. Raises
    :class:`InputError` for unusable images (another band count...),
    :class:`CancelledError` when ``cancel`` is set (checked every batch). ``stages``
    collects seconds per stage (:mod:`~acseg_core.inference.stages`). A model that
    reads a feature bank first computes the image's bank features (or finds them in
    ``feature_cache``; a temporary folder by default).
    """
    image = Path(image)
    options = options_with(options, overrides)
    if out is not None:
        out = Path(out)
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise AcsegError(f"{out}: output must end in .tif, .tiff or .png")
        if out.resolve() == image.resolve():
            raise InputError(image, "refusing to write the prediction over its source image")
    resolved = check_options(loaded, options)
    try:
        with feature_root(feature_cache) as root:
            store = yield from model_features(loaded, image, root, cancel)
            return (yield from _predict(loaded, image, out, resolved, options, cancel, stages,
                                        store))  # fmt: skip
    except OSError as exc:  # reading errors are InputErrors already: this is the output
        target = out if out is not None else image
        raise InputError(target, f"cannot write the prediction ({os_reason(exc)})") from exc


def _predict(
    loaded: LoadedModel,
    image: Path,
    out: Path | None,
    resolved: ReadOut,
    options: PredictOptions,
    cancel: CancelToken | None,
    stages: StageTimes | None,
    store: FeatureStore | None,
) -> Generator[Progress, None, Prediction]:
    started = time.perf_counter()
    with_confidence = options.with_confidence
    with contextlib.ExitStack() as stack:
        raster = stack.enter_context(open_raster(image))
        info = raster.info
        loaded.check_bands(image, info.count)
        norm = loaded.config.normalisation or image_normalisation(raster)
        grid = plan_for(loaded, info.width, info.height, options.tile, resolved)
        itemsize = np.dtype(info.dtype).itemsize
        bound_gdal_cache(2 * (grid.tile + grid.margin) * info.width * info.count * itemsize)
        sink = stack.enter_context(
            exit_measured(open_sink(out, info, with_confidence), stages, "write")
        )
        bands = BandAssembler(grid, with_confidence, _timed(sink.write, stages, "write"))
        forward = Forward(loaded, resolved, with_confidence, options.precision, stages)
        step = grid_stride(loaded.config, loaded.input_scale)
        load = _timed(_tile_loader(raster, norm, store, step), stages, "read")
        # CPU: one forward pass per core, each single-threaded (see cpu_workers)
        workers = cpu_workers(loaded.device)
        per_pass = max(1, options.batch // workers)
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
        for tiles, x, masks, bank in loaded_batches:
            in_flight.append((tiles, masks, pool.submit(forward, x, tiles, bank)))
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


def predict_array(loaded: LoadedModel, image: str | Path, **kwargs: Any) -> Prediction:
    """Run :func:`predict` to the end, ignoring progress; returns the Prediction."""
    return run_to_end(predict(loaded, image, **kwargs))


TileBatch = tuple[list[Tile], np.ndarray, list[np.ndarray | None], torch.Tensor | None]


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


def _tile_loader(
    raster: Raster, norm: Normalisation, store: FeatureStore | None, step: int
) -> Callable[[list[Tile]], TileBatch]:
    """Reads and normalises a batch of tiles (with their validity, where not all valid,
    and their bank features on the model's grid, for a model that reads a bank)."""
    info = raster.info
    check_nodata = info.nodata is not None or np.issubdtype(np.dtype(info.dtype), np.floating)

    def load(tiles: list[Tile]) -> TileBatch:
        arrays, masks = [], []
        for t in tiles:
            data = raster.read(t.read)
            valid = raster.valid_mask(data) if check_nodata else None
            arrays.append(apply_normalisation(data, norm, valid))
            masks.append(None if valid is None or valid.all() else valid)
        bank = None
        if store is not None:
            bank = torch.stack([grid_features(store, t.read, step) for t in tiles])
        return tiles, np.stack(arrays), masks, bank

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
    "DEFAULT_OPTIONS",
    "PredictOptions",
    "Prediction",
    "check_options",
    "options_with",
    "predict",
    "predict_array",
]
