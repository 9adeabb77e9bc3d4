"""Random crops for training: the map-style dataset, its loader, batch helpers.

Split from :mod:`acseg_core.training.dataset` (which scans inputs and measures
band statistics) so each module keeps one job. :class:`CropDataset` maps a crop
*index* to a crop, deterministically from the seed: the same index is the same
crop in any process, with any number of loader workers, before or after a
resume. Images are drawn weighted by area.
"""

from __future__ import annotations

import math
import os
import signal
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from acseg_core.errors import AcsegError
from acseg_core.features.grid import grid_features
from acseg_core.features.store import FeatureStore
from acseg_core.io.normalise import Normalisation, apply_normalisation
from acseg_core.io.raster import Raster
from acseg_core.training.dataset import BANK_STEP, DatasetScan, _area_weights

if TYPE_CHECKING:
    import torch

    from acseg_core.training.config import TrainConfig

OPEN_RASTERS = 32  # per-process cache of open files (file handles are finite)


class CropDataset:
    """Random crops as a map-style dataset: ``dataset[i]`` is crop number ``i``.

    Each crop comes from its own seeded generator (``seed``, ``i``), so crops are
    reproducible across processes, workers and resumes without saving any RNG
    state. Returns ``(x, valid)``: ``x`` float32 ``(bands, crop, crop)`` normalised
    by :func:`~acseg_core.io.normalise.apply_normalisation` (the function prediction
    uses), ``valid`` bool ``(crop, crop)`` — False on nodata and padding.

    ``scale`` is the input resampling factor: a crop covers ``crop / scale``
    source pixels resampled to ``crop`` (0.5 = the net sees pixels twice as big).

    ``bank``: one feature store folder per image (a model on the feature bank); crops
    then start on the bank's grid and come with their bank features on it, as a third
    item, exactly what prediction reads for the same pixels.
    """

    def __init__(
        self,
        scan: DatasetScan,
        norm: Normalisation,
        crop: int,
        seed: int = 0,
        scale: float = 1.0,
        bank: Sequence[Path] | None = None,
    ) -> None:
        if scale <= 0:
            raise AcsegError(f"input scale must be positive (got {scale})")
        self.infos = scan.images
        self.norm = norm
        self.crop = crop
        self.seed = seed
        self.scale = scale
        self.source_side = max(1, round(crop / scale))
        self.weights = _area_weights(self.infos)
        self.bank = list(bank) if bank is not None else None
        if self.bank is not None and (len(self.bank) != len(self.infos) or scale != 1.0):
            raise AcsegError("bank crops need one feature store per image and scale 1")
        self._stores: dict[int, FeatureStore] = {}
        self._open: OrderedDict[int, Raster] = OrderedDict()
        self._pid = os.getpid()

    def window(self, index: int) -> tuple[int, tuple[int, int, int, int]]:
        """(image number, source window) of crop ``index``; pure function of the seed."""
        rng = np.random.default_rng([self.seed, index])
        image = int(rng.choice(len(self.infos), p=self.weights))
        info = self.infos[image]
        side = self.source_side
        col = int(rng.integers(0, max(0, info.width - side) + 1))
        row = int(rng.integers(0, max(0, info.height - side) + 1))
        if self.bank is not None:  # on the bank's grid, so its cells are the model's
            col, row = col - col % BANK_STEP, row - row % BANK_STEP
        return image, (col, row, side, side)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Crop ``index`` as numpy: normalised float32 pixels and the valid mask."""
        image, (col, row, side, _) = self.window(index)
        raster = self._raster(image)
        info = raster.info
        out_shape = None if side == self.crop else (self.crop, self.crop)
        data = raster.read((col, row, side, side), out_shape=out_shape)
        valid = raster.valid_mask(data)
        # padding past the edge of a small image is never data, whatever its value
        inside_w = math.floor((info.width - col) * self.crop / side)
        inside_h = math.floor((info.height - row) * self.crop / side)
        valid[inside_h:, :] = False
        valid[:, inside_w:] = False
        return apply_normalisation(data, self.norm, valid), valid

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        import torch

        x, valid = self.read(int(index))
        if self.bank is None:
            return torch.from_numpy(x), torch.from_numpy(valid)
        image, window = self.window(int(index))
        features = grid_features(self._store(image), window, BANK_STEP)
        return torch.from_numpy(x), torch.from_numpy(valid), features

    def _store(self, image: int) -> FeatureStore:
        # read-only memory maps: a forked worker may keep its parent's
        store = self._stores.get(image)
        if store is None:
            store = self._stores[image] = FeatureStore.open(self.bank[image])  # type: ignore[index]
        return store

    def _raster(self, image: int) -> Raster:
        if os.getpid() != self._pid:  # a forked loader worker: never share GDAL handles
            self._open = OrderedDict()
            self._pid = os.getpid()
        raster = self._open.get(image)
        if raster is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                raster = Raster(self.infos[image].path)
            self._open[image] = raster
            if len(self._open) > OPEN_RASTERS:
                _, oldest = self._open.popitem(last=False)
                oldest.close()
        else:
            self._open.move_to_end(image)
        return raster

    def close(self) -> None:
        for raster in self._open.values():
            raster.close()
        self._open.clear()

    def __getstate__(self) -> dict[str, Any]:  # open files never travel to workers
        state = dict(self.__dict__)
        state["_open"] = OrderedDict()
        state["_stores"] = {}
        return state


def crop_loader(
    dataset: CropDataset,
    cfg: TrainConfig,
    start: int,
    total: int,
    device: torch.device,
    ctx: Any = None,
) -> torch.utils.data.DataLoader:
    """Crops ``start*batch …`` in order; workers read ahead while the model computes.

    On several ranks each takes every W-th crop of each global batch (its share).
    """
    import torch

    if ctx is None:
        from acseg_core.training.distributed import Context

        ctx = Context()
    workers = cfg.workers
    return torch.utils.data.DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=ctx.local_batch(cfg.batch),
        sampler=ctx.crop_indices(start, total, cfg.batch),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        worker_init_fn=quiet_worker if workers else None,
    )


def quiet_worker(_: int) -> None:
    """Loader workers leave Ctrl+C and SIGTERM to the trainer, which saves first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)  # workers decode pixels; compute threads belong to training


def next_batch(batches: Iterator[Any]) -> Any:
    """Next batch; a read error in a worker becomes the one-line message it was."""
    try:
        return next(batches)
    except AcsegError:
        raise
    except RuntimeError as exc:
        text = str(exc)
        if "DataLoader worker" not in text:
            raise
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        raise AcsegError(last.split("Error: ", 1)[-1].strip()) from exc
