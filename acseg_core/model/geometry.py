"""Where a model's tiles go: the grid step, the overlap margin and the tile plan.

A tile's output equals the one-shot output when the tile overlaps its neighbours by
the model's receptive field (:func:`acseg_core.io.tiling.margin_for`) and starts on the
stem grid; a majority window widens the margin by half the window. Prediction,
learning and the feature bank all plan their tiles here, so they agree.
"""

from __future__ import annotations

import math

from acseg_core.io.tiling import TileGrid, margin_for, plan_tiles
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.config import ModelConfig
from acseg_core.model.nn.acnet import receptive_field
from acseg_core.model.readouts.choice import ReadOut


def grid_stride(config: ModelConfig, scale: float = 1.0) -> int:
    """The stem grid's step in source pixels (tiles snap to it so tiling stays exact)."""
    return max(1, round(config.stride / scale))


def tile_margin(config: ModelConfig, scale: float = 1.0, extra_cells: int = 0) -> int:
    """Overlap margin (per side, source pixels) for tiles of this model.

    At an input ``scale`` < 1 the network sees resampled pixels, so its receptive
    field covers ``1/scale`` times as many source pixels. ``extra_cells``: context a
    caller adds on the stem grid beyond the model's read-out (each side).
    """
    field = receptive_field(config) + 2 * config.stride * extra_cells
    return margin_for(math.ceil(field / scale), grid_stride(config, scale))


def smooth_margin(smooth: int, stride: int) -> int:
    """Extra margin for a ``smooth`` px majority window: its half, rounded up to the stride."""
    half = smooth // 2 if smooth > 1 else 0
    return -(-half // stride) * stride


def plan_for(
    loaded: LoadedModel,
    width: int,
    height: int,
    tile: int,
    readout: ReadOut | None = None,
    extra_cells: int = 0,
) -> TileGrid:
    """The tile grid of a ``width``×``height`` image for ``loaded`` (with ``readout``'s
    majority window); raises AcsegError when ``tile`` is too small for the margin."""
    scale = loaded.input_scale
    stride = grid_stride(loaded.config, scale)
    margin = tile_margin(loaded.config, scale, extra_cells)
    if readout is not None:
        margin += smooth_margin(readout.smooth or 0, stride)
    return plan_tiles(width, height, tile=tile, margin=margin, stride=stride)


__all__ = ["grid_stride", "plan_for", "smooth_margin", "tile_margin"]
