"""Masked ("shifted") 3×3 convolution: the autoregressive layer of g_ar.

The kernel covers the current row and the two rows above it (input padded 2 on
top, 1 left/right), with the taps right of centre in the bottom row masked out:
the output at a pixel sees only itself and pixels before it in the row-major
scan, yet 8 of the 9 taps stay live (a PixelCNN-style centred mask keeps 5). The
public reproduction uses the same layout. Other orderings come from transforming
the feature map (``orderings.transform``), so the mask and padding stay fixed.
Unmasked (inference) it is a plain centred 3×3 convolution, as the paper says.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.model.nn.orderings import inverse_transform, transform

# (left, right, top, bottom) input padding of the causal kernel in the reference frame.
CAUSAL_PAD = (1, 1, 2, 0)


def causal_mask() -> torch.Tensor:
    """3×3 float mask: bottom row = current row; its right tap is the future."""
    mask = torch.ones(3, 3)
    mask[2, 2] = 0.0
    return mask


class MaskedConv3x3(nn.Module):
    """3×3 convolution, causal under the given orderings (None = unmasked, centred).

    The input is already in the frame of its ordering (``orderings.transform``),
    where causality is the fixed row-major mask. The kernel is rotated *into* that
    frame before masking, so in the original frame view k convolves with
    ``W ⊙ g_k⁻¹(M)``: the mask turns with the ordering, the kernel's orientation does
    not — the paper's and the reproduction's model, and every tap gets trained.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("mask", causal_mask(), persistent=False)
        nn.init.xavier_normal_(self.weight)

    def forward(self, x: torch.Tensor, orderings: Sequence[int] | None = None) -> torch.Tensor:
        """``x`` holds ``len(orderings)`` equal batch chunks, chunk i in ordering i's frame."""
        if orderings is None:
            return F.conv2d(x, self.weight, self.bias, padding=1)
        chunks = F.pad(x, CAUSAL_PAD).chunk(len(orderings))
        outs = [
            F.conv2d(chunk, transform(self.weight, k) * self.mask, self.bias)
            for chunk, k in zip(chunks, orderings, strict=True)
        ]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def forward_ordering(self, x: torch.Tensor, ordering: int) -> torch.Tensor:
        """Reference formulation: causal under ``ordering`` in the original frame, with the
        mask and padding rotated per ordering (the reproduction's way)."""
        left, right, top, bottom = ordering_padding(ordering)
        kernel = self.weight * inverse_transform(self.mask, ordering)
        return F.conv2d(F.pad(x, (left, right, top, bottom)), kernel, self.bias)


def ordering_padding(ordering: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding placing the transformed kernel box."""
    box = torch.zeros(5, 5)
    left, right, top, bottom = CAUSAL_PAD
    box[2 - top : 3 + bottom, 2 - left : 3 + right] = 1.0
    rows, cols = torch.nonzero(inverse_transform(box, ordering), as_tuple=True)
    r0, c0 = int(rows.min()), int(cols.min())
    return 2 - c0, c0, 2 - r0, r0
