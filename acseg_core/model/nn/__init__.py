"""AC network: masked convolutions, D4 orderings, causal attention."""

from acseg_core.model.nn.acnet import ACNet, build_model, receptive_field
from acseg_core.model.nn.orderings import (
    NUM_ORDERINGS,
    draw_orderings,
    inverse_transform,
    raster_rank,
    transform,
)

__all__ = [
    "NUM_ORDERINGS",
    "ACNet",
    "build_model",
    "draw_orderings",
    "inverse_transform",
    "raster_rank",
    "receptive_field",
    "transform",
]
