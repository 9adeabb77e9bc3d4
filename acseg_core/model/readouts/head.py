"""The ``head`` read-out: the network's own K-way cluster head (plain AC).

Every model has it and it needs no fit, so it is also what a model whose fitted
read-out is absent falls back to.
"""

from __future__ import annotations

import torch
from torch import nn

from acseg_core.model.readouts.base import GridInputs, ReadoutKind

HEAD = "head"


class HeadKind(ReadoutKind):
    name = HEAD
    label = "AC head (plain AC)"

    def is_fitted(self, module: nn.Module | None) -> bool:
        return True

    def probabilities(self, module: nn.Module | None, inputs: GridInputs) -> torch.Tensor:
        return inputs.net.head_probabilities(inputs.features, inputs.size)


__all__ = ["HEAD", "HeadKind"]
