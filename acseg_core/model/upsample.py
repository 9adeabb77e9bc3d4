"""Stem grid → pixels: bilinear upsampling by the exact stride, then a crop.

Interpolating to the image's size instead stretches the grid by ``ceil(H/s)·s / H``
when H is not a multiple of the stride ``s``: the map drifts by up to a cell across
the image, and a tile gives other values than the whole image. Upsampling by
``s`` keeps each cell over the pixels it came from, whatever the size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample_grid(grid: torch.Tensor, size: tuple[int, int], stride: int) -> torch.Tensor:
    """``grid`` (B×C×ceil(H/s)×ceil(W/s)) bilinearly at ``stride``, cropped to ``size``."""
    height, width = size
    if grid.shape[-2] * stride < height or grid.shape[-1] * stride < width:
        raise ValueError(f"a {tuple(grid.shape[-2:])} grid at stride {stride} is not {size}")
    up = F.interpolate(grid, scale_factor=stride, mode="bilinear", align_corners=False)
    return up[..., :height, :width]


__all__ = ["upsample_grid"]
