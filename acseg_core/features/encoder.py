"""A frozen pretrained encoder cut into *levels*, one per output stride of the bank.

Level 0 maps the RGB image to the first stride (4: Lite's stem and first two stages);
each further level maps the previous level's output to the next stride (8, 16, 32).
Cutting there is what makes tiling cheap and exact (:mod:`acseg_core.features.compute`):
a level's receptive field counts in its *input* cells, so the stride-32 level needs a
margin of ~17 cells of the stride-16 map, not ~430 image pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from acseg_core.errors import AcsegError
from acseg_core.model.nn.efficientnet import (
    LITE,
    RGB,
    STEM_CHANNELS,
    ConvBN,
    LiteSpec,
    lite_state_dict,
    stage_blocks,
    weights_digest,
    weights_file,
)


@dataclass(frozen=True)
class Level:
    """One level: output ``stride`` (image pixels per cell), the stride of its input
    (1: the image), its output channels, and its receptive field in input cells."""

    stride: int
    in_stride: int
    channels: int
    field: int

    @property
    def ratio(self) -> int:
        """Input cells per output cell."""
        return self.stride // self.in_stride


def _field(layers: list[nn.Module]) -> int:
    """Receptive field, in input cells, of convs run in order (TensorFlow "same")."""
    field, jump = 1, 1
    for layer in layers:
        convs = [layer] if isinstance(layer, ConvBN) else [layer.depthwise]  # type: ignore[union-attr]
        for conv in convs:
            field += (conv.kernel - 1) * jump
            jump *= conv.stride
    return field


class BankEncoder(nn.Module):
    """``spec``'s stem and blocks up to the largest of ``strides``, grouped into levels
    that end at each requested stride (the last block at that stride). Frozen: eval
    mode, no gradients, ImageNet BatchNorm statistics."""

    def __init__(self, spec: LiteSpec, strides: tuple[int, ...]) -> None:
        super().__init__()
        if not strides or list(strides) != sorted(set(strides)):
            raise AcsegError(f"bank strides must be increasing, got {strides}")
        self.spec, self.strides = spec, tuple(strides)
        self.stem = ConvBN(RGB, STEM_CHANNELS, 3, 2)
        blocks = stage_blocks(spec)
        self.blocks = nn.ModuleList(block for _, block in blocks)
        current = 2  # after the stem
        out_stride = [0] * len(blocks)
        for i, (_, block) in enumerate(blocks):
            current *= block.stride
            out_stride[i] = current
        if max(strides) > current or min(strides) < 4:
            raise AcsegError(f"{spec.name} gives strides 4 to {current}, not {strides}")
        self._levels: list[list[nn.Module]] = []  # views of stem/blocks, not registered
        self.levels: list[Level] = []
        start, in_stride = 0, 1
        for stride in strides:
            last = max(i for i, s in enumerate(out_stride) if s == stride)
            layers: list[nn.Module] = ([self.stem] if start == 0 else [])
            layers += [self.blocks[i] for i in range(start, last + 1)]
            self._levels.append(layers)
            channels = blocks[last][1].project.conv.out_channels
            self.levels.append(Level(stride, in_stride, channels, _field(layers)))
            start, in_stride = last + 1, stride
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> BankEncoder:
        return super().train(False)  # frozen: ImageNet statistics, always

    def run_level(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """Level ``index`` on its input (the RGB image in [-1, 1] for level 0)."""
        for layer in self._levels[index]:
            x = layer(x)
        return x

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """Every level's output for a whole RGB input in [-1, 1] (one-shot)."""
        outputs, x = [], rgb
        for index in range(len(self.levels)):
            x = self.run_level(index, x)
            outputs.append(x)
        return outputs

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(level.channels for level in self.levels)


def load_encoder(name: str, strides: tuple[int, ...]) -> tuple[BankEncoder, str]:
    """The named encoder with its ImageNet weights, and the weights' SHA-256."""
    try:
        spec = LITE[name]
    except KeyError:
        raise AcsegError(f"unknown feature bank {name!r} (choose from {', '.join(LITE)})") from None
    path = weights_file(spec)
    encoder = BankEncoder(spec, strides)
    state = lite_state_dict(path, blocks=len(encoder.blocks))
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise AcsegError(f"{path}: the weights do not fit {name} (missing {missing[:3]})")
    return encoder, weights_digest(path)


def margin_cells(level: Level) -> int:
    """Overlap (input cells, a multiple of the level's ratio) that makes a tile's kept
    output equal the one-shot output."""
    need = math.ceil(level.field / 2) + level.ratio
    return math.ceil(need / level.ratio) * level.ratio


__all__ = ["BankEncoder", "Level", "load_encoder", "margin_cells"]
