"""The convpaint-style peer: a random forest on the feature bank and the pixel values.

napari-convpaint labels from strokes with a random forest on pretrained CNN features;
this is that recipe on our bank, as fair as we can make it: each bank level reduced
to the same whitened principal components the strokes read-out uses (fitted on the
same unlabelled pixels), plus the input bands, then ilastik's forest (100 trees).
Used only by ``acseg-core bench --strokes`` (scikit-learn, the ``bench`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from acseg_core.benchmarks import ilastik
from acseg_core.learning.live import LiveImage
from acseg_core.learning.samples import Samples
from acseg_core.model.readouts.bank_strokes import COMPONENTS, Projection
from acseg_core.model.upsample import upsample_grid


class BankForest:
    """Per-level projections of the bank (fitted on unlabelled samples) and a forest."""

    def __init__(self, levels: tuple[int, ...], unlabelled: Samples, seed: int) -> None:
        bank = unlabelled.blocks["bank"]
        self.parts, start = [], 0
        for width in levels:
            part = slice(start, start + width)
            self.parts.append((part, Projection(bank[:, part], COMPONENTS)))
            start += width
        self.model = ilastik.forest(seed)

    def _features(self, bank: np.ndarray, bands: np.ndarray) -> np.ndarray:
        parts = [projection.apply(bank[:, part]) for part, projection in self.parts]
        return np.concatenate([*parts, bands.astype(np.float64)], axis=1).astype(np.float32)

    def fit(self, samples: Samples) -> BankForest:
        stroked = samples.labels >= 0
        x = self._features(samples.blocks["bank"][stroked], samples.blocks["bands"][stroked])
        self.model.fit(x, samples.labels[stroked])
        return self

    def predict(self, live: LiveImage) -> np.ndarray:
        """H×W class ids of the image ``live`` holds (the bank's grid projected, then
        upsampled bilinearly, as the read-outs see it)."""
        inputs = live.network.inputs
        bank = inputs.bank[0]  # type: ignore[index]
        channels, rows, cols = bank.shape
        flat = bank.reshape(channels, -1).T.numpy()
        grid = np.concatenate([p.apply(flat[:, part]) for part, p in self.parts], axis=1)
        grid_t = torch.from_numpy(grid.T.reshape(-1, rows, cols).astype(np.float32))[None]
        full = upsample_grid(grid_t, inputs.size, inputs.stride)[0]
        x = inputs.x[0]
        features = torch.cat([full, x.to(full.dtype)]).reshape(full.shape[0] + x.shape[0], -1)
        height, width = inputs.size
        pixels = features.T.contiguous().numpy()
        return ilastik.predict_image(self.model, pixels.reshape(height, width, -1))


def fit_bank_forest(levels: tuple[int, ...], samples: Samples, seed: int) -> Any:
    """A :class:`BankForest` fitted on ``samples`` (strokes and unlabelled pixels)."""
    unlabelled = Samples(
        {k: v[samples.labels < 0] for k, v in samples.blocks.items()},
        samples.labels[samples.labels < 0],
        samples.clusters[samples.labels < 0],
    )
    return BankForest(levels, unlabelled if len(unlabelled) else samples, seed).fit(samples)


__all__ = ["BankForest", "fit_bank_forest"]
