"""Masked ("shifted") 3×3 convolution: the autoregressive layer of g_ar.

The kernel covers the current row and the two rows above it (input padded 2 on
top, 1 left/right), with the taps right of centre in the bottom row masked out:
the output at a pixel sees only itself and pixels before it in the row-major
scan, yet 8 of the 9 taps stay live (a PixelCNN-style centred mask keeps 5). The
public reproduction uses the same layout. Other orderings come from transforming
the feature map (``orderings.transform``), so this layer needs one fixed mask.
Unmasked (inference) it is a plain centred 3×3 convolution, as the paper says.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.nn.orderings import inverse_transform

# (left, right, top, bottom) input padding of the causal kernel in the reference frame.
CAUSAL_PAD = (1, 1, 2, 0)


def causal_mask() -> torch.Tensor:
    """3×3 float mask: bottom row = current row; its right tap is the future."""
    mask = torch.ones(3, 3)
    mask[2, 2] = 0.0
    return mask


class MaskedConv3x3(nn.Module):
    """3×3 convolution that is causal under row-major order when ``causal=True``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("mask", causal_mask(), persistent=False)
        nn.init.xavier_normal_(self.weight)
        self.zero_masked_taps()

    @torch.no_grad()
    def zero_masked_taps(self) -> None:
        """The masked tap never gets a gradient on the fast path; zero it so the
        unmasked inference kernel holds only trained taps."""
        self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        if not causal:
            return F.conv2d(x, self.weight, self.bias, padding=1)
        return F.conv2d(F.pad(x, CAUSAL_PAD), self.weight * self.mask, self.bias)

    # -- the reference formulation (rotate the mask per ordering) ------------------
    def forward_ordering(
        self, x: torch.Tensor, ordering: int, rotate_weights: bool = True
    ) -> torch.Tensor:
        """Causal under ``ordering`` in the original frame: per-ordering mask and padding.

        ``rotate_weights=True`` computes exactly what the fast path computes
        (transform → fixed mask → transform back); ``False`` rotates only the mask,
        keeping the kernel's orientation, as the public reproduction does.
        """
        left, right, top, bottom = ordering_padding(ordering)
        mask = inverse_transform(self.mask, ordering)
        if rotate_weights:
            kernel = inverse_transform(self.weight * self.mask, ordering)
        else:
            kernel = self.weight * mask
        return F.conv2d(F.pad(x, (left, right, top, bottom)), kernel, self.bias)


def ordering_padding(ordering: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding placing the transformed kernel box."""
    box = torch.zeros(5, 5)
    left, right, top, bottom = CAUSAL_PAD
    box[2 - top : 3 + bottom, 2 - left : 3 + right] = 1.0
    rows, cols = torch.nonzero(inverse_transform(box, ordering), as_tuple=True)
    r0, c0 = int(rows.min()), int(cols.min())
    return 2 - c0, c0, 2 - r0, r0
