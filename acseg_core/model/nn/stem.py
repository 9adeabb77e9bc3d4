"""AC's own stem h: conv 3×3 + BN + ReLU + max-pool 3×3/2.

Also the learnt branch of the pretrained stem for bands beyond RGB
(:mod:`acseg_core.model.nn.pretrained`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# NHWC lets oneDNN (CPU) and tensor cores (CUDA) run the convolutions ~2× faster
# than NCHW; the D4 transforms return strided views, so re-pack after each.
CHANNELS_LAST = torch.channels_last


def packed(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=CHANNELS_LAST)


SOBEL_CHANNELS = 2


class SobelChannels(nn.Module):
    """Append horizontal/vertical Sobel responses of the channel mean (IIC's trick)."""

    def __init__(self) -> None:
        super().__init__()
        gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
        self.register_buffer("kernel", torch.stack([gx, gx.t()]).unsqueeze(1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = F.pad(x.mean(dim=1, keepdim=True), (1, 1, 1, 1), mode="replicate")
        return torch.cat([x, F.conv2d(gray, self.kernel.to(x.dtype))], dim=1)


class Stem(nn.Module):
    """h: conv 3×3 (stride 1 or 2) + BN + ReLU + max-pool 3×3/2."""

    def __init__(self, in_channels: int, width: int, stride: int, sobel: bool) -> None:
        super().__init__()
        self.sobel = SobelChannels() if sobel else None
        channels = in_channels + (SOBEL_CHANNELS if sobel else 0)
        self.conv = nn.Conv2d(channels, width, kernel_size=3, stride=stride // 2, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sobel is not None:
            x = self.sobel(x)
        return self.pool(F.relu(self.bn(self.conv(packed(x)))))


__all__ = ["CHANNELS_LAST", "SOBEL_CHANNELS", "SobelChannels", "Stem", "packed"]
