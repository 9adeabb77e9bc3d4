"""h on the feature bank: frozen pretrained features and AC's own stem, side by side.

The bank (:mod:`acseg_core.features`) gives frozen EfficientNet-Lite features at
strides 4–32, read on the stride-4 grid (bilinearly, exactly as a whole-image pass
would). Those are what carries meaning beyond colour; a learnt 1×1 projection with a
BatchNorm maps them to AC's width. AC's from-scratch stem runs in parallel on all the
input bands, for what the bank does not see (bands beyond RGB) and for full-resolution
detail; the two are added. Masked g_ar, the orderings and the MI loss are AC's and
unchanged: like AC's stem, this one is not causal, and causality holds on its grid.

The bank's weights never train and are not in the model file: the model records
which bank it reads (``ModelConfig.bank``, and the weights' digest in its meta), and
prediction computes or finds each image's bank features first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.model.nn.stem import Stem, packed


class BankStem(nn.Module):
    """1×1 projection (+ BN + ReLU) of the bank's channels, plus AC's stem on the pixels."""

    reads_bank = True  # ACNet hands it the bank's features on its grid

    def __init__(self, in_channels: int, width: int, bank_channels: int, sobel: bool) -> None:
        super().__init__()
        self.project = nn.Conv2d(bank_channels, width, kernel_size=1)
        self.norm = nn.BatchNorm2d(width)
        self.pixels = Stem(in_channels, width, 4, sobel)

    def forward(self, x: torch.Tensor, bank: torch.Tensor) -> torch.Tensor:
        """Stem features on the stride-4 grid of ``x``; ``bank``: B×C×h×w on that grid
        (any float precision: a store's float16 is converted here)."""
        pixels = self.pixels(x)
        if bank.shape[0] != x.shape[0] or bank.shape[-2:] != pixels.shape[-2:]:
            raise ValueError(
                f"bank features {tuple(bank.shape)} do not match the input's grid "
                f"{(x.shape[0], *pixels.shape[-2:])}"
            )
        projected = F.relu(self.norm(self.project(packed(bank.to(pixels.dtype)))))
        return packed(projected + pixels)


__all__ = ["BankStem"]
