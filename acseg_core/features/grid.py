"""Bank features on a model's grid, for any window: what read-outs and training crops see.

Each stride's map is interpolated bilinearly onto the model's grid (a step of ``step``
source pixels, 4 for the shipped presets) exactly as ``F.interpolate`` (align_corners
False, border clamped) would interpolate the whole map, but computing only the
window's cells from the few coarse cells they need. So a tile's bank features equal
the whole image's, cell for cell, and reading them costs the window.
"""

from __future__ import annotations

import numpy as np
import torch

from acseg_core.features.store import FeatureStore


def _axis(first: int, count: int, step: int, stride: int, coarse: int) -> tuple:
    """Bilinear taps along one axis: for grid cells ``first..first+count-1`` (cell
    centres at ``(i + 0.5) * step`` px), the coarse cells below/above and weights."""
    centres = (np.arange(first, first + count, dtype=np.float64) + 0.5) * step / stride - 0.5
    centres = np.clip(centres, 0.0, coarse - 1)
    low = np.floor(centres).astype(np.int64)
    high = np.minimum(low + 1, coarse - 1)
    return low, high, (centres - low).astype(np.float32)


def grid_features(
    store: FeatureStore, window: tuple[int, int, int, int], step: int
) -> torch.Tensor:
    """C×h×w bank features (every level, stacked, in the store's precision) on the grid
    of ``step`` px over the pixel ``window`` (col, row, width, height; col and row
    multiples of ``step``)."""
    col, row, width, height = window
    first_c, first_r = col // step, row // step
    count_c, count_r = -(-width // step), -(-height // step)
    parts = []
    for level, stride in enumerate(store.meta.strides):
        _, rows, cols = store.meta.shape(level)
        r0, r1, wr = _axis(first_r, count_r, step, stride, rows)
        c0, c1, wc = _axis(first_c, count_c, step, stride, cols)
        top, bottom = int(r0.min()), int(r1.max()) + 1
        left, right = int(c0.min()), int(c1.max()) + 1
        block = torch.from_numpy(store.window(level, slice(top, bottom), slice(left, right)))
        r0t, r1t = torch.from_numpy(r0 - top), torch.from_numpy(r1 - top)
        c0t, c1t = torch.from_numpy(c0 - left), torch.from_numpy(c1 - left)
        wr_t, wc_t = torch.from_numpy(wr)[:, None], torch.from_numpy(wc)[None, :]
        upper = block[:, r0t] * (1 - wr_t) + block[:, r1t] * wr_t  # C × count_r × cols
        level_grid = upper[:, :, c0t] * (1 - wc_t) + upper[:, :, c1t] * wc_t
        parts.append(level_grid.to(block.dtype))  # the store's precision: half the memory
    return torch.cat(parts)


__all__ = ["grid_features"]
