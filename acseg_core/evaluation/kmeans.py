"""The k-means baseline: what a GIS user gets from clustering pixel values.

Per-band z-scored pixel values, pooled over a folder, clustered (k-means++ start,
Lloyd iterations, scipy) on a random pixel sample, then every pixel is assigned to
its nearest centre window by window (memory stays flat as images grow). An
unsupervised segmentation model is only worth training if it beats this.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acseg_core.errors import AcsegError, CancelledError, InputError
from acseg_core.io.raster import NODATA, open_raster
from acseg_core.jobs import CancelToken
from acseg_core.model.clustering import fit_kmeans, nearest_centre

DEFAULT_SAMPLES = 4_000_000  # pixels the centres are fitted on (all, if fewer)
WINDOW = 1024


@dataclass(frozen=True)
class KMeansModel:
    """Centres in z-scored space plus the per-band statistics that define it."""

    mean: np.ndarray  # (bands,)
    std: np.ndarray  # (bands,)
    centres: np.ndarray  # (k, bands), z-scored

    @property
    def k(self) -> int:
        return int(self.centres.shape[0])

    def assign(self, data: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """(bands, H, W) raw pixels → uint8 H×W nearest-centre map (255 where invalid)."""
        bands, height, width = data.shape
        pixels = data.reshape(bands, -1).T.astype(np.float32)
        z = (pixels - self.mean.astype(np.float32)) / self.std.astype(np.float32)
        out = nearest_centre(z, self.centres.astype(np.float32)).astype(np.uint8)
        out = out.reshape(height, width)
        if valid is not None:
            out[~valid] = NODATA
        return out


def sample_pixels(
    images: Sequence[Path],
    n_samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """About ``n_samples`` valid pixels drawn uniformly from the pooled images: (n, bands)."""
    rng = np.random.default_rng(seed)
    infos = []
    for path in images:
        with open_raster(path) as raster:
            infos.append(raster.info)
    bands = {info.count for info in infos}
    if len(bands) > 1:
        raise AcsegError(f"images disagree on band count ({sorted(bands)}); k-means pools them")
    total = sum(info.pixels for info in infos)
    fraction = min(1.0, n_samples / max(total, 1))
    chunks = []
    for path in images:
        with open_raster(path) as raster:
            for window in raster.windows(WINDOW):
                if cancel:
                    raise CancelledError("k-means cancelled")
                data = raster.read(window)
                index = np.flatnonzero(raster.valid_mask(data).ravel())
                if fraction < 1.0:  # else every pixel, in order, like plain kmeans2 on all
                    wanted = min(rng.binomial(index.size, fraction), index.size)
                    index = rng.choice(index, size=wanted, replace=False)
                if index.size:
                    chunks.append(data.reshape(data.shape[0], -1)[:, index].T.astype(np.float64))
    if not chunks:
        raise InputError(images[0] if images else ".", "no valid pixels to cluster")
    return np.concatenate(chunks)


def fit_baseline(
    images: Sequence[Path],
    k: int,
    seed: int = 0,
    n_samples: int = DEFAULT_SAMPLES,
    cancel: CancelToken | None = None,
) -> KMeansModel:
    """k-means on z-scored pixel values pooled over ``images`` (the GIS-user baseline)."""
    samples = sample_pixels(images, n_samples, seed, cancel)
    mean = samples.mean(axis=0)
    std = samples.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    centres = fit_kmeans((samples - mean) / std, k, seed)
    return KMeansModel(mean=mean, std=std, centres=centres)


def cluster_image(model: KMeansModel, path: Path, cancel: CancelToken | None = None) -> np.ndarray:
    """uint8 H×W cluster map of one image, assigned window by window (255 = nodata)."""
    with open_raster(path) as raster:
        out = np.empty((raster.info.height, raster.info.width), dtype=np.uint8)
        for col, row, width, height in raster.windows(WINDOW):
            if cancel:
                raise CancelledError("k-means cancelled")
            data = raster.read((col, row, width, height))
            out[row : row + height, col : col + width] = model.assign(data, raster.valid_mask(data))
    return out


def cluster_images(
    model: KMeansModel, images: Sequence[Path], cancel: CancelToken | None = None
) -> Iterator[np.ndarray]:
    """Cluster maps of ``images``, one at a time."""
    for path in images:
        yield cluster_image(model, path, cancel)
