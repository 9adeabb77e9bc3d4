"""The k-means read-out: clusters from AC's learned features *and* the pixel values.

AC's K-way head alone is trained to make balanced, ordering-invariant clusters; on
small CPU budgets it misses classes that differ mostly in colour and over-splits
large uniform ones. ``acseg-core bench --accuracy`` (docs/accuracy.md, "Method and
the shipped defaults") measured k-means on the concatenation [head-normalised g_ar
features, input bands], each block standardised per channel and scaled to unit
total variance (equal say for context and colour), as the better read-out on
average over the dev sets.

It stays a per-pixel linear map, so it runs inside the tiled prediction like the
head: for centres ``c = (c_f, c_x)`` in that scaled space,
``-½‖(f, x) − c‖² = f·c_f − ½‖c_f‖² + x·c_x − ½‖c_x‖² + const(pixel)``, so the
logits are a 1×1 conv on the features (bilinearly upsampled — upsampling commutes
with a linear map) plus a 1×1 conv on the input at full resolution. Their softmax
is a soft nearest-centre assignment; the argmax is exactly the nearest centre.

:func:`fit_readout` fits the centres after training on seeded crops of the training
images (bounded memory whatever the folder size) and writes them into the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.errors import AcsegError
from acseg_core.model.clustering import fit_kmeans
from acseg_core.model.readouts.base import GridInputs, ReadoutKind, ReadoutShape
from acseg_core.model.upsample import upsample_grid

FIT_CROPS = 64  # crops the centres are fitted on (~65 k grid points at 128 px, stride 4)
FIT_POINTS = 60_000  # k-means sample size
VALID_SHARE = 0.999  # a grid cell is used only when (almost) all its pixels are valid


class KMeansReadout(nn.Module):
    """Nearest-centre logits from features (stem grid) and input bands (full size)."""

    def __init__(
        self, feature_channels: int, input_channels: int, clusters: int, stride: int = 4
    ) -> None:
        super().__init__()
        self.stride = stride
        self.features = nn.Conv2d(feature_channels, clusters, kernel_size=1)
        self.bands = nn.Conv2d(input_channels, clusters, kernel_size=1)
        for conv in (self.features, self.bands):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            conv.requires_grad_(False)  # fitted by k-means, never by the optimiser
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    def forward(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Probabilities B×K×H×W at ``x``'s size (``features``: head-normalised g_ar)."""
        size = tuple(x.shape[-2:])
        logits = upsample_grid(self.features(features), size, self.stride)
        return torch.softmax(logits + self.bands(x.to(logits.dtype)), dim=1)

    @torch.no_grad()
    def set_centres(self, feature_map: BlockScaling, band_map: BlockScaling,
                    centres: np.ndarray) -> None:  # fmt: skip
        """Load k-means ``centres`` (K × (Cf + Cx), in the scaled space) as conv weights."""
        split = feature_map.channels
        for conv, scaling, part in (
            (self.features, feature_map, centres[:, :split]),
            (self.bands, band_map, centres[:, split:]),
        ):
            weight, bias = scaling.logits_of(part)
            conv.weight.copy_(torch.from_numpy(weight)[:, :, None, None])
            conv.bias.copy_(torch.from_numpy(bias))
        self.fitted.fill_(True)


class BlockScaling:
    """Per-channel standardisation of one block, then a block weight so its total
    variance is 1: ``scaled = (v − mean) / std / √(Σ var of the standardised block)``."""

    def __init__(self, samples: np.ndarray) -> None:
        self.mean = samples.mean(axis=0)
        std = samples.std(axis=0)
        self.std = np.where(std > 1e-6, std, 1.0)
        standardised = (samples - self.mean) / self.std
        self.block = 1.0 / max(float(np.sqrt(standardised.var(axis=0).sum())), 1e-6)

    @property
    def channels(self) -> int:
        return int(self.mean.shape[0])

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        return (samples - self.mean) / self.std * self.block

    def logits_of(self, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(weight K×C, bias K) with ``weight·v + bias = scaled(v)·c − ½‖c‖²``."""
        gain = self.block / self.std  # scaled(v) = gain·v − gain·mean
        weight = centres * gain[None, :]
        bias = -(centres * (gain * self.mean)[None, :]).sum(axis=1) - 0.5 * (centres**2).sum(1)
        return weight.astype(np.float32), bias.astype(np.float32)


def fit_readout(
    model: Any,
    crops: Sequence[tuple[torch.Tensor, ...]],
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Fit ``model.readout`` by k-means on ``crops`` (``(x, valid)`` pairs, as
    ``CropDataset`` gives, or ``(x, valid, bank)`` for a model on the bank); returns a
    summary for the run log. ``model`` is an ACNet with a :class:`KMeansReadout`; it is
    left in eval mode."""
    readout = getattr(model, "readout", None)
    if readout is None:
        raise AcsegError("this model has no k-means read-out to fit")
    model.eval()
    features, bands = [], []
    with torch.no_grad():
        for crop in crops:
            x, valid = crop[0][None].to(device), crop[1]
            bank = crop[2][None].to(device) if len(crop) > 2 else None
            grid = model.head_norm(model.forward_features(x, bank=bank))
            size = tuple(grid.shape[-2:])
            mean_bands = F.adaptive_avg_pool2d(x, size)  # the pixels a grid cell covers
            share = F.adaptive_avg_pool2d(valid[None, None].to(device, x.dtype), size)
            keep = share.flatten() >= VALID_SHARE
            features.append(grid.flatten(2)[0].T[keep].double().cpu().numpy())
            bands.append(mean_bands.flatten(2)[0].T[keep].double().cpu().numpy())
    feature_samples, band_samples = np.concatenate(features), np.concatenate(bands)
    k = int(model.config.clusters)
    if len(feature_samples) < k:
        raise AcsegError(f"too few valid pixels to fit the k-means read-out ({k} clusters)")
    rng = np.random.default_rng(seed)
    if len(feature_samples) > FIT_POINTS:
        pick = rng.choice(len(feature_samples), FIT_POINTS, replace=False)
        feature_samples, band_samples = feature_samples[pick], band_samples[pick]
    feature_map, band_map = BlockScaling(feature_samples), BlockScaling(band_samples)
    points = np.concatenate([feature_map(feature_samples), band_map(band_samples)], axis=1)
    centres = fit_kmeans(points, k, seed)
    readout.set_centres(feature_map, band_map, centres)
    return {"points": len(points), "clusters": k}


class KMeansKind(ReadoutKind):
    """k-means on [features, pixel values], fitted after training (see the module)."""

    name = "kmeans"
    label = "features + colour k-means"
    after_training = True

    def build(self, shape: ReadoutShape) -> nn.Module:
        return KMeansReadout(shape.feature_channels, shape.in_channels, shape.clusters,
                             shape.stride)  # fmt: skip

    def probabilities(self, module: nn.Module | None, inputs: GridInputs) -> torch.Tensor:
        return module(inputs.features, inputs.x)  # type: ignore[misc]

    def fit_after_training(
        self,
        net: Any,
        crops: Sequence[tuple[torch.Tensor, ...]],
        seed: int,
        device: torch.device | str,
    ) -> dict[str, Any]:
        return fit_readout(net, crops, seed=seed, device=device)


__all__ = ["FIT_CROPS", "BlockScaling", "KMeansKind", "KMeansReadout", "fit_readout"]
