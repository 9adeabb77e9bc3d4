"""Bank features of a whole image, level by level, tile by tile: bounded memory, and
exactly what one pass over the whole image gives.

Level 0 reads the image by windows; each further level reads the previous level's
map from the store being built (a memory map). Every level's tiles overlap by its own
receptive field in its input cells (:func:`~acseg_core.features.encoder.margin_cells`)
and start on its stride, with the image's edges left unpadded, so a tile's kept
centre equals the one-shot output (the same rules as prediction tiles,
:mod:`acseg_core.io.tiling`). Memory is one tile's activations per level, whatever
the image size.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np
import torch

from acseg_core.errors import CancelledError
from acseg_core.features.bank import Bank, RgbInput
from acseg_core.features.encoder import margin_cells
from acseg_core.features.store import FeatureStore, StoreMeta, building, remove_stale
from acseg_core.io.raster import Raster, open_raster
from acseg_core.io.tiling import plan_tiles
from acseg_core.jobs import CancelToken, Progress

# input cells per tile side, by level: ~50–250 MB of activations each on Lite
LEVEL_TILES = (768, 256, 160, 96)


def content_digest(path: Path) -> str:
    """SHA-256 of the file's bytes: a changed image never reuses old features."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_meta(bank: Bank, image: Path, raster: Raster, digest: str | None = None) -> StoreMeta:
    info = raster.info
    return StoreMeta(
        bank.config.key, bank.weights_digest, digest or content_digest(image), info.width,
        info.height, bank.config.strides, bank.channels, bank.config.dtype,
    )  # fmt: skip


def build_store(
    bank: Bank,
    image: Path,
    target: Path,
    *,
    cancel: CancelToken | None = None,
    tiles: tuple[int, ...] = LEVEL_TILES,
    digest: str | None = None,
) -> Generator[Progress, None, FeatureStore]:
    """Compute ``image``'s bank features into a store at ``target`` (atomic); yields
    progress per tile. ``tiles``: input cells per tile side, per level (tests shrink
    them to check that tiling changes nothing)."""
    remove_stale(target)
    started = time.perf_counter()
    with open_raster(image) as raster, torch.inference_mode():
        meta = store_meta(bank, image, raster, digest)
        rgb = RgbInput(bank.config, raster)
        check_nodata = raster.info.nodata is not None or raster.info.dtype.startswith("float")
        plans = _plans(bank, raster.info.width, raster.info.height, tiles)
        total, done = sum(len(p) for p in plans), 0
        with building(target, meta) as store:
            for index, grid in enumerate(plans):
                level = bank.encoder.levels[index]
                for t in grid:
                    if cancel:
                        raise CancelledError(f"{image}: feature bank cancelled")
                    col, row, width, height = t.read
                    if index == 0:
                        data = raster.read(t.read)
                        valid = raster.valid_mask(data) if check_nodata else None
                        x = rgb(data, valid)
                    else:
                        window = store.window(index - 1, slice(row, row + height),
                                              slice(col, col + width))  # fmt: skip
                        x = torch.from_numpy(window)[None]
                    out = bank.encoder.run_level(index, x)[0]
                    ratio = level.ratio
                    kc, kr, kw, kh = t.keep
                    oc, orow = kc // ratio, kr // ratio
                    ow, oh = -(-(kc + kw) // ratio) - oc, -(-(kr + kh) // ratio) - orow
                    crop = out[:, orow - row // ratio : orow - row // ratio + oh,
                               oc - col // ratio : oc - col // ratio + ow]  # fmt: skip
                    store.maps[index][:, orow : orow + oh, oc : oc + ow] = crop.numpy().astype(
                        meta.dtype
                    )
                    done += 1
                    elapsed = time.perf_counter() - started
                    yield Progress(done, total, f"{image.name}: feature bank {done}/{total}",
                                   elapsed / done * (total - done))  # fmt: skip
    return FeatureStore.open(target)


def _plans(bank: Bank, width: int, height: int, tiles: tuple[int, ...]) -> list:
    """Each level's tile grid over its input (the image, then the previous level's map)."""
    plans, in_w, in_h = [], width, height
    for index, level in enumerate(bank.encoder.levels):
        margin = margin_cells(level)
        side = max(tiles[min(index, len(tiles) - 1)], 2 * margin + level.ratio)
        plans.append(plan_tiles(in_w, in_h, tile=side, margin=margin, stride=level.ratio))
        in_w, in_h = -(-in_w // level.ratio), -(-in_h // level.ratio)
    return plans


def one_shot(bank: Bank, image: Path) -> list[np.ndarray]:
    """Every level's features from one pass over the whole image (tests, small images)."""
    with open_raster(image) as raster, torch.inference_mode():
        data = raster.read()
        check_nodata = raster.info.nodata is not None or raster.info.dtype.startswith("float")
        x = RgbInput(bank.config, raster)(data, raster.valid_mask(data) if check_nodata else None)
        return [o[0].numpy() for o in bank.encoder(x)]


__all__ = ["LEVEL_TILES", "build_store", "content_digest", "one_shot", "store_meta"]
