"""IIC's view augmentation: the second view sees photometrically jittered, randomly
flipped pixels; the flip is undone on its output before the loss.

AC's two views differ only in the raster ordering of g_ar; IIC's segmentation runs
also make view 2 a colour-jittered, horizontally flipped copy, so the clusters must
agree across colour changes too. Jitter works in the [0, 1] range of the normalised
bands (``apply_normalisation`` maps 2 %→−1, 98 %→+1) and touches only the bands
named (never NIR: list only the visible ones); saturation and hue need exactly
three (RGB) bands. Every draw is a pure function of ``(seed, step)``, like the crops
and orderings, so a resumed run draws the same views.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# YIQ: luma + two chroma axes; a hue shift is a rotation of (I, Q)
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


@dataclass(frozen=True)
class ViewAugment:
    """``jitter`` = (brightness, contrast, saturation, hue) strengths (torchvision's
    meaning: factors drawn from [1 − s, 1 + s], hue shift from [−h, h] turns);
    ``bands`` the jittered band indices (None = all); ``flip`` a random horizontal
    flip per crop."""

    jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    flip: bool = False
    bands: tuple[int, ...] | None = None

    @property
    def active(self) -> bool:
        return self.flip or any(self.jitter)


def _uniform(gen: torch.Generator, batch: int, strength: float) -> torch.Tensor:
    return 1.0 + strength * (2.0 * torch.rand(batch, generator=gen) - 1.0)


def colour_jitter(
    x: torch.Tensor,
    gen: torch.Generator,
    jitter: Sequence[float],
    bands: Sequence[int] | None = None,
) -> torch.Tensor:
    """Per-crop brightness, contrast, saturation and hue changes of B×C×H×W ``x``."""
    brightness, contrast, saturation, hue = (float(v) for v in jitter)
    picked = list(range(x.shape[1])) if bands is None else list(bands)
    if not picked or not any((brightness, contrast, saturation, hue)):
        return x
    batch = x.shape[0]
    u = (x[:, picked] + 1.0) / 2.0  # normalised bands → [0, 1]
    shape = (batch, 1, 1, 1)
    if brightness:
        u = u * _uniform(gen, batch, brightness).view(shape).to(u)
    if contrast:
        mean = u.mean(dim=(1, 2, 3), keepdim=True)
        u = (u - mean) * _uniform(gen, batch, contrast).view(shape).to(u) + mean
    if len(picked) == 3 and (saturation or hue):
        yiq = torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(u), u)
        scale = _uniform(gen, batch, saturation) if saturation else torch.ones(batch)
        angle = (2.0 * torch.rand(batch, generator=gen) - 1.0) * hue * 2 * math.pi
        cos, sin = (scale * angle.cos()).to(u), (scale * angle.sin()).to(u)
        i, q = yiq[:, 1], yiq[:, 2]
        c, s = cos.view(-1, 1, 1), sin.view(-1, 1, 1)
        yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], dim=1)
        u = torch.einsum("ij,bjhw->bihw", _YIQ_TO_RGB.to(u), yiq)
    out = x.clone()
    out[:, picked] = u * 2.0 - 1.0
    return out


def flip_where(y: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Crops of B×…×W ``y`` whose ``flips`` entry is True mirrored left–right (its own
    inverse, so applying it again undoes it exactly)."""
    if not bool(flips.any()):
        return y
    shape = (-1,) + (1,) * (y.dim() - 1)
    return torch.where(flips.to(y.device).view(shape), y.flip(-1), y)


def second_view(
    x: torch.Tensor, gen: torch.Generator, augment: ViewAugment
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(view 2's input, its per-crop flips or None)."""
    x2 = colour_jitter(x, gen, augment.jitter, augment.bands)
    flips = None
    if augment.flip:
        flips = torch.rand(x.shape[0], generator=gen) < 0.5
        x2 = flip_where(x2, flips)
    return x2, flips


__all__ = ["ViewAugment", "colour_jitter", "flip_where", "second_view"]
