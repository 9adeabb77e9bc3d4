"""The reference formulation of the orderings: per-ordering masks, one pass per view.

This is how the paper and the public reproduction realise the 8 orderings: the
3×3 kernel's mask (and the input padding) is rotated/flipped for each ordering
while the weights keep their orientation, the attention gets an explicit causal
mask built from the ordering's scan ranks, and each view is a separate forward pass.
It reuses an :class:`ACNet`'s parameters.

It computes exactly what ``ACNet`` computes (the tests check it for all 8
orderings); the speed benchmark times it against ``ACNet.forward_views``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from acseg_core.model.nn.acnet import ACNet, Output
from acseg_core.model.nn.orderings import raster_rank


def attention_allowed(ordering: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """N×N bool: query i may attend key j when j is not after i in the scan."""
    rank = raster_rank(ordering, height, width).flatten().to(device)
    return rank.unsqueeze(0) <= rank.unsqueeze(1)


def reference_from_stem(model: ACNet, features: torch.Tensor, ordering: int) -> torch.Tensor:
    """g_ar under ``ordering`` with per-ordering masks, in the original frame."""
    z = features
    for index, block in enumerate(model.blocks):
        y = F.relu(block.masked.forward_ordering(z, ordering))
        z = block.tail(z, y)
        if model.attention is not None and index == model.attention_after:
            allowed = attention_allowed(ordering, z.shape[-2], z.shape[-1], z.device)
            z = model.attention(z, allowed=allowed)
    return z


def reference_forward(
    model: ACNet, x: torch.Tensor, ordering: int, with_overcluster: bool = False
) -> Output:
    """Same contract as ``model(x, ordering, with_overcluster)``."""
    features = reference_from_stem(model, model.stem(x), ordering)
    return model.decode(features, tuple(x.shape[-2:]), with_overcluster)
