"""The baseline a user with the feature bank would otherwise have: k-means on it.

Each image's bank features (:mod:`acseg_core.features`, computed once and kept in a
store) are read on the stride-4 grid; each level is reduced to a few whitened
principal components fitted on cells pooled over the folder (no labels, no colour);
k-means with K clusters on those; every cell is scored against the centres and the
scores are upsampled bilinearly to the pixels. The nearest-centre rule is linear in
the features once the common ``|z|²`` is dropped, so upsampling the K scores gives
exactly the nearest centre of the upsampled features, at K channels' cost.
``acseg-core bench --accuracy`` prints it (with the same majority filter) beside
``kmeans+smooth``: an AC model on the bank is only worth training if it beats this.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from acseg_core.features.bank import Bank
from acseg_core.features.cache import features_for
from acseg_core.features.grid import grid_features
from acseg_core.features.store import FeatureStore
from acseg_core.jobs import CancelToken, run_to_end
from acseg_core.model.clustering import fit_kmeans
from acseg_core.model.readouts.bank_strokes import Projection
from acseg_core.model.upsample import upsample_grid

COMPONENTS = 8  # whitened principal components per bank level (the probe)
FIT_CELLS = 60_000  # grid cells the projections and centres are fitted on
STEP = 4  # px per grid cell: the bank's finest stride


@dataclass(frozen=True)
class BankKMeans:
    """Centres in the projected space, folded into one linear score per cluster."""

    weight: np.ndarray  # (k, C): scores = weight @ bank + bias (highest = nearest)
    bias: np.ndarray  # (k,)
    centres: np.ndarray  # (k, components): in the projected space (the folding's source)
    projections: tuple[tuple[slice, Projection], ...]  # per level: its channels, its PCs

    def project(self, bank: np.ndarray) -> np.ndarray:
        """(n, C) bank features → (n, components): where the centres live."""
        return np.concatenate([p.apply(bank[:, part]) for part, p in self.projections], axis=1)

    @property
    def k(self) -> int:
        return int(self.weight.shape[0])

    def assign(self, store: FeatureStore) -> np.ndarray:
        """uint8 H×W nearest-centre map of one image's store."""
        meta = store.meta
        grid = grid_features(store, (0, 0, meta.width, meta.height), STEP).float()
        channels, rows, cols = grid.shape
        scores = torch.from_numpy(self.weight) @ grid.reshape(channels, -1)
        scores = (scores + torch.from_numpy(self.bias)[:, None]).reshape(1, -1, rows, cols)
        full = upsample_grid(scores, (meta.height, meta.width), STEP)[0]
        return full.argmax(0).to(torch.uint8).numpy()


def bank_stores(
    bank: Bank, images: Sequence[Path], root: Path, cancel: CancelToken | None = None
) -> list[FeatureStore]:
    """Every image's bank features (found in ``root`` or computed into it)."""
    return [run_to_end(features_for(bank, Path(p), root, cancel)) for p in images]


def fit_bank_kmeans(
    stores: Sequence[FeatureStore], k: int, seed: int = 0, components: int = COMPONENTS
) -> BankKMeans:
    """k-means on the whitened leading components of each bank level, pooled over
    ``stores`` (:data:`FIT_CELLS` grid cells drawn in proportion to each image's)."""
    rng = np.random.default_rng([seed, 0xBA4C])
    grids = [
        grid_features(s, (0, 0, s.meta.width, s.meta.height), STEP).float().numpy() for s in stores
    ]
    cells = np.array([g.shape[1] * g.shape[2] for g in grids], dtype=np.int64)
    share = np.minimum(cells, np.maximum(1, FIT_CELLS * cells // max(cells.sum(), 1)))
    sample = np.concatenate([
        g.reshape(g.shape[0], -1)[:, rng.choice(g.shape[1] * g.shape[2], n, replace=False)].T
        for g, n in zip(grids, share, strict=True)
    ])  # fmt: skip
    del grids
    levels = stores[0].meta.channels
    parts, start = [], 0
    for width in levels:
        part = slice(start, start + width)
        parts.append((part, Projection(sample[:, part], components)))
        start += width
    points = np.concatenate([p.apply(sample[:, part]) for part, p in parts], axis=1)
    centres = fit_kmeans(points, k, seed)
    # score_k(v) = c_k · z(v) − |c_k|²/2 with z linear in v: fold it into weight and bias
    weight = np.zeros((k, sample.shape[1]))
    bias = -0.5 * (centres**2).sum(axis=1)
    first = 0
    for part, projection in parts:
        basis = projection.basis * projection.scale[:, None]  # (level C, comps)
        own = centres[:, first : first + basis.shape[1]]
        weight[:, part] = own @ basis.T
        bias -= own @ (basis.T @ projection.mean)
        first += basis.shape[1]
    return BankKMeans(weight.astype(np.float32), bias.astype(np.float32), centres, tuple(parts))


def bank_kmeans_maps(model: BankKMeans, stores: Sequence[FeatureStore]) -> Iterator[np.ndarray]:
    """Cluster maps of ``stores``' images, one at a time."""
    for store in stores:
        yield model.assign(store)


__all__ = ["COMPONENTS", "BankKMeans", "bank_kmeans_maps", "bank_stores", "fit_bank_kmeans"]
